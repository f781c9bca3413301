"""Benchmark: chunked meshing against one zmesh call on the whole volume, and mesh file writing.

Generates a ``--size``^3 uint8 label volume with several objects (balls, tori, a gyroid-like
sponge), stores it as OME-Zarr, then measures in fresh processes (so peak RSS is each mode's own):

- ``chunked``: the pipeline's chunk tasks (``--chunk``^3, default 256, processes on all cores)
  and the welding of every label: what ``mesh_labels`` does before writing files;
- ``whole``: the whole volume read into memory and meshed by one zmesh call (the limit);
- ``pipeline``: ``mesh_labels`` end to end (adds measurements, the STL files and meshes.json):
  pieces saved by the chunk tasks, each label welded piece by piece and streamed to its file;
- ``in-memory``: the same end to end as ``mesh_labels`` did before streaming (every chunk's
  pieces returned to the main process, each label welded whole, then measured and written):
  the "before" of the peak RSS;

and prints voxels/s, peak RSS (main process and largest worker), the ratio, and the time to
write every label in each format. ``--volume grains`` (the default) packs ~size^3/4000 grains
(two labels, the most surface per voxel); ``objects``: balls, tori and a gyroid sponge.
Run: ``.venv/bin/python bench/mesh.py [--size 512] [--volume grains|objects]``.
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


def _rss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0


def _cpu_s() -> float:
    """CPU seconds of this process and its finished workers: the work done, whatever the load."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def make_volume(path: Path, size: int) -> None:
    """Write the synthetic label volume slab by slab (memory: one slab)."""
    from ml4paleo.io.omezarr import OmeZarrWriter

    rng = np.random.default_rng(0)
    n = size
    balls = [(rng.uniform(0.15, 0.85, 3) * n, rng.uniform(0.04, 0.12) * n, 1 + i % 2) for i in range(8)]
    tori = [((0.3 * n, 0.7 * n, 0.3 * n), 0.12 * n, 0.04 * n, 3), ((0.7 * n, 0.3 * n, 0.7 * n), 0.1 * n, 0.03 * n, 3)]
    lo, hi = int(0.3 * n), int(0.7 * n)  # the sponge (most triangles) sits in the middle, like a fossil
    y, x = np.meshgrid(np.arange(n, dtype=np.float32), np.arange(n, dtype=np.float32), indexing="ij")
    with OmeZarrWriter(path, (n, n, n), np.uint8, kind="labels", voxel_size=(1.0, 0.8, 0.8), overwrite=True) as w:
        depth = 64
        for z0 in range(0, n, depth):
            slab = np.zeros((min(depth, n - z0), n, n), np.uint8)
            for dz in range(slab.shape[0]):
                z = np.float32(z0 + dz)
                sl = slab[dz]
                for (cz, cy, cx), r, label in balls:
                    sl[(z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 <= r * r] = label
                for (cz, cy, cx), big, small, label in tori:
                    sl[(np.hypot(y - cy, x - cx) - big) ** 2 + (z - cz) ** 2 <= small * small] = label
                if lo <= z < hi:
                    f = 2 * np.pi / 24.0
                    g = np.sin(f * x) * np.cos(f * y) + np.sin(f * y) * np.cos(f * z) + np.sin(f * z) * np.cos(f * x)
                    box = (y >= lo) & (y < hi) & (x >= lo) & (x < hi)
                    sl[box & (np.abs(g) < 0.4)] = 4
            w.write_slab(z0, slab)


def make_grains(path: Path, size: int) -> None:
    """Packed grains (balls of radius 3-9 voxels, labels 1 and 2) with a few cavities, slab by slab."""
    from ml4paleo.io.omezarr import OmeZarrWriter
    from ml4paleo.testing.phantoms import paint_balls

    rng = np.random.default_rng(0)
    n = size
    count = max(8, n**3 // 4000)
    centres = rng.uniform(0, n, (count, 3))
    radii = rng.uniform(3, 9, count)
    values = [1 + i % 2 for i in range(count)]
    hollow = set(range(0, count, 7))
    with OmeZarrWriter(path, (n, n, n), np.uint8, kind="labels", voxel_size=(1.0, 0.8, 0.8), overwrite=True) as w:
        depth = 64
        for z0 in range(0, n, depth):
            slab = np.zeros((min(depth, n - z0), n, n), np.uint8)
            paint_balls(slab, z0, centres, radii, values, hollow)
            w.write_slab(z0, slab)


def run_in_memory(path: str, out: str, chunk: int) -> dict:
    """``mesh_labels`` before streaming: pieces of every chunk held, each label welded whole."""
    from ml4paleo.compute import mesh as meshing
    from ml4paleo.io.exports import write_mesh
    from ml4paleo.io.omezarr import read_info
    from ml4paleo.pipelines._tasks import run_tasks
    from ml4paleo.pipelines.mesh import _grid, _mesh_window

    info = read_info(path)
    t0 = time.perf_counter()
    level, stride, grid = _grid(info, 1)
    windows = meshing.chunk_windows(grid, chunk)
    results = run_tasks(_mesh_window, [(path, level, stride, grid, w, None) for w in windows])
    pieces: dict[int, list] = {}
    for chunk_pieces, _ in results:
        for label, piece in chunk_pieces.items():
            pieces.setdefault(label, []).append(piece)
    del results
    Path(out).mkdir()
    triangles = 0
    for label in sorted(pieces):
        coords, faces = meshing.weld(pieces.pop(label))
        verts = meshing.to_physical(coords / 2.0, info.voxel_size)
        meshing.measure_mesh(verts, faces)
        write_mesh(Path(out) / f"label_{label}.stl", verts, faces)
        triangles += len(faces)
    return {"seconds": time.perf_counter() - t0, "rss_mb": _rss_mb(resource.RUSAGE_SELF),
            "worker_rss_mb": _rss_mb(resource.RUSAGE_CHILDREN), "triangles": triangles}


def run_chunked(path: str, chunk: int) -> dict:
    from ml4paleo.compute import mesh as meshing
    from ml4paleo.io.omezarr import read_info
    from ml4paleo.pipelines._tasks import run_tasks
    from ml4paleo.pipelines.mesh import _grid, _mesh_window

    info = read_info(path)
    t0, c0 = time.perf_counter(), _cpu_s()
    level, stride, grid = _grid(info, 1)
    windows = meshing.chunk_windows(grid, chunk)
    results = run_tasks(_mesh_window, [(path, level, stride, grid, w, None) for w in windows])
    t_chunks = time.perf_counter() - t0
    pieces: dict[int, list] = {}
    for chunk_pieces, _ in results:
        for label, piece in chunk_pieces.items():
            pieces.setdefault(label, []).append(piece)
    del results
    triangles = 0
    for label in sorted(pieces):
        coords, faces = meshing.weld(pieces.pop(label))
        triangles += len(faces)
    elapsed = time.perf_counter() - t0
    return {"seconds": elapsed, "chunk_seconds": t_chunks, "triangles": triangles, "tasks": len(windows),
            "cpu_seconds": _cpu_s() - c0,
            "rss_mb": _rss_mb(resource.RUSAGE_SELF), "worker_rss_mb": _rss_mb(resource.RUSAGE_CHILDREN)}


def run_whole(path: str) -> dict:
    import zmesh

    from ml4paleo.io.omezarr import open_level

    t0, c0 = time.perf_counter(), _cpu_s()
    vol = open_level(path, 0)[:]
    mesher = zmesh.Mesher((1.0, 0.8, 0.8))
    mesher.mesh(vol, close=True)
    triangles = 0
    for label in mesher.ids():
        m = mesher.get(int(label), normals=False, reduction_factor=0, max_error=0)
        mesher.erase(label)
        triangles += len(m.faces)
    elapsed = time.perf_counter() - t0
    return {"seconds": elapsed, "triangles": triangles, "rss_mb": _rss_mb(resource.RUSAGE_SELF),
            "cpu_seconds": _cpu_s() - c0}


def run_pipeline(path: str, out: str, chunk: int) -> dict:
    from ml4paleo.pipelines.mesh import mesh_labels

    t0 = time.perf_counter()
    result = mesh_labels(path, out, chunk=chunk, formats=("stl",))
    return {"seconds": time.perf_counter() - t0, "rss_mb": _rss_mb(resource.RUSAGE_SELF),
            "worker_rss_mb": _rss_mb(resource.RUSAGE_CHILDREN),
            "triangles": sum(m["triangles"] for m in result.measurements.values())}


def run_formats(path: str, out: str) -> dict:
    from ml4paleo.compute import mesh as meshing
    from ml4paleo.enums import MESH_FORMATS
    from ml4paleo.io.exports import write_mesh
    from ml4paleo.io.omezarr import open_level, read_info

    info = read_info(path)
    vol = open_level(path, 0)[:]
    meshes = meshing.mesh_array(vol, chunk=256, voxel_size=info.voxel_size)
    res = {}
    for fmt in MESH_FORMATS:
        t0 = time.perf_counter()
        size = 0
        for label, (v, f) in meshes.items():
            size += write_mesh(Path(out) / f"label_{label}.{fmt}", v, f).stat().st_size
        res[fmt] = {"seconds": time.perf_counter() - t0, "bytes": size}
    res["triangles"] = sum(len(f) for _, f in meshes.values())
    return res


def _child(mode: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=512, help="volume edge in voxels (default 512)")
    parser.add_argument("--chunk", type=int, default=256, help="meshing chunk edge (default 256)")
    parser.add_argument("--volume", choices=("grains", "objects"), default="grains", help="synthetic volume")
    parser.add_argument("--skip-formats", action="store_true", help="skip the per-format write timings")
    parser.add_argument("--skip-reference", action="store_true",
                        help="skip the one-call and chunk-only runs (before/after streaming only)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, *rest = args.child
        result = {"chunked": lambda: run_chunked(rest[0], int(rest[1])), "whole": lambda: run_whole(rest[0]),
                  "formats": lambda: run_formats(rest[0], rest[1]),
                  "pipeline": lambda: run_pipeline(rest[0], rest[1], int(rest[2])),
                  "in-memory": lambda: run_in_memory(rest[0], rest[1], int(rest[2]))}[mode]()
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory(prefix="bench-mesh-") as tmp:
        path = Path(tmp) / "labels.ome.zarr"
        t0 = time.perf_counter()
        (make_grains if args.volume == "grains" else make_volume)(path, args.size)
        voxels = args.size**3
        print(f"load average before the runs: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        print(f"{args.volume}: volume {args.size}^3 uint8 labels ({voxels / 1e6:.0f} Mvoxels) generated in {time.perf_counter() - t0:.1f} s")
        if not args.skip_reference:
            whole = _child("whole", str(path))
            chunked = _child("chunked", str(path), str(args.chunk))
            print(f"one zmesh call : {whole['seconds']:7.2f} s  {voxels / whole['seconds'] / 1e6:7.1f} Mvoxels/s  "
                  f"peak RSS {whole['rss_mb']:7.0f} MB  CPU {whole['cpu_seconds']:.2f} s  ({whole['triangles']} triangles)")
            print(f"chunked {args.chunk}^3  : {chunked['seconds']:7.2f} s  {voxels / chunked['seconds'] / 1e6:7.1f} Mvoxels/s  "
                  f"peak RSS {chunked['rss_mb']:7.0f} MB main, {chunked['worker_rss_mb']:.0f} MB largest worker  "
                  f"CPU {chunked['cpu_seconds']:.2f} s  "
                  f"({chunked['triangles']} triangles, {chunked['tasks']} tasks; chunk tasks "
                  f"{chunked['chunk_seconds']:.2f} s, welding {chunked['seconds'] - chunked['chunk_seconds']:.2f} s)")
            print(f"chunked / one call speed: {whole['seconds'] / chunked['seconds']:.2f}  (goal >= 0.5)")
        before = _child("in-memory", str(path), str(Path(tmp) / "before"), str(args.chunk))
        e2e = _child("pipeline", str(path), str(Path(tmp) / "e2e"), str(args.chunk))
        print(f"before, welded whole in memory (chunks, weld, measure, STL): {before['seconds']:.2f} s  "
              f"peak RSS {before['rss_mb']:.0f} MB main, {before['worker_rss_mb']:.0f} MB largest worker  "
              f"({before['triangles']} triangles)")
        print(f"mesh_labels end to end, streamed (chunks, weld, measure, STL, meshes.json): {e2e['seconds']:.2f} s  "
              f"{voxels / e2e['seconds'] / 1e6:.1f} Mvoxels/s  peak RSS {e2e['rss_mb']:.0f} MB main, "
              f"{e2e['worker_rss_mb']:.0f} MB largest worker  ({e2e['triangles']} triangles)")
        if args.skip_formats:
            return
        out = Path(tmp) / "meshes"
        out.mkdir()
        formats = _child("formats", str(path), str(out))
        tri = formats.pop("triangles")
        for fmt, r in formats.items():
            print(f"write {fmt:4s}: {r['seconds']:6.2f} s  {tri / r['seconds'] / 1e6:6.2f} Mtriangles/s  "
                  f"{r['bytes'] / r['seconds'] / 1e6:7.1f} MB/s  ({r['bytes'] / 1e6:.0f} MB, {tri} triangles)")


if __name__ == "__main__":
    main()
