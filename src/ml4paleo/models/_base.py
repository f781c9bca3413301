"""The segmenter protocol and the shared base of the scikit-learn pixel classifiers.

A segmenter maps per-voxel feature rows to class probabilities. Like
``skimage.future.fit_segmenter``, labels are class indices 0..K-1 (annotation value minus one;
unlabeled voxels never reach it), and the classifier is swappable behind one protocol.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any, Callable, ClassVar, Protocol, Sequence, runtime_checkable

import numpy as np

from ml4paleo.compute.features import FeatureSettings, compiled_pass_loaded, feature_names, halo
from ml4paleo.compute.regions import features_of_region, region_tiles
from ml4paleo.enums import CLASS_NAMES
from ml4paleo.errors import InputError

ESTIMATOR_FILE = "estimator.joblib"


def _joblib_load(source: Any) -> Any:
    """``joblib.load``, imported here: ``ml4paleo segment`` with a packed forest never unpickles
    the estimator, and joblib's import (~0.03-0.05 s of one thread, docs/benchmarks.md) is then
    start-up it does not need; a training pays it with scikit-learn's anyway."""
    import joblib

    return joblib.load(source)
PREDICT_TILE = 512
PREDICT_VOXELS = 64 << 20
"""A region whose block with the filters' halo exceeds ``PREDICT_VOXELS`` voxels is featurised in
pieces of at most ``PREDICT_TILE`` voxels along each axis (plus the halo): the features of a
whole plane, with the 119 planes of halo the default bank reads, would grow with the scan (a
2048^2 slice: 558 M voxels, 2.2 GB per float32 array, ~9 GB with the filters' temporaries,
bench/fullsize.py --web), a piece's stay ~0.2 GB per array whatever the scan's size. A
segmentation block (at most 4 M voxels, 38 M with its halo) stays whole."""
UNET_CONFIG_FILE = "unet.json"
"""A U-Net folder's hyper-parameters, normalisation and training curves (read without torch by
:func:`ml4paleo.models.model_report`)."""


def labels_from_proba(proba: np.ndarray) -> np.ndarray:
    """uint8 class indices of (..., K) probabilities: the most probable class, the first one on
    ties (``np.argmax``). The one rule for labels: a faster labels path must give the same."""
    return np.argmax(proba, axis=-1).astype(np.uint8)


def region_labels(model: "Segmenter", array: Any, start: Sequence[int], stop: Sequence[int],
                  lattice: bool = False) -> np.ndarray:
    """(z, y, x) uint8 labels of region ``start:stop`` of ``array``: the model's own
    ``predict_labels_region`` where it has one (the random forest's skips the trees a voxel's
    label does not need), else :func:`labels_from_proba` of its ``predict_region``. With
    ``lattice``, a model's ``lattice_labels_region`` where it has one (the random forest's
    coarse-to-fine labels: near exact, not exact)."""
    own = getattr(model, "lattice_labels_region", None) if lattice else None
    own = own or getattr(model, "predict_labels_region", None)
    return own(array, start, stop) if own is not None else labels_from_proba(model.predict_region(array, start, stop))


@runtime_checkable
class Segmenter(Protocol):
    """What the pipelines need from a trained model: probabilities of any region of a volume
    (zarr or numpy), reading the halo it needs itself, equal to whole-volume prediction; and
    its own files in a model folder. ``feature_settings`` is None for a model that does not
    work on the filter bank (the preview then asks for the region)."""

    kind: str
    classes: tuple[str, ...]
    feature_settings: FeatureSettings | None
    metadata: dict[str, Any]

    def predict_region(self, array: Any, start: Sequence[int], stop: Sequence[int]) -> np.ndarray: ...

    def set_n_jobs(self, n_jobs: int) -> None: ...

    def save_files(self, folder: Path) -> None: ...



