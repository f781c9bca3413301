"""Where a segmentation is least sure and most likely wrong, plane by plane, numpy in, numpy out.

Why: a user correcting a model paints where it is wrong, and cannot look at every slice. Two
cheap signals say where to look: the probability margin and the disagreement with the shape prior
(the painted outlines interpolated). A model's suggestion ranks a plane by the expected wrong voxels
of its worst region (:func:`plane_worst`): each voxel's chance of being wrong is ``1 - p_max``, or,
where the outlines disagree, at least the outlines' measured odds of being right there; a draft,
which has no outlines, ranks by the doubt map ``1 - (p_first - p_second)`` (the same ranking for
two classes). The distance from the painted planes and a band of drift beyond the painted range are
not weighed in: both ranked planes worse against their true errors (docs/decisions.md). The Dice
estimate is the soft Dice of the model's probabilities, each voxel where model and prior disagree
split between them by how often the prior was right there on held-out painted voxels: a forest's
probabilities are over-confident away from its training rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

__all__ = ["DOUBT", "WRONG", "PlaneDoubt", "doubt_map", "near_miss", "plane_doubt", "plane_worst", "soft_dice_terms",
           "wrong_chance"]

DOUBT = 0.5
"""Voxels whose doubt exceeds this form the regions a draft's suggestion points at."""
WRONG = 0.25
"""Voxels whose chance of being wrong exceeds this form the regions a model's suggestion points at
(for two classes the draft's ``DOUBT``: doubt is twice the chance where the outlines agree)."""


def doubt_map(proba: np.ndarray, prior_labels: np.ndarray | None = None) -> np.ndarray:
    """(u, v) float32 doubt in [0, 1] of a plane's (u, v, K) probabilities; with the prior's
    labels, voxels where it disagrees with the model count as doubtful."""
    proba = np.asarray(proba, np.float32)
    top2 = np.sort(proba, axis=-1)[..., -2:]
    doubt = 1.0 - (top2[..., 1] - top2[..., 0])
    if prior_labels is not None:
        doubt = np.maximum(doubt, (np.argmax(proba, axis=-1) != prior_labels).astype(np.float32))
    return doubt.astype(np.float32)


@dataclass(frozen=True)
class PlaneDoubt:
    """A plane's worst region: its box ``(u0, v0, u1, v1)`` (end-exclusive), the doubt it holds
    (the sum over its voxels), and the share of the plane it covers."""

    bbox: tuple[int, int, int, int]
    doubt: float
    share: float


def plane_doubt(doubt: np.ndarray, threshold: float = DOUBT) -> PlaneDoubt | None:
    """The largest connected region of ``doubt`` above ``threshold`` (None where there is none)."""
    pieces, n = ndi.label(doubt > threshold)
    if n == 0:
        return None
    held = ndi.sum_labels(doubt, pieces, index=np.arange(1, n + 1))
    best = int(np.argmax(held))
    box = ndi.find_objects(pieces)[best]
    return PlaneDoubt((box[0].start, box[1].start, box[0].stop, box[1].stop), float(held[best]),
                      float((pieces == best + 1).mean()))


def soft_dice_terms(proba: np.ndarray, prior_labels: np.ndarray | None = None, prior_trust: float = 0.5,
                    power: float = 1.0) -> np.ndarray:
    """(K, 3) sums of a plane's soft Dice per class: expected true positives, predicted voxels and
    expected true voxels, the probabilities of voxels where the prior disagrees split between the
    two classes, ``prior_trust`` to the prior's. Summed over planes, ``2 tp / (pred + true)``
    estimates the Dice. ``power``: the probabilities raised to it and renormalised first (2: read
    as surer, the labels unchanged), the optimistic end of a range where a forest's votes spread."""
    proba = np.asarray(proba, np.float32).reshape(-1, proba.shape[-1])
    if power != 1.0:
        proba = proba ** np.float32(power)
        proba /= np.maximum(proba.sum(axis=-1, keepdims=True), np.float32(1e-12))
    K = proba.shape[-1]
    labels = np.argmax(proba, axis=-1)
    if prior_labels is not None:
        prior_labels = np.asarray(prior_labels).ravel()
        split = labels != prior_labels
        if split.any():
            proba = proba.copy()
            rows = np.flatnonzero(split)
            proba[rows] = 0.0
            proba[rows, labels[rows]] = 1.0 - prior_trust
            proba[rows, prior_labels[rows]] = prior_trust
    onehot = np.eye(K, dtype=np.float32)[labels]
    return np.stack([(onehot * proba).sum(axis=0), onehot.sum(axis=0), proba.sum(axis=0)], axis=1).astype(np.float64)


def wrong_chance(proba: np.ndarray, prior_labels: np.ndarray | None = None, outline_trust: float = 0.5) -> np.ndarray:
    """(u, v) float32 chance that the model's label of each voxel of a plane's (u, v, K) probabilities
    is wrong: ``1 - p_max`` where the outlines (``prior_labels``) agree or are absent; where they
    disagree, the larger of that and ``outline_trust``, the outlines' measured odds of being right
    there. Why not the doubt map's flat 1 there: on thin tubes the outlines were right in 13-19 % of
    such voxels and their disagreement pointed the suggestions at planes the model had right."""
    proba = np.asarray(proba, np.float32)
    chance = 1.0 - proba.max(axis=-1)
    if prior_labels is not None:
        split = np.argmax(proba, axis=-1) != prior_labels
        chance = np.where(split, np.maximum(chance, np.float32(outline_trust)), chance)
    return chance.astype(np.float32)


def plane_worst(proba: np.ndarray, prior_labels: np.ndarray | None = None, outline_trust: float = 0.5
                ) -> PlaneDoubt | None:
    """A plane's worst region for a suggestion: the largest connected region of voxels likely wrong
    (:func:`wrong_chance` above ``WRONG``), its ``doubt`` the expected wrong voxels it holds, what a
    stroke there may fix (the loop's user paints the largest wrong region of the box)."""
    return plane_doubt(wrong_chance(proba, prior_labels, outline_trust), WRONG)


def near_miss(proba: np.ndarray, cls: int) -> PlaneDoubt | None:
    """Where a plane's model most likely misses class ``cls`` altogether: of the connected regions
    of voxels it labels otherwise whose probability of ``cls`` still exceeds ``WRONG``, those that
    touch no voxel labelled ``cls`` (the rim around a region the model does call ``cls`` is its
    outline's doubt, which :func:`plane_worst` ranks), the one holding the most of that probability
    (its ``doubt``: the expected voxels of ``cls`` labelled otherwise there); None where there is none.
    Why: with a class painted on a handful of voxels, the doubt of :func:`plane_worst` points mostly
    at the other class's voxels (false structure on tube-like grey), and a correct dab of the
    plentiful class there teaches "this grey is not the class" everywhere; a near miss asks for an
    example of the scarce class where the model half sees one. Painted voxels hold their class
    (probability 0 of any other), so they are never a near miss."""
    proba = np.asarray(proba, np.float32)
    chance = proba[..., cls]
    labels = np.argmax(proba, axis=-1)
    pieces, n = ndi.label((labels != cls) & (chance > WRONG))
    if n == 0:
        return None
    rims = np.unique(pieces[ndi.binary_dilation(labels == cls, np.ones((3, 3), bool))])
    alone = np.isin(pieces, rims[rims > 0], invert=True) & (pieces > 0)
    return plane_doubt(np.where(alone, chance, 0.0).astype(np.float32), 0.0) if alone.any() else None
