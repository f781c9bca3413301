"""Draft models: a forest on the slices painted so far, quick enough to follow each stroke.

A full training scores several methods and ranks the features: right for the model that
segments the volume, too slow for the overlay the user looks at while painting. A draft skips
both: it is the model ``train_model(..., method="forest", select=None,
max_voxels=DRAFT_MAX_VOXELS)`` fits last (the same rows, sampling and seeded forest, so the same
classes; ``tests/pipelines/test_draft.py``). Once a full model exists, its ranked features are
reused (:func:`ranked_features`). A retrain after a stroke is cheap because only the slice that
changed is featurised again: each painted slice's rows are cached in ``cache_dir`` under a hash
of its mask, the volume's stamp and the settings (runners sharing the data folder share it),
and a slice is featurised only in the tiles holding strokes, through the per-process tile cache
of :mod:`ml4paleo.pipelines.view_preview`: the next stroke there costs only indexing, and the
overlay of that plane computes only the other tiles.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ml4paleo.atomic import write_atomically
from ml4paleo.compute.features import FILTERS, FeatureSettings
from ml4paleo.enums import CLASS_NAMES
from ml4paleo.io.omezarr import read_info
from ml4paleo.models import make_segmenter, save_model
from ml4paleo.pipelines._candidates import (DEFAULT_SAMPLING, PaintedSlice, TrainingSet, make_candidate,
                                            sample_indices)
from ml4paleo.pipelines.preview import volume_stamp
from ml4paleo.pipelines.view_preview import painted_rows
from ml4paleo.pipelines.train import check_annotations, load_annotations, with_fit_samples
from ml4paleo.planes import SliceRef
from ml4paleo.progress import ProgressCallback, no_progress

__all__ = ["DRAFT_FEATURES", "DRAFT_MAX_VOXELS", "DraftResult", "prune_drafts", "ranked_features", "train_draft"]

DRAFT_MAX_VOXELS = 20_000
"""Training rows of a draft (a full training takes up to ``MAX_TRAIN_VOXELS``, 100 k). The fit
dominates a draft once the painted slices' rows are cached, and its time grows linearly with
the rows: 5.8 / 14.8 / 34 / 81 s for 10 k / 20 k / 40 k / 80 k rows of 61 features (noise
labels, the default forest, 2 threads on the shared 2-core machine at load 17, so only the ratios
mean anything); three 512^2 slices painted with strokes hold ~73 k labelled voxels. The
sampling measurements (docs/benchmarks.md) put a binding cap's cost at
0.001-0.02 Dice; the full model, trained without the cap, replaces the draft."""


DRAFT_FEATURES = FeatureSettings(filters=tuple(f for f in FILTERS if f not in ("orient", "energy")))
"""A draft's bank before any full model has ranked one: the default bank less the orientation
and grain-energy features, averaged over the fine maps' widest window. They are the bank's dearest
on a one-slice block (the orientation's 24 of 85 features, the widest halo):
stroke -> overlay on an XZ plane p50 1.18 s (1.59 CPU s) with them, 0.93 s (1.10) without, on a
quiet machine (docs/benchmarks.md); a draft is the overlay while painting, and the full model,
which has them, replaces it."""


@dataclass(frozen=True)
class DraftResult:
    """What :func:`train_draft` made; ``featurised``: the slices whose rows were not cached."""

    model_dir: Path
    n_slices: int
    featurised: tuple[SliceRef, ...]
    seconds: float


def _cache_name(ref: SliceRef, mask: np.ndarray, stamp: int, settings: FeatureSettings, max_voxels: int,
                seed: int) -> str:
    digest = hashlib.blake2b(np.ascontiguousarray(mask).tobytes(), digest_size=16)
    digest.update(json.dumps([list(mask.shape), str(mask.dtype), stamp, settings.to_dict(), max_voxels, seed],
                             sort_keys=True).encode())
    return f"{ref.name}-{digest.hexdigest()}.npz"


def _painted_rows(volume_path: Path, ref: SliceRef, mask: np.ndarray, settings: FeatureSettings,
                  max_voxels: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training rows and classes of one painted slice, as ``train_model`` samples them."""
    sel = mask > 0
    y = mask[sel].astype(np.intp) - 1
    keep = sample_indices(y, "proportional", max_voxels, seed + ref.index)
    # the tiles holding strokes, once per process (view_preview's tile cache): the next stroke
    # there only indexes, and the overlay of this plane reuses them
    rows = painted_rows(volume_path, ref.dim, ref.index, sel, settings)
    return np.ascontiguousarray(rows[keep]), y[keep]


def _load(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        with np.load(path) as data:
            return data["rows"], data["targets"]
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):  # missing, or damaged
        return None


def _store(path: Path, rows: np.ndarray, targets: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, rows=rows, targets=targets)
    write_atomically(path, buffer.getvalue())


def train_draft(
    volume_path: str | Path,
    annotations: str | Path | Mapping[SliceRef, np.ndarray],
    model_dir: str | Path,
    *,
    classes: Sequence[str] = CLASS_NAMES,
    features: FeatureSettings | Mapping[str, Any] | None = None,
    cache_dir: str | Path | None = None,
    sampling: str = DEFAULT_SAMPLING,
    max_voxels: int = DRAFT_MAX_VOXELS,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> DraftResult:
    """Fit the forest on every painted slice of ``annotations`` and save it to ``model_dir``.

    Arguments as for :func:`ml4paleo.pipelines.train.train_model` (bad input raises the same
    :class:`~ml4paleo.errors.InputError`), except that ``features`` None is :data:`DRAFT_FEATURES`;
    ``cache_dir`` keeps the painted slices' rows between calls (None: no cache). The model
    folder's metadata says ``"draft": true``."""
    t0 = time.perf_counter()
    progress = progress or no_progress
    volume_path, model_dir = Path(volume_path), Path(model_dir)
    settings = DRAFT_FEATURES if features is None else FeatureSettings.from_value(features)
    classes = tuple(str(c) for c in classes)
    make_segmenter("random-forest", classes, settings, **dict(params or {}))  # validates classes and params
    info = read_info(volume_path)
    ann = load_annotations(annotations)
    check_annotations(ann, info.shape, classes)
    stamp = volume_stamp(volume_path)
    cache = Path(cache_dir) if cache_dir is not None else None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)

    slices, featurised, names = [], [], set()
    for i, (key, mask) in enumerate(ann.items()):
        progress(i, len(ann) + 1, "features of the painted slices")
        name = _cache_name(key, mask, stamp, settings, max_voxels, seed)
        names.add(name)
        cached = _load(cache / name) if cache is not None else None
        if cached is None:
            cached = _painted_rows(volume_path, key, mask, settings, max_voxels, seed)
            featurised.append(key)
            if cache is not None:
                _store(cache / name, *cached)
        rows, targets = cached
        slices.append(PaintedSlice(key, rows, targets, (np.empty(0, np.intp), np.empty(0, np.intp))))
    if cache is not None:  # repainted and deleted slices: their old rows are never read again
        for old in cache.glob("*.npz"):
            if old.name not in names:
                old.unlink(missing_ok=True)

    progress(len(ann), len(ann) + 1, "fitting the draft forest")
    ts = TrainingSet(slices, classes, settings, tuple(info.shape), sampling=sampling, max_voxels=max_voxels,
                     seed=seed, params=with_fit_samples(params or {}))
    model = make_candidate("forest").fit(ts)
    model.set_n_jobs(1)  # as train_model saves it; the preview raises it
    save_model(model, model_dir, overwrite=overwrite, painted=[(ref.dim, ref.index, m) for ref, m in ann.items()], metadata={
        "method": "forest", "draft": True, "method_reason": "draft: the forest on every painted slice, "
                                                           "without validation or feature ranking",
        "annotated_slices": [ref.name for ref in ann], "volume_shape": list(info.shape),
        "voxel_size": list(info.voxel_size), "unit": info.unit, "sampling": sampling, "max_voxels": int(max_voxels)})
    progress(1.0, 1.0, "done")
    return DraftResult(model_dir, len(slices), tuple(featurised), time.perf_counter() - t0)


def ranked_features(models_dir: str | Path) -> FeatureSettings | None:
    """The feature settings of the newest model in ``models_dir`` (one folder per model) that
    kept a ranked selection of the bank, or None when there is none."""
    newest: tuple[str, dict[str, Any]] | None = None
    folder = Path(models_dir)
    for meta_file in folder.glob("*/metadata.json") if folder.is_dir() else ():
        try:
            meta = json.loads(meta_file.read_text())
        except (OSError, ValueError):
            continue
        features = meta.get("features") if isinstance(meta, dict) else None
        if isinstance(features, dict) and features.get("selected") and (newest is None or meta.get("created_at", "") > newest[0]):
            newest = (str(meta.get("created_at", "")), features)
    return FeatureSettings.from_value(newest[1]) if newest is not None else None


def prune_drafts(folder: str | Path, keep: int) -> None:
    """Remove all but the ``keep`` newest draft folders (named by their task id) in ``folder``."""
    folder = Path(folder)
    numbered = sorted((p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)) \
        if folder.is_dir() else []
    for old in numbered[:-keep] if keep > 0 else numbered:
        shutil.rmtree(old, ignore_errors=True)