def predict_in_pieces(model: Any, array: Any, start: Sequence[int], stop: Sequence[int]) -> np.ndarray | None:
    """The region's probabilities assembled from ``model.predict_region`` of its pieces, or None
    when it is one piece (the caller predicts it itself). For any model that featurises its regions
    with the bank (``feature_settings``, ``classes``): the same values, as a piece's features read
    their own halo from the volume."""
    if model.feature_settings is None:  # a network reads the volume itself, tile by tile
        return None
    h = halo(model.feature_settings)
    padded = math.prod(b - a + (2 * h if axis in model.feature_settings.axes else 0)
                       for axis, (a, b) in enumerate(zip(start, stop)))
    parts = region_tiles(start, stop, PREDICT_TILE) if padded > PREDICT_VOXELS else []
    if len(parts) <= 1:
        return None
    out = np.empty(tuple(b - a for a, b in zip(start, stop)) + (len(model.classes),), np.float32)
    for a, b in parts:
        at = tuple(slice(i - s, j - s) for i, j, s in zip(a, b, start))
        out[at] = model.predict_region(array, a, b)
    return out

class SklearnSegmenter:
    """Base for segmenters wrapping one scikit-learn classifier (``_make_estimator``)."""

    kind: ClassVar[str] = ""

    def __init__(
        self,
        classes: tuple[str, ...] | list[str] = CLASS_NAMES,
        feature_settings: FeatureSettings | None = None,
        *,
        seed: int = 0,
        n_jobs: int = 1,
        **params: Any,
    ) -> None:
        classes = tuple(str(c) for c in classes)
        if len(classes) < 2 or len(set(classes)) != len(classes) or any(not c.strip() for c in classes):
            raise InputError(f"classes must be at least two distinct non-empty names; got {list(classes)}")
        if len(classes) > 255:
            raise InputError(f"at most 255 classes fit a uint8 label volume; got {len(classes)}")
        self.classes = classes
        self.feature_settings = feature_settings or FeatureSettings()
        self.seed = int(seed)
        self.params = dict(params)
        self._n_jobs: int | None = n_jobs
        self._estimator: Any = None
        self._estimator_source: Callable[[], Any] = lambda: self._make_estimator(n_jobs=n_jobs, **self.params)
        self.metadata: dict[str, Any] = {}
        self.validation: dict[str, Any] = {}  # the saved leave-one-slice-out report, once loaded

    def _make_estimator(self, n_jobs: int, **params: Any):  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def estimator(self) -> Any:
        """The scikit-learn classifier, built or unpickled on first use: a forest loaded with its
        packed arrays predicts without it, so a segmentation never imports scikit-learn (1.3 s)."""
        if self._estimator is None:
            self._estimator = self._estimator_source()
            if self._n_jobs is not None and hasattr(self._estimator, "n_jobs"):
                self._estimator.n_jobs = self._n_jobs
        return self._estimator

    @estimator.setter
    def estimator(self, estimator: Any) -> None:
        self._estimator = estimator

    @property
    def n_features(self) -> int:
        return len(feature_names(self.feature_settings))

    def set_n_jobs(self, n_jobs: int) -> None:
        """Threads the estimator may use (1 inside Dask tasks, so tasks x threads <= cores)."""
        self._n_jobs = n_jobs
        if self._estimator is not None and hasattr(self._estimator, "n_jobs"):
            self._estimator.n_jobs = n_jobs

    def _check_X(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            got = X.shape[1] if X.ndim == 2 else X.shape
            raise InputError(
                f"the model expects {self.n_features} features per voxel (settings {self.feature_settings.to_dict()}); got {got}"
            )
        return X if X.dtype == np.float32 else X.astype(np.float32)

    def fit(self, X: np.ndarray, y: np.ndarray) -> "SklearnSegmenter":
        """Fit on feature rows ``X`` (n, n_features) and class indices ``y`` (n,) in 0..K-1."""
        X = self._check_X(X)
        y = np.asarray(y)
        if y.shape != (X.shape[0],):
            raise InputError(f"y must have one class index per row of X ({X.shape[0]}); got shape {y.shape}")
        if y.size and (y.min() < 0 or y.max() >= len(self.classes)):
            raise InputError(f"class indices must lie in 0..{len(self.classes) - 1}; got {y.min()}..{y.max()}")
        missing = [self.classes[c] for c in range(len(self.classes)) if not np.any(y == c)]
        if missing:
            raise InputError(f"no labeled voxel for class(es) {missing}: label at least one voxel of each class")
        self.estimator.fit(X, y.astype(np.intp, copy=False))
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """(n, K) float32 class probabilities, columns in the order of :attr:`classes`."""
        X = self._check_X(X)
        proba = self._estimator_proba(X)
        out = np.zeros((X.shape[0], len(self.classes)), dtype=np.float32)
        out[:, self._fitted_classes()] = proba
        return out

    def _fitted_classes(self) -> np.ndarray:
        """Class indices seen in fit, the columns of the estimator's probabilities."""
        return np.asarray(self.estimator.classes_, dtype=np.intp)

    def _estimator_proba(self, X: np.ndarray) -> np.ndarray:
        """The estimator's (n, classes seen in fit) probabilities of float32 rows; a subclass may
        compute the same numbers faster."""
        return self.estimator.predict_proba(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """(n,) uint8 class indices."""
        return labels_from_proba(self.predict_proba(X))

    def proba_from_features(self, features: np.ndarray, start: Sequence[int]) -> np.ndarray:
        """(z, y, x, K) probabilities of the region at ``start`` whose (z, y, x, n) filter-bank
        ``features`` are given (the preview caches a slice's features between strokes)."""
        proba = self.predict_proba(features.reshape(-1, features.shape[-1]))
        return proba.reshape(features.shape[:3] + (len(self.classes),))

    def predict_region(self, array: Any, start: Sequence[int], stop: Sequence[int]) -> np.ndarray:
        """(z, y, x, K) float32 probabilities of region ``start:stop`` of ``array`` (in pieces of
        at most :data:`PREDICT_TILE` along each axis: memory bounded whatever the region)."""
        tiled = self._predict_tiled(array, start, stop)
        if tiled is not None:
            return tiled
        # numba's passes where this process has loaded them (a training, a runner): the same values
        compiled = compiled_pass_loaded()
        return self.proba_from_features(features_of_region(array, start, stop, self.feature_settings, compiled=compiled),
                                        start)

    def _predict_tiled(self, array: Any, start: Sequence[int], stop: Sequence[int]) -> np.ndarray | None:
        return predict_in_pieces(self, array, start, stop)

    def save_files(self, folder: Path) -> None:
        """Write the fitted estimator into ``folder`` (the model folder being written)."""
        import joblib  # lazy: see _joblib_load

        joblib.dump(self.estimator, Path(folder) / ESTIMATOR_FILE, compress=3)

    @classmethod
    def load_files(cls, folder: Path, metadata: dict[str, Any]) -> "SklearnSegmenter":
        """The segmenter saved in ``folder`` by :meth:`save_files`, described by ``metadata``."""
        folder = Path(folder)
        settings = FeatureSettings.from_value(metadata["features"])
        model = cls(metadata["classes"], settings, seed=metadata.get("seed", 0), **cls._load_kwargs(folder, metadata))
        model.params = metadata.get("params", {})
        model._n_jobs = None  # the saved estimator's own, unless a pipeline sets them
        if not model._load_fast(folder):
            model.estimator = _joblib_load(folder / ESTIMATOR_FILE)
            model._check_fitted(folder, getattr(model.estimator, "n_features_in_", None))
        return model

    def _load_fast(self, folder: Path) -> bool:
        """Load what predicts without the estimator, if the folder has it, and leave the estimator
        to be unpickled on first use (from bytes read now: a folder retrained meanwhile cannot
        mix with this model). False when the estimator is needed now; subclasses override."""
        return False

    def _defer_estimator(self, folder: Path) -> None:
        """Unpickle ``estimator.joblib`` on first use, from its bytes as they are now."""
        data = (Path(folder) / ESTIMATOR_FILE).read_bytes()
        self._estimator = None
        self._estimator_source = lambda: _joblib_load(io.BytesIO(data))

    def _check_fitted(self, folder: Path, fitted: int | None) -> None:
        if fitted is not None and fitted != self.n_features:
            raise InputError(f"model at {folder} was fitted on {fitted} features but its settings give {self.n_features}")

    @classmethod
    def _load_kwargs(cls, folder: Path, metadata: dict[str, Any]) -> dict[str, Any]:
        return {}

    def describe(self) -> dict[str, Any]:
        """What metadata.json records of this model (beside the pipeline's own entries)."""
        return {"kind": self.kind, "classes": list(self.classes), "features": self.feature_settings.to_dict(),
                "n_features": self.n_features, "params": self.params, "seed": self.seed}
