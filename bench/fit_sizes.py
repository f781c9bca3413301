"""Benchmark: how the training forests' sizes move Dice and training's CPU seconds.

    python bench/fit_sizes.py                                  # every case and setting
    python bench/fit_sizes.py --cases smallscan snow-strokes --settings default whole-draws --seeds 0 1

Training spends most of its CPU in scikit-learn forest fits whose sizes are quality rules: the
final forest (``MAX_TRAIN_VOXELS`` rows, 24 trees, each on a draw of ``FIT_SAMPLES`` of them;
``CHEAP_TREES`` trees in a small volume) and the
ranking forest (``RANK_VOXELS`` rows, ``RANKER`` trees). Per case (the 8.7 M-voxel scan of
``bench/small_scan.py`` painted in full, and ``bench/methods.py``'s blobs, tubes, texture and
snow, full and strokes) and per setting (a variant of those sizes, below), ``train_model``
(``method``, validated later as the CLI does) then ``segment_volume`` run in this process;
printed: the method trained (``auto``'s choice), the training's CPU seconds (every thread of this process), the final forest's fit
CPU seconds, the segmentation's, and the Dice of the structure on every unpainted slice. Seeds
repeat each run with another training seed (the sampling and the trees' draw), so a setting's
change in Dice can be read against the seed's own spread.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ml4paleo.io.omezarr import OmeZarrWriter, open_level
from ml4paleo.pipelines import _candidates as candidates_module
from ml4paleo.pipelines import train as train_module
from ml4paleo.pipelines.segment import segment_volume
from ml4paleo.testing import phantoms


def _bench(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SETTINGS: dict[str, dict[str, Any]] = {
    "default": {},
    "whole-draws": {"FIT_SAMPLES": None, "RANKER": {"n_estimators": 16, "max_depth": 10}},
    "draws-0.33": {"FIT_SAMPLES": 0.33, "RANKER": {"n_estimators": 16, "max_depth": 10, "max_samples": 0.33}},
    "rows-50k": {"max_voxels": 50_000},
    "rows-75k": {"max_voxels": 75_000},
    "rank-15k": {"RANK_VOXELS": 15_000},
    "ranker-8": {"RANKER": {**train_module.RANKER, "n_estimators": 8}},
    "choice-half": {"CHOICE_SAMPLES": 0.5},
    "choice-whole": {"CHOICE_SAMPLES": None},
    "choice-10k": {"CHOICE_ROWS": 10_000},
    "depth-12": {"FINAL": {"max_depth": 12}},
    "trees-16": {"FINAL": {"n_estimators": 16}},
    "leaf-4": {"FINAL": {"min_samples_leaf": 4}},
    "outline-off": {"OUTLINE_ROWS": None},
    "outline-60k": {"OUTLINE_ROWS": 60_000},
    "rows-60k-alike": {"OUTLINE_ROWS": None, "max_voxels": 60_000},
}
"""Setting -> what differs from the defaults: ``FIT_SAMPLES`` (each final tree's bootstrap draw,
as a share of the rows; None: as many draws as rows, the rule before December 2026) with the
ranking forest's ``RANKER`` to match, ``max_voxels`` (the final fit's rows), ``RANK_VOXELS`` /
``RANKER`` (the ranking forest's rows / trees), ``CHOICE_ROWS`` (the quick folds' rows, with
``--method auto``), ``CHOICE_SAMPLES`` (each quick fold tree's draw, with
``--method auto``), ``OUTLINE_ROWS`` (a densely painted final forest's rows, half near the
outlines; None: ``MAX_TRAIN_VOXELS`` drawn alike, the rule before), ``FINAL`` (the final forest's parameters over ``_final_params``': its depth,
trees, leaf size; the folds and the ranking keep theirs)."""


def _cases() -> dict[str, Callable[[], tuple[np.ndarray, np.ndarray, str]]]:
    methods = _bench("methods")
    segment = _bench("segment")

    def smallscan() -> tuple[np.ndarray, np.ndarray, str]:
        vol, truth = segment.make_volume((136, 256, 250), "uint16")
        return vol, truth.astype(np.uint8), "full"

    out: dict[str, Callable[[], tuple[np.ndarray, np.ndarray, str]]] = {"smallscan": smallscan}
    for name in ("blobs", "tubes", "texture", "snow", "tex-orientation", "tex-length", "tex-anisotropy"):
        for mode in ("full", "strokes"):
            out[f"{name}-{mode}"] = (lambda name=name, mode=mode: (*methods.VOLUMES[name](methods.TEXTURE_SHAPE, 0), mode))
    return out


@contextlib.contextmanager
def _setting(values: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The training module's constants of ``values`` set for the block; yields train_model's keywords."""
    constants = ("FIT_SAMPLES", "RANK_VOXELS", "RANKER", "CHOICE_ROWS", "CHOICE_SAMPLES")
    saved = {k: getattr(train_module, k) for k in constants if k in values}
    if "OUTLINE_ROWS" in values:
        saved["OUTLINE_ROWS"] = candidates_module.OUTLINE_ROWS
    if "FINAL" in values:
        saved["_final_params"] = train_module._final_params
    try:
        for k in saved:
            if k == "OUTLINE_ROWS":
                candidates_module.OUTLINE_ROWS = values[k]
                continue
            if k == "_final_params":
                original = saved[k]
                train_module._final_params = lambda method, params, shape: (
                    {**original(method, params, shape), **values["FINAL"]} if method in ("forest", "context")
                    else original(method, params, shape))
                continue
            setattr(train_module, k, values[k])
        yield {"max_voxels": values["max_voxels"]} if "max_voxels" in values else {}
    finally:
        for k, v in saved.items():
            setattr(candidates_module if k == "OUTLINE_ROWS" else train_module, k, v)


