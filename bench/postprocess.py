"""Benchmark: exact post-processing block by block against the whole volume in memory.

Generates a ``--size``^3 uint8 label volume of two classes (grains of class 1 with cavities,
a porous class-2 matrix, speckle noise), stores it as a zarr array, then in fresh processes
(so peak RSS is each mode's own) runs ``min_size`` + ``fill`` + ``largest``:

- ``blocks``: ``pipelines.postprocess.postprocess_labels`` in place (local processes);
- ``whole``: ``compute.postprocess.postprocess`` on the whole volume in memory (the reference);

prints seconds, M voxels/s, peak RSS (main and largest worker) and whether the results agree.
Run: ``.venv/bin/python bench/postprocess.py [--size 384]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _rss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0


def make_volume(store: str, size: int, chunk: int = 64) -> None:
    import zarr

    from ml4paleo.testing.phantoms import paint_balls

    rng = np.random.default_rng(0)
    arr = zarr.create_array(store=store, shape=(size,) * 3, chunks=(chunk,) * 3, dtype=np.uint8, fill_value=0)
    centres = rng.uniform(0, size, (max(8, size**3 // 40_000), 3))
    radii = rng.uniform(4, 14, len(centres))
    hollow = set(range(len(radii)))
    for z0 in range(0, size, chunk):
        z1 = min(size, z0 + chunk)
        zz, yy, xx = np.ogrid[z0:z1, 0:size, 0:size]
        slab = np.zeros((z1 - z0, size, size), np.uint8)
        slab[(np.sin(zz / 7.0) + np.sin(yy / 9.0) + np.sin(xx / 11.0)) > 1.2] = 2
        paint_balls(slab, z0, centres, radii, [1] * len(radii), hollow)  # cavities: filled by fill_holes
        noise = rng.random(slab.shape) < 0.002
        slab[noise] = rng.integers(0, 3, int(noise.sum())).astype(np.uint8)
        arr[z0:z1] = slab


OPTIONS = dict(min_size=50, fill=True, largest=True)


def run_blocks(store: str) -> dict:
    from ml4paleo.pipelines.postprocess import postprocess_labels

    t0 = time.perf_counter()
    counts = postprocess_labels(store, [1, 2], min_size=OPTIONS["min_size"], fill=True, largest=True)
    return {"seconds": time.perf_counter() - t0, "counts": counts.tolist(),
            "rss_mb": _rss_mb(resource.RUSAGE_SELF), "worker_rss_mb": _rss_mb(resource.RUSAGE_CHILDREN)}


def run_whole(store: str, out: str) -> dict:
    import zarr

    from ml4paleo.compute.postprocess import postprocess

    t0 = time.perf_counter()
    labels = np.asarray(zarr.open_array(store=store, mode="r")[:])
    result = postprocess(labels, **OPTIONS)
    elapsed = time.perf_counter() - t0
    np.save(out, result)
    return {"seconds": elapsed, "rss_mb": _rss_mb(resource.RUSAGE_SELF)}


def compare(store: str, whole: str) -> dict:
    import zarr

    a = np.asarray(zarr.open_array(store=store, mode="r")[:])
    return {"equal": bool(np.array_equal(a, np.load(whole)))}


def _child(mode: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=384, help="volume edge in voxels (default 384)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, *rest = args.child
        result = {"blocks": lambda: run_blocks(rest[0]), "whole": lambda: run_whole(rest[0], rest[1]),
                  "compare": lambda: compare(rest[0], rest[1])}[mode]()
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory(prefix="bench-post-") as tmp:
        store = str(Path(tmp) / "labels.zarr")
        t0 = time.perf_counter()
        make_volume(store, args.size)
        voxels = args.size**3
        print(f"volume {args.size}^3 uint8, 2 classes ({voxels / 1e6:.0f} M voxels) in {time.perf_counter() - t0:.1f} s; "
              f"options {OPTIONS}")
        whole = _child("whole", store, str(Path(tmp) / "whole.npy"))
        blocks = _child("blocks", store)
        same = _child("compare", store, str(Path(tmp) / "whole.npy"))
        print(f"whole volume in memory : {whole['seconds']:7.2f} s  {voxels / whole['seconds'] / 1e6:6.1f} M voxels/s  "
              f"peak RSS {whole['rss_mb']:6.0f} MB")
        print(f"blocks, merged (exact) : {blocks['seconds']:7.2f} s  {voxels / blocks['seconds'] / 1e6:6.1f} M voxels/s  "
              f"peak RSS {blocks['rss_mb']:6.0f} MB main, {blocks['worker_rss_mb']:.0f} MB largest worker  "
              f"equal to whole volume: {same['equal']}")


if __name__ == "__main__":
    main()
