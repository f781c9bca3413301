"""2x downsampling for image pyramids (pure numpy).

Images are averaged over 2x2x2 blocks (odd edges replicate their last plane, so the edge
voxel is not darkened by zero padding); labels take every second voxel, because averaging
class indices would invent classes that do not exist.
"""

from __future__ import annotations

import numpy as np


def pyramid_factors(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Per-axis factor for one pyramid step: 2 on every axis longer than 1."""
    return tuple(2 if n > 1 else 1 for n in shape)


def downsample_mean(block: np.ndarray, factors: tuple[int, ...]) -> np.ndarray:
    """Mean over ``factors``-sized blocks, keeping the input dtype (rounded for integers)."""
    pad = [(0, (-n) % f) for n, f in zip(block.shape, factors)]
    if any(p[1] for p in pad):
        block = np.pad(block, pad, mode="edge")
    shape: list[int] = []
    for n, f in zip(block.shape, factors):
        shape += [n // f, f]
    acc = np.float32 if block.dtype.itemsize <= 2 else np.float64
    out = block.reshape(shape).mean(axis=tuple(range(1, 2 * block.ndim, 2)), dtype=acc)
    if np.issubdtype(block.dtype, np.integer):
        out = np.rint(out)
    return out.astype(block.dtype, copy=False)


def downsample_labels(block: np.ndarray, factors: tuple[int, ...]) -> np.ndarray:
    """Every ``factor``-th voxel (nearest neighbour): label values stay exact."""
    return np.ascontiguousarray(block[tuple(slice(None, None, f) for f in factors)])
