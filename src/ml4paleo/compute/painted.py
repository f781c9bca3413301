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

__all__ = ["PaintedPlane", "keep_painted", "keep_painted_on_grid"]

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
        at: list = [slice(None)] * 3
        at[axis] = index - start[axis]
        _paint(values[tuple(at)], window, one_hot=values.ndim == 4)  # a view: writes land in ``values``
    return values


def _paint(target: np.ndarray, window: np.ndarray, one_hot: bool) -> None:
    """Set ``target``'s painted voxels (``window`` > 0) to their class in place: an index, or a
    one-hot row of probabilities."""
    painted = window > 0
    if not painted.any():
        return
    classes = window[painted].astype(np.intp) - 1
    target[painted] = np.eye(target.shape[-1], dtype=target.dtype)[classes] if one_hot else classes


def keep_painted_on_grid(values: np.ndarray, planes: Iterable[PaintedPlane], axis: int, index: int,
                         rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``values`` of plane ``index`` across ``axis`` sampled at the full-resolution ``rows`` and
    ``cols`` (a pyramid level's grid, :mod:`ml4paleo.compute.coarse`): (u, v) class indices or
    (u, v, K) probabilities, set in place to the painted class on every sampled painted voxel;
    returned. With every row and column sampled it equals :func:`keep_painted` on the plane."""
    rows, cols = np.asarray(rows, np.intp), np.asarray(cols, np.intp)
    u_axis, v_axis = (a for a in range(3) if a != axis)
    for p_axis, p_index, mask in planes:
        if p_axis == axis:
            if p_index != index:
                continue
            window = mask[np.ix_(rows, cols)]
            target = values
        else:  # a plane across the stack crossing this one: a painted line, where it is sampled
            hit = np.flatnonzero((rows if p_axis == u_axis else cols) == p_index)
            if hit.size == 0:
                continue
            # the painted plane's own two axes, in order: this plane's axis and the other one
            along = cols if p_axis == u_axis else rows
            line = mask[index, along] if axis < (v_axis if p_axis == u_axis else u_axis) else mask[along, index]
            window = line[None, :] if p_axis == u_axis else line[:, None]
            target = values[hit[0]:hit[0] + 1] if p_axis == u_axis else values[:, hit[0]:hit[0] + 1]
        _paint(target, window, one_hot=values.ndim == 3)
    return values
