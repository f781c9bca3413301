"""Benchmark: smoothed meshes (the default) against voxel meshes (``smooth=0``).

Two parts:

- **shape**: balls of known radius on isotropic, 3:1 and CT-like (3 mm slices, 0.98 mm pixels)
  grids, meshed through ``mesh_labels`` with 16-voxel chunks (many chunk planes cross each ball):
  volume error against the voxels' volume and the analytic one, surface error, and the
  terraces, measured as the share of the surface whose normal is within 10 degrees of the z
  axis (flat treads; 1.5 % on a true sphere) and as the ripple left in the radius once its
  slow change with latitude is taken out (a degree-8 polynomial in cos(latitude)), in slice
  thicknesses;
- **scale**: ``mesh_labels`` end to end (STL) on bench/mesh.py's ``--size``^3 volume, each
  mode in a fresh process: seconds, M voxels/s, CPU seconds, peak RSS (main and largest worker).

Run: ``.venv/bin/python bench/smooth_mesh.py [--size 384] [--volume grains|objects]``.
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

sys.path.insert(0, str(Path(__file__).parent))
from mesh import _cpu_s, _rss_mb, make_grains, make_volume  # noqa: E402  (bench/mesh.py's volumes)


def ball(radius: float, voxel) -> np.ndarray:
    shape = [int(np.ceil(radius / v)) * 2 + 5 for v in voxel]
    z, y, x = np.meshgrid(*[(np.arange(n) - n // 2) * v for n, v in zip(shape, voxel)], indexing="ij")
    return (z**2 + y**2 + x**2 <= radius**2).astype(np.uint8)


def terraces(verts: np.ndarray, faces: np.ndarray, centre: np.ndarray, slice_thickness: float) -> tuple[float, float]:
    """(share of the area facing along z within 10 degrees, radial ripple std / slice thickness)."""
    a, b, c = (verts[faces[:, k]] for k in range(3))
    n = np.cross(b - a, c - a)
    area = np.linalg.norm(n, axis=1)
    flat = float(area[np.abs(n[:, 0]) > np.cos(np.radians(10)) * area].sum() / area.sum())
    r = np.linalg.norm(verts - centre, axis=1)
    cos_lat = (verts[:, 0] - centre[0]) / r
    coef = np.polynomial.polynomial.polyfit(cos_lat, r, 8)
    ripple = float((r - np.polynomial.polynomial.polyval(cos_lat, coef)).std() / slice_thickness)
    return flat, ripple


def shape_table() -> None:
    import trimesh

    from ml4paleo.io.omezarr import OmeZarrWriter
    from ml4paleo.pipelines.mesh import mesh_labels

    print("| voxels (z, y, x) | radius | mesh | volume vs voxels | volume vs analytic | area vs analytic "
          "| area facing z (sphere 1.5 %) | ripple (slices) | watertight (STL read back) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for voxel, radius in [((1.0, 1.0, 1.0), 15.0), ((3.0, 1.0, 1.0), 15.0), ((3.0, 0.98, 0.98), 30.0)]:
        vol = ball(radius, voxel)
        centre = np.array([n // 2 for n in vol.shape]) * np.asarray(voxel)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "ball.ome.zarr"
            with OmeZarrWriter(path, vol.shape, np.uint8, voxel_size=voxel, unit="millimeter", kind="labels",
                               chunks=32) as w:
                w.write_slab(0, vol)
            for name, smooth in (("voxel", 0), ("smoothed", 20)):
                result = mesh_labels(path, Path(tmp) / name, chunk=16, smooth=smooth, scheduler="sync")
                m = result.measurements[1]
                mesh = trimesh.load(Path(tmp) / name / "label_1_millimeter.stl", force="mesh")
                verts = np.asarray(mesh.vertices)[:, ::-1]  # files are (x, y, z)
                flat, ripple = terraces(verts, np.asarray(mesh.faces), centre, voxel[0])
                analytic = 4 / 3 * np.pi * radius**3
                print(f"| {voxel} | {radius:g} | {name} | {100 * (m['volume'] / m['voxel_volume'] - 1):+.2f} % "
                      f"| {100 * (m['volume'] / analytic - 1):+.2f} % "
                      f"| {100 * (m['surface_area'] / (4 * np.pi * radius**2) - 1):+.2f} % "
                      f"| {100 * flat:.1f} % | {ripple:.3f} | {mesh.is_watertight and m['watertight']} |")


def run_pipeline(path: str, out: str, chunk: int, smooth: int) -> dict:
    from ml4paleo.pipelines.mesh import mesh_labels

    t0 = time.perf_counter()
    result = mesh_labels(path, out, chunk=chunk, formats=("stl",), smooth=smooth)
    ms = result.measurements.values()
    return {"seconds": time.perf_counter() - t0, "cpu_s": _cpu_s(), "rss_mb": _rss_mb(resource.RUSAGE_SELF),
            "worker_rss_mb": _rss_mb(resource.RUSAGE_CHILDREN), "triangles": sum(m["triangles"] for m in ms),
            "watertight": all(m["watertight"] for m in ms),
            "volume_vs_voxels": sum(m["volume"] for m in ms) / sum(m["voxel_volume"] for m in ms) - 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=384, help="volume edge for the scale part (default 384)")
    parser.add_argument("--chunk", type=int, default=256)
    parser.add_argument("--volume", choices=("grains", "objects"), default="objects")
    parser.add_argument("--skip-shape", action="store_true")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        path, out, chunk, smooth = args.child
        print(json.dumps(run_pipeline(path, out, int(chunk), int(smooth))))
        return
    print(f"load average before: {os.getloadavg()}")
    if not args.skip_shape:
        shape_table()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "labels.ome.zarr"
        (make_grains if args.volume == "grains" else make_volume)(path, args.size)
        print(f"\n{args.size}^3 {args.volume}, chunk {args.chunk}, STL")
        print("| mesh | seconds | M voxels/s | CPU s | peak RSS main / worker | triangles | volume vs voxels "
              "| watertight | load |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name, smooth in (("voxel", 0), ("smoothed", 20)):
            out = subprocess.run([sys.executable, __file__, "--child", str(path), str(Path(tmp) / name),
                                  str(args.chunk), str(smooth)], check=True, capture_output=True, text=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"| {name} | {r['seconds']:.1f} | {args.size**3 / r['seconds'] / 1e6:.2f} | {r['cpu_s']:.1f} "
                  f"| {r['rss_mb']:.0f} / {r['worker_rss_mb']:.0f} MB | {r['triangles']} "
                  f"| {100 * r['volume_vs_voxels']:+.2f} % | {r['watertight']} | {os.getloadavg()[0]:.1f} |")


if __name__ == "__main__":
    main()
