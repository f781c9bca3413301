"""Benchmark: train + segment a small scan as whole CLI processes, as a user runs them.

    python bench/small_scan.py                        # 8.7 M and 32 M voxels, strokes and full slices
    python bench/small_scan.py --sizes 8.7 --painting full   # the issue's case (issue 23)
    python bench/small_scan.py --sizes 8.7 --repeat 3 --method forest --painting strokes
    python bench/small_scan.py --sizes 8.7 --painting full --stages   # and where train's seconds go

The issue's yardstick is the whole process, start-up included: the upstream tool took 28.4 s
for train + segment of an 8.7 M-voxel scan on this machine type. So ``ml4paleo train`` and
``ml4paleo segment`` run here as real subprocesses (imports, worker start-up, model load,
writes) on a generated scan (``bench/segment.py``'s blobs and plates in a noisy matrix,
uint16), OME-Zarr in 64^3 chunks, with 5 painted slices: brush-like strokes of the truth
(``ml4paleo.testing.phantoms.strokes``), or fully painted (every pixel of the slice labelled, the
issue's case: the outlines then need no completion, but every pixel is a training row). Printed
per size and painting: seconds of ``--help``, train,
segment and total, wall and CPU (all threads of the process; on a loaded shared machine the
CPU seconds compare runs better than the wall clock), with the load average; M voxels/s end
to end; how long after segmentation the model's background validation wrote its figures; the
peak RSS of the largest process (``ru_maxrss`` of the children); and the Dice of the
structure on every slice nobody painted. ``PYTHONPATH=<other checkout>/src`` measures another
version with the same script.
"""

from __future__ import annotations

import argparse
import importlib.util
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

from ml4paleo.io.annotations import write_annotation
from ml4paleo.io.omezarr import OmeZarrWriter, open_level
from ml4paleo.testing.phantoms import strokes

SHAPES = {"8.7": (136, 256, 250), "32": (128, 500, 500)}
"""M voxels -> (z, y, x)."""
UPSTREAM_SECONDS = {"8.7": 28.4}
"""The upstream tool's train + segment on this machine type (issue 11)."""
PAINTED = (0.1, 0.3, 0.5, 0.7, 0.9)
"""Where along z the 5 painted slices lie."""


