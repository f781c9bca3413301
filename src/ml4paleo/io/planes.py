"""Whole z planes of a volume kept in memory between previews of nearby slices.

A one-slice preview reads its slice plus the feature halo (~75 planes each side with the
default bank) from the OME-Zarr volume: 151 planes of a 512^2 scan decompressed for every new
slice (0.4-1.1 s of a ~1-4.5 s preview, measured on the loaded 2-core machine), though the
slice the user looks at next shares almost all of them. :func:`cached_planes` wraps the
volume's full-resolution array in a :class:`PlaneCache` view: it reads the planes a region
needs in one call per run of missing planes and keeps them (this process, least recently used
first out, within :data:`PLANE_CACHE_BYTES`), so the next preview reads memory. A region that
alone needs more planes than the budget holds is read from the volume directly (a slice of a
2048^2 scan: ~1.2 GB of halo), so the cache never thrashes nor grows past its budget.

Planes are keyed by the volume's path and modification stamp: a rewritten volume is read anew.
"""

from __future__ import annotations

import collections
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ml4paleo.io.omezarr import open_level

__all__ = ["PLANE_CACHE_BYTES", "PlaneCache", "cached_planes", "clear_planes"]

PLANE_CACHE_BYTES = 256 << 20
"""Raw planes kept per process (a 200 x 512^2 uint16 scan is 100 MB: all of it)."""

_planes: "collections.OrderedDict[tuple[Any, ...], np.ndarray]" = collections.OrderedDict()
_bytes = [0]
_lock = threading.Lock()


def clear_planes() -> None:
    """Forget every cached plane."""
    with _lock:
        _planes.clear()
        _bytes[0] = 0


def _z_range(key: Any, depth: int) -> tuple[int, int, tuple[Any, ...]]:
    """(z0, z1, the (y, x) index) of a 3-tuple of unit-step slices; anything else raises."""
    if not isinstance(key, tuple) or len(key) != 3 or not all(isinstance(k, slice) for k in key):
        raise TypeError(f"a PlaneCache is indexed by three slices; got {key!r}")
    z0, z1, step = key[0].indices(depth)
    if step != 1:
        raise TypeError("a PlaneCache reads unit-step z ranges only")
    return z0, max(z0, z1), key[1:]


class PlaneCache:
    """A read-only view of a (z, y, x) array (zarr or numpy) whose z planes are kept in this
    process's plane cache; indexed like the array with three slices (what
    :func:`ml4paleo.compute.regions.read_padded` does)."""

    def __init__(self, array: Any, key: tuple[Any, ...], max_bytes: int = PLANE_CACHE_BYTES) -> None:
        self.array, self.key, self.max_bytes = array, key, int(max_bytes)
        self.shape: tuple[int, ...] = tuple(array.shape)
        self.dtype = np.dtype(array.dtype)
        self.plane_bytes = int(np.prod(self.shape[1:])) * self.dtype.itemsize

    def __getitem__(self, key: Any) -> np.ndarray:
        z0, z1, yx = _z_range(key, self.shape[0])
        if z1 == z0 or (z1 - z0) * self.plane_bytes > self.max_bytes:  # nothing, or would evict itself: read through
            return np.asarray(self.array[key])
        with _lock:  # one reader loads a run; a concurrent tile of the same slice then hits
            planes = [self._plane(z) for z in range(z0, z1)]
            missing = [z for z, p in zip(range(z0, z1), planes) if p is None]
            for a, b in _runs(missing):
                block = np.asarray(self.array[a:b])
                for z in range(a, b):
                    planes[z - z0] = self._keep(z, block[z - a])
            self._evict()
        return np.stack([p[yx] for p in planes])

    def _plane(self, z: int) -> np.ndarray | None:
        plane = _planes.get((*self.key, z))
        if plane is not None:
            _planes.move_to_end((*self.key, z))
        return plane

    def _keep(self, z: int, plane: np.ndarray) -> np.ndarray:
        plane = np.array(plane)  # its own buffer: a view would pin the whole block read
        plane.flags.writeable = False
        _planes[(*self.key, z)] = plane
        _bytes[0] += plane.nbytes
        return plane

    def _evict(self) -> None:
        while _bytes[0] > self.max_bytes and _planes:
            _, plane = _planes.popitem(last=False)
            _bytes[0] -= plane.nbytes


def _runs(zs: list[int]) -> list[tuple[int, int]]:
    """Sorted indices as (start, stop) runs of consecutive values."""
    runs: list[tuple[int, int]] = []
    for z in zs:
        if runs and runs[-1][1] == z:
            runs[-1] = (runs[-1][0], z + 1)
        else:
            runs.append((z, z + 1))
    return runs


def cached_planes(volume_path: str | Path, stamp: int, max_bytes: int = PLANE_CACHE_BYTES, *,
                  level: int = 0) -> PlaneCache:
    """Pyramid ``level`` (default: full resolution) of the OME-Zarr volume at ``volume_path``
    through the plane cache; ``stamp`` (e.g. :func:`ml4paleo.pipelines.preview.volume_stamp`)
    tells versions apart. A level's planes are 4^level times smaller, so a coarse preview's
    neighbours stay cached over a wider range of slices."""
    return PlaneCache(open_level(volume_path, level), (str(Path(volume_path).resolve()), int(stamp), int(level)),
                      max_bytes)
