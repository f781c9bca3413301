"""Model folders: ``metadata.json``, ``validation.json``, ``painted.npz`` (what its predictions
keep) and the model's own files (``estimator.joblib`` for a classifier, ``prior.npz`` for a
shape prior).

A folder is written under a temporary name and renamed when complete. ``metadata.json``'s
``kind`` names the class that reads the rest back; loading a classifier checks that the saved
feature settings still produce as many features as the estimator was fitted on.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import shutil
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ml4paleo.version import __version__
from ml4paleo.atomic import partial_path, replace_atomically
from ml4paleo.compute.features import FeatureSettings
from ml4paleo.compute.painted import PaintedPlane
from ml4paleo.errors import ArtifactNotFound, InputError, OutputExistsError
from ml4paleo.models._base import UNET_CONFIG_FILE, Segmenter, SklearnSegmenter
from ml4paleo.models._context import ContextSegmenter, InterpolationSegmenter
from ml4paleo.models._forest import HistGradientBoostingSegmenter, RandomForestSegmenter
from ml4paleo.models._local import LocalCorrections
from ml4paleo.models._local_net import LocalNetwork
from ml4paleo.planes import AXES

KINDS: dict[str, type] = {
    RandomForestSegmenter.kind: RandomForestSegmenter,
    HistGradientBoostingSegmenter.kind: HistGradientBoostingSegmenter,
    ContextSegmenter.kind: ContextSegmenter,
    InterpolationSegmenter.kind: InterpolationSegmenter,
    LocalCorrections.kind: LocalCorrections,
    LocalNetwork.kind: LocalNetwork,
}
CLASSIFIERS = (RandomForestSegmenter.kind, HistGradientBoostingSegmenter.kind)
"""Kinds that :func:`make_segmenter` builds from feature rows alone."""
UNET_KIND = "unet"
"""The U-Net's kind: its module (and torch) is imported only to read or write such a folder."""
METADATA_FILE = "metadata.json"
VALIDATION_FILE = "validation.json"
PAINTED_FILE = "painted.npz"
"""The painted planes of the annotations a model was trained on (``z12``, ``y40``: 0 unlabeled, 1..K)."""


def make_segmenter(kind: str, classes, feature_settings: FeatureSettings, **kwargs: Any) -> SklearnSegmenter:
    """A new, unfitted classifier of ``kind`` (``random-forest`` or ``hist-gradient-boosting``)."""
    if kind not in CLASSIFIERS:
        raise InputError(f"classifier must be one of {', '.join(CLASSIFIERS)}; got {kind!r}")
    return KINDS[kind](classes, feature_settings, **kwargs)


