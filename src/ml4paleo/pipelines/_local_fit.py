"""The final fit of a forest with corrections: each acts firmly where it was painted
(:class:`ml4paleo.models.LocalCorrections`).

A forest (or context forest) is fitted twice. ``near``: every painted voxel, each class of the
corrections' rows repeated up to ``CORRECTION_SHARE`` of the rows, so that a dab of two voxels
moves the model around it (a correction that changes nothing there tells the user nothing was
heard). ``far``: every painted voxel less the rows of background corrections. The model answers
with ``near`` within ``REACH_VOXELS`` of a correction, ``far`` beyond. Why background only
stays local: docs/decisions.md, "A correction acts where it was painted".
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ml4paleo.pipelines._candidates import Candidate, PaintedSlice, TrainingSet

__all__ = ["CORRECTION_SHARE", "LOCAL_CLASSES", "REACH_VOXELS", "fit_final"]

LOCAL_CLASSES: tuple[int, ...] = (0,)
"""Class indices whose corrections teach only their neighbourhood (0: background, "not here")."""
REACH_VOXELS = 8.0
"""How far a correction reaches, in voxels of the volume's finest axis (firmly to half of it)."""
CORRECTION_SHARE = 0.02
"""Near a correction, each class of the corrections' rows weighs at least this share of the rows."""
MAX_REPEAT = 50
LOCAL_METHODS = ("forest", "context")


def fit_final(candidate: Candidate, ts: TrainingSet):
    """The model of ``candidate`` fitted on every painted slice of ``ts``; for a forest with
    corrections, the :class:`~ml4paleo.models.LocalCorrections` of its ``near`` and ``far`` fits."""
    corrections = [s for s in ts.slices if s.ref in ts.corrections and s.targets.size]
    if candidate.name not in LOCAL_METHODS or not corrections:
        return candidate.fit(ts)
    corrected = {s.ref for s in corrections}
    far_slices = [_without(s, LOCAL_CLASSES) if s.ref in corrected else s for s in ts.slices]
    far_slices = [s for s in far_slices if s.targets.size]
    if len(np.unique(np.concatenate([s.targets for s in far_slices]))) < len(ts.classes):
        return candidate.fit(ts)  # the corrections hold every row of a class: they reach everywhere
    from ml4paleo.models import LocalCorrections  # lazy: see _candidates

    near = candidate.fit(dataclasses.replace(ts, slices=_weighed(ts.slices, corrected)))
    far = candidate.fit(dataclasses.replace(ts, slices=far_slices))
    planes = [(s.ref.dim, s.ref.index, np.asarray(ts.masks[s.ref], np.uint8)) for s in corrections]
    return LocalCorrections(far, near, planes, ts.voxel_size, REACH_VOXELS * min(ts.voxel_size))


def _without(s: PaintedSlice, classes: tuple[int, ...]) -> PaintedSlice:
    """``s`` less its rows of ``classes``."""
    return _rows(s, np.flatnonzero(~np.isin(s.targets, classes)))


def _rows(s: PaintedSlice, index: np.ndarray) -> PaintedSlice:
    return dataclasses.replace(s, rows=s.rows[index], targets=s.targets[index],
                               coords=(s.coords[0][index], s.coords[1][index]))


def _weighed(slices: list[PaintedSlice], corrected: set) -> list[PaintedSlice]:
    """``slices`` with each class of the rows of the ``corrected`` planes repeated to
    ``CORRECTION_SHARE`` of all rows."""
    total = sum(s.targets.size for s in slices)
    counts = np.bincount(np.concatenate([s.targets for s in slices if s.ref in corrected]))
    repeat = {c: min(MAX_REPEAT, max(1, math.ceil(CORRECTION_SHARE * total / n))) for c, n in enumerate(counts) if n}
    out = []
    for s in slices:
        if s.ref in corrected:
            index = np.concatenate([np.repeat(np.flatnonzero(s.targets == c), k) for c, k in repeat.items()])
            s = _rows(s, np.sort(index))
        out.append(s)
    return out
