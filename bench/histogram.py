"""Benchmark: the histogram of a volume's raw values (``GET /api/job/<id>/histogram``), streamed.

Generates a ``--depth`` x ``--side`` x ``--side`` 16-bit (or ``--dtype float32``) OME-Zarr volume
slab by slab, then in a fresh process (so peak RSS is the pass's own) runs
``ml4paleo.io.histogram.volume_histogram`` on it and prints seconds, M voxels/s, peak RSS and
the volume's size in memory, which the pass never holds (it reads blocks of
``BLOCK_VOXELS``). Integers of <= 16 bits take one pass, floats two.
Run: ``.venv/bin/python bench/histogram.py [--depth 256 --side 768 --dtype uint16]``.
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


def make_volume(path: Path, depth: int, side: int, dtype: str, chunk: int = 64) -> None:
    from ml4paleo.io.omezarr import OmeZarrWriter

    rng = np.random.default_rng(0)
    with OmeZarrWriter(path, (depth, side, side), np.dtype(dtype), chunks=chunk) as writer:
        for z0 in range(0, depth, chunk):
            slab = rng.normal(30000, 200, (min(chunk, depth - z0), side, side))
            slab[:, side // 4: side // 2, side // 4: side // 2] += 40  # "bone", 40 grey values above the matrix
            writer.write_slab(z0, slab.astype(dtype))


def _peak_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(path: str) -> dict:
    from ml4paleo.io.histogram import volume_histogram
    from ml4paleo.io.omezarr import open_level

    open_level(path, 0)  # imports and metadata: the baseline the pass adds to
    baseline = _peak_mb()
    t0 = time.perf_counter()
    result = volume_histogram(path, 2048)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "voxels": result.voxels, "bins": len(result.counts), "baseline_mb": baseline,
            "peak_rss_mb": _peak_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=256)
    parser.add_argument("--side", type=int, default=768)
    parser.add_argument("--dtype", default="uint16", choices=["uint8", "uint16", "int16", "float32"])
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "volume.ome.zarr"
        make_volume(path, args.depth, args.side, args.dtype)
        out = subprocess.run([sys.executable, __file__, "--measure", str(path)], check=True, capture_output=True,
                             text=True)
        r = json.loads(out.stdout)
    volume_mb = args.depth * args.side**2 * np.dtype(args.dtype).itemsize / 2**20
    print(f"histogram of {args.depth}x{args.side}x{args.side} {args.dtype} ({r['voxels'] / 1e6:.0f} M voxels, "
          f"{volume_mb:.0f} MB): {r['seconds']:.2f} s, {r['voxels'] / r['seconds'] / 1e6:.1f} M voxels/s, "
          f"peak RSS {r['peak_rss_mb']:.0f} MB ({r['baseline_mb']:.0f} MB after imports), {r['bins']} bins")


if __name__ == "__main__":
    main()
