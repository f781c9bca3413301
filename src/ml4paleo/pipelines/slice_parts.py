"""Held-out evidence inside the one painted slice of outlines: ``auto``'s folds when there is no other.

Leave-one-slice-out needs two slices of outlines. With one (a first model, or a user who corrects
with dabs on other planes, which never become folds: :mod:`ml4paleo.pipelines.corrections`) no
method could be scored, and ``auto`` kept the forest for good, on touching blobs of one density
too, where the U-Net from the same slice is far better. Here the slice is
cut into alternate stripes ``STRIPE`` voxels wide across the axis its painted voxels spread most on
(the other axis when a part would lack a class), and each part is held out in turn: a method
trains on every painted voxel but that part's (the corrections included) and is scored on the
part's strokes and on the walker's completion band near its outlines, as
:func:`~ml4paleo.pipelines.scoring.score_candidates` scores a held-out slice. Stripes, not two
halves: each held-out voxel lies within a stripe of trained ones, as the unpainted slices near the
painted one do; two halves asked a method to carry one half's blobs to the other's, where the U-Net
that is right on the volume scored no better than the forest (docs/decisions.md, "One slice of
outlines"). Only the methods that read the image can be scored so (the forest, the U-Net);
the shape prior's methods need outlines from another slice, so the image-blind rule of
:func:`~ml4paleo.pipelines.scoring.choose_method` does not apply (``within_slice``).

What the parts cannot see: they share the slice's grey levels, so they measure how well a method
separates the classes within this slice, not how it carries them along the stack; and the walker's
completion the U-Net trains on was made from every stroke of the slice, the held-out ones too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ml4paleo.pipelines._candidates import TrainingSet, scored_coords
from ml4paleo.pipelines.scoring import class_scores, mean_dice
from ml4paleo.planes import SliceRef
from ml4paleo.progress import ProgressCallback, no_progress

__all__ = ["STRIPE", "SliceParts", "parts_of"]

STRIPE = 16
"""Width (voxels) of the stripes the one slice of outlines is cut into (measured: docs/benchmarks.md)."""


@dataclass(frozen=True)
class SliceParts:
    """The one slice of outlines ``ref`` and its two held-out parts ((u, v) masks that cover the plane)."""

    ref: SliceRef
    parts: tuple[np.ndarray, np.ndarray]

    @property
    def folds(self) -> list[list[SliceRef]]:
        """One fold per part, each naming the plane: what the U-Net's budget and carried evidence count."""
        return [[self.ref] for _ in self.parts]

    @property
    def described(self) -> str:
        return f"alternate {STRIPE}-voxel stripes of slice {self.ref.name}, the one slice of outlines"

    def score(self, ts: TrainingSet, candidates: Mapping[str, Any], folds: Sequence[Sequence[SliceRef]] = (),
              progress: ProgressCallback = no_progress) -> dict[str, dict[str, Any]]:
        """Every candidate's scores on the held-out parts, in the form of
        :func:`~ml4paleo.pipelines.scoring.score_candidates` (``folds`` is ignored: the parts are the folds)."""
        K = len(ts.classes)
        painted = next(s for s in ts.slices if s.ref == self.ref)
        coords, n = scored_coords(painted), painted.targets.size
        band = painted.pseudo[1] if painted.pseudo is not None else painted.targets[:0]
        confusion = {c: np.zeros((K, K), np.int64) for c in candidates}
        near = {c: np.zeros((K, K), np.int64) for c in candidates}
        per_fold: dict[str, list[float | None]] = {c: [] for c in candidates}
        seconds = dict.fromkeys(candidates, 0.0)
        progress(0, len(self.parts))
        for i, part in enumerate(self.parts):
            inside = part[coords]
            for name, cand in candidates.items():
                t0 = time.perf_counter()
                predicted = cand.heldout_part(ts, self.ref, part)
                if predicted is None:
                    per_fold[name].append(None)
                    continue
                fold = np.zeros((K, K), np.int64)
                np.add.at(fold, (painted.targets[inside[:n]], predicted[:n][inside[:n]]), 1)
                np.add.at(near[name], (band[inside[n:]], predicted[n:][inside[n:]]), 1)
                confusion[name] += fold
                per_fold[name].append(round(mean_dice(class_scores(fold, ts.classes)), 4))
                seconds[name] += time.perf_counter() - t0
            progress(i + 1, len(self.parts))
        return {c: {"metrics": class_scores(confusion[c], ts.classes) if confusion[c].sum() else {},
                    "interior": {}, "extrapolated": {},
                    "band": class_scores(near[c], ts.classes) if near[c].sum() else {},
                    "confusion": confusion[c].tolist(), "fold_dice": per_fold[c], "seconds": round(seconds[c], 2),
                    "against_outlines": {"disagree": 0, "outlines_right": 0}, "within_slice": self.ref.name}
                for c in candidates}


def parts_of(masks: Mapping[SliceRef, np.ndarray], folds: Sequence[Sequence[SliceRef]],
             outlines: Sequence[SliceRef], K: int) -> SliceParts | None:
    """The parts of the one slice of ``outlines`` (the other painted planes being corrections) when
    there are no ``folds``; None where there are folds, no such single slice, or neither axis's
    stripes leave every class painted in both parts."""
    if folds or len(outlines) != 1:
        return None
    ref = outlines[0]
    mask = np.asarray(masks[ref])
    where = np.nonzero(mask > 0)
    spread = [float(np.ptp(w)) if w.size else 0.0 for w in where]
    for axis in sorted(range(2), key=lambda a: -spread[a]):
        even = (np.indices(mask.shape)[axis] // STRIPE) % 2 == 0
        if all(np.unique(mask[side & (mask > 0)]).size == K for side in (even, ~even)):
            return SliceParts(ref, (even, ~even))
    return None