def save_model(
    model: Segmenter,
    model_dir: str | Path,
    *,
    metadata: dict[str, Any] | None = None,
    validation: dict[str, Any] | None = None,
    overwrite: bool = False,
    documents: dict[str, Any] | None = None,
    painted: Iterable[PaintedPlane] = (),
) -> Path:
    """Write ``model`` to ``model_dir`` atomically; returns the folder. ``documents``: further
    JSON files of the folder by name (``suggestions.json``), published with it; ``painted``:
    the painted planes the model was trained on, which its predictions keep
    (:mod:`ml4paleo.compute.painted`)."""
    model_dir = Path(model_dir)
    if model_dir.exists() and not overwrite:
        raise OutputExistsError(f"{model_dir} already exists (pass overwrite to replace it)")
    meta = {
        **model.describe(),
        "ml4paleo_version": __version__,
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **(metadata or {}),
    }
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(model_dir)
    tmp.mkdir()
    try:
        model.save_files(tmp)
        (tmp / METADATA_FILE).write_text(json.dumps(meta, indent=2))
        (tmp / VALIDATION_FILE).write_text(json.dumps(validation or {}, indent=2))
        for name, doc in (documents or {}).items():
            (tmp / Path(name).name).write_text(json.dumps(doc, indent=2))
        painted = list(painted)
        if painted:
            with open(tmp / PAINTED_FILE, "wb") as f:
                np.savez_compressed(f, **{f"{AXES[a]}{i}": np.asarray(m, np.uint8) for a, i, m in painted})
        replace_atomically(tmp, model_dir, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    model.metadata = meta
    model.painted = painted
    return model_dir


def _kind_class(kind: str) -> type:
    if kind == UNET_KIND:
        from ml4paleo.models.unet import UNetSegmenter  # lazy: torch, 2.8 s on top of the models (measured)

        return UNetSegmenter
    return KINDS[kind]


def load_model(model_dir: str | Path) -> Segmenter:
    """The fitted segmenter saved in ``model_dir``, with ``.classes`` and ``.metadata``."""
    model_dir = Path(model_dir)
    meta_path = model_dir / METADATA_FILE
    if not meta_path.is_file():
        raise ArtifactNotFound(f"no trained model at {model_dir} (expected {METADATA_FILE})")
    try:
        meta = json.loads(meta_path.read_text())
        cls = _kind_class(meta["kind"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{meta_path} is not a valid model description: {exc}") from exc
    try:
        model = cls.load_files(model_dir, meta)
    except FileNotFoundError as exc:
        raise ArtifactNotFound(f"the model at {model_dir} is incomplete: {exc}") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{meta_path} is not a valid model description: {exc}") from exc
    model.metadata = meta
    model.painted = load_painted(model_dir)
    validation = model_dir / VALIDATION_FILE
    model.validation = json.loads(validation.read_text()) if validation.is_file() else {}
    return model


def load_painted(model_dir: str | Path) -> list[PaintedPlane]:
    """The painted planes saved with a model (none for a model saved before they were kept)."""
    path = Path(model_dir) / PAINTED_FILE
    if not path.is_file():
        return []
    with np.load(path) as data:
        return [(AXES.index(name[0]), int(name[1:]), data[name]) for name in data.files]


def validation_state(validation: dict[str, Any]) -> str:
    """``pending`` while a model saved before its leave-one-slice-out (``validate="later"``) has
    no figures, ``failed`` when they could not be computed, else ``done``: of ``validation.json``."""
    return validation.get("status") if validation.get("status") in ("pending", "failed") else "done"


def model_report(model_dir: str | Path) -> dict[str, Any]:
    """Why the model is what it is, for the pages: the method chosen and why, every candidate's
    held-out scores, the warnings, which slices were painted and which completed from strokes.
    Read from the folder's JSON only (no estimator is loaded)."""
    model_dir = Path(model_dir)
    try:
        meta = json.loads((model_dir / METADATA_FILE).read_text())
    except FileNotFoundError:
        raise ArtifactNotFound(f"no trained model at {model_dir} (expected {METADATA_FILE})") from None
    validation_path = model_dir / VALIDATION_FILE
    validation = json.loads(validation_path.read_text()) if validation_path.is_file() else {}
    keys = ("kind", "classes", "method", "method_reason", "network", "warnings", "annotated_slices", "prior_slices",
            "completed_slices", "voxels_per_class", "voxel_size", "unit", "created_at")
    report = {key: meta.get(key) for key in keys}
    report["method"] = report["method"] or meta.get("kind")
    report["warnings"] = report["warnings"] or []
    report["validation"] = {key: validation.get(key) for key in ("method", "folds", "metrics", "reason")}
    report["validation_status"] = validation_state(validation)
    # ``within_slice``: scored on stripes of the one slice of outlines (no held-out scores to show);
    # ``across``: on the correction planes, each held out (low by construction for the method before)
    report["candidates"] = {name: {key: scored.get(key) for key in ("metrics", "interior", "extrapolated", "seconds",
                                                                    "within_slice", "across")}
                            for name, scored in (validation.get("candidates") or {}).items()}
    report["training_curve"] = _training_curve(model_dir)
    return report


def _training_curve(model_dir: Path) -> dict[str, Any] | None:
    """A U-Net's epochs as the models page draws them, None for other kinds: ``epochs`` of the
    final fit (train loss; held-out scores where it had held-out slices), ``best_epochs``, and
    ``folds``: each leave-one-slice-out fold's held-out slices and per-epoch train loss and
    held-out Dice, the evidence for how many epochs are worth training."""
    path = model_dir / UNET_CONFIG_FILE
    if not path.is_file():
        path = model_dir / "near" / UNET_CONFIG_FILE  # a LocalNetwork: the network that learned everything
    if not path.is_file():
        return None
    config = json.loads(path.read_text())
    return {"epochs": config.get("curve") or [], "best_epochs": config.get("best_epochs"),
            "folds": config.get("heldout_curves") or []}


def _stamp(model_dir: Path) -> tuple[int, int]:
    try:
        return ((model_dir / METADATA_FILE).stat().st_mtime_ns, model_dir.stat().st_mtime_ns)
    except FileNotFoundError:
        return (0, 0)


@functools.lru_cache(maxsize=4)
def _load_cached(model_dir: str, stamp: tuple[int, int]) -> Segmenter:
    return load_model(model_dir)


def cached_model(model_dir: str | Path) -> Segmenter:
    """:func:`load_model` memoised per process, keyed by folder and file modification times,
    so a retrained model in the same folder is picked up and repeated calls cost nothing."""
    path = Path(model_dir).resolve()
    return _load_cached(str(path), _stamp(path))
