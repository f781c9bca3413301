"""Segmenters that use the shape prior of the painted slices (:mod:`ml4paleo.compute.prior`).

- :class:`InterpolationSegmenter` (``interpolation``): the prior alone, the painted outlines
  morphed from one painted slice to the next; it never looks at the image.
- :class:`ContextSegmenter` (``context``): a random forest over the filter bank *plus* the
  prior's channels (each class's interpolated signed distance, the distance to the nearest
  painted slice), so it learns per volume how far to trust the outlines against the image. Its
  training rows must carry the prior computed *without* their own slice (see
  :func:`ml4paleo.pipelines.train`), or the forest learns "prior equals label" and ignores the
  image.

Both keep the painted (completed) slices as they were painted: on those slices the prior is
the user's own answer. The prior travels in the model folder as ``prior.npz`` (the completed
masks, their slice indices and the voxel size).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from ml4paleo.compute.features import FeatureSettings
from ml4paleo.compute.painted import keep_painted
from ml4paleo.compute.prior import ShapePrior
from ml4paleo.enums import CLASS_NAMES
from ml4paleo.errors import InputError
from ml4paleo.models._forest import RandomForestSegmenter
from ml4paleo.planes import SliceRef

__all__ = ["ContextSegmenter", "InterpolationSegmenter", "PRIOR_FILE", "load_prior", "save_prior"]

PRIOR_FILE = "prior.npz"


def save_prior(prior: ShapePrior, folder: Path) -> None:
    """Write the prior's painted masks, slices, planes across the stack and voxel size into ``folder``."""
    planes = {f"plane_{ref.name}": mask.astype(np.uint8) for ref, mask in prior.planes.items()}
    with open(Path(folder) / PRIOR_FILE, "wb") as f:
        np.savez_compressed(f, slices=np.asarray(prior.slices, np.int64), masks=prior.masks.astype(np.uint8),
                            n_classes=np.int64(prior.n_classes), spacing=np.asarray(prior.spacing, np.float64),
                            guessed=np.asarray([str(ref.to_json()) for ref in sorted(prior.guessed)], dtype=str),
                            **planes)


def load_prior(folder: Path) -> ShapePrior:
    """The prior written by :func:`save_prior` (files without planes or guessed planes too)."""
    with np.load(Path(folder) / PRIOR_FILE) as data:
        planes = {SliceRef.of_json(name[6:]): data[name] for name in data.files if name.startswith("plane_")}
        guessed = [SliceRef.of_json(int(v) if v.isdigit() else v) for v in data["guessed"].tolist()] \
            if "guessed" in data.files else []
        return ShapePrior(tuple(int(z) for z in data["slices"]), data["masks"], int(data["n_classes"]),
                          tuple(float(s) for s in data["spacing"]), planes, frozenset(guessed))


def _keep_painted(proba: np.ndarray, prior: ShapePrior, start: Sequence[int], stop: Sequence[int]) -> np.ndarray:
    """Set the probabilities of painted (completed) slices and planes inside the region to their class."""
    return keep_painted(proba, [(axis, index, mask + 1) for axis, index, mask in prior.painted()], start, stop)


class ContextSegmenter(RandomForestSegmenter):
    """A random forest over the filter bank and the shape prior's channels."""

    kind: ClassVar[str] = "context"

    def __init__(self, classes=CLASS_NAMES, feature_settings: FeatureSettings | None = None, *,
                 prior: ShapePrior | None = None, seed: int = 0, n_jobs: int = 1, **params: Any) -> None:
        super().__init__(classes, feature_settings, seed=seed, n_jobs=n_jobs, **params)
        if prior is not None and prior.n_classes != len(self.classes):
            raise InputError(f"the prior has {prior.n_classes} classes; the model {len(self.classes)}")
        self.prior = prior

    @property
    def n_features(self) -> int:
        return super().n_features + len(self.classes) + 1

    def proba_from_features(self, features: np.ndarray, start: Sequence[int]) -> np.ndarray:
        if self.prior is None:
            raise InputError("this context model has no prior: it was not trained")
        stop = tuple(s + n for s, n in zip(start, features.shape[:3]))
        joined = np.concatenate([features, self.prior.features(start, stop)], axis=-1)
        proba = super().proba_from_features(joined, start)
        return _keep_painted(proba, self.prior, start, stop)

    def save_files(self, folder: Path) -> None:
        super().save_files(folder)
        save_prior(self.prior, folder)

    @classmethod
    def _load_kwargs(cls, folder: Path, metadata: dict[str, Any]) -> dict[str, Any]:
        return {"prior": load_prior(folder)}


class InterpolationSegmenter:
    """The shape prior alone: the class whose interpolated outline contains the voxel."""

    kind: ClassVar[str] = "interpolation"
    feature_settings = None

    def __init__(self, classes: Sequence[str], prior: ShapePrior) -> None:
        self.classes = tuple(str(c) for c in classes)
        if prior.n_classes != len(self.classes):
            raise InputError(f"the prior has {prior.n_classes} classes; the model {len(self.classes)}")
        self.prior = prior
        self.metadata: dict[str, Any] = {}
        self.validation: dict[str, Any] = {}

    def predict_region(self, array: Any, start: Sequence[int], stop: Sequence[int]) -> np.ndarray:
        """(z, y, x, K) probabilities from the interpolated distances (the image is not read)."""
        return _keep_painted(self.prior.proba(start, stop), self.prior, start, stop)

    def set_n_jobs(self, n_jobs: int) -> None:
        """Nothing to set: the interpolation runs in the calling thread."""

    def save_files(self, folder: Path) -> None:
        save_prior(self.prior, folder)

    @classmethod
    def load_files(cls, folder: Path, metadata: dict[str, Any]) -> "InterpolationSegmenter":
        return cls(metadata["classes"], load_prior(folder))

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "classes": list(self.classes), "features": None, "n_features": 0}
