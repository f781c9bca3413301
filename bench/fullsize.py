"""Benchmark: a full-size scan through the command line, as a user runs it, step by step.

    .venv/bin/python bench/fullsize.py --size 1024 --workdir /data/fullsize_1024
    .venv/bin/python bench/fullsize.py --web --size 1024 --workdir /data/fullsize_web_1024

    .venv/bin/python bench/fullsize.py --web --size 1024 --depth 256 --segment-only --cli-compare --workdir DIR

With ``--web`` the scan goes through the web API and its runners instead (bench/_fullsize_web.py);
``--segment-only`` times the segmentation and its downloads alone, ``--cli-compare`` against ``ml4paleo segment``.

Generates an N^3 16-bit scan slab by slab (memory: one slab), written as a folder of 16-bit
TIFF slices as a synchrotron or micro-CT delivers it: ~256 grains of radius N/40..N/20 (every
fifth with a cavity, so the scan is porous like a fossil) brighter than a matrix with a smooth
drift and noise. Paints 3 slices (brush-like strokes of the truth, every 6th row and column).
Then runs, each as its own process through the CLI (``ml4paleo`` of this interpreter's
environment), with the local default scheduler (worker processes on all cores):

1. ``convert``   slices -> OME-Zarr
2. ``train``     the default method choice and model
3. ``segment``   the whole volume, no post-processing
4. ``post-process``  remove components under ``--min-size`` voxels and fill holes, exact, in
   place on the segmentation (``postprocess_labels`` in a process of its own: it is what
   ``segment --min-size --fill-holes`` runs after segmenting, timed apart here)
5. ``mesh``      STL, with the command's default options

and prints per step: seconds, M voxels/s (N^3 / seconds), peak RSS of the step's process tree
(sum over the process and its workers, sampled every 0.2 s) and of its largest process, and
CPU seconds. Also the Dice of the segmentation against the truth on 8 unpainted slices.
Steps' output lines go to ``<workdir>/<step>.log``. The machine's other load inflates the
seconds: the CPU seconds say what the step itself cost.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

GRAINS = 256
STEPS = ("convert", "train", "segment", "post-process", "mesh")
MATRIX, GRAIN, CAVITY, NOISE = 12000.0, 26000.0, 3000.0, 2500.0


def grains(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, frozenset[int]]:
    """Centres (z, y, x), radii and the hollow ones of the scan's grains."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, n, (GRAINS, 3))
    radii = rng.uniform(n / 40, n / 20, GRAINS)
    return centres, radii, frozenset(range(0, GRAINS, 5))


def truth_slab(n: int, z0: int, depth: int, balls) -> np.ndarray:
    """(depth, n, n) uint8: 1 inside a grain (its cavity excluded), 0 elsewhere."""
    from ml4paleo.testing.phantoms import paint_balls

    centres, radii, hollow = balls
    slab = np.zeros((depth, n, n), np.uint8)
    near = [i for i in range(GRAINS) if centres[i, 0] + radii[i] >= z0 and centres[i, 0] - radii[i] < z0 + depth]
    paint_balls(slab, z0, centres[near], radii[near], [1] * len(near),
                hollow={k for k, i in enumerate(near) if i in hollow})
    return slab


def write_scan(folder: Path, n: int, balls, depth: int = 16, slices: int | None = None) -> None:
    """The scan as ``slices`` (default n) 16-bit TIFF slices of n x n, slab by slab."""
    import tifffile

    from ml4paleo.testing.phantoms import paint_balls

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    x = np.arange(n, dtype=np.float32)
    drift = (1500.0 * np.sin(x / n * 3.0))[None, None, :]
    centres, radii, hollow = balls
    holes = sorted(hollow)
    slices = n if slices is None else int(slices)
    for z0 in range(0, slices, depth):
        d = min(depth, slices - z0)
        t = truth_slab(n, z0, d, balls)
        cav = np.zeros_like(t)  # the cavities hold air, darker than the matrix
        paint_balls(cav, z0, centres[holes], 0.4 * radii[holes], [1] * len(holes))
        v = np.where(t == 1, GRAIN, np.where(cav == 1, CAVITY, MATRIX)).astype(np.float32)
        v += drift + (2000.0 * (z0 + np.arange(d, dtype=np.float32)) / n)[:, None, None]
        v += rng.standard_normal(v.shape, dtype=np.float32) * np.float32(NOISE)
        np.clip(v, 0, 65535, out=v)
        scan = v.astype(np.uint16)
        for k in range(d):
            tifffile.imwrite(folder / f"slice_{z0 + k:05d}.tif", scan[k])


