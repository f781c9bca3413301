"""Clean-up of a label volume (pure numpy): the three options paleontologists ask for.

Labels are class indices, 0 = background, 1..K-1 = structures; each option acts on every
structure class separately (face connectivity, 6-neighbourhood in 3D) and never on background:

* :func:`remove_small_components` sets components smaller than ``min_size`` voxels to background;
* :func:`fill_holes` gives background voxels fully enclosed by one class that class;
* :func:`keep_largest` keeps only the largest component of each class.

These need the connectivity of the whole volume, so none is chunk-safe as it stands:
:mod:`ml4paleo.compute.components` computes the same result block by block (components per
block merged across block faces), which the segmentation pipeline uses at any size (see
``pipelines/postprocess.py``); these functions remain the definition it is tested against.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ml4paleo.errors import InputError

__all__ = ["fill_holes", "keep_largest", "postprocess", "remove_small_components"]


def _check(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise InputError(f"labels must be an integer array of class indices; got dtype {labels.dtype}")
    return labels


def _classes(labels: np.ndarray) -> list[int]:
    return [int(c) for c in np.unique(labels) if c != 0]


def remove_small_components(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Copy of ``labels`` without the components of each class smaller than ``min_size`` voxels."""
    labels = _check(labels)
    if min_size < 0:
        raise InputError(f"min_size must be >= 0; got {min_size}")
    out = labels.copy()
    if min_size <= 1:
        return out
    for c in _classes(labels):
        comp, n = ndi.label(labels == c)
        sizes = np.bincount(comp.ravel(), minlength=n + 1)
        small = sizes < min_size
        small[0] = False
        out[small[comp]] = 0
    return out


def fill_holes(labels: np.ndarray) -> np.ndarray:
    """Copy of ``labels`` where background enclosed by a class (in 3D) becomes that class."""
    labels = _check(labels)
    out = labels.copy()
    for c in _classes(labels):
        mask = labels == c
        holes = ndi.binary_fill_holes(mask) & ~mask & (out == 0)
        out[holes] = c
    return out


def keep_largest(labels: np.ndarray) -> np.ndarray:
    """Copy of ``labels`` keeping only the largest component of each class."""
    labels = _check(labels)
    out = labels.copy()
    for c in _classes(labels):
        comp, n = ndi.label(labels == c)
        if n <= 1:
            continue
        sizes = np.bincount(comp.ravel(), minlength=n + 1)
        sizes[0] = 0
        drop = np.ones(n + 1, dtype=bool)
        drop[0] = False
        drop[int(np.argmax(sizes))] = False
        out[drop[comp]] = 0
    return out


def postprocess(labels: np.ndarray, *, min_size: int = 0, fill: bool = False, largest: bool = False) -> np.ndarray:
    """Apply the options in a fixed order: remove small components, fill holes, keep largest."""
    if min_size < 0:
        raise InputError(f"min_size must be >= 0; got {min_size}")
    out = _check(labels)
    if min_size > 1:
        out = remove_small_components(out, min_size)
    if fill:
        out = fill_holes(out)
    if largest:
        out = keep_largest(out)
    return out if out is not labels else labels.copy()
