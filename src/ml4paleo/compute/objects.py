"""Objects of a segmentation: connected pieces of a class, touching ones split at their necks.

An *object* is a face-connected piece of one class. :func:`split_object` cuts a piece of touching
bodies with a **distance-transform watershed whose markers are the h-maxima of the distance map**
(physical units, so anisotropic voxels are measured as they are): two bodies of inscribed radii
``R1 <= R2`` joined by a neck of radius ``r`` are split when ``R1 - r > h``, so the one knob ``h``
is a length: *how much thinner than the smaller body a neck must be to cut there*. h-maxima rather
than peaks at a minimum spacing, because a depth does not over-split an elongated body nor depend
on how close two centres are (docs/objects.md, "Splitting touching objects", for the default and why).

A split depends only on the voxels of its piece (padded with background), so splitting piece by
piece gives the same objects as one pass over the whole volume (:func:`objects_whole`), which the
chunked pipeline relies on.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import local_maxima, reconstruction
from skimage.segmentation import watershed

from ml4paleo.errors import InputError

__all__ = ["DEFAULT_H_VOXELS", "SPLIT_MODES", "check_mask", "check_spacing", "default_h", "distance_map", "label_pieces", "number_by_first",
           "objects_whole", "seeded_split", "split_object"]

SPLIT_MODES = ("none", "auto")
DEFAULT_H_VOXELS = 1.5
"""Default ``h`` of :func:`split_object`, in units of the smallest voxel edge."""
FACES = ndi.generate_binary_structure(3, 1)
"""Face connectivity: the pieces of :mod:`ml4paleo.compute.components`."""
FULL = ndi.generate_binary_structure(3, 3)
"""A marker's plateau may touch itself at a corner and is still one marker."""


def default_h(voxel_size: Sequence[float]) -> float:
    """:data:`DEFAULT_H_VOXELS` times the smallest voxel edge (physical units)."""
    return DEFAULT_H_VOXELS * min(float(v) for v in voxel_size)


def check_mask(mask: np.ndarray, name: str = "mask") -> np.ndarray:
    """``mask`` as a 3D boolean array; InputError naming ``name`` otherwise."""
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise InputError(f"{name} must be a 3D (z, y, x) array; got {mask.ndim}D")
    return mask.astype(bool, copy=False)


def check_spacing(voxel_size: Sequence[float]) -> tuple[float, float, float]:
    """``voxel_size`` as the three positive spacings (z, y, x) the distance maps take."""
    vs = tuple(float(v) for v in voxel_size)
    if len(vs) != 3 or not all(v > 0 and np.isfinite(v) for v in vs):
        raise InputError(f"voxel_size must be three positive numbers (z, y, x); got {voxel_size!r}")
    return vs  # type: ignore[return-value]


def distance_map(mask: np.ndarray, voxel_size: Sequence[float]) -> np.ndarray:
    """float32 distance (physical units) from each voxel of ``mask`` to the nearest voxel
    outside it, the volume's border counting as outside (the mask is padded by one voxel)."""
    mask = check_mask(mask)
    d = ndi.distance_transform_edt(np.pad(mask, 1), sampling=check_spacing(voxel_size))
    return d[1:-1, 1:-1, 1:-1].astype(np.float32)


def number_by_first(parts: np.ndarray) -> np.ndarray:
    """Renumber the nonzero values of ``parts`` 1..k in the (z, y, x) raster order of their first
    voxel, so numbering never depends on how parts were found (uint32)."""
    flat = parts.ravel()
    nz = np.flatnonzero(flat)
    if not len(nz):
        return np.zeros(parts.shape, np.uint32)
    values, first = np.unique(flat[nz], return_index=True)
    order = np.argsort(nz[first], kind="stable")
    table = np.zeros(int(values.max()) + 1, np.uint32)
    table[values[order]] = np.arange(1, len(values) + 1, dtype=np.uint32)
    return table[parts]


def _h_maxima(d: np.ndarray, h: float) -> np.ndarray:
    """The regional maxima of the h-maxima transform (``d - h`` reconstructed by dilation under
    ``d``): a plateau per maximum of dynamic above ``h``. Not :func:`skimage.morphology.h_maxima`,
    which keeps the *tops* of maxima (``d - rec >= h``) and so marks two equal peaks joined by a
    shallow saddle twice, splitting what ``h`` should keep whole."""
    rec = reconstruction(d - np.float32(h), d, method="dilation")
    return local_maxima(rec, connectivity=3, allow_borders=True)


def split_object(mask: np.ndarray, voxel_size: Sequence[float], h: float | None = None) -> np.ndarray:
    """Parts of one piece (a connected ``mask``): uint32, 0 outside, 1..k numbered by first voxel.

    ``h``: minimum depth of a neck, in the unit of ``voxel_size`` (default :func:`default_h`);
    see the module docstring. One part (the whole mask) when no neck is deep enough.
    """
    mask = check_mask(mask)
    vs = check_spacing(voxel_size)
    h = default_h(vs) if h is None else float(h)
    if not h > 0:
        raise InputError(f"h must be a positive length (the volume's unit); got {h!r}")
    if not mask.any():
        return np.zeros(mask.shape, np.uint32)
    d = distance_map(mask, vs)
    if ndi.label(local_maxima(d, connectivity=3, allow_borders=True) & mask, structure=FULL)[1] <= 1:
        return mask.astype(np.uint32)  # one maximum: one body whatever h (and 30x cheaper than the transform)
    markers, n = ndi.label(_h_maxima(d, h) & mask, structure=FULL)
    if n <= 1:
        return mask.astype(np.uint32)
    parts = watershed(-d, markers, mask=mask, connectivity=1)
    return number_by_first(parts)