def paint(folder: Path, n: int, balls) -> list[int]:
    """Strokes on 3 slices as annotation PNGs (1 matrix, 2 grain)."""
    from ml4paleo.io.png import write_png
    from ml4paleo.testing.phantoms import strokes

    folder.mkdir(parents=True, exist_ok=True)
    zs = [n // 4, n // 2, 3 * n // 4]
    for z in zs:
        write_png(folder / f"{z}.png", strokes(truth_slab(n, z, 1, balls)[0], step=6))
    return zs


def run_step(name: str, argv: list[str], log: Path) -> dict:
    """Run one step as a process; time it and sample the RSS of its process tree."""
    import psutil

    t0 = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        ps = psutil.Process(proc.pid)
        peak = {"total": 0, "largest": 0, "processes": 1}
        cpu: dict[int, float] = {}
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                try:
                    tree = [ps, *ps.children(recursive=True)]
                except psutil.Error:
                    break
                rss = []
                for p in tree:
                    try:
                        rss.append(p.memory_info().rss)
                        c = p.cpu_times()
                        cpu[p.pid] = c.user + c.system
                    except psutil.Error:
                        pass
                peak["total"] = max(peak["total"], sum(rss))
                peak["largest"] = max(peak["largest"], max(rss, default=0))
                peak["processes"] = max(peak["processes"], len(rss))
                done.wait(0.2)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        rc = proc.wait()
        done.set()
        thread.join()
    seconds = time.perf_counter() - t0
    if rc != 0:
        print(log.read_text()[-3000:], file=sys.stderr)
        raise SystemExit(f"step {name} failed (exit {rc}); log {log}")
    return {"step": name, "seconds": seconds, "peak_total_mb": peak["total"] / 2**20,
            "peak_largest_mb": peak["largest"] / 2**20, "processes": peak["processes"], "cpu_s": sum(cpu.values())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=512, help="edge N of the N^3 scan (default 512)")
    ap.add_argument("--workdir", type=Path, required=True, help="folder for the scan and every output (kept)")
    ap.add_argument("--min-size", type=int, default=None,
                    help="post-processing: smallest component kept, voxels (default (N/64)^3, at least 8: "
                         "well under the smallest grain)")
    ap.add_argument("--keep-slices", action="store_true", help="keep the TIFF slices after conversion")
    ap.add_argument("--mesh-args", default="", help="extra options for `ml4paleo mesh` (e.g. '--max-error 0')")
    ap.add_argument("--steps", default=",".join(STEPS),
                    help="comma-separated steps to run (default all); a later run in the same --workdir resumes "
                         "from the outputs of the earlier steps and adds its figures to results.json")
    ap.add_argument("--web", action="store_true", help="through the web API and its runners (see _fullsize_web.py)")
    ap.add_argument("--no-segment", action="store_true", help="--web: stop after the previews")
    ap.add_argument("--depth", type=int, default=None, help="--web: slices of the scan (default N): N x N x depth")
    ap.add_argument("--segment-only", action="store_true",
                    help="--web: no browsing, drafts nor previews: the strokes, the full model, the segmentation")
    ap.add_argument("--cli-compare", action="store_true",
                    help="--web: then `ml4paleo segment` on the job's volume and model, as a process of its own")
    args = ap.parse_args(argv)
    if args.web:
        return _web(args.size, args.workdir, segment=not args.no_segment, depth=args.depth,
                    interactive=not args.segment_only, cli_compare=args.cli_compare)
    wanted = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = sorted(set(wanted) - set(STEPS))
    if unknown or not wanted:
        ap.error(f"--steps: choose among {', '.join(STEPS)}; got {args.steps!r}")
    n, work = args.size, args.workdir
    min_size = args.min_size if args.min_size is not None else max(8, (n // 64) ** 3)
    work.mkdir(parents=True, exist_ok=True)
    cli = str(Path(sys.executable).parent / "ml4paleo")
    voxels = n ** 3
    earlier = work / "results.json"
    results: list[dict] = []
    if earlier.exists():  # figures of steps run before in this workdir and not run again now
        results = [r for r in json.loads(earlier.read_text())["steps"] if r["step"] not in wanted]

    def report(r: dict) -> None:
        results.append(r)
        results.sort(key=lambda r: STEPS.index(r["step"]))
        print(f"{r['step']:<13} {r['seconds']:8.1f} s  {voxels / r['seconds'] / 1e6:7.2f} M voxels/s  "
              f"peak RSS {r['peak_total_mb']:7.0f} MB total ({r['processes']} processes), largest "
              f"{r['peak_largest_mb']:6.0f} MB  CPU {r['cpu_s']:7.1f} s", flush=True)
        (work / "results.json").write_text(json.dumps({"size": n, "steps": results}, indent=1))

    balls = grains(n)
    t = time.perf_counter()
    slices = work / "slices"
    if not (work / "scan.ome.zarr").exists() and not slices.exists():
        write_scan(slices, n, balls)
    zs = paint(work / "annotations", n, balls)
    print(f"generated {n}^3 uint16 scan ({voxels * 2 / 2**30:.1f} GiB as TIFF slices), painted slices {zs}: "
          f"{time.perf_counter() - t:.1f} s", flush=True)
    steps = [
        ("convert", ["convert", str(slices), str(work / "scan.ome.zarr"), "--voxel-size", "1", "1", "1",
                     "--unit", "um", "--overwrite"]),
        ("train", ["train", str(work / "scan.ome.zarr"), str(work / "annotations"), str(work / "model"),
                   "--classes", "matrix,grain", "--overwrite"]),
        ("segment", ["segment", str(work / "scan.ome.zarr"), str(work / "model"), str(work / "seg.ome.zarr"),
                     "--overwrite"]),
        ("post-process", [sys.executable, "-c",
                          "import sys; from ml4paleo.pipelines.postprocess import postprocess_labels\n"
                          "if __name__ == '__main__':\n"
                          f"    print(postprocess_labels({str(work / 'seg.ome.zarr' / '0')!r}, [1], "
                          f"min_size={min_size}, fill=True))"]),
        ("mesh", ["mesh", str(work / "seg.ome.zarr"), str(work / "meshes"), "--format", "stl", "--overwrite",
                  *args.mesh_args.split()]),
    ]
    for name, cmd in steps:
        if name not in wanted:
            continue
        if name == "convert" and (work / "scan.ome.zarr").exists() and not slices.exists():
            continue  # converted by an earlier run whose slices are gone
        argv_ = cmd if cmd[0] == sys.executable else [cli, *cmd]
        report(run_step(name, argv_, work / f"{name}.log"))
        if name == "convert" and not args.keep_slices:
            shutil.rmtree(slices, ignore_errors=True)

    if not (work / "seg.ome.zarr").exists():
        return 0
    from ml4paleo.io.omezarr import open_level

    seg = open_level(work / "seg.ome.zarr")
    check = [z for z in np.linspace(0, n - 1, 10).astype(int)[1:-1] if z not in zs]
    inter = total = 0
    for z in check:
        a, b = np.asarray(seg[z]) == 1, truth_slab(n, int(z), 1, balls)[0] == 1
        inter += int(np.logical_and(a, b).sum())
        total += int(a.sum() + b.sum())
    files = sorted((work / "meshes").glob("*.stl"))
    print(f"Dice (grain, {len(check)} unpainted slices, after post-processing): {2 * inter / max(total, 1):.4f}; "
          f"meshes: {', '.join(f'{f.name} {f.stat().st_size / 2**20:.0f} MB' for f in files)}")
    print(f"total {sum(r['seconds'] for r in results):.0f} s; largest step peak "
          f"{max(r['peak_total_mb'] for r in results):.0f} MB")
    return 0


def _web(n: int, work: Path, segment: bool = True, depth: int | None = None, interactive: bool = True,
         cli_compare: bool = False) -> int:
    """The ``--web`` mode: the scan's slices and two slices' strokes (every 6th row and column of
    the truth in the 256^2 window, on a 128-voxel grid, whose grains cover closest to 30 %), then
    the web run."""
    from _fullsize_web import run_web

    from ml4paleo.testing.phantoms import strokes

    work.mkdir(parents=True, exist_ok=True)
    balls = grains(n)
    slices = work / "slices"
    depth = n if depth is None else depth
    if not slices.exists():
        write_scan(slices, n, balls, slices=depth)
    masks = {}  # strokes over a 256^2 window of each slice, as a user paints a region of the view
    for z in (depth // 4, depth // 2):
        truth = truth_slab(n, z, 1, balls)[0]
        edge = min(256, n)
        corners = [(a, b) for a in range(0, n - edge + 1, 128) for b in range(0, n - edge + 1, 128)]
        a, b = min(corners, key=lambda ab: abs(truth[ab[0]:ab[0] + edge, ab[1]:ab[1] + edge].mean() - 0.3))
        mask = np.zeros((n, n), np.uint8)  # the window whose grains cover closest to 30 %
        mask[a:a + edge, b:b + edge] = strokes(truth[a:a + edge, b:b + edge], step=6)
        masks[z] = mask
    return run_web(work, n, slices, masks, segment=segment, depth=depth, interactive=interactive,
                   cli_compare=cli_compare)


if __name__ == "__main__":
    sys.exit(main())
