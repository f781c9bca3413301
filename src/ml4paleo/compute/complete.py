"""Complete a slice painted with strokes into a full mask of that slice, numpy in, numpy out.

Why: most users paint strokes, not whole slices, while the shape prior
(:mod:`ml4paleo.compute.prior`) interpolates outlines and so needs every voxel of a painted
slice. A 2D random walker (scikit-image) seeded by the strokes fills the rest: each unpainted
voxel takes the class whose strokes a random walk from it reaches first, walks crossing the
image's edges (and, when given, the edges of a classifier's probabilities) being unlikely. Where
the image has no edge between the classes, the walker falls back to the geometry of the
strokes, which is what the user drew.

Which slices enter the prior: a slice painted (nearly) in full, or one with strokes of at least
two classes. A slice with strokes of one class only says "this is background here", not where
the other classes are (a user correcting a false positive paints one stroke), so it trains the
classifier but does not enter the prior.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import random_walker

from ml4paleo.errors import InputError

__all__ = ["COMPLETE_FRACTION", "complete_slice", "completable", "near_outline"]

COMPLETE_FRACTION = 0.995
"""A slice with at least this share of its voxels painted counts as painted in full (its few
unpainted voxels are still filled by the walker)."""
BETA = 130.0
"""Edge sensitivity of the walker (scikit-image's default) on data scaled to unit spread."""
COARSE_SIDE = 192
"""Larger slices are walked first on a block-averaged copy of at most this many voxels a side,
then again at full resolution only in a band around the coarse outlines (the rest seeded by
the coarse answer): the walk's cost grows faster than the slice's size."""


def completable(mask: np.ndarray) -> bool:
    """Whether a painted slice (0 unlabeled, 1..K classes) can enter the shape prior."""
    mask = np.asarray(mask)
    painted = mask > 0
    if painted.mean() >= COMPLETE_FRACTION:
        return True
    return np.unique(mask[painted]).size >= 2


def _normalised(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, np.float32)
    lo, hi = np.percentile(image, (1.0, 99.0))
    spread = float(hi - lo) or 1.0
    return (image - float(lo)) / spread


def complete_slice(image: np.ndarray, strokes: np.ndarray, proba: np.ndarray | None = None,
                   beta: float = BETA) -> np.ndarray:
    """(y, x) uint8 full mask (values 1..K) of a slice from its ``strokes`` (0 unlabeled,
    1..K) and ``image``; painted voxels keep their value. ``proba``: optional (y, x, K)
    classifier probabilities whose edges guide the walk as the image's do."""
    strokes = np.asarray(strokes)
    image = np.asarray(image)
    if strokes.shape != image.shape or strokes.ndim != 2:
        raise InputError(f"strokes {strokes.shape} and image {image.shape} must be the same 2D shape")
    painted = strokes > 0
    if painted.all():
        return strokes.astype(np.uint8)
    values = np.unique(strokes[painted])
    if values.size == 0:
        raise InputError("a slice without strokes cannot be completed")
    if values.size == 1:
        return np.full(strokes.shape, values[0], np.uint8)
    channels = [_normalised(image)]
    if proba is not None:
        proba = np.asarray(proba, np.float32)
        channels.extend(proba[..., k] for k in range(proba.shape[-1]))
    data = np.stack(channels, axis=-1)
    factor = -(-max(strokes.shape) // COARSE_SIDE)
    if factor > 1:
        coarse = _walk(_block_mean(data, factor), _block_strokes(strokes, factor, values), beta)
        guess = np.repeat(np.repeat(coarse, factor, axis=0), factor, axis=1)[: strokes.shape[0], : strokes.shape[1]]
        seeds = np.where(near_outline(guess, 2 * factor), 0, guess)
        seeds[painted] = strokes[painted]
    else:
        seeds = strokes.astype(np.int32)
    out = _walk(data, seeds, beta)
    out[painted] = strokes[painted]
    return out.astype(np.uint8)


def _walk(data: np.ndarray, seeds: np.ndarray, beta: float) -> np.ndarray:
    """Random walker labels (every voxel set) of ``seeds`` over ``data`` (y, x, channels)."""
    seeds = np.asarray(seeds, np.int32)
    if (seeds > 0).all():
        return seeds
    values = np.unique(seeds[seeds > 0])
    if values.size == 1:
        return np.full(seeds.shape, values[0], np.int32)
    # the direct solver: on these sparse 2D systems it is many times faster than conjugate
    # gradients, whose iterations grow with the distance between strokes
    out = np.asarray(random_walker(data, seeds, beta=beta, mode="bf", channel_axis=-1), np.int32)
    out[out <= 0] = values[0]  # voxels cut off from every stroke (none on a connected slice)
    return out


def _block_mean(data: np.ndarray, f: int) -> np.ndarray:
    Y, X = data.shape[:2]
    pad = ((0, -Y % f), (0, -X % f), (0, 0))
    padded = np.pad(data, pad, mode="edge")
    return padded.reshape(padded.shape[0] // f, f, padded.shape[1] // f, f, -1).mean(axis=(1, 3))


def _block_strokes(strokes: np.ndarray, f: int, values: np.ndarray) -> np.ndarray:
    """The most painted class of each ``f`` x ``f`` block (0 where none is painted)."""
    Y, X = strokes.shape
    padded = np.pad(strokes, ((0, -Y % f), (0, -X % f)))
    blocks = padded.reshape(padded.shape[0] // f, f, padded.shape[1] // f, f)
    counts = np.stack([(blocks == v).sum(axis=(1, 3)) for v in values])
    return np.where(counts.max(axis=0) > 0, values[np.argmax(counts, axis=0)], 0).astype(np.int32)


def near_outline(labels: np.ndarray, width: int) -> np.ndarray:
    """Voxels within ``width`` (taxicab) of a change of label."""
    edges = np.zeros(labels.shape, bool)
    edges[:-1] |= labels[:-1] != labels[1:]
    edges[1:] |= labels[:-1] != labels[1:]
    edges[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    edges[:, 1:] |= labels[:, :-1] != labels[:, 1:]
    return ndi.binary_dilation(edges, iterations=width) if edges.any() else edges
