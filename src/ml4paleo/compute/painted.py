"""Painted voxels are law: a prediction takes the painted class wherever the user painted.

Why: a user who paints a voxel and sees the segmentation disagree there stops trusting every
other voxel. Whatever the method (a forest may outvote a few painted rows, the interpolated
outlines pass beside a stroke), the painted voxels of the annotations a model was trained on
override its answer in every region predicted: segmentation blocks, previews, planes across the
stack. Numpy in, numpy out; the model folder keeps the planes (``painted.npz``).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

__all__ = ["PaintedPlane", "keep_painted"]

PaintedPlane = tuple[int, int, np.ndarray]
"""(axis 0/1/2, index, mask): a painted plane across ``axis``, 0 unlabeled, 1..K the classes
(annotation values), in the plane's own two axes."""


def keep_painted(values: np.ndarray, planes: Iterable[PaintedPlane], start: Sequence[int],
                 stop: Sequence[int]) -> np.ndarray:
    """``values`` of region ``start:stop``, (z, y, x) class indices or (z, y, x, K) probabilities,
    set in place to the painted class on every painted voxel inside the region; returned."""
    for axis, index, mask in planes:
        if not start[axis] <= index < stop[axis]:
            continue
        rest = [a for a in range(3) if a != axis]
        window = mask[start[rest[0]]:stop[rest[0]], start[rest[1]]:stop[rest[1]]]
        painted = window > 0
        if not painted.any():
            continue
        at: list = [slice(None)] * 3
        at[axis] = index - start[axis]
        plane = values[tuple(at)]  # a view: writes land in ``values``
        classes = window[painted].astype(np.intp) - 1
        if values.ndim == 4:
            plane[painted] = np.eye(values.shape[-1], dtype=values.dtype)[classes]
        else:
            plane[painted] = classes
    return values
