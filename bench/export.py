"""Benchmark: the NIfTI and 3D Slicer exports (and the multi-page TIFF for comparison).

Writes two ``--size``^3 OME-Zarr volumes slab by slab: a CT-like uint16 scan (smooth structure
plus noise, as scanners give) and a uint8 label map of packed balls (two structure classes).
Each export then runs in a fresh process, so that its peak RSS is its own, and the bench prints
for each: seconds, throughput in MB/s of voxel bytes exported, CPU seconds and MB per CPU second
(the work, which a loaded machine's wall clock hides; deflate runs on all cores), the output
size, peak RSS (and
how much of it the imports alone take), and the volume's own size, which a streamed export's
memory must stay far below.
Run: ``.venv/bin/python bench/export.py [--size 384] [--depth 64] [--formats nifti,seg-nrrd,tiff]``.
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


def make_scan(path: Path, shape: tuple[int, int, int]) -> None:
    """A uint16 scan: low-frequency structure plus noise, written one 64-slice slab at a time."""
    from scipy import ndimage

    from ml4paleo.io.omezarr import OmeZarrWriter

    rng = np.random.default_rng(0)
    nz, ny, nx = shape
    with OmeZarrWriter(path, shape, np.uint16, voxel_size=(12.5, 12.5, 12.5), overwrite=True) as w:
        for z0 in range(0, nz, 64):
            depth = min(64, nz - z0)
            coarse = rng.uniform(8000, 30000, (max(depth // 16, 1), -(-ny // 16), -(-nx // 16)))
            smooth = ndimage.zoom(coarse, (depth / coarse.shape[0], 16, 16), order=1)[:depth, :ny, :nx]
            noise = rng.normal(0, 600, (depth, ny, nx))
            w.write_slab(z0, np.clip(smooth + noise, 0, 65535).astype(np.uint16))


def make_labels(path: Path, shape: tuple[int, int, int]) -> None:
    """Packed balls of labels 1 and 2 (radius 3-12 voxels), slab by slab."""
    from ml4paleo.io.omezarr import OmeZarrWriter
    from ml4paleo.testing.phantoms import paint_balls

    rng = np.random.default_rng(1)
    n = max(8, int(np.prod(shape)) // 8000)
    centres = rng.uniform(0, 1, (n, 3)) * np.array(shape)
    radii = rng.uniform(3, 12, n)
    values = 1 + np.arange(n) % 2
    with OmeZarrWriter(path, shape, np.uint8, kind="labels", voxel_size=(12.5, 12.5, 12.5), overwrite=True,
                       attrs={"classes": ["matrix", "shell", "infill"]}) as w:
        for z0 in range(0, shape[0], 64):
            slab = np.zeros((min(64, shape[0] - z0), *shape[1:]), np.uint8)
            paint_balls(slab, z0, centres, radii, values)
            w.write_slab(z0, slab)


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM): unlike getrusage's ru_maxrss, which Linux carries
    over from the parent across fork and exec, it starts afresh in each child."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_one(src: str, out: str, fmt: str) -> None:
    """Child process: one export; prints its figures as JSON."""
    from ml4paleo.io.omezarr import read_info
    from ml4paleo.pipelines.export import export_volume

    info = read_info(src)
    imports = peak_rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    export_volume(src, out, format=fmt, overwrite=True)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "voxel_bytes": info.nbytes,
                      "out_bytes": Path(out).stat().st_size,
                      "peak_rss_mb": peak_rss_mb(), "imports_mb": imports}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=384, help="y and x extent of the volumes (default 384)")
    parser.add_argument("--depth", type=int, default=None,
                        help="z extent (default: --size); compare two depths: a streamed export's peak RSS stays put")
    parser.add_argument("--formats", default="nifti,seg-nrrd,tiff", help="comma-separated export formats")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_one(*args.child)
        return
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    suffix = {"nifti": "nii.gz", "seg-nrrd": "seg.nrrd", "tiff": "tif", "png-zip": "png.zip", "tiff-zip": "tif.zip",
              "zarr-zip": "zarr.zip"}
    with tempfile.TemporaryDirectory() as tmp:
        scan, labels = Path(tmp) / "scan.ome.zarr", Path(tmp) / "labels.ome.zarr"
        shape = (args.depth or args.size, args.size, args.size)
        make_scan(scan, shape)
        make_labels(labels, shape)
        voxels = int(np.prod(shape))
        print(f"volumes {shape[0]} x {shape[1]} x {shape[2]}: scan uint16 {2 * voxels / 1e6:.0f} MB, labels uint8 "
              f"{voxels / 1e6:.0f} MB (voxel bytes)")
        print(f"{'input':7} {'format':9} {'seconds':>8} {'MB/s':>8} {'CPU s':>7} {'MB/CPU s':>9} {'out MB':>8} "
              f"{'peak RSS MB':>12} {'of it imports':>14}")
        for name, src in (("scan", scan), ("labels", labels)):
            for fmt in formats:
                if fmt == "seg-nrrd" and name == "scan":
                    continue  # labels only
                out = Path(tmp) / f"{name}.{suffix[fmt]}"
                done = subprocess.run([sys.executable, __file__, "--child", str(src), str(out), fmt],
                                      check=True, capture_output=True, text=True)
                r = json.loads(done.stdout.strip().splitlines()[-1])
                mb = r["voxel_bytes"] / 1e6
                print(f"{name:7} {fmt:9} {r['seconds']:8.2f} {mb / r['seconds']:8.1f} {r['cpu_seconds']:7.2f} "
                      f"{mb / max(r['cpu_seconds'], 1e-9):9.1f} {r['out_bytes'] / 1e6:8.1f} "
                      f"{r['peak_rss_mb']:12.0f} {r['imports_mb']:14.0f}")
                out.unlink()


if __name__ == "__main__":
    main()
