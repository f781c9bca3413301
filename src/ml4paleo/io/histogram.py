"""The histogram of a stored volume's raw values, read in blocks of bounded size.

The arithmetic is :mod:`ml4paleo.compute.histogram`; this module only walks the full-resolution
level of an OME-Zarr volume block by block (whole chunks along z and y, at most
:data:`BLOCK_VOXELS` voxels unless one chunk row is larger), so memory stays bounded whatever
the volume's size. Integers of <= 16 bits take one pass, other types two (range, then counts).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ml4paleo.compute.histogram import Histogram, exact_counting, value_range
from ml4paleo.io.omezarr import open_level

__all__ = ["BLOCK_VOXELS", "VolumeHistogram", "volume_histogram"]

BLOCK_VOXELS = 1 << 22
"""Voxels read at once: counting makes an int64 copy of a block (32 MB at this size)."""


@dataclass(frozen=True)
class VolumeHistogram:
    """Counts of a volume's raw values: bin i holds [edges[i], edges[i+1])."""

    dtype: str
    edges: list[float]
    counts: list[int]
    min: float
    max: float
    voxels: int


def _blocks(array) -> Iterator[np.ndarray]:
    depth, rows, cols = array.shape
    cz, cy = int(array.chunks[0]), int(array.chunks[1])
    if cz * rows * cols <= BLOCK_VOXELS:
        dz = max(cz, BLOCK_VOXELS // (rows * cols) // cz * cz)
        dy = rows
    else:
        dz = cz
        dy = max(cy, BLOCK_VOXELS // (cz * cols) // cy * cy)
    for z0 in range(0, depth, dz):
        for y0 in range(0, rows, dy):
            yield np.asarray(array[z0:z0 + dz, y0:y0 + dy])


def volume_histogram(volume: str | Path, bins: int = 256) -> VolumeHistogram:
    """The histogram of the full-resolution values of ``volume`` in at most ``bins`` bins."""
    array = open_level(volume, 0)
    dtype = np.dtype(array.dtype)
    span = None if exact_counting(dtype) else value_range(_blocks(array))
    counter = Histogram(dtype, span)
    for block in _blocks(array):
        counter.add(block)
    edges, counts = counter.result(bins)
    if span is None:
        seen = np.flatnonzero(counter.counts)
        span = (float(seen[0] + counter.offset), float(seen[-1] + counter.offset)) if seen.size else (0.0, 0.0)
    return VolumeHistogram(dtype=str(dtype), edges=[float(e) for e in edges], counts=[int(c) for c in counts],
                           min=float(span[0]), max=float(span[1]), voxels=int(counter.counts.sum()))
