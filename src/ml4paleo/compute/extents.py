"""Where each label lies: inclusive voxel bounds per label value, gathered slab by slab.

A Slicer segmentation's header names every segment's extent before the voxels, so an export
makes one pass over the label map for them first; this is that pass's arithmetic.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ml4paleo.errors import InputError

__all__ = ["Bounds", "label_bounds", "merge_bounds"]

Bounds = tuple[int, int, int, int, int, int]
"""Inclusive ``(x0, x1, y0, y1, z0, z1)``, the order Slicer's ``Segment{i}_Extent`` uses."""


def label_bounds(slab: np.ndarray, z0: int = 0) -> dict[int, Bounds]:
    """Bounds of every label > 0 present in the (z, y, x) ``slab``, whose first plane is z0."""
    if slab.size == 0 or not np.any(slab > 0):
        return {}
    if slab.dtype.kind not in "ui" or int(slab.min()) < 0:
        raise InputError(f"label maps hold non-negative integers; got {slab.dtype} with negative values")
    out: dict[int, Bounds] = {}
    for i, sl in enumerate(ndimage.find_objects(slab), start=1):
        if sl is not None:
            z, y, x = sl
            out[i] = (x.start, x.stop - 1, y.start, y.stop - 1, z0 + z.start, z0 + z.stop - 1)
    return out


def merge_bounds(into: dict[int, Bounds], more: dict[int, Bounds]) -> dict[int, Bounds]:
    """``into`` grown by ``more`` (in place; returned for chaining)."""
    for label, b in more.items():
        a = into.get(label)
        into[label] = b if a is None else (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]),
                                           min(a[4], b[4]), max(a[5], b[5]))
    return into
