"""The two classifiers measured for pixel classification: a random forest and gradient boosting.

The random forest (24 trees, depth 14) is the default: Dice within 0.001 of the best and 8-20x
faster prediction than full-depth forests or gradient boosting, while prediction over every voxel
is where a segmentation spends its time (docs/benchmarks.md, "Classifiers"). Prediction over many
voxels walks the packed forest of :mod:`ml4paleo.models._packed` instead of scikit-learn's trees
(the same probabilities bit for bit); a segmentation without probabilities asks for labels only.
The packed arrays are saved in the model folder (:mod:`ml4paleo.models._packed_io`), and a
long-lived process whose kernel is loaded (:mod:`ml4paleo.models._packed_warm`) uses them for
inputs of any size.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ml4paleo.compute.regions import features_of_region
from ml4paleo.models._base import SklearnSegmenter, labels_from_proba
from ml4paleo.models._packed import PackedForest, pack_forest, reads_in_place
from ml4paleo.models._packed_io import load_packed, save_packed
from ml4paleo.models._packed_warm import kernel_loaded, mark_loaded

if TYPE_CHECKING:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

RF_DEFAULTS: dict[str, Any] = {"n_estimators": 24, "max_depth": 14, "min_samples_leaf": 2, "max_features": "sqrt"}
HGB_DEFAULTS: dict[str, Any] = {"max_iter": 100, "learning_rate": 0.1, "max_leaf_nodes": 31}
PACKED_MIN_ROWS = 1 << 19
"""Inputs from this many rows (a segmentation task's block: 1 M voxels) use the packed forest;
smaller ones (a preview slice, a validation fold) stay with scikit-learn, the same numbers,
so a process that only previews never imports numba (~1 s, and its compiled kernel's load),
unless the process has loaded the kernel already (:func:`~ml4paleo.models._packed_warm.kernel_loaded`)."""
_UNPACKABLE = "unpackable"
"""``_packed`` of a forest too large to pack: scikit-learn predicts."""


class RandomForestSegmenter(SklearnSegmenter):
    """Random forest over the feature bank (the default, as in ilastik)."""

    kind = "random-forest"

    def _make_estimator(self, n_jobs: int, **params: Any) -> RandomForestClassifier:
        # imported here: scikit-learn takes 1.35 s to import (load 5, -X importtime), which a
        # segmentation of a saved forest (packed arrays, no estimator) never needs
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(**{**RF_DEFAULTS, **params}, n_jobs=n_jobs, random_state=self.seed)

    def fit(self, X: np.ndarray, y: np.ndarray) -> "RandomForestSegmenter":
        self._packed: tuple[Any, PackedForest | str] | None = None  # refitting changes the trees in place
        self._fitted: np.ndarray | None = None
        return super().fit(X, y)  # type: ignore[return-value]

    def save_files(self, folder: Path) -> None:
        """The estimator and its packed arrays (measured: packing a default draft's 24 trees
        costs milliseconds, next to the seconds of its fit)."""
        super().save_files(folder)
        save_packed(self.estimator, folder)

    def _load_fast(self, folder: Path) -> bool:
        """The packed arrays, when the folder has them; the estimator waits for first use."""
        saved = load_packed(folder)
        if saved is None:
            return False
        packed, self._fitted, self._n_jobs = saved
        self._check_fitted(folder, packed.n_features)
        self._defer_estimator(folder)
        self._packed = (None, packed)
        return True

    def _fitted_classes(self) -> np.ndarray:
        fitted = getattr(self, "_fitted", None)
        return super()._fitted_classes() if fitted is None else fitted

    def _packed_forest(self) -> PackedForest | None:
        """The packed trees of :attr:`estimator` (loaded, or packed once on first use)."""
        packed = getattr(self, "_packed", None)
        if packed is None or (packed[0] is not None and packed[0] is not self._estimator):
            try:
                packed = self._packed = (self.estimator, pack_forest(self.estimator))
            except ValueError:  # too many nodes to pack
                packed = self._packed = (self.estimator, _UNPACKABLE)
        return None if packed[1] is _UNPACKABLE else packed[1]

    def _leave_to_sklearn(self, rows: int) -> bool:
        """Whether ``rows`` are few enough to leave to scikit-learn: the kernel's first use costs
        ~1 s of loading, unless it is loaded already or the estimator is not (a model loaded from
        its packed arrays: importing scikit-learn would cost more)."""
        return rows < PACKED_MIN_ROWS and not kernel_loaded() and self._estimator is not None

    def _threads(self) -> int:
        n_jobs = self._n_jobs if self._n_jobs is not None else (self.estimator.n_jobs or 1)
        return n_jobs if n_jobs > 0 else (os.cpu_count() or 1)

    def predict_region(self, array: Any, start: Sequence[int], stop: Sequence[int]) -> np.ndarray:
        """(z, y, x, K) float32 probabilities of region ``start:stop`` of ``array``; a region the
        packed forest predicts keeps its features feature-major as computed (the packed kernel
        reads them so), which spares the transposing copy of the whole block, and its Gaussians
        come from the compiled pass (numba is loaded for the forest anyway): same values.
        A single plane (a preview's slice, however large) keeps scipy's passes and the
        transposing copy: compiling these kernels in a fresh install takes ~7 s (then cached on
        disk), which belongs to a segmentation's first block, not to a first preview."""
        tiled = self._predict_tiled(array, start, stop)  # a large region: piece by piece
        if tiled is not None:
            return tiled
        sizes = [b - a for a, b in zip(start, stop)]
        if math.prod(sizes) < PACKED_MIN_ROWS or min(sizes) == 1:
            return super().predict_region(array, start, stop)
        features = features_of_region(array, start, stop, self.feature_settings, feature_major=True, compiled=True)
        return self.proba_from_features(np.moveaxis(features, 0, -1), start)  # rows: a strided view

    def _estimator_proba(self, X: np.ndarray) -> np.ndarray:
        """scikit-learn's probabilities, bit for bit, from the packed forest (see
        :mod:`ml4paleo.models._packed`) for inputs of at least :data:`PACKED_MIN_ROWS` rows, or
        of any size once the process has loaded the kernel or when the model was loaded from its
        packed arrays (its estimator not unpickled: importing scikit-learn costs more than the
        kernel); smaller ones, and rows with NaN (which the packed walk does not route as
        scikit-learn does), go to scikit-learn."""
        columns = reads_in_place(X)  # a block's features: the kernel checks NaN itself, tile by tile
        if self._leave_to_sklearn(len(X)) or (not columns and np.isnan(X).any()):
            return self.estimator.predict_proba(np.ascontiguousarray(X))
        packed = self._packed_forest()
        proba = None if packed is None else packed.predict_proba(X, n_jobs=self._threads())
        if proba is None:
            return self.estimator.predict_proba(np.ascontiguousarray(X))
        mark_loaded()
        return proba

    def predict(self, X: np.ndarray) -> np.ndarray:
        """(n,) uint8 class indices, :func:`labels_from_proba` of :meth:`predict_proba` row for
        row; inputs of at least :data:`PACKED_MIN_ROWS` rows without NaN walk the packed forest
        only as far as each row's label needs (:meth:`PackedForest.predict_labels`)."""
        X = self._check_X(X)
        if self._leave_to_sklearn(len(X)) or (not reads_in_place(X) and np.isnan(X).any()):
            return super().predict(X)
        packed = self._packed_forest()
        labels = None if packed is None else packed.predict_labels(X, n_jobs=self._threads())
        if labels is None:  # NaN in a feature-major block (or unpackable): the probabilities' rule
            return super().predict(X)
        return self._class_indices(labels)

    def _class_indices(self, labels: np.ndarray) -> np.ndarray:
        """The packed forest's labels (its columns) as class indices; the kernel is now loaded."""
        mark_loaded()
        seen = self._fitted_classes()
        return labels if np.array_equal(seen, np.arange(len(seen))) else seen[labels].astype(np.uint8)

    def predict_labels_region(self, array: Any, start: Sequence[int], stop: Sequence[int]) -> np.ndarray:
        """(z, y, x) uint8 labels of region ``start:stop`` of ``array``, equal voxel for voxel to
        :func:`labels_from_proba` of :meth:`predict_region`: a block the packed forest predicts
        (as in :meth:`predict_region`) goes through :meth:`predict`, whose early exit skips ~45%
        of the tree walks on a segmentation's blocks. A subclass whose probabilities are not the
        forest's own (the context model keeps its painted slices) gets its probabilities' labels."""
        rows = self._own_block_rows(array, start, stop)
        if rows is None:
            return labels_from_proba(self.predict_region(array, start, stop))
        return self.predict(rows).reshape([b - a for a, b in zip(start, stop)])

    def lattice_labels_region(self, array: Any, start: Sequence[int], stop: Sequence[int]) -> np.ndarray:
        """:meth:`predict_labels_region` coarse to fine (:meth:`PackedForest.predict_labels_lattice`):
        the forest walks the voxels of even coordinates and those between lattice voxels that
        disagree or were not sure, and probes the others: fewer CPU seconds, near exact, not exact
        (docs/decisions.md, "Coarse-to-fine labels"). Where the packed forest does not predict
        the block (small, a plane, NaN, not the forest's own probabilities), the exact labels."""
        rows = self._own_block_rows(array, start, stop)
        if rows is None:
            return self.predict_labels_region(array, start, stop)
        sizes = tuple(b - a for a, b in zip(start, stop))
        packed = self._packed_forest()
        labels = None if packed is None else packed.predict_labels_lattice(rows, sizes, tuple(start))
        if labels is None:
            return self.predict(rows).reshape(sizes)
        return self._class_indices(labels).reshape(sizes)

    def _own_block_rows(self, array: Any, start: Sequence[int], stop: Sequence[int]) -> np.ndarray | None:
        """The feature rows (a strided view of the feature-major block) of a region the packed
        forest labels itself, or None: a subclass whose probabilities are not the forest's own,
        a region too small for the packed forest, or a single plane."""
        sizes = [b - a for a, b in zip(start, stop)]
        cls = type(self)
        own = (cls.predict_region is RandomForestSegmenter.predict_region
               and cls.proba_from_features is SklearnSegmenter.proba_from_features
               and cls.predict_proba is SklearnSegmenter.predict_proba)
        if not own or math.prod(sizes) < PACKED_MIN_ROWS or min(sizes) == 1:
            return None
        features = features_of_region(array, start, stop, self.feature_settings, feature_major=True, compiled=True)
        return np.moveaxis(features, 0, -1).reshape(-1, features.shape[0])  # a strided view, read in place


class HistGradientBoostingSegmenter(SklearnSegmenter):
    """Histogram gradient boosting (scikit-learn's LightGBM-like trees); measured, not default."""

    kind = "hist-gradient-boosting"

    def _make_estimator(self, n_jobs: int, **params: Any) -> HistGradientBoostingClassifier:
        from sklearn.ensemble import HistGradientBoostingClassifier  # as RandomForestSegmenter's

        return HistGradientBoostingClassifier(**{**HGB_DEFAULTS, **params}, random_state=self.seed, early_stopping=False)
