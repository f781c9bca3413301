"""Train a pixel classifier from a few annotated slices of a volume.

Only the annotated slices are featurised (each with the z-neighbourhood the 3D filters need,
read from the volume in tiles), and only their labeled voxels are used. The model is then
validated by leave-one-slice-out (each annotated slice predicted by a model trained on the
others: Dice/IoU that say how well unseen slices will be segmented, not training-set scores),
and the final model is fitted on all slices and saved with its metadata.

Sampling (fixed seed). Measured by leave-one-slice-out Dice (every voxel of each held-out
slice scored; default 3D bank, default forest) on the snow scan (3 slices) and the generated
3-class volume of ``tests/pipelines/test_quality.py`` (3 slices), with scribbles or with full
slice masks, the cap set to a quarter of the labeled voxels so that it binds:

=====================  ==============  ====================  ==================  =====================
case (labeled voxels)   all labeled     balanced (cap)        proportional (cap)  fit time all/bal/prop
=====================  ==============  ====================  ==================  =====================
snow scribbles (6 k)    0.9485/0.9587   0.9478/0.9581         0.9500/0.9606       1.5 / 0.45 / 0.22 s
snow full (30 k)        0.9825/0.9868   0.9798/0.9847         0.9809/0.9856       10.9 / 3.6 / 5.7 s
3-class scribbles (4k)  .985/.925/.933  .983/.924/.919        .981/.902/.919      1.5 / 0.30 / 0.43 s
3-class full (12 k)     .999/.992/.999  .999/.989/1.000       .998/.989/.998      5.0 / 0.75 / 1.9 s
=====================  ==============  ====================  ==================  =====================

(Dice per class: background/fossil, matrix/bone/plate.) Every labeled voxel is best or tied
everywhere, by 0.001-0.02; a binding cap costs that much, and balanced vs proportional
differ by less than that in both directions (the rare class gains in 3 cells, loses in 3).
So the default is ``proportional`` with a cap (``MAX_TRAIN_VOXELS``) high enough that brush
annotations are used whole, and which only binds on dense masks, where it bounds fit time
(a forest on 100 k x 61 features took ~20 s on the shared 2-core build machine, and
leave-one-slice-out repeats it per fold). Under the cap each class keeps its share, so the
forest's class priors stay those of the annotations, with a floor (``MIN_PER_CLASS``) so thin
structures stay represented.

Feature selection (as ilastik offers). A forest fitted on the whole bank ranks the features by
mean decrease in impurity; the model keeps the ``select`` best (default 16 of 61) and its
saved settings compute only those, skipping whole filter families at the expensive
full-resolution scales. Dice on every voxel of the slices *not* annotated, and segmentation
time (synchronous, one core, a loaded shared machine):

=========================  ========================  ========================  ========================
volume                      all 61 features           best 24                   best 16 (default)
=========================  ========================  ========================  ========================
snow 100^3 (step-4 strokes)  0.948/0.960, 2.7 s       0.948/0.961, 1.6 s        0.954/0.965, 0.6 s
snow 100^3 (step-6 strokes)  0.941/0.954, 6.2 s       0.934/0.948, 1.0 s        0.935/0.949, 1.3 s
3-class 40x64x64             .989/.920/.961, 1.5 s    .989/.921/.955, 0.9 s     .989/.918/.966, 0.4 s
bench blobs 64x160^2         0.997/0.971, 9.2 s       0.997/0.972, 5.2 s        0.997/0.976, 1.4 s
=========================  ========================  ========================  ========================

Differences in Dice go both ways and are the size of those between neighbouring settings
(snow, step 6: best 32 gave 0.956, best 40 0.953); the time is 4-6x smaller. ``select=None``
keeps every feature.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ml4paleo.errors import InputError, OutputExistsError
from ml4paleo.compute.features import FeatureSettings
from ml4paleo.compute.regions import labeled_features
from ml4paleo.progress import ProgressCallback, no_progress, scaled

__all__ = ["SAMPLING", "TrainResult", "sample_indices", "train_model"]

SAMPLING = ("all", "balanced", "proportional")
DEFAULT_SAMPLING = "proportional"
MAX_TRAIN_VOXELS = 100_000
"""Cap on training rows (see the sampling measurements above)."""
MIN_PER_CLASS = 2_000
"""Floor per class under proportional sampling (or all of a class's voxels if fewer)."""
MAX_FOLDS = 8
"""Leave-one-slice-out uses at most this many folds (slices grouped round-robin beyond)."""
DEFAULT_SELECT: int | None = 16
"""Features kept by importance-based selection (None: all); see the measurements above."""
RANK_VOXELS = 30_000
RANKER = {"n_estimators": 16, "max_depth": 10}
"""The ranking forest is smaller than the model: selection took 2.3 s instead of 10.3 s (4 slices
of 512^2), and the Dice of the resulting models on unseen slices moved within the forest's
spread (snow 0.961 vs 0.965, 3-class bone 0.925 vs 0.918, bench blobs 0.977 vs 0.976)."""


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train_model` produced. ``metrics``: ``{class: {"dice", "iou"}}`` from
    leave-one-slice-out (empty with a single annotated slice)."""

    model_dir: Path
    metrics: dict[str, dict[str, float | None]]
    n_slices: int
    voxels_per_class: dict[str, int]
    classes: tuple[str, ...]
    validation: dict[str, Any] = field(default_factory=dict)
    features: dict[str, Any] = field(default_factory=dict)
    model: str = "random-forest"


def sample_indices(y: np.ndarray, strategy: str = DEFAULT_SAMPLING, max_voxels: int = MAX_TRAIN_VOXELS,
                   seed: int = 0, min_per_class: int = MIN_PER_CLASS) -> np.ndarray:
    """Sorted row indices of ``y`` (class indices) to train on, drawn with a fixed seed."""
    if strategy not in SAMPLING:
        raise InputError(f"sampling must be one of {', '.join(SAMPLING)}; got {strategy!r}")
    y = np.asarray(y)
    if strategy == "all" or y.size == 0:
        return np.arange(y.size)
    rng = np.random.default_rng(seed)
    counts = np.bincount(y)
    present = np.flatnonzero(counts)
    if strategy == "balanced":
        take = {c: min(int(counts[present].min()), max_voxels // len(present)) for c in present}
    else:
        if y.size <= max_voxels:
            return np.arange(y.size)
        take = {c: min(int(counts[c]), max(int(round(max_voxels * counts[c] / y.size)), min_per_class)) for c in present}
    chosen = [rng.choice(np.flatnonzero(y == c), size=take[c], replace=False) for c in present]
    return np.sort(np.concatenate(chosen))


def _load_annotations(annotations: str | Path | Mapping[int, np.ndarray]) -> dict[int, np.ndarray]:
    from ml4paleo.io.annotations import read_annotations

    if isinstance(annotations, (str, Path)):
        folder = Path(annotations)
        if not folder.is_dir():
            raise InputError(f"annotations folder {folder} does not exist")
        found = read_annotations(folder)
        if not found:
            raise InputError(f"no annotation PNG in {folder}: paint at least one slice")
        return found
    if isinstance(annotations, Mapping):
        if not annotations:
            raise InputError("annotations are empty: paint at least one slice")
        out = {}
        for z, mask in annotations.items():
            if isinstance(z, bool) or not isinstance(z, (int, np.integer)):
                raise InputError(f"annotation keys must be slice indices; got {z!r}")
            out[int(z)] = np.asarray(mask)
        return dict(sorted(out.items()))
    raise InputError(f"annotations must be a folder or a mapping slice -> mask; got {type(annotations).__name__}")


def _validate(ann: dict[int, np.ndarray], shape: Sequence[int], classes: Sequence[str]) -> None:
    K = len(classes)
    seen = np.zeros(K + 1, dtype=np.int64)
    for z, mask in ann.items():
        if not 0 <= z < shape[0]:
            raise InputError(f"annotation for slice {z} is outside the volume (slices 0..{shape[0] - 1})")
        if mask.shape != tuple(shape[1:]):
            raise InputError(f"annotation for slice {z} has shape {mask.shape}; the volume's slices are {tuple(shape[1:])}")
        if mask.dtype.kind not in "iub" or (mask.size and mask.min() < 0):
            raise InputError(f"annotation for slice {z} must hold integer values 0..{K}; got dtype {mask.dtype}")
        top = int(mask.max()) if mask.size else 0
        if top > K:
            raise InputError(f"annotation for slice {z} uses value {top} but only {K} classes are defined "
                             f"({', '.join(classes)}): values are 0 unlabeled, 1..{K} the classes")
        seen += np.bincount(mask.ravel().astype(np.intp), minlength=K + 1)[: K + 1]
    missing = [f"{name!r} (value {k + 1})" for k, name in enumerate(classes) if seen[k + 1] == 0]
    if missing:
        raise InputError(f"no labeled voxel for class {', '.join(missing)}: label at least one voxel of every class")


def _scores(confusion: np.ndarray, classes: Sequence[str]) -> dict[str, dict[str, float | None]]:
    out = {}
    for k, name in enumerate(classes):
        tp = confusion[k, k]
        fp = confusion[:, k].sum() - tp
        fn = confusion[k, :].sum() - tp
        denom = tp + fp + fn
        out[name] = {"dice": round(float(2 * tp / (2 * tp + fp + fn)), 4) if denom else None,
                     "iou": round(float(tp / denom), 4) if denom else None}
    return out


def _select_features(rows, targets, settings: FeatureSettings, classes, select: int, sampling: str,
                     max_voxels: int, seed: int) -> tuple[FeatureSettings, np.ndarray]:
    """The ``select`` most important features (mean decrease in impurity of a forest fitted on
    every feature), as settings that compute only those, and their column indices."""
    from ml4paleo.compute.features import feature_names
    from ml4paleo.models import make_segmenter

    X, y = np.concatenate(rows), np.concatenate(targets)
    keep = sample_indices(y, sampling, min(max_voxels, RANK_VOXELS), seed, min(MIN_PER_CLASS, RANK_VOXELS // 10))
    ranker = make_segmenter("random-forest", classes, settings, seed=seed, n_jobs=-1, **RANKER).fit(X[keep], y[keep])
    columns = np.sort(np.argsort(ranker.estimator.feature_importances_)[::-1][:select])
    names = feature_names(settings)
    chosen = FeatureSettings(settings.sigmas, settings.filters, settings.two_d, settings.downsample,
                             tuple(names[c] for c in columns))
    return chosen, columns


def train_model(
    volume_path: str | Path,
    annotations: str | Path | Mapping[int, np.ndarray],
    model_dir: str | Path,
    *,
    classes: Sequence[str] = ("background", "fossil"),
    two_d: bool = False,
    features: FeatureSettings | Mapping[str, Any] | None = None,
    progress: ProgressCallback | None = None,
    overwrite: bool = False,
    model: str = "random-forest",
    sampling: str = DEFAULT_SAMPLING,
    max_voxels: int = MAX_TRAIN_VOXELS,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    select: int | None = DEFAULT_SELECT,
) -> TrainResult:
    """Train a segmenter on ``annotations`` of ``volume_path`` and save it to ``model_dir``.

    ``annotations``: a folder of PNGs (see :mod:`ml4paleo.io.annotations`) or a mapping slice
    -> 2D mask with values 0 unlabeled, 1..K for ``classes``. ``features``: feature settings
    (default: the full bank; ``two_d`` computes per slice). ``params`` go to the estimator.
    ``select``: keep only the this many most important features (see ``DEFAULT_SELECT``);
    None keeps them all.
    Bad inputs raise :class:`ml4paleo.errors.InputError` before anything is written.
    """
    from ml4paleo.io.omezarr import open_level, read_info
    from ml4paleo.models import make_segmenter, save_model

    progress = progress or no_progress
    model_dir = Path(model_dir)
    if model_dir.exists() and not overwrite:
        raise OutputExistsError(f"{model_dir} already exists (pass overwrite to replace it)")
    if sampling not in SAMPLING:
        raise InputError(f"sampling must be one of {', '.join(SAMPLING)}; got {sampling!r}")
    if select is not None and (isinstance(select, bool) or not isinstance(select, int) or select < 1):
        raise InputError(f"select must be a positive number of features or None; got {select!r}")
    settings = FeatureSettings.from_value(features)
    if two_d and not settings.two_d:
        settings = FeatureSettings.from_value(settings, two_d=True)
    classes = tuple(str(c) for c in classes)
    make_segmenter(model, classes, settings, **dict(params or {}))  # validates kind, classes, params
    info = read_info(volume_path)
    ann = _load_annotations(annotations)
    _validate(ann, info.shape, classes)
    K = len(classes)

    array = open_level(volume_path, 0)
    rows: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    labeled = np.zeros(K, dtype=np.int64)
    report = scaled(progress, 0.0, 0.4, "computing features")
    report(0, len(ann))
    for i, (z, mask) in enumerate(ann.items()):
        sel = mask > 0
        y = mask[sel].astype(np.intp) - 1
        labeled += np.bincount(y, minlength=K)
        keep = sample_indices(y, "proportional", max_voxels, seed + z)  # bounds memory on full masks
        rows.append(labeled_features(array, z, sel, settings)[keep])
        targets.append(y[keep])
        report(i + 1, len(ann))

    if select is not None and settings.selected is None and 0 < select < settings.n_features:
        progress(0.4, 1.0, "selecting features")
        settings, columns = _select_features(rows, targets, settings, classes, select, sampling, max_voxels, seed)
        rows = [r[:, columns] for r in rows]

    slices = list(ann)
    folds = [slices[i::MAX_FOLDS] for i in range(min(MAX_FOLDS, len(slices)))] if len(slices) > 1 else []
    confusion = np.zeros((K, K), dtype=np.int64)
    report = scaled(progress, 0.4, 0.8, "validating (leave one slice out)")
    for i, held in enumerate(folds):
        train_idx = [j for j, z in enumerate(slices) if z not in held]
        Xtr, ytr = np.concatenate([rows[j] for j in train_idx]), np.concatenate([targets[j] for j in train_idx])
        keep = sample_indices(ytr, sampling, max_voxels, seed)
        if len(np.unique(ytr[keep])) < K:
            continue  # a class painted only on the held-out slices: this fold cannot be scored
        fold_model = make_segmenter(model, classes, settings, seed=seed, n_jobs=-1, **dict(params or {}))
        fold_model.fit(Xtr[keep], ytr[keep])
        for j, z in enumerate(slices):
            if z in held:
                pred = fold_model.predict(rows[j])
                np.add.at(confusion, (targets[j], pred), 1)
        report(i + 1, len(folds))
    if confusion.sum():
        metrics = _scores(confusion, classes)
        validation = {"method": "leave-one-slice-out", "folds": [list(map(int, f)) for f in folds],
                      "sampling": sampling, "metrics": metrics, "confusion": confusion.tolist()}
    else:
        metrics = {}
        validation = {"method": "none", "reason": "leave-one-slice-out needs at least two annotated slices "
                                                  "that each leave every class on the others"}

    progress(0.8, 1.0, "fitting the final model")
    X, y = np.concatenate(rows), np.concatenate(targets)
    keep = sample_indices(y, sampling, max_voxels, seed)
    final = make_segmenter(model, classes, settings, seed=seed, n_jobs=-1, **dict(params or {}))
    final.fit(X[keep], y[keep])
    final.set_n_jobs(1)  # what the saved estimator runs with; pipelines raise it where safe
    voxels = {name: int(n) for name, n in zip(classes, labeled)}
    save_model(final, model_dir, overwrite=overwrite, validation=validation, metadata={
        "voxel_size": list(info.voxel_size),
        "unit": info.unit,
        "volume_shape": list(info.shape),
        "volume_path": str(volume_path),
        "annotated_slices": [int(z) for z in slices],
        "voxels_per_class": voxels,
        "training_voxels_per_class": {name: int(n) for name, n in zip(classes, np.bincount(y[keep], minlength=K))},
        "sampling": sampling,
        "max_voxels": int(max_voxels),
    })
    progress(1.0, 1.0, "done")
    return TrainResult(model_dir=model_dir, metrics=metrics, n_slices=len(slices), voxels_per_class=voxels,
                       classes=classes, validation=validation, features=settings.to_dict(), model=model)
