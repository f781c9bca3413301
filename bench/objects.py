"""Benchmark: objects and measurements against generated shapes whose answers are known.

Accuracy (in memory, :mod:`ml4paleo.compute.objects` and :mod:`ml4paleo.compute.measure`), on
isotropic and 3:1 (z) voxels:

- touching sphere pairs (radii 8-16 units) through necks of 0.2-0.6 of the smaller radius, and
  lone ellipsoids: objects found vs truth, and each part's volume vs the analytic volume of its
  sphere less the cap beyond the neck plane (the cut a perfect split makes);
- plates and rods of known thickness: median local thickness error, in voxels (of the axis
  across the plate; a rod's across its diameter);
- a sphere: volume, surface and sphericity.

Scale (``--size N``): an N^3 OME-Zarr label map of spheres and touching pairs on a grid (truth
known), run through ``objects_from_labels`` in a fresh process: objects vs truth, seconds,
M voxels/s, CPU seconds and peak RSS of that process, and the machine's load average (the wall
time on a shared machine follows the load; the CPU time much less).

Run: ``.venv/bin/python bench/objects.py [--size 256] [--skip-accuracy]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ml4paleo.compute.measure import local_thickness, measure_object
from ml4paleo.compute.objects import split_object
from ml4paleo.testing.shapes import ellipsoid, neck_distance, plate, rod, touching_pair

ANISO = {"1:1:1": (1.0, 1.0, 1.0), "3:1 (z)": (3.0, 1.0, 1.0)}
NECKS = (0.2, 0.3, 0.4, 0.5, 0.6)


def _sphere_part(r: float, other: float, neck: float) -> float:
    """Volume of a sphere of radius r less its cap beyond the neck plane (neck radius ``neck``)."""
    h = r - np.sqrt(r * r - neck * neck)
    return 4 / 3 * np.pi * r**3 - np.pi * h * h * (3 * r - h) / 3


def pairs(vs, rng, per_neck: int = 6) -> list[tuple]:
    """Per neck ratio: objects found, and each part's largest volume error against the analytic
    sphere less its cap (the grid's own error included) and against the voxels of the mask on its
    side of the neck plane (the split's error alone)."""
    rows = []
    for ratio in NECKS:
        found, errors, split_errors = 0, [], []
        for _ in range(per_neck):
            r1, r2 = sorted(rng.uniform(8, 16, 2))
            d = neck_distance(r1, r2, ratio * r1)
            shape = (int((2 * r2 + 8) / vs[0]), int((2 * r2 + 8) / vs[1]), int((d + r1 + r2 + 8) / vs[2]))
            mask = np.zeros(shape, bool)
            centre = (shape[0] * vs[0] / 2 + rng.uniform(-.5, .5), shape[1] * vs[1] / 2 + rng.uniform(-.5, .5),
                      shape[2] * vs[2] / 2 + rng.uniform(-.5, .5))
            c1, c2 = touching_pair(mask, centre, r1, r2, ratio, vs)
            parts = split_object(mask, vs)
            found += int(parts.max())
            if parts.max() == 2:
                # the plane where the spheres meet, along x (physical), and the voxels' x
                plane = c1[2] + (d * d + r1 * r1 - r2 * r2) / (2 * d)
                x = np.arange(shape[2]) * vs[2]  # as testing.shapes places voxels
                sides = (mask & (x < plane), mask & (x >= plane))
                # each part against the sphere whose centre it holds
                for (c, r, o), side in zip(((c1, r1, r2), (c2, r2, r1)), sides):
                    k = parts[tuple(int(round(v / s)) for v, s in zip(c, vs))]
                    vol = (parts == k).sum() * np.prod(vs)
                    errors.append(abs(vol / _sphere_part(r, o, ratio * r1) - 1))
                    split_errors.append(abs((parts == k).sum() / side.sum() - 1))
        rows.append((ratio, 2 * per_neck, found, 100 * max(errors) if errors else float("nan"),
                     100 * max(split_errors) if split_errors else float("nan")))
    return rows


def ellipsoids(vs, rng, n: int = 8) -> tuple[int, int, float]:
    found, errors = 0, []
    for _ in range(n):
        semi = rng.uniform(6, 20, 3)
        shape = tuple(int((2 * a + 6) / v) for a, v in zip(semi, vs))
        mask = np.zeros(shape, bool)
        ellipsoid(mask, [n_ * v / 2 for n_, v in zip(shape, vs)], semi, vs)
        found += int(split_object(mask, vs).max())
        errors.append(abs(mask.sum() * np.prod(vs) / (4 / 3 * np.pi * np.prod(semi)) - 1))
    return n, found, 100 * max(errors)


def thickness(vs) -> list[tuple]:
    rows = []
    for t in (5.0, 8.0, 11.0, 16.0):
        size = 64.0
        mask = np.zeros((int(size / vs[0]), int(size), int(size)), bool)
        plate(mask, (4.0, 4.0, 20.0), (size - 8, size - 8, t), vs)  # across x
        med = float(np.median(local_thickness(mask, vs)[mask]))
        rows.append(("plate across x", t, med, (med - t) / vs[2]))
        mask[:] = False
        tz = t * vs[0]
        plate(mask, (12.0, 4.0, 4.0), (tz, size - 8, size - 8), vs)  # across z
        med = float(np.median(local_thickness(mask, vs)[mask]))
        rows.append(("plate across z", tz, med, (med - tz) / vs[0]))
        mask[:] = False
        rod(mask, (32.0, 32.0), t / 2, (4.0, size - 4), vs)
        med = float(np.median(local_thickness(mask, vs)[mask]))
        rows.append(("rod along z", t, med, (med - t) / vs[2]))
    return rows


def sphere(vs, r: float = 15.0) -> dict:
    shape = tuple(int((2 * r + 8) / v) for v in vs)
    mask = np.zeros(shape, bool)
    ellipsoid(mask, [n * v / 2 + 0.3 for n, v in zip(shape, vs)], (r, r, r), vs)
    m = measure_object(mask, vs)
    return {"volume_err": 100 * (m["volume"] / (4 / 3 * np.pi * r**3) - 1),
            "area_err": 100 * (m["surface_area"] / (4 * np.pi * r * r) - 1),
            "face_area_err": 100 * (m["voxel_face_area"] / (4 * np.pi * r * r) - 1),
            "sphericity": m["sphericity"], "thickness_max": m["thickness_max"]}


def accuracy() -> None:
    rng = np.random.default_rng(0)
    print("## Split: touching sphere pairs (radii 8-16) and lone ellipsoids (semi-axes 6-20)")
    print("| voxels | neck / smaller radius | objects (truth) | largest part volume error: analytic | "
          "its voxels (the split alone) |")
    print("|---|---|---|---|---|")
    for name, vs in ANISO.items():
        for ratio, truth, found, err, split_err in pairs(vs, rng):
            print(f"| {name} | {ratio:.1f} | {found} ({truth}) | {err:.2f} % | {split_err:.2f} % |")
        n, found, err = ellipsoids(vs, rng)
        print(f"| {name} | lone ellipsoids | {found} ({n}) | {err:.2f} % (voxel volume) | - |")
    print("\n## Local thickness (median over the object)")
    print("| voxels | shape | true | measured | error (voxels across) |")
    print("|---|---|---|---|---|")
    for name, vs in ANISO.items():
        for shape, t, med, err in thickness(vs):
            print(f"| {name} | {shape} | {t:g} | {med:.2f} | {err:+.2f} |")
    print("\n## A sphere of radius 15")
    print("| voxels | volume error | mesh area error | voxel-face area error | sphericity | max thickness (30) |")
    print("|---|---|---|---|---|---|")
    for name, vs in ANISO.items():
        s = sphere(vs)
        print(f"| {name} | {s['volume_err']:+.2f} % | {s['area_err']:+.2f} % | {s['face_area_err']:+.1f} % | "
              f"{s['sphericity']:.3f} | {s['thickness_max']:.2f} |")


def make_scene(path: Path, size: int, cell: int = 40) -> int:
    """Spheres and touching pairs (necks 0.2-0.5) one per grid cell; returns the true count."""
    from ml4paleo.io.omezarr import OmeZarrWriter

    rng = np.random.default_rng(1)
    labels = np.zeros((size,) * 3, np.uint8)
    vs = (1.0, 1.0, 1.0)
    truth = 0
    n = size // cell
    for cz in range(n):
        for cy in range(n):
            for cx in range(n):
                centre = (np.array([cz, cy, cx]) + 0.5) * cell + rng.uniform(-1, 1, 3)
                if rng.random() < 0.5:
                    ellipsoid(labels, centre, [rng.uniform(6, 14)] * 3, vs)
                    truth += 1
                else:
                    r1, r2 = rng.uniform(5, 9, 2)
                    touching_pair(labels, centre, r1, r2, rng.uniform(0.2, 0.5), vs)
                    truth += 2
    with OmeZarrWriter(path, labels.shape, np.uint8, voxel_size=vs, kind="labels", chunks=64,
                       attrs={"classes": ["background", "grain"]}) as w:
        for z0 in range(0, size, 64):
            w.write_slab(z0, labels[z0:z0 + 64])
    return truth


def run_objects(labels: str, out: str, scheduler: str | None = None) -> dict:
    from ml4paleo.pipelines.objects import objects_from_labels

    t0 = time.perf_counter()
    result = objects_from_labels(labels, out, scheduler=scheduler)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # the worker processes, once the pool is shut down
    return {"seconds": time.perf_counter() - t0, "objects": len(result.objects), "rss_mb": usage.ru_maxrss / 1024.0,
            "worker_rss_mb": kids.ru_maxrss / 1024.0, "cpu_s": usage.ru_utime + usage.ru_stime,
            "worker_cpu_s": kids.ru_utime + kids.ru_stime}


def scale(size: int, schedulers: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-objects-") as tmp:
        labels = Path(tmp) / "labels.ome.zarr"
        t0 = time.perf_counter()
        truth = make_scene(labels, size)
        made = time.perf_counter() - t0
        print(f"\n## Scale: {size}^3 label map (made in {made:.0f} s), objects_from_labels in a fresh process")
        print("| size | scheduler | objects (truth) | seconds | M voxels/s | CPU s main + workers | peak RSS main / worker "
              "| load average |")
        print("|---|---|---|---|---|---|---|---|")
        for i, scheduler in enumerate(schedulers):
            out_path = str(Path(tmp) / f"out{i}" / "o.ome.zarr")
            code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import objects as b; "
                    f"print(json.dumps(b.run_objects({str(labels)!r}, {out_path!r}, {scheduler!r})))")
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"| {size}^3 | {scheduler} | {r['objects']} ({truth}) | {r['seconds']:.1f} | "
                  f"{size**3 / r['seconds'] / 1e6:.2f} | {r['cpu_s']:.1f} + {r['worker_cpu_s']:.1f} | "
                  f"{r['rss_mb']:.0f} / {r['worker_rss_mb']:.0f} MB | {os.getloadavg()[0]:.1f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="edge of the scale test's label map (0: none)")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--schedulers", default="processes",
                        help="comma-separated schedulers to time in turn (synchronous, processes)")
    args = parser.parse_args()
    if not args.skip_accuracy:
        accuracy()
    if args.size:
        scale(args.size, args.schedulers.split(","))


if __name__ == "__main__":
    main()
