"""Benchmark ingest: a generated stack of 2D uint16 TIFFs -> OME-Zarr, against only reading it.

    .venv/bin/python bench/convert.py                       # 512 slices of 1024^2 (1 GiB)
    .venv/bin/python bench/convert.py --slices 128 --size 512 --codec blosc-lz4

Prints MB/s (of uncompressed voxels) for the conversion (full resolution + pyramid +
metadata), for reading the same files with tifffile on the same number of threads (the limit
for this step), their ratio, and the conversion's peak RSS. Each measurement runs in a fresh
subprocess so peak RSS is the conversion's own (ru_maxrss), not the generator's. ``--cache
cold`` evicts the files from the page cache first (fsync + POSIX_FADV_DONTNEED), as after a
reboot; ``warm`` reads them from memory, as right after an upload; ``both`` (default) does both.
Goal (issue 2): conversion >= 70% of read-only speed, peak RSS < 600 MB for the 1 GiB stack.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def generate(folder: Path, slices: int, size: int, seed: int = 0) -> int:
    """CT-like slices: a smooth background, a bright shell whose radius changes with z, and
    Gaussian noise (sigma 60 on a ~12-bit range), so compressors see realistic entropy."""
    import tifffile

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size].astype(np.float32)
    base = 2000 + 1500 * np.sin(x / 37.0) * np.cos(y / 53.0)
    r = np.hypot(x - size / 2, y - size / 2)
    for z in range(slices):
        radius = size / 3 * (0.6 + 0.4 * np.sin(z / 40.0))
        img = base + 8000 * ((r < radius) & (r > radius - size / 20)) + rng.normal(0, 60, (size, size)).astype(np.float32)
        tifffile.imwrite(folder / f"slice_{z:05d}.tif", np.clip(img, 0, 65535).astype(np.uint16))
    return slices * size * size * 2


def evict(folder: Path) -> None:
    """Drop the files from the page cache (works without root for clean pages)."""
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def child_read(src: str) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    import tifffile

    files = sorted(Path(src).glob("*.tif"))
    t, c = time.perf_counter(), cpu_seconds()
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        nbytes = sum(a.nbytes for a in pool.map(tifffile.imread, files))
    return {"seconds": time.perf_counter() - t, "cpu": cpu_seconds() - c, "bytes": nbytes}


def child_convert(src: str, dst: str, codec: str, chunk: int) -> dict:
    from ml4paleo.pipelines.convert import convert_volume

    t, c = time.perf_counter(), cpu_seconds()
    result = convert_volume(src, dst, codec=codec, chunk=chunk)
    seconds, cpu = time.perf_counter() - t, cpu_seconds() - c
    stored = sum(p.stat().st_size for p in Path(dst).rglob("*") if p.is_file())
    return {"seconds": seconds, "cpu": cpu, "bytes": int(np.prod(result.shape)) * 2, "stored": stored}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.exit(f"benchmark child failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=512)
    parser.add_argument("--size", type=int, default=1024, help="slice edge in pixels")
    parser.add_argument("--codec", default=None, choices=["zstd", "blosc-lz4", "none"], help="default: the library's")
    parser.add_argument("--chunk", type=int, default=64)
    parser.add_argument("--cache", default="both", choices=["warm", "cold", "both"])
    parser.add_argument("--tmp", default=None, help="folder for the generated stack (default: system temp)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.codec is None:
        from ml4paleo.io.omezarr import DEFAULT_CODEC

        args.codec = DEFAULT_CODEC
    if args.child:
        kind, *rest = args.child
        res = child_read(*rest) if kind == "read" else child_convert(rest[0], rest[1], rest[2], int(rest[3]))
        res["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
        print(json.dumps(res))
        return

    work = Path(tempfile.mkdtemp(prefix="ml4paleo-bench-", dir=args.tmp))
    try:
        src = work / "stack"
        src.mkdir()
        t = time.perf_counter()
        nbytes = generate(src, args.slices, args.size)
        print(f"generated {args.slices} x {args.size}^2 uint16 ({nbytes / 2**20:.0f} MiB) in {time.perf_counter() - t:.1f} s")
        print(f"cpus {os.cpu_count()}, codec {args.codec}, chunk {args.chunk}")
        modes = ["warm", "cold"] if args.cache == "both" else [args.cache]
        for mode in modes:
            if mode == "cold":
                evict(src)
            read = run_child("read", str(src))
            dst = work / f"out-{mode}.ome.zarr"
            if mode == "cold":
                evict(src)
            conv = run_child("convert", str(src), str(dst), args.codec, str(args.chunk))
            shutil.rmtree(dst, ignore_errors=True)
            read_mbs = read["bytes"] / read["seconds"] / 1e6
            conv_mbs = conv["bytes"] / conv["seconds"] / 1e6
            print(
                f"[{mode} cache] read-only (tifffile): {read_mbs:6.0f} MB/s ({read['seconds']:.2f} s, cpu {read['cpu']:.1f} s) | "
                f"convert: {conv_mbs:6.0f} MB/s ({conv['seconds']:.2f} s, cpu {conv['cpu']:.1f} s) | ratio {conv_mbs / read_mbs:5.1%} | "
                f"convert peak RSS {conv['peak_rss'] / 1e6:.0f} MB | stored {conv['stored'] / 1e6:.0f} MB "
                f"(x{conv['bytes'] / max(conv['stored'], 1):.2f})"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