def _make_volume():
    """``make_volume`` of bench/segment.py (one generator for the benchmarks' blobs)."""
    spec = importlib.util.spec_from_file_location("bench_segment", Path(__file__).with_name("segment.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_volume, module.dice


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _cli(*args: str) -> tuple[float, float]:
    """Wall and CPU seconds (every thread, not the detached validation) of one ``ml4paleo``
    process; its output is shown when it fails."""
    t, c = time.perf_counter(), _cpu()
    out = subprocess.run([sys.executable, "-m", "ml4paleo.cli", *args], capture_output=True, text=True)
    seconds, cpu = time.perf_counter() - t, _cpu() - c
    if out.returncode:
        raise SystemExit(f"ml4paleo {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return seconds, cpu


def _validation(model_dir: Path) -> dict:
    try:
        return json.loads((model_dir / "validation.json").read_text())
    except (FileNotFoundError, ValueError):  # not written yet, or being replaced
        return {"status": "pending"}


def _own_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def _peak_child_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def run_size(name: str, work: Path, method: str, repeat: int, painting: str = "strokes", stages: bool = False,
             wait: float = 600.0) -> None:
    make_volume, dice = _make_volume()
    shape = SHAPES[name]
    n = int(np.prod(shape))
    vol, truth = make_volume(shape, "uint16")
    with OmeZarrWriter(work / "vol.ome.zarr", shape, vol.dtype, chunks=64, overwrite=True) as w:
        for z0 in range(0, shape[0], 64):
            w.write_slab(z0, vol[z0:z0 + 64])
    del vol
    painted = [int(round(f * (shape[0] - 1))) for f in PAINTED]
    for z in painted:
        mask = truth[z].astype(np.uint8) + 1 if painting == "full" else strokes(truth[z].astype(np.uint8), step=6)
        write_annotation(work / "labels", z, mask)
    others = np.array([z for z in range(shape[0]) if z not in painted])
    print(f"{name} M voxels {shape} uint16, fossil {truth.mean():.1%}, painted slices {painted} ({painting})")

    vol_, labels, model, seg = (str(work / p) for p in ("vol.ome.zarr", "labels", "model", "seg.ome.zarr"))
    for r in range(repeat):
        t_help, _ = _cli("--help")
        t_train, c_train = _cli("train", vol_, labels, model, "--method", method, "--overwrite")
        t_seg, c_seg = _cli("segment", vol_, model, seg, "--overwrite")
        meta = json.loads((work / "model" / "metadata.json").read_text())
        got = np.asarray(open_level(seg)[:])[others] == 1
        d = dice(got, truth[others])
        total = t_train + t_seg
        upstream = UPSTREAM_SECONDS.get(name)
        ratio = f", {upstream / total:.2f}x faster than the upstream tool's {upstream} s" if upstream else ""
        print(f"  run {r + 1}: --help {t_help:.2f}s, train {t_train:.1f}s ({c_train:.1f}s CPU), segment {t_seg:.1f}s "
              f"({c_seg:.1f}s CPU), total {total:.1f}s ({c_train + c_seg:.1f}s CPU) = {n / total / 1e6:.2f} M voxels/s"
              f"{ratio}; load average {os.getloadavg()[0]:.1f}; method {meta.get('method', '?')}; "
              f"Dice on {len(others)} unpainted slices {d:.4f}; peak RSS of the largest process so far "
              f"{_peak_child_mb():.0f} MB", flush=True)
        t = time.perf_counter()  # the validation runs beside segmentation at a low priority: its figures come later
        while (validation := _validation(work / "model")).get("status") == "pending" and time.perf_counter() - t < wait:
            time.sleep(0.1)
        loso = (validation.get("metrics") or {}).get("fossil", {}).get("dice") if validation else None
        print(f"    validation figures {time.perf_counter() - t:.1f}s after segment ended" +
              (f" (LOSO Dice fossil {loso})" if validation.get("status") != "pending" else
               f": not written within {wait:.0f} s (a nice-10 process on a loaded machine)"), flush=True)
    if stages:
        _stages(work)


def _stages(work: Path) -> None:
    """Where a training's CPU seconds go: ``train_model`` once more in this process (imports
    already paid), each step of it timed (wall and CPU seconds of every thread)."""
    import functools

    from ml4paleo.pipelines import train as train_module

    spent: list[tuple[str, float, float]] = []

    def timed(name: str, owner, attr: str) -> None:
        fn = getattr(owner, attr)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            t, c = time.perf_counter(), _own_cpu()
            try:
                return fn(*args, **kwargs)
            finally:
                spent.append((name, time.perf_counter() - t, _own_cpu() - c))
        setattr(owner, attr, wrapper)

    originals = {a: getattr(train_module, a) for a in ("run_tasks", "_keep_selected", "_choose", "suggest_planes",
                                                        "make_candidate")}
    try:
        for name, attr in (("features of the painted slices", "run_tasks"), ("feature ranking", "_keep_selected"),
                           ("method choice (quick folds)", "_choose"), ("suggestions", "suggest_planes")):
            timed(name, train_module, attr)

        def candidate(name: str):
            made = originals["make_candidate"](name)
            timed(f"final fit ({name})", made, "fit")
            return made
        train_module.make_candidate = candidate
        t, c = time.perf_counter(), _own_cpu()
        train_module.train_model(work / "vol.ome.zarr", work / "labels", work / "model-stages", overwrite=True,
                                 validate="later")
        print(f"  train_model in this process: {time.perf_counter() - t:.1f}s ({_own_cpu() - c:.1f}s CPU); load "
              f"average {os.getloadavg()[0]:.1f}")
        for name, wall, cpu in spent:
            print(f"    {name:<34} {wall:6.2f}s ({cpu:.2f}s CPU)")
    finally:
        for attr, fn in originals.items():
            setattr(train_module, attr, fn)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", nargs="+", default=list(SHAPES), choices=list(SHAPES), help="M voxels")
    ap.add_argument("--method", default="auto")
    ap.add_argument("--painting", nargs="+", default=["strokes", "full"], choices=["strokes", "full"],
                    help="strokes of the truth, or whole slices painted (the issue's case)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--validation-wait", type=float, default=600.0,
                    help="seconds to wait for the background validation's figures (default 600)")
    ap.add_argument("--stages", action="store_true",
                    help="then train once more in this process, printing each step's wall and CPU seconds")
    args = ap.parse_args(argv)
    for name in args.sizes:
        for painting in args.painting:
            work = Path(args.workdir or tempfile.mkdtemp(prefix="ml4paleo-small-")) / f"{name}-{painting}"
            work.mkdir(parents=True, exist_ok=True)
            try:
                run_size(name, work, args.method, args.repeat, painting, args.stages, args.validation_wait)
            finally:
                if not args.workdir:
                    shutil.rmtree(work.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