def _climb(d: np.ndarray, start: tuple[int, ...]) -> tuple[int, ...]:
    """From ``start``, step to the highest of the 26 neighbours while it is higher: the top of
    the body the voxel lies in (a plateau stops the climb)."""
    here = tuple(int(v) for v in start)
    while True:
        box = tuple(slice(max(0, c - 1), c + 2) for c in here)
        block = d[box]
        best = np.unravel_index(int(np.argmax(block)), block.shape)
        if block[best] <= d[here]:
            return here
        here = tuple(int(b + s.start) for b, s in zip(best, box))


def seeded_split(mask: np.ndarray, seeds: np.ndarray, voxel_size: Sequence[float]) -> np.ndarray:
    """Split one object with the user's strokes: ``seeds`` (same shape, 0 = none, each other
    value one part) flood ``-distance`` inside ``mask`` only; uint32 parts numbered by seed value
    order (the smallest value is part 1). Every voxel of ``mask`` reachable from a seed gets a
    part; a stray bit of the mask that no seed reaches joins part 1.

    A click lies anywhere in its body, often near its surface, where the distance is small: a
    flood from there would lose the body to a seed placed nearer a centre, which reaches it first
    through the neck. So each part's deepest stroke voxel is climbed up the distance map to the
    top of its body, and that top seeds the part too (unless two parts climb to the same top: one
    body cut in two, where the strokes alone decide).
    """
    mask = check_mask(mask)
    seeds = np.asarray(seeds)
    if seeds.shape != mask.shape:
        raise InputError(f"seeds must have the mask's shape {mask.shape}; got {seeds.shape}")
    inside = np.where(mask, seeds, 0)
    values = np.unique(inside[inside > 0])
    if len(values) < 2:
        raise InputError(f"a split needs strokes of at least two parts inside the object; got {len(values)}")
    markers = np.searchsorted(values, inside).astype(np.int32) + 1
    markers[inside == 0] = 0
    d = distance_map(mask, voxel_size)
    tops = {}
    for k in range(1, len(values) + 1):
        where = np.flatnonzero((markers == k).ravel())
        deepest = where[np.argmax(d.ravel()[where])]
        tops[k] = _climb(d, np.unravel_index(int(deepest), d.shape))
    if len(set(tops.values())) == len(tops):
        for k, top in tops.items():
            markers[top] = k
    parts = watershed(-d, markers, mask=mask, connectivity=1).astype(np.uint32)
    parts[mask & (parts == 0)] = 1
    return parts


def label_pieces(labels: np.ndarray, classes: Sequence[int], min_size: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Face-connected pieces of the given ``classes`` of a label map, of at least ``min_size``
    voxels: (uint32 ids numbered by first voxel, class of each id ``i`` at index ``i - 1``)."""
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise InputError(f"labels must be a 3D (z, y, x) array; got {labels.ndim}D")
    ids = np.zeros(labels.shape, np.int64)
    total = 0
    for c in sorted({int(c) for c in classes if int(c) != 0}):
        mask = labels == c
        lab, n = ndi.label(mask, structure=FACES)
        if n:
            sizes = np.bincount(lab.ravel(), minlength=n + 1)
            keep = sizes >= max(1, int(min_size))
            keep[0] = False
            table = np.zeros(n + 1, np.int64)
            table[keep] = np.arange(1, int(keep.sum()) + 1) + total
            ids[mask] = table[lab[mask]]
            total += int(keep.sum())
    out = number_by_first(ids)
    classes_of = np.zeros(total, np.int64)
    classes_of[out[ids > 0] - 1] = labels[ids > 0]
    return out, classes_of


def objects_whole(labels: np.ndarray, classes: Sequence[int], voxel_size: Sequence[float], *, min_size: int = 0,
                  split: str = "auto", h: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The objects of a label map held in memory (the reference the chunked pipeline equals).

    Pieces of ``classes`` (at least ``min_size`` voxels) in the order of their first voxel, each
    split by :func:`split_object` when ``split == "auto"``; the parts of piece ``k`` follow those
    of pieces before it, in the order of their first voxel. Returns (uint32 object ids, class of
    object ``i`` at index ``i - 1``).
    """
    if split not in SPLIT_MODES:
        raise InputError(f"split must be one of {', '.join(SPLIT_MODES)}; got {split!r}")
    pieces, kinds = label_pieces(labels, classes, min_size)
    if split == "none":
        return pieces, kinds
    out = np.zeros(pieces.shape, np.uint32)
    out_kinds: list[int] = []
    next_id = 1
    for i, box in enumerate(ndi.find_objects(pieces)):
        if box is None:
            continue
        mask = pieces[box] == i + 1
        parts = split_object(mask, voxel_size, h)
        k = int(parts.max())
        region = out[box]
        region[mask] = parts[mask] + np.uint32(next_id - 1)
        out_kinds.extend([int(kinds[i])] * k)
        next_id += k
    return out, np.asarray(out_kinds, np.int64)
