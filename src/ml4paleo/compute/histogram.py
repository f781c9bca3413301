"""Histogram of a volume's raw values, accumulated block by block, numpy in, numpy out.

Why: the display window of a 16-bit scan is chosen on the raw values (bone and matrix may be a
few dozen grey values apart), so the page needs to see where the values lie. The volume is
never in memory whole: the caller feeds blocks to :class:`Histogram` and asks for the counts.

Integers of at most 16 bits are counted exactly, one counter per value (65,536 at most), so a
single pass suffices; other types need their range first (:func:`value_range` over the
blocks) and are counted in :data:`FINE_BINS` equal bins of it. Either is then grouped into at
most ``bins`` bins for display, integer values never split between two bins.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from ml4paleo.errors import InputError

__all__ = ["FINE_BINS", "Histogram", "exact_counting", "value_range"]

FINE_BINS = 4096
"""Bins of the first count of a float (or wide integer) volume, before grouping for display."""


def exact_counting(dtype: np.dtype) -> bool:
    """Whether values of ``dtype`` are counted one counter per value (integers of <= 16 bits)."""
    dtype = np.dtype(dtype)
    return dtype.kind in "uib" and dtype.itemsize <= 2


def value_range(blocks: Iterable[np.ndarray]) -> tuple[float, float]:
    """(min, max) over finite values of ``blocks`` ((0, 0) when there are none)."""
    lo, hi = np.inf, -np.inf
    for block in blocks:
        block = np.asarray(block)
        if block.dtype.kind == "f":
            block = block[np.isfinite(block)]
        if block.size:
            lo, hi = min(lo, float(block.min())), max(hi, float(block.max()))
    return (0.0, 0.0) if lo > hi else (lo, hi)


class Histogram:
    """Counts of the values of blocks of one dtype.

    ``value_range``: (min, max) of the values, needed unless :func:`exact_counting` holds."""

    def __init__(self, dtype: np.dtype, value_range: tuple[float, float] | None = None) -> None:
        self.dtype = np.dtype(dtype)
        self.exact = exact_counting(self.dtype)
        if self.exact:
            info = np.iinfo(self.dtype) if self.dtype.kind != "b" else None
            self.offset = int(info.min) if info else 0
            self.counts = np.zeros(int(info.max) - int(info.min) + 1 if info else 2, np.int64)
        else:
            if value_range is None:
                raise InputError(f"a histogram of {self.dtype} values needs their range first")
            lo, hi = (float(v) for v in value_range)
            self.edges = np.linspace(lo, hi if hi > lo else lo + 1.0, FINE_BINS + 1)
            self.counts = np.zeros(FINE_BINS, np.int64)

    def add(self, block: np.ndarray) -> None:
        """Count the values of ``block`` (any shape)."""
        block = np.asarray(block)
        if self.exact:
            flat = block.ravel()
            if self.offset:
                flat = np.subtract(flat, self.offset, dtype=np.int64)
            self.counts += np.bincount(flat, minlength=self.counts.size)
        else:
            flat = block.ravel()
            if flat.dtype.kind == "f":
                flat = flat[np.isfinite(flat)]
            self.counts += np.histogram(flat, bins=self.edges)[0]

    def result(self, bins: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """(edges, counts) over the values seen, in at most ``bins`` bins: ``edges`` has one
        more entry than ``counts``; bin i holds values in [edges[i], edges[i+1]) (for floats
        the last bin also its upper edge). Integers: each bin holds a whole number of values,
        and the last edge is the maximum + 1."""
        if bins < 1:
            raise InputError(f"bins must be a positive number; got {bins}")
        seen = np.flatnonzero(self.counts)
        if seen.size == 0:
            return np.array([0.0, 1.0]), np.zeros(1, np.int64)
        first, last = int(seen[0]), int(seen[-1]) + 1
        counts = self.counts[first:last]
        group = -(-counts.size // bins)
        padded = np.zeros(-(-counts.size // group) * group, np.int64)
        padded[: counts.size] = counts
        grouped = padded.reshape(-1, group).sum(axis=1)
        if self.exact:
            edges = self.offset + first + group * np.arange(grouped.size + 1, dtype=np.float64)
            edges[-1] = min(edges[-1], self.offset + last)
        else:
            fine = self.edges[first:last + 1]
            edges = np.append(fine[::group], fine[-1]) if (fine.size - 1) % group else fine[::group]
        return edges.astype(np.float64), grouped
