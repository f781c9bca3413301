"""Model folders: ``estimator.joblib``, ``metadata.json``, ``validation.json``.

A folder is written under a temporary name and renamed when complete. Loading checks that the
saved feature settings still produce as many features as the estimator was fitted on.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import shutil
from pathlib import Path
from typing import Any

import joblib

from ml4paleo import __version__
from ml4paleo.atomic import partial_path, replace_atomically
from ml4paleo.errors import InputError, OutputExistsError, VolumeNotFoundError
from ml4paleo.compute.features import FeatureSettings
from ml4paleo.models._base import SklearnSegmenter
from ml4paleo.models._forest import HistGradientBoostingSegmenter, RandomForestSegmenter

KINDS: dict[str, type[SklearnSegmenter]] = {
    RandomForestSegmenter.kind: RandomForestSegmenter,
    HistGradientBoostingSegmenter.kind: HistGradientBoostingSegmenter,
}
ESTIMATOR_FILE = "estimator.joblib"
METADATA_FILE = "metadata.json"
VALIDATION_FILE = "validation.json"


def make_segmenter(kind: str, classes, feature_settings: FeatureSettings, **kwargs: Any) -> SklearnSegmenter:
    """A new, unfitted segmenter of ``kind`` (``random-forest`` or ``hist-gradient-boosting``)."""
    try:
        cls = KINDS[kind]
    except KeyError:
        raise InputError(f"model must be one of {', '.join(KINDS)}; got {kind!r}") from None
    return cls(classes, feature_settings, **kwargs)


def save_model(
    model: SklearnSegmenter,
    model_dir: str | Path,
    *,
    metadata: dict[str, Any] | None = None,
    validation: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``model`` to ``model_dir`` atomically; returns the folder."""
    model_dir = Path(model_dir)
    if model_dir.exists() and not overwrite:
        raise OutputExistsError(f"{model_dir} already exists (pass overwrite to replace it)")
    meta = {
        "kind": model.kind,
        "classes": list(model.classes),
        "features": model.feature_settings.to_dict(),
        "n_features": model.n_features,
        "params": model.params,
        "seed": model.seed,
        "ml4paleo_version": __version__,
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **(metadata or {}),
    }
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(model_dir)
    tmp.mkdir()
    try:
        joblib.dump(model.estimator, tmp / ESTIMATOR_FILE, compress=3)
        (tmp / METADATA_FILE).write_text(json.dumps(meta, indent=2))
        (tmp / VALIDATION_FILE).write_text(json.dumps(validation or {}, indent=2))
        replace_atomically(tmp, model_dir, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    model.metadata = meta
    return model_dir


def load_model(model_dir: str | Path) -> SklearnSegmenter:
    """The fitted segmenter saved in ``model_dir``, with ``.classes`` and ``.metadata``."""
    model_dir = Path(model_dir)
    meta_path = model_dir / METADATA_FILE
    if not meta_path.is_file() or not (model_dir / ESTIMATOR_FILE).is_file():
        raise VolumeNotFoundError(f"no trained model at {model_dir} (expected {METADATA_FILE} and {ESTIMATOR_FILE})")
    try:
        meta = json.loads(meta_path.read_text())
        settings = FeatureSettings.from_value(meta["features"])
        model = make_segmenter(meta["kind"], meta["classes"], settings, seed=meta.get("seed", 0))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{meta_path} is not a valid model description: {exc}") from exc
    model.params = meta.get("params", {})
    model.estimator = joblib.load(model_dir / ESTIMATOR_FILE)
    model.metadata = meta
    fitted = getattr(model.estimator, "n_features_in_", None)
    if fitted is not None and fitted != model.n_features:
        raise InputError(
            f"model at {model_dir} was fitted on {fitted} features but its settings give {model.n_features}"
        )
    validation = model_dir / VALIDATION_FILE
    model.validation = json.loads(validation.read_text()) if validation.is_file() else {}
    return model


def _stamp(model_dir: Path) -> tuple[int, int]:
    try:
        return ((model_dir / METADATA_FILE).stat().st_mtime_ns, (model_dir / ESTIMATOR_FILE).stat().st_mtime_ns)
    except FileNotFoundError:
        return (0, 0)


@functools.lru_cache(maxsize=4)
def _load_cached(model_dir: str, stamp: tuple[int, int]) -> SklearnSegmenter:
    return load_model(model_dir)


def cached_model(model_dir: str | Path) -> SklearnSegmenter:
    """:func:`load_model` memoised per process, keyed by folder and file modification times,
    so a retrained model in the same folder is picked up and repeated calls cost nothing."""
    path = Path(model_dir).resolve()
    return _load_cached(str(path), _stamp(path))
