"""Slices for the pages: reads of one slice or one small pyramid level of a stored volume,
never the whole full-resolution volume, and one slice rendered for display. The arithmetic on
those slices is :mod:`ml4paleo.compute.display`; PNG coding is :mod:`ml4paleo.io.png`.

Reading one plane decodes every chunk it crosses whole (64 planes of each): a slice switch
would decode 64 times what it shows. :class:`SlabCache` keeps the decoded row of chunks a plane
came from (this process, least recently used out first, within a byte budget:
:func:`set_slice_cache_bytes`, the setting ``slice_cache_mb``), so the next slices of that row
are copies from memory; a row larger than the budget is read through, never cached.
"""

from __future__ import annotations

import collections
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ml4paleo.compute import display
from ml4paleo.compute.display import robust_window
from ml4paleo.errors import ArtifactNotFound, InputError
from ml4paleo.io.omezarr import open_level, read_info
from ml4paleo.planes import AXES

WINDOW_SAMPLE_VOXELS = 1 << 24
"""Percentiles of the display window are taken on a pyramid level of at most this many voxels."""
SLICE_CACHE_BYTES = 256 << 20
"""Default budget of the decoded chunk rows kept for slice switches (the setting ``slice_cache_mb``)."""


class SlabCache:
    """Decoded rows of chunks (all chunks of an array that share a chunk index along one axis),
    keyed by volume, version, level, axis and row; at most ``max_bytes`` held."""

    def __init__(self, max_bytes: int = SLICE_CACHE_BYTES) -> None:
        self.max_bytes = int(max_bytes)
        self._slabs: "collections.OrderedDict[tuple, np.ndarray]" = collections.OrderedDict()
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(a.nbytes for a in self._slabs.values())

    def clear(self) -> None:
        with self._lock:
            self._slabs.clear()

    def plane(self, array: Any, key: tuple, axis: int, index: int) -> np.ndarray:
        """Plane ``index`` across ``axis`` of ``array`` (zarr or numpy), from the cached row of
        chunks holding it when there; the row is read and kept when it fits the budget."""
        u_ax, v_ax = (a for a in range(3) if a != axis)
        return self.region(array, key, axis, index, (0, array.shape[u_ax]), (0, array.shape[v_ax]))

    def region(self, array: Any, key: tuple, axis: int, index: int, rows: tuple[int, int],
               cols: tuple[int, int]) -> np.ndarray:
        """Rows ``rows`` and columns ``cols`` (end-exclusive) of plane ``index`` across ``axis``:
        cut from the cached block of the chunk row holding the plane, narrowed to the chunks the
        region crosses (or from the whole row when cached), read and kept when it fits the budget.
        A zoomed-in view of a 4096^2 slice so decodes the chunks it shows, not the plane's."""
        u_ax, v_ax = (a for a in range(3) if a != axis)
        chunks = tuple(int(c) for c in getattr(array, "chunks", array.shape))
        edge = chunks[axis]
        row = index // edge
        spans = {u_ax: rows, v_ax: cols}
        block = {a: (lo // chunks[a] * chunks[a], min(-(-hi // chunks[a]) * chunks[a], array.shape[a]))
                 for a, (lo, hi) in spans.items()}
        at: list[Any] = [slice(None)] * 3
        block_bytes = edge * int(np.prod([b - a for a, b in block.values()])) * array.dtype.itemsize
        if block_bytes > self.max_bytes:  # would evict itself: read the region alone
            at[axis] = index
            for a, (lo, hi) in spans.items():
                at[a] = slice(lo, hi)
            return np.asarray(array[tuple(at)])
        whole = (*key, axis, row, 0, array.shape[u_ax], 0, array.shape[v_ax])
        name = (*key, axis, row, *block[u_ax], *block[v_ax])
        with self._lock:
            found = next(((n, self._slabs[n]) for n in (whole, name) if n in self._slabs), None)
            if found is not None:
                self._slabs.move_to_end(found[0])
        if found is None:
            at[axis] = slice(row * edge, (row + 1) * edge)
            for a, (lo, hi) in block.items():
                at[a] = slice(lo, hi)
            slab = np.asarray(array[tuple(at)])
            slab.flags.writeable = False
            origin = {a: lo for a, (lo, _) in block.items()}
            with self._lock:
                self._slabs[name] = slab
                self._slabs.move_to_end(name)
                total = sum(a.nbytes for a in self._slabs.values())
                while total > self.max_bytes and len(self._slabs) > 1:
                    total -= self._slabs.popitem(last=False)[1].nbytes
        else:
            slab = found[1]
            origin = {u_ax: 0, v_ax: 0} if found[0] == whole else {a: lo for a, (lo, _) in block.items()}
        at[axis] = index - row * edge
        for a, (lo, hi) in spans.items():
            at[a] = slice(lo - origin[a], hi - origin[a])
        return np.array(slab[tuple(at)])  # its own buffer, writable: the cached block stays as read


_cache = SlabCache()


def set_slice_cache_bytes(max_bytes: int) -> None:
    """Budget of this process's slice cache (the web app sets it from ``slice_cache_mb``)."""
    _cache.max_bytes = int(max_bytes)
    with _cache._lock:
        while sum(a.nbytes for a in _cache._slabs.values()) > _cache.max_bytes and _cache._slabs:
            _cache._slabs.popitem(last=False)


def slice_cache() -> SlabCache:
    """This process's slice cache."""
    return _cache


# -- stored volumes -------------------------------------------------------------------------

def volume_window(volume: Path) -> list[float]:
    """Display window of a converted volume, from its finest pyramid level that is small enough."""
    info = read_info(volume)
    level = next((i for i, s in enumerate(info.level_shapes) if int(np.prod(s)) <= WINDOW_SAMPLE_VOXELS),
                 len(info.level_shapes) - 1)
    arr = open_level(volume, level)
    step = max(1, int(np.ceil(np.prod(arr.shape) / WINDOW_SAMPLE_VOXELS)))
    return list(robust_window(arr[::step]))


def _level_array(volume: Path, axis: str, index: int, level: int) -> tuple[Any, tuple]:
    """Pyramid ``level`` of ``volume`` and its key in the slice cache (path, version, level);
    ArtifactNotFound for a bad axis, a missing level or slice ``index`` outside it."""
    if axis not in AXES:
        raise ArtifactNotFound(f"axis must be z, y or x; got {axis!r}")
    try:
        arr = open_level(volume, level)
    except FileNotFoundError as exc:
        raise ArtifactNotFound(str(exc)) from exc
    n = arr.shape[AXES.index(axis)]
    if not 0 <= index < n:
        raise ArtifactNotFound(f"slice {index} is outside 0..{n - 1} along {axis}")
    meta = Path(volume) / "zarr.json"
    stamp = meta.stat().st_mtime_ns if meta.exists() else 0
    return arr, (str(Path(volume).resolve()), stamp, int(level))


def read_slice(volume: Path, axis: str, index: int, level: int = 0, step: int = 1) -> np.ndarray:
    """One 2D slice along ``axis`` (z, y or x) of pyramid ``level``, every ``step``-th pixel;
    ArtifactNotFound if out of range."""
    arr, key = _level_array(volume, axis, index, level)
    plane = _cache.plane(arr, key, AXES.index(axis), int(index))
    step = max(1, int(step))
    return plane[::step, ::step] if step > 1 else plane


def read_region(volume: Path, axis: str, index: int, level: int, rows: tuple[int, int],
                cols: tuple[int, int]) -> np.ndarray:
    """Rows ``rows`` and columns ``cols`` (end-exclusive, pixels of pyramid ``level``) of slice
    ``index`` of that level along ``axis``, through the slice cache; ArtifactNotFound if the
    slice is out of range (the region is the caller's to clip)."""
    arr, key = _level_array(volume, axis, index, level)
    return _cache.region(arr, key, AXES.index(axis), int(index), rows, cols)


def read_voxel(volume: Path, z: int, y: int, x: int) -> tuple[float | int, str]:
    """The raw value of one voxel (one chunk read: cheap enough for a cursor readout) and the kind
    of files the volume was converted from (``dicom-series``: rescaled values, Hounsfield units for CT);
    InputError outside the volume."""
    try:
        arr = open_level(volume, 0)
    except FileNotFoundError as exc:
        raise ArtifactNotFound(str(exc)) from exc
    for name, i, n in zip("zyx", (z, y, x), arr.shape):
        if not 0 <= i < n:
            raise InputError(f"{name} must be from 0 to {n - 1}; got {i}")
    value = np.asarray(arr[z, y, x]).item()
    return value, str(read_info(volume).attrs.get("source_kind") or "")


def render_slice(volume: Path, axis: str, index: int, window: list[float] | tuple[float, float], *, level: int = 0,
                 step: int = 1, labels: Path | None = None, colors: dict[int, tuple[int, int, int]] | None = None,
                 opacity: float = 0.5) -> np.ndarray:
    """One slice of ``volume`` for display: 8-bit gray through ``window`` (lo, hi), and with
    ``labels`` (a label volume on the same grid) its classes blended on top in ``colors``
    (class index -> RGB; a (y, x, 3) uint8 image then). See :func:`read_slice` for the rest."""
    image = display.to_uint8(read_slice(volume, axis, index, level, step), window)
    if labels is None:
        return image
    return display.overlay(image, read_slice(labels, axis, index, level, step), colors or {}, opacity)
