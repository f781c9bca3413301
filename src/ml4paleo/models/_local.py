"""A model whose corrections act where they were painted: two forests blended by distance.

Why: on thin structures a correction dab is a voxel or two on a rim, and its rows teach the
forest about every rim of the volume; a correct "not here" dab then thinned every tube and
lowered Dice by 0.015-0.05 (docs/decisions.md, "A correction acts where it was painted").
:class:`LocalCorrections` holds the forest fitted on every painted voxel (``near``) and the
one fitted without the rows of the corrections meant to act locally (``far``). It answers with
``near`` within reach of those corrections and, beyond, with ``far_share`` of ``far`` and the
rest of ``near``, linear in between (:class:`ml4paleo.compute.reach.CorrectionReach`). Both
work on one filter bank, computed once per region.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from ml4paleo.compute.painted import PaintedPlane
from ml4paleo.compute.reach import CorrectionReach
from ml4paleo.compute.regions import features_of_region
from ml4paleo.models._base import SklearnSegmenter, labels_from_proba
from ml4paleo.models._context import ContextSegmenter
from ml4paleo.models._forest import HistGradientBoostingSegmenter, RandomForestSegmenter
from ml4paleo.planes import AXES

__all__ = ["LocalCorrections", "REACH_FILE"]

PART_KINDS: dict[str, type] = {k.kind: k for k in (RandomForestSegmenter, HistGradientBoostingSegmenter,
                                                   ContextSegmenter)}
"""What the near and far models may be: forests, or context forests."""

REACH_FILE = "reach.npz"
"""The corrected planes whose rows only ``near`` learned (``z12``, ``y40``: 0 unlabeled, 1..K)."""


class LocalCorrections:
    """``near`` within ``radius`` (the volume's units) of the local corrections' painted voxels,
    ``far_share`` of ``far`` (the rest ``near``) elsewhere; both forests (or context forests) on
    one feature bank."""

    kind: ClassVar[str] = "local-corrections"

    def __init__(self, far: SklearnSegmenter, near: SklearnSegmenter, planes: Sequence[PaintedPlane],
                 voxel_size: Sequence[float], radius: float, far_share: float = 1.0) -> None:
        self.far, self.near = far, near
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
        return self.far

    def proba_from_features(self, features: np.ndarray, start: Sequence[int]) -> np.ndarray:
        """(z, y, x, K) probabilities of the region at ``start`` from its bank ``features``:
        ``near`` where a correction reaches fully, ``far_share`` of ``far`` (the rest ``near``)
        where none reaches, linear between."""
        stop = [s + n for s, n in zip(start, features.shape[:3])]
        weight = self.reach.weight(start, stop)
        if self.far_share >= 1.0:  # the near forest only where a correction reaches
            proba = self.far.proba_from_features(features, start)
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

    def predict_region(self, array: Any, start: Sequence[int], stop: Sequence[int]) -> np.ndarray:
        """(z, y, x, K) float32 probabilities of region ``start:stop`` of ``array``."""
        if self.far_share >= 1.0 and not (self.reach.weight(start, stop) > 0).any():
            return self.far.predict_region(array, start, stop)
        return self.proba_from_features(features_of_region(array, start, stop, self.feature_settings), start)

    def predict_labels_region(self, array: Any, start: Sequence[int], stop: Sequence[int]) -> np.ndarray:
        """(z, y, x) uint8 labels: the far forest's own fast path where it alone answers."""
        own = getattr(self.far, "predict_labels_region", None)
        if own is not None and self.far_share >= 1.0 and not (self.reach.weight(start, stop) > 0).any():
            return own(array, start, stop)
        return labels_from_proba(self.predict_region(array, start, stop))

    def set_n_jobs(self, n_jobs: int) -> None:
        self.far.set_n_jobs(n_jobs)
        self.near.set_n_jobs(n_jobs)

    def save_files(self, folder: Path) -> None:
        """Each forest's files in ``far/`` and ``near/``, the local corrections in ``reach.npz``."""
        for name, model in (("far", self.far), ("near", self.near)):
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
                 for name in ("far", "near")}
        with np.load(folder / REACH_FILE) as data:
            planes = [(AXES.index(name[0]), int(name[1:]), data[name]) for name in data.files]
        return cls(parts["far"], parts["near"], planes, metadata["reach_voxel_size"], metadata["reach_radius"],
                   metadata.get("reach_far_share", 1.0))

    def describe(self) -> dict[str, Any]:
        far = self.far.describe()
        return {**far, "kind": self.kind, "far": far, "near": self.near.describe(),
                "reach_radius": self.radius, "reach_voxel_size": list(self.voxel_size), "reach_far_share": self.far_share}
