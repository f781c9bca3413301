"""A model whose corrections act where they were painted: two forests blended by distance.

Why: on thin structures a correction dab is a voxel or two on a rim, and its rows teach the
forest about every rim of the volume; a correct "not here" dab then thinned every tube and
lowered Dice by 0.015-0.05 (docs/decisions.md, "A correction acts where it was painted").
:class:`LocalCorrections` holds the forest fitted on every painted voxel (``near``) and the
one fitted without the rows of the corrections meant to act locally (``far``). It answers with
``near`` within reach of those corrections and, beyond, with ``far_share`` of ``far`` and the
rest of ``near``, linear in between (:class:`ml4paleo.compute.reach.CorrectionReach`). Both
work on one filter bank, computed once per region. Beyond the reach one forest of trees of both
(:func:`mixed_forest`) stands for that blend: one forest walk instead of two.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from ml4paleo.compute.painted import PaintedPlane
from ml4paleo.compute.reach import CorrectionReach
from ml4paleo.compute.regions import features_of_region
from ml4paleo.models._base import SklearnSegmenter, labels_from_proba, predict_in_pieces
from ml4paleo.models._context import ContextSegmenter
from ml4paleo.models._forest import HistGradientBoostingSegmenter, RandomForestSegmenter
from ml4paleo.planes import AXES

__all__ = ["LocalCorrections", "REACH_FILE", "mixed_forest"]

PART_KINDS: dict[str, type] = {k.kind: k for k in (RandomForestSegmenter, HistGradientBoostingSegmenter,
                                                   ContextSegmenter)}
"""What the near and far models may be: forests, or context forests."""

REACH_FILE = "reach.npz"
"""The corrected planes whose rows only ``near`` learned (``z12``, ``y40``: 0 unlabeled, 1..K)."""


def mixed_forest(near: RandomForestSegmenter, far: RandomForestSegmenter, far_share: float) -> RandomForestSegmenter:
    """One forest of every tree of ``far`` and as many of ``near``'s last trees as make ``far``'s
    trees ``far_share`` of the whole: its probabilities estimate ``far_share`` of ``far``'s and the
    rest of ``near``'s (a forest's answer is the mean over its trees) at the cost of one forest
    walk, where blending the two forests walks both. Both forests (or context forests on one
    prior) must have been fitted on the same classes and features."""
    far_trees = list(far.estimator.estimators_)
    near_trees = list(near.estimator.estimators_)
    take = min(len(near_trees), max(1, int(round(len(far_trees) * (1.0 - far_share) / far_share))))
    estimator = copy.copy(near.estimator)  # shallow: the fitted trees are shared, not copied
    estimator.estimators_ = near_trees[len(near_trees) - take:] + far_trees
    estimator.n_estimators = len(estimator.estimators_)
    extra = {"prior": near.prior} if isinstance(near, ContextSegmenter) else {}
    mix = type(near)(near.classes, near.feature_settings, seed=near.seed, n_jobs=1, **extra)
    mix.params = {**near.params, "n_estimators": estimator.n_estimators}
    mix.estimator = estimator
    return mix


class LocalCorrections:
    """``near`` within ``radius`` (the volume's units) of the local corrections' painted voxels,
    ``far_share`` of ``far`` (the rest ``near``) elsewhere; both forests (or context forests) on
    one feature bank."""

    kind: ClassVar[str] = "local-corrections"

    def __init__(self, far: SklearnSegmenter, near: SklearnSegmenter, planes: Sequence[PaintedPlane],
                 voxel_size: Sequence[float], radius: float, far_share: float = 1.0,
                 mix: SklearnSegmenter | None = None) -> None:
        self.far, self.near = far, near
        self.mix = mix
        """What answers beyond the reach in place of the blend of ``far`` and ``near``
        (:func:`mixed_forest`, one forest walk instead of two); None: the blend."""
        self.far_share = float(far_share)
        self.classes = far.classes
        self.feature_settings = getattr(far, "feature_settings", None)  # None: a U-Net reads the volume itself
        self.planes = [(int(a), int(i), np.asarray(m, np.uint8)) for a, i, m in planes]
        self.voxel_size = tuple(float(v) for v in voxel_size)
        self.radius = float(radius)
        self.reach = CorrectionReach(self.planes, self.voxel_size, self.radius)
        self.metadata: dict[str, Any] = {}
        self.validation: dict[str, Any] = {}

    @property
    def prior(self) -> Any:
        """The far model's shape prior (a context forest's), None for a forest."""
        return getattr(self.far, "prior", None)

    def coarse(self) -> SklearnSegmenter:
        """What answers on a coarser pyramid level: the far forest, whose answer is the same
        everywhere (the reach is counted in full-resolution voxels; the full-resolution overlay,
        which follows, shows the corrections' neighbourhood)."""
        return self.far if self.mix is None else self.mix

    def proba_from_features(self, features: np.ndarray, start: Sequence[int]) -> np.ndarray:
        """(z, y, x, K) probabilities of the region at ``start`` from its bank ``features``:
        ``near`` where a correction reaches fully, ``far_share`` of ``far`` (the rest ``near``;
        the mix's trees when there is one) where none reaches, linear between."""
        stop = [s + n for s, n in zip(start, features.shape[:3])]
        weight = self.reach.weight(start, stop)
        beyond = self.far if self.far_share >= 1.0 else self.mix
        if beyond is not None:  # the near forest only where a correction reaches
            proba = beyond.proba_from_features(features, start)
            near = np.argwhere(weight > 0)
            if near.size:
                lo, hi = near.min(0), near.max(0) + 1
                box = tuple(slice(a, b) for a, b in zip(lo, hi))
                local = self.near.proba_from_features(np.ascontiguousarray(features[box]),
                                                      [s + a for s, a in zip(start, lo)])
                proba[box] += weight[box][..., None] * (local - proba[box])
            return proba
        far_part = (self.far_share * (1.0 - weight))[..., None]
        proba = self.near.proba_from_features(features, start)
        proba += far_part * (self.far.proba_from_features(features, start) - proba)
        return proba

    def _alone(self, start: Sequence[int], stop: Sequence[int]) -> SklearnSegmenter | None:
        """The one forest that answers region ``start:stop`` when no correction reaches it (the
        far one, or the mix), else None."""
        beyond = self.far if self.far_share >= 1.0 else self.mix
        return beyond if beyond is not None and not (self.reach.weight(start, stop) > 0).any() else None

    def predict_region(self, array: Any, start: Sequence[int], stop: Sequence[int]) -> np.ndarray:
        """(z, y, x, K) float32 probabilities of region ``start:stop`` of ``array``."""
        alone = self._alone(start, stop)
        if alone is not None:
            return alone.predict_region(array, start, stop)
        tiled = predict_in_pieces(self, array, start, stop)  # a large region: piece by piece
        if tiled is not None:
            return tiled
        return self.proba_from_features(features_of_region(array, start, stop, self.feature_settings), start)

    def predict_labels_region(self, array: Any, start: Sequence[int], stop: Sequence[int]) -> np.ndarray:
        """(z, y, x) uint8 labels: the lone forest's own fast path where it alone answers."""
        alone = self._alone(start, stop)
        own = getattr(alone, "predict_labels_region", None)
        if own is not None:
            return own(array, start, stop)
        return labels_from_proba(self.predict_region(array, start, stop))

    def _parts(self) -> list[tuple[str, Any]]:
        return [("far", self.far), ("near", self.near)] + ([("mix", self.mix)] if self.mix is not None else [])

    def set_n_jobs(self, n_jobs: int) -> None:
        for _, model in self._parts():
            model.set_n_jobs(n_jobs)

    def save_files(self, folder: Path) -> None:
        """Each forest's files in ``far/``, ``near/`` (and ``mix/``), the local corrections in ``reach.npz``."""
        for name, model in self._parts():
            (Path(folder) / name).mkdir()
            model.save_files(Path(folder) / name)
        with open(Path(folder) / REACH_FILE, "wb") as f:
            np.savez_compressed(f, **{f"{AXES[a]}{i}": m for a, i, m in self.planes})

    @staticmethod
    def _part_class(kind: str) -> type:
        return PART_KINDS[kind]

    @classmethod
    def load_files(cls, folder: Path, metadata: dict[str, Any]) -> "LocalCorrections":
        folder = Path(folder)
        parts = {name: cls._part_class(metadata[name]["kind"]).load_files(folder / name, metadata[name])
                 for name in ("far", "near", "mix") if name in metadata}
        with np.load(folder / REACH_FILE) as data:
            planes = [(AXES.index(name[0]), int(name[1:]), data[name]) for name in data.files]
        return cls(parts["far"], parts["near"], planes, metadata["reach_voxel_size"], metadata["reach_radius"],
                   metadata.get("reach_far_share", 1.0), parts.get("mix"))

    def describe(self) -> dict[str, Any]:
        far = self.far.describe()
        return {**far, "kind": self.kind, "far": far, "near": self.near.describe(),
                **({"mix": self.mix.describe()} if self.mix is not None else {}),
                "reach_radius": self.radius, "reach_voxel_size": list(self.voxel_size), "reach_far_share": self.far_share}
