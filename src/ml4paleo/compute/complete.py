"""Complete a slice painted with strokes into a full mask of that slice, numpy in, numpy out.

Why: most users paint strokes, while the shape prior (:mod:`ml4paleo.compute.prior`) needs every
voxel of a painted slice. A 2D random walker (scikit-image) seeded by the strokes fills the rest,
walks crossing the image's edges (and a classifier's, when given) being unlikely; where the image
has no edge, the geometry of the strokes decides. A slice with strokes of one class only (a
correction) says "this class here", not where the others are, so :func:`correct_slice` takes the
prior's own answer on that plane and corrects it near the strokes only (within ``LOCAL_REACH``
times a stroke's depth): a stroke inside an outline erodes it until the stroke lies outside, a
stroke outside grows the nearest outline of its class over it. A uniform correction was tried
and dropped (docs/decisions.md). The corrected slice enters the prior as any painted one.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from scipy import ndimage as ndi
from skimage.graph import MCP_Geometric
from skimage.segmentation import random_walker

from ml4paleo.errors import InputError

__all__ = ["COMPLETE_FRACTION", "complete_slice", "completable", "correct_slice", "near_outline", "outline_slices",
           "supported"]

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


BRACKET = 8.0
BRACKET_SHARE = 0.01
"""Strokes of two classes bracket an outline when they come within ``max(BRACKET voxels,
BRACKET_SHARE of the plane's diagonal)`` of each other somewhere (a brush on either side of a
boundary); farther apart they say "this is wrong here" twice, not where the outline runs."""


def brackets_an_outline(mask: np.ndarray) -> bool:
    """Whether a slice's strokes (0 unlabeled, 1..K) of two classes lie close enough to each other
    somewhere to tell where an outline runs between them (see ``BRACKET``)."""
    mask = np.asarray(mask)
    values = np.unique(mask[mask > 0])
    if values.size < 2:
        return False
    reach = max(BRACKET, BRACKET_SHARE * float(np.hypot(*mask.shape)))
    for value in values[:-1]:
        apart = ndi.distance_transform_edt(mask != value)
        if float(apart[(mask > 0) & (mask != value)].min()) <= reach:
            return True
    return False


def outline_slices(masks: Mapping[Any, np.ndarray]) -> set[Any]:
    """The painted slices whose outlines the shape prior interpolates (the walker completes them):
    those painted in full, and those whose strokes of two classes bracket an outline
    (:func:`brackets_an_outline`). The others correct the prior's answer on their plane near
    their strokes (:func:`correct_slice`): two far-apart dabs of two classes on a plane across
    the stack, completed by the walker, would reshape the prior along the whole plane from a
    guess. With no slice of outlines, every slice with two classes counts (a first model)."""
    two = {key for key, mask in masks.items() if completable(mask)}
    sure = {key for key in two
            if (np.asarray(masks[key]) > 0).mean() >= COMPLETE_FRACTION or brackets_an_outline(masks[key])}
    return sure or two


def _normalised(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, np.float32)
    lo, hi = np.percentile(image, (1.0, 99.0))
    spread = float(hi - lo) or 1.0
    return (image - float(lo)) / spread


def complete_slice(image: np.ndarray, strokes: np.ndarray, proba: np.ndarray | None = None,
                   beta: float = BETA, *, supported_only: bool = False) -> np.ndarray:
    """(y, x) uint8 full mask (values 1..K) of a slice from its ``strokes`` (0 unlabeled,
    1..K) and ``image``; painted voxels keep their value. ``proba``: optional (y, x, K)
    classifier probabilities whose edges guide the walk as the image's do. With
    ``supported_only``, voxels nothing supports are left 0 (see :func:`supported`): what a
    person is offered to accept, where training needs every voxel."""
    full = _complete(image, strokes, proba, beta)
    if not supported_only:
        return full
    return np.where(supported(image, strokes, full, proba) | (np.asarray(strokes) > 0), full, 0).astype(np.uint8)


def _complete(image: np.ndarray, strokes: np.ndarray, proba: np.ndarray | None, beta: float) -> np.ndarray:
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


REACH = 0.12
MIN_REACH = 24.0
"""A stroke supports the voxels it reaches within this share of the plane's diagonal of flat
image, and at least ``MIN_REACH`` voxels (crossing an edge costs many voxels of travel, see
:func:`supported`)."""
EDGE = 3.0
"""An image step of this many times the slice's typical gradient costs as much as ``EDGE**2``
voxels of flat travel."""
MODEL_SURE = 0.8
"""A model probability at least this high supports (or, for another class, refutes) a voxel."""


def supported(image: np.ndarray, strokes: np.ndarray, full: np.ndarray, proba: np.ndarray | None = None) -> np.ndarray:
    """(y, x) bool: the voxels of the completion ``full`` that something supports. A voxel is
    supported by its class's strokes when the cheapest path to one of them is shorter than
    ``REACH`` of the plane's diagonal, a path's cost being its length plus a toll for every
    image edge it crosses (an edge ``EDGE`` times the typical gradient costs ``EDGE**2`` voxels):
    a walker assigns every voxel, even one behind an edge that no stroke reaches. With a
    model's ``proba`` (y, x, K), a confident model supports a voxel of its class beyond that
    reach, and refutes one of another class within it."""
    image = _normalised(image)
    strokes = np.asarray(strokes)
    gradient = ndi.gaussian_gradient_magnitude(image, 1.0)
    typical = float(np.median(gradient)) or 1.0
    cost = 1.0 + (gradient / (EDGE * typical)) ** 2
    reach = max(REACH * float(np.hypot(*image.shape)), MIN_REACH)
    out = np.zeros(strokes.shape, bool)
    for value in np.unique(strokes[strokes > 0]):
        travel, _ = MCP_Geometric(cost).find_costs(np.argwhere(strokes == value))
        out |= (full == value) & (travel <= reach)
    if proba is not None:
        proba = np.asarray(proba, np.float32)
        mine = np.take_along_axis(proba, (full.astype(np.intp) - 1)[..., None], axis=-1)[..., 0]
        out = (out | (mine >= MODEL_SURE)) & (mine > 1.0 - MODEL_SURE)
    return out


def _walk(data: np.ndarray, seeds: np.ndarray, beta: float) -> np.ndarray:
    """Random walker labels (every voxel set) of ``seeds`` over ``data`` (y, x, channels)."""
    seeds = np.asarray(seeds, np.int32)
    if (seeds > 0).all():
        return seeds
    values = np.unique(seeds[seeds > 0])
    if values.size == 1:
        return np.full(seeds.shape, values[0], np.int32)
    # only the unknown voxels and the seeds next to them enter the graph (negative labels are
    # inactive): the same linear system (a seed farther away touches no unknown voxel), without
    # the graph of the whole slice, whose memory grew with the slice (docs/benchmarks.md)
    active = ndi.binary_dilation(seeds == 0)  # the walker's edges join axis neighbours
    # the walker numbers the classes it is given 1..n in its answer: give it the classes that
    # touch the unknown voxels as 1..n and map them back (classes 1 and 3 of a slice, or a hole
    # that only one class surrounds, would otherwise come back as other classes)
    present = np.unique(seeds[active & (seeds > 0)])
    if present.size == 1:
        return np.where(seeds == 0, present[0], seeds).astype(np.int32)
    ranks = np.where(seeds > 0, np.searchsorted(present, seeds) + 1, 0)
    # the direct solver: on these sparse 2D systems it is many times faster than conjugate
    # gradients, whose iterations grow with the distance between strokes
    walked = random_walker(data, np.where(active, ranks, -1), beta=beta, mode="bf", channel_axis=-1)
    walked = np.asarray(walked, np.intp)
    out = np.where(walked > 0, present[np.clip(walked - 1, 0, present.size - 1)], 0).astype(np.int32)
    out = np.where(active, out, seeds)
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


LOCAL_REACH = 3.0
"""A local correction moves the outline within this many times the stroke's depth (how far the
outline had to move to clear or cover it) of the stroke."""
GROW_REACH = 0.25
"""A structure stroke outside every outline of its class grows the nearest one only when the
stroke lies within this share of the plane's smaller side from it; farther, the stroke is a new
piece of its own (growing a far outline that much would flood the matrix between them)."""


def correct_slice(labels: np.ndarray, strokes: np.ndarray, spacing: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """(u, v) uint8 class indices 0..K-1: ``labels`` (the prior's answer on a plane, class 0 the
    matrix) corrected near ``strokes`` (0 unlabeled, 1..K) painted on that plane, in physical
    ``spacing``; every painted voxel ends up its painted class (see the module docstring)."""
    labels = np.asarray(labels)
    strokes = np.asarray(strokes)
    if labels.shape != strokes.shape or labels.ndim != 2:
        raise InputError(f"strokes {strokes.shape} and labels {labels.shape} must be the same 2D shape")
    out = labels.astype(np.uint8)
    half = 0.5 * float(min(spacing))
    for value in np.unique(strokes[strokes > 0]):
        k = int(value) - 1
        painted = strokes == value
        for j in np.unique(out[painted & (out != k)]):
            if j != 0:
                _erode_under(out, painted, int(j), k, spacing, half)
        missed = painted & (out == 0)
        if k != 0 and missed.any():
            _grow_to(out, missed, k, spacing, half)
        out[painted] = k
    return out


def _near(painted: np.ndarray, spacing, reach: float) -> np.ndarray:
    """Where a correction of ``reach`` may move the outline: near the stroke."""
    return ndi.distance_transform_edt(~painted, sampling=spacing) <= LOCAL_REACH * reach


def _erode_under(out: np.ndarray, painted: np.ndarray, j: int, k: int, spacing, half: float) -> None:
    """Erode each outline of class ``j`` under the stroke until the stroke lies outside it; the
    voxels given up become class ``k`` (in place)."""
    pieces, _ = ndi.label(out == j)
    for piece in np.unique(pieces[painted]):
        if piece == 0:
            continue
        inside = pieces == piece
        depth = ndi.distance_transform_edt(np.pad(inside, 1), sampling=spacing)[1:-1, 1:-1]
        reach = float(depth[painted & inside].max()) + half
        out[inside & (depth <= reach) & _near(painted, spacing, reach)] = k


def _grow_to(out: np.ndarray, missed: np.ndarray, k: int, spacing, half: float) -> None:
    """Grow the outline of class ``k`` nearest the ``missed`` stroke voxels over the matrix until
    it covers them, or add the stroke alone when none is near enough (in place)."""
    pieces, n = ndi.label(out == k)
    if n == 0:
        return
    _, (iu, iv) = ndi.distance_transform_edt(pieces == 0, sampling=spacing, return_indices=True)
    nearest = pieces[iu, iv]
    target = int(np.bincount(nearest[missed]).argmax())
    own = ndi.distance_transform_edt(pieces != target, sampling=spacing)
    reach = float(own[missed].max()) + half
    limit = GROW_REACH * min(s * n for s, n in zip(spacing, out.shape))
    if reach <= limit:
        out[(own <= reach) & (out == 0) & _near(missed, spacing, reach)] = k
