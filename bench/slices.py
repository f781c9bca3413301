"""Benchmark: slice switches of a large scan from its pyramid levels, through the slice cache.

    .venv/bin/python bench/slices.py --size 4096 --depth 64 --workdir /tmp/slices

Writes a noisy (depth, size, size) uint16 OME-Zarr once (the converter's chunks and pyramid), then
renders the first slice and 10 switches on each of the finest levels a view asks for (a fitted
4096^2 slice on a 672-pixel stage: level 2) as the annotation page gets them (window, 8-bit, PNG),
and prints seconds and the cache's size (``io.slices``, 256 MB by default).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from ml4paleo.io.omezarr import OmeZarrWriter, read_info
from ml4paleo.io.png import encode_png
from ml4paleo.io.slices import render_slice, slice_cache


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--depth", type=int, default=64)
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--levels", default="2,1", help="pyramid levels to switch on (default 2,1)")
    args = ap.parse_args(argv)
    path = args.workdir / f"scan_{args.depth}x{args.size}.ome.zarr"
    if not path.exists():
        rng = np.random.default_rng(0)
        with OmeZarrWriter(path, (args.depth, args.size, args.size), np.uint16) as w:
            for z0 in range(0, args.depth, 16):
                d = min(16, args.depth - z0)
                w.write_slab(z0, rng.normal(12000, 2500, (d, args.size, args.size)).clip(0, 65535).astype(np.uint16))
    shapes = read_info(path).level_shapes
    for level in (int(v) for v in args.levels.split(",")):
        depth = shapes[level][0]
        times = []
        for k in range(11):
            t = time.perf_counter()
            image = render_slice(path, "z", k % depth, (0, 30000), level=level)
            encode_png(image)
            times.append(time.perf_counter() - t)
        print(f"level {level} {image.shape[1]}x{image.shape[0]}: first slice {times[0]:.3f} s, 10 switches p50 "
              f"{statistics.median(times[1:]):.3f} s, max {max(times[1:]):.3f} s; cache {slice_cache().nbytes / 2**20:.0f} MB",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
