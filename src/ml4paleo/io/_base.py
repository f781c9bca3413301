"""What every volume reader offers, and the small pure-numpy helpers readers share."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence, TypeVar

import numpy as np

T = TypeVar("T")


class VolumeReader:
    """A scan opened for slab-by-slab reading, axes (z, y, x).

    Attributes describe the whole volume without reading voxels; :meth:`read` returns slices
    ``z0 .. z1`` only, so a caller's memory is bounded by the slab it asks for.
    ``voxel_size`` is None when the files do not say (the caller picks a default).
    """

    shape: tuple[int, int, int]
    dtype: np.dtype
    voxel_size: tuple[float, float, float] | None = None
    voxel_size_source: str | None = None
    unit: str | None = None
    source_kind: str = ""
    n_files: int = 0

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self._pool: ThreadPoolExecutor | None = None
        self._on_close: list[Callable[[], None]] = []

    def read(self, z0: int, z1: int) -> np.ndarray:
        raise NotImplementedError

    def _map(self, func: Callable[[int], T], items: Sequence[int]) -> list[T]:
        """``func`` over ``items`` on a small thread pool (decoders release the GIL), in order;
        the first failure in order is raised."""
        if len(items) <= 1:
            return [func(i) for i in items]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="ml4paleo-read")
        return list(self._pool.map(func, items))

    def close(self) -> None:
        """Stop the decoding threads and release files (also temporary ones)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        while self._on_close:
            self._on_close.pop()()

    def __enter__(self) -> "VolumeReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


LUMA = (0.299, 0.587, 0.114)
"""ITU-R BT.601 weights, the ones Pillow's ``convert("L")`` uses."""


def to_gray(img: np.ndarray) -> tuple[np.ndarray, str | None]:
    """A 2D/3D image with a trailing channel axis (2, 3 or 4 samples) to one channel.

    Returns (gray, note): RGB(A) becomes luminance in the same dtype (rounded for integers),
    gray+alpha drops alpha; an RGB image whose channels are equal keeps them exactly. ``note``
    says what was done (for a warning), None when nothing was lost.
    """
    channels = img.shape[-1]
    if channels == 2:
        return np.ascontiguousarray(img[..., 0]), "alpha channel dropped"
    if channels not in (3, 4):
        raise ValueError(f"expected 2, 3 or 4 samples per pixel, got {channels}")
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    if np.array_equal(r, g) and np.array_equal(r, b):
        return np.ascontiguousarray(r), ("alpha channel dropped" if channels == 4 else None)
    acc = r.astype(np.float32) * LUMA[0]
    acc += g.astype(np.float32) * LUMA[1]
    acc += b.astype(np.float32) * LUMA[2]
    if np.issubdtype(img.dtype, np.integer):
        info = np.iinfo(img.dtype)
        acc = np.clip(np.rint(acc), info.min, info.max)
    return acc.astype(img.dtype), "RGB converted to grayscale (luminance)"