def _fit_clock() -> tuple[list[float], Callable[[], None]]:
    """CPU seconds of every final fit (``fit_final``), and the undo."""
    spent: list[float] = []
    original = train_module.fit_final

    def timed(*args: Any, **kwargs: Any) -> Any:
        c = time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            spent.append(time.process_time() - c)

    train_module.fit_final = timed

    def undo() -> None:
        train_module.fit_final = original
    return spent, undo


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * np.logical_and(a, b).sum() / max(int(a.sum()) + int(b.sum()), 1))


def main(argv: list[str] | None = None) -> int:
    cases = _cases()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", nargs="+", default=list(cases), choices=list(cases))
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--method", default="forest")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    work = Path(tempfile.mkdtemp(prefix="ml4paleo-bench-fits-"))
    rows: list[tuple[str, str, int, float, float, float, float]] = []
    print(f"load average {os.getloadavg()[0]:.1f}; method {args.method}, validate later", flush=True)
    try:
        for case in args.cases:
            vol, truth, mode = cases[case]()
            path = work / f"{case}.ome.zarr"
            with OmeZarrWriter(path, vol.shape, vol.dtype, chunks=64, voxel_size=(1.0, 1.0, 1.0)) as w:
                w.write_slab(0, vol)
            n = vol.shape[0]
            painted = sorted({int(round(z)) for z in np.linspace(0.1 * n, 0.9 * n, 5)})
            ann = {z: (truth[z] + 1 if mode == "full" else phantoms.strokes(truth[z])) for z in painted}
            unseen = np.ones(vol.shape, bool)
            unseen[painted] = False
            for name in args.settings:
                for seed in args.seeds:
                    model, labels = work / f"{case}-{name}-{seed}", work / f"{case}-{name}-{seed}.ome.zarr"
                    spent, undo = _fit_clock()
                    try:
                        with _setting(SETTINGS[name]) as kwargs:
                            c0 = time.process_time()
                            train_module.train_model(path, ann, model, method=args.method, validate="later", seed=seed,
                                                     **kwargs)
                            c1 = time.process_time()
                            segment_volume(path, model, labels)
                            c2 = time.process_time()
                    finally:
                        undo()
                    chosen = json.loads((model / "metadata.json").read_text()).get("method", "?")
                    got = np.asarray(open_level(labels, 0)[:]) == 1
                    d = dice(got[unseen], truth[unseen] == 1)
                    rows.append((case, name, seed, d, c1 - c0, sum(spent), c2 - c1))
                    print(f"{case:16s} {name:24s} seed {seed}  Dice {d:.4f}  train {c1 - c0:6.2f} CPU s "
                          f"(final fit {sum(spent):5.2f})  segment {c2 - c1:5.2f} CPU s  method {chosen}  "
                          f"load {os.getloadavg()[0]:.1f}",
                          flush=True)
                    shutil.rmtree(model, ignore_errors=True)
                    shutil.rmtree(labels, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\nmean over seeds: Dice (change from the default), train CPU s")
    for case in args.cases:
        base = np.mean([r[3] for r in rows if r[0] == case and r[1] == "default"]) if "default" in args.settings else None
        for name in args.settings:
            mine = [r for r in rows if r[0] == case and r[1] == name]
            d = np.mean([r[3] for r in mine])
            delta = f" ({d - base:+.4f})" if base is not None else ""
            print(f"{case:16s} {name:24s} {d:.4f}{delta}  train {np.mean([r[4] for r in mine]):6.2f} "
                  f"final fit {np.mean([r[5] for r in mine]):5.2f} segment {np.mean([r[6] for r in mine]):5.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
