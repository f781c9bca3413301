"""The two classifiers measured for pixel classification.

Choice (measured, see the figures in ``pipelines/train.py`` and ``bench/segment.py``):
the random forest is the default. On the snow scan and the generated 3-class volume both
reach the same leave-one-slice-out Dice within 0.01, but the histogram gradient boosting
predicts ~3x slower per voxel for binary tasks (and K trees per iteration for K classes),
while prediction is what a whole-volume segmentation spends its time on. The forest is kept
shallow (``max_depth``) and small (``n_estimators``) because prediction time grows with both
and Dice stops improving long before (ilastik's 100 full-depth trees cost ~6x more).
"""

from __future__ import annotations

from typing import Any

from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

from ml4paleo.models._base import SklearnSegmenter

RF_DEFAULTS: dict[str, Any] = {"n_estimators": 48, "max_depth": 16, "min_samples_leaf": 2, "max_features": "sqrt"}
HGB_DEFAULTS: dict[str, Any] = {"max_iter": 100, "learning_rate": 0.1, "max_leaf_nodes": 31}


class RandomForestSegmenter(SklearnSegmenter):
    """Random forest over the feature bank (the default, as in ilastik)."""

    kind = "random-forest"

    def _make_estimator(self, n_jobs: int, **params: Any) -> RandomForestClassifier:
        return RandomForestClassifier(**{**RF_DEFAULTS, **params}, n_jobs=n_jobs, random_state=self.seed)


class HistGradientBoostingSegmenter(SklearnSegmenter):
    """Histogram gradient boosting (scikit-learn's LightGBM-like trees); measured, not default."""

    kind = "hist-gradient-boosting"

    def _make_estimator(self, n_jobs: int, **params: Any) -> HistGradientBoostingClassifier:
        return HistGradientBoostingClassifier(**{**HGB_DEFAULTS, **params}, random_state=self.seed, early_stopping=False)
