"""Benchmark: slice switches of a large scan from its pyramid levels, through the slice cache.

    .venv/bin/python bench/slices.py --size 4096 --depth 64 --workdir /tmp/slices

Writes a noisy (depth, size, size) uint16 OME-Zarr once (the converter's chunks and pyramid), then
renders the first slice and 10 switches on each of the finest levels a view asks for (a fitted
4096^2 slice on a 672-pixel stage: level 2) as the annotation page gets them (window, 8-bit, PNG),
and prints seconds and the cache's size (``io.slices``, 256 MB by default). Then, with ``--region R,C``
(default 1000,700: a view zoomed in to full resolution on a 1000 x 700-pixel stage), the same switches
reading only that region of level 0 at the plane's centre, widened by a 64-voxel chunk each way as the page asks
(``images/region``).
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
from ml4paleo.compute.display import to_uint8
from ml4paleo.io.slices import read_region, render_slice, slice_cache


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--depth", type=int, default=64)
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--levels", default="2,1", help="pyramid levels to switch on (default 2,1)")
    ap.add_argument("--region", default="1000,700", help="rows,columns a zoomed-in view shows at level 0 ('' : none)")
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
    if args.region:
        rows, cols = (int(v) for v in args.region.split(","))
        n = args.size
        # the visible region at the plane's centre widened by one chunk (64) each way, as the page asks
        r0, c0 = max(0, n // 2 - rows // 2 - 64), max(0, n // 2 - cols // 2 - 64)
        r1, c1 = min(n, r0 + rows + 128), min(n, c0 + cols + 128)
        slice_cache().clear()
        times = []
        for k in range(11):
            t = time.perf_counter()
            encode_png(to_uint8(read_region(path, "z", k % args.depth, 0, (r0, r1), (c0, c1)), (0, 30000)))
            times.append(time.perf_counter() - t)
        print(f"level 0 region {c1 - c0}x{r1 - r0} (a zoomed-in {cols}x{rows} view): first slice {times[0]:.3f} s, "
              f"10 switches p50 {statistics.median(times[1:]):.3f} s, max {max(times[1:]):.3f} s; "
              f"cache {slice_cache().nbytes / 2**20:.0f} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
