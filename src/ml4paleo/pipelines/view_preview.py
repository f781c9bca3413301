"""The overlay of the region a user looks at, at the resolution the screen shows it.

Why: a whole-slice prediction at full resolution costs in proportion to the slice (61 float32
features per voxel: 4 GiB for a 4096^2 slice), though a zoomed-out screen shows one pixel per
``f``^2 voxels and a zoomed-in one a small region. :func:`preview_plane` predicts a plane (any
axis) on a pyramid level, over an optional region, tile by tile: memory is bounded by a tile,
never by the slice. On a level above 0 the bank runs there with its sigmas scaled
(:mod:`ml4paleo.compute.coarse`), or on the coarsest finer level whose scaled bank still holds
every feature of the model (``orient`` exists only at some scales); a model that does not work on the filter bank alone (shape
interpolation, U-Net, the context forest) is predicted at full resolution and sampled. Painted
voxels stay law on every level (:func:`ml4paleo.compute.painted.keep_painted_on_grid`). At level 0
over the whole plane the probabilities equal :func:`ml4paleo.pipelines.preview.plane_proba`.
"""

from __future__ import annotations

import collections
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ml4paleo.compute.coarse import coarse_settings, coarsest_level, level_factors, region_on_level
from ml4paleo.compute.features import compiled_pass_loaded
from ml4paleo.compute.painted import keep_painted_on_grid
from ml4paleo.compute.regions import features_of_region, plane_region
from ml4paleo.errors import InputError
from ml4paleo.io.omezarr import read_info
from ml4paleo.io.planes import cached_planes
from ml4paleo.models import cached_model
from ml4paleo.pipelines.preview import cached_features, volume_stamp
from ml4paleo.threads import map_on_threads

__all__ = ["PREVIEW_TILE", "TILE_CACHE_BYTES", "PlanePreview", "check_preview", "clear_tiles", "painted_rows",
           "preview_plane", "tile_features"]

PREVIEW_TILE = 256
"""Tile edge (voxels of the level predicted): 256^2 x 61 float32 features is 16 MB, with the
halo and the filters' temporaries ~150 MB per thread at full resolution."""
TILE_CACHE_BYTES = 512 << 20
"""Full-resolution tile features kept per process (32 tiles of the whole bank): the tiles a
stroke touched, for the next stroke's draft and the overlay of that plane."""

_tiles: "collections.OrderedDict[tuple, np.ndarray]" = collections.OrderedDict()
_tiles_lock = threading.Lock()


def clear_tiles() -> None:
    """Forget every cached tile's features."""
    with _tiles_lock:
        _tiles.clear()


def tile_features(volume_path: str | Path, array: Any, axis: int, index: int, u: tuple[int, int],
                  v: tuple[int, int], settings: Any) -> np.ndarray:
    """Features (one voxel thick along ``axis``) of rows ``u`` and columns ``v`` of plane ``index``
    of the full-resolution ``array``, from this process's tile cache when there (read-only)."""
    key = (str(Path(volume_path).resolve()), volume_stamp(volume_path), axis, index, u, v, settings)
    with _tiles_lock:
        if key in _tiles:
            _tiles.move_to_end(key)
            return _tiles[key]
    start, stop = plane_region(axis, index, u, v)
    feats = features_of_region(array, start, stop, settings, compiled=compiled_pass_loaded())
    feats.flags.writeable = False
    with _tiles_lock:
        _tiles[key] = feats
        total = sum(f.nbytes for f in _tiles.values())
        while total > TILE_CACHE_BYTES and len(_tiles) > 1:
            total -= _tiles.popitem(last=False)[1].nbytes
    return feats


def _aligned(r0: int, c0: int, r1: int, c1: int, size: int):
    """(a0, b0, a1, b1) of the tiles of the global ``size`` grid meeting rows r0:r1, columns c0:c1."""
    for a in range(r0 // size * size, r1, size):
        for b in range(c0 // size * size, c1, size):
            yield a, b, a + size, b + size


def painted_rows(volume_path: str | Path, axis: int, index: int, mask: np.ndarray, settings: Any,
                 tile: int = PREVIEW_TILE) -> np.ndarray:
    """Feature rows of the voxels where ``mask`` (the plane's shape) is true, in the plane's
    row-major order (as ``features[mask]``), from the tiles holding them only (cached)."""
    array = cached_planes(volume_path, volume_stamp(volume_path))
    parts, keys = [], []
    for a0, b0, a1, b1 in _aligned(0, 0, *mask.shape, tile):
        sel = mask[a0:a1, b0:b1]
        if not sel.any():
            continue
        u, v = (a0, min(a1, mask.shape[0])), (b0, min(b1, mask.shape[1]))
        feats = np.take(tile_features(volume_path, array, axis, index, u, v, settings), 0, axis=axis)
        parts.append(feats[sel])
        ru, rv = np.nonzero(sel)
        keys.append((ru + a0) * mask.shape[1] + (rv + b0))
    if not parts:
        return np.empty((0, settings.n_features), np.float32)
    rows = np.concatenate(parts)
    return rows[np.argsort(np.concatenate(keys), kind="stable")]


@dataclass(frozen=True)
class PlanePreview:
    """Class probabilities of a plane's region on one pyramid level."""

    proba: np.ndarray
    """(rows, columns, K) float32, one row/column per ``factors`` voxels of full resolution."""
    level: int
    factors: tuple[int, int]
    """Full-resolution rows and columns per preview pixel."""
    region: tuple[int, int, int, int]
    """(row0, col0, row1, col1), end-exclusive, in full-resolution plane coordinates: what the
    preview covers (the region asked for, widened to the level's grid)."""


def _checked(axis: str, index: Any, level: Any, shape: Sequence[int], n_levels: int) -> tuple[int, int, int]:
    if axis not in ("z", "y", "x"):
        raise InputError(f"axis must be z, y or x; got {str(axis)[:10]!r}")
    ax = "zyx".index(axis)
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < shape[ax]:
        raise InputError(f"{axis} must be a slice index in 0..{shape[ax] - 1}; got {index!r}")
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or not 0 <= level < n_levels:
        raise InputError(f"level must be a pyramid level in 0..{n_levels - 1}; got {level!r}")
    return ax, int(index), int(level)


def check_preview(volume_path: str | Path, axis: Any, index: Any, level: Any = 0, region: Any = None) -> None:
    """Raise InputError unless :func:`preview_plane` accepts these arguments for this volume
    (checked where a request enters, before any work is queued)."""
    info = read_info(volume_path)
    ax, _, level = _checked(axis, index, level, info.shape, len(info.level_shapes))
    if region is not None and not isinstance(region, (list, tuple)):
        raise InputError(f"region must be [row0, col0, row1, col1]; got {type(region).__name__}")
    factors = level_factors(info.level_shapes, level)
    u_ax, v_ax = (a for a in range(3) if a != ax)
    region_on_level(region, info.shape[u_ax], info.shape[v_ax], factors[u_ax], factors[v_ax])


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def preview_plane(volume_path: str | Path, model_dir: str | Path, axis: str, index: int, *, level: int = 0,
                  region: Sequence[int] | None = None, tile: int = PREVIEW_TILE,
                  check: Callable[[], None] | None = None, workers: int | None = None) -> PlanePreview:
    """Class probabilities of plane ``index`` across ``axis`` (z, y or x) on pyramid ``level``,
    over ``region`` ([row0, col0, row1, col1] in full-resolution plane coordinates; None: all).

    ``check`` is called between tiles (it raises to stop: a newer request for the same view);
    ``workers`` threads featurise tiles side by side (default: every core). Painted voxels of
    the model's annotations keep their class."""
    volume_path = Path(volume_path)
    info = read_info(volume_path)
    ax, index, level = _checked(axis, index, level, info.shape, len(info.level_shapes))
    factors = level_factors(info.level_shapes, level)
    u_ax, v_ax = (a for a in range(3) if a != ax)
    rows, cols = info.shape[u_ax], info.shape[v_ax]
    fr, fc = factors[u_ax], factors[v_ax]
    r0, c0, r1, c1 = region_on_level(region, rows, cols, fr, fc)
    model = cached_model(model_dir)
    painted = getattr(model, "painted", ())
    settings = getattr(model, "feature_settings", None)
    on_bank = settings is not None and getattr(model, "prior", None) is None  # bank features alone: scalable
    # a bank with features that exist only at some scales (orient) is computed on a finer level
    compute_level = coarsest_level(settings, info.level_shapes, level) if on_bank else 0
    cf = level_factors(info.level_shapes, compute_level)
    if compute_level and hasattr(model, "coarse"):
        model = model.coarse()  # a model that answers otherwise near its corrections (full-resolution reach)
    stamp = volume_stamp(volume_path)
    array = cached_planes(volume_path, stamp, level=compute_level)
    bank = coarse_settings(settings, max(cf)) if on_bank and compute_level else settings
    plane_at = index // cf[ax]
    whole = cached_features(volume_path, ax, index, settings) if on_bank and compute_level == 0 else None
    out = np.empty((r1 - r0, c1 - c0, len(model.classes)), np.float32)
    # a tile of the preview is (tile x tile) pixels, whatever the level it is computed on
    step_r, step_c = fr // cf[u_ax], fc // cf[v_ax]
    n_threads = max(1, int(workers or _cores()))
    model.set_n_jobs(1 if n_threads > 1 else _cores())

    size = max(1, int(tile) // max(step_r, step_c))  # at most a tile of voxels computed at once

    def one(t: tuple[int, int, int, int]) -> None:
        if check is not None:
            check()
        a0, b0, a1, b1 = max(t[0], r0), max(t[1], c0), min(t[2], r1), min(t[3], c1)  # preview pixels here
        if level == 0 and on_bank and whole is None:  # the whole tile, cached: strokes reuse it
            u, v = (t[0], min(t[2], rows)), (t[1], min(t[3], cols))
            feats = tile_features(volume_path, array, ax, index, u, v, settings)
            start = plane_region(ax, index, u, v)[0]
            plane = np.take(model.proba_from_features(feats, start), 0, axis=ax)
            out[a0 - r0:a1 - r0, b0 - c0:b1 - c0] = plane[a0 - t[0]:a1 - t[0], b0 - t[1]:b1 - t[1]]
            return
        u = (a0 * step_r, min(a1 * step_r, array.shape[u_ax]))  # pixels of the level computed on
        v = (b0 * step_c, min(b1 * step_c, array.shape[v_ax]))
        start, stop = plane_region(ax, plane_at, u, v)
        if not on_bank:
            proba = model.predict_region(array, start, stop)
        else:
            if whole is not None:  # the draft featurised this plane whole in this process
                at = [slice(None)] * 3
                at[u_ax], at[v_ax] = slice(*u), slice(*v)
                feats = whole[u[0]:u[1], v[0]:v[1]][None] if ax == 0 else whole[tuple(at)]
            else:
                feats = features_of_region(array, start, stop, bank, compiled=compiled_pass_loaded())
            proba = model.proba_from_features(feats, start)
        plane = np.take(proba, 0, axis=ax)[::step_r, ::step_c]
        out[a0 - r0:a0 - r0 + plane.shape[0], b0 - c0:b0 - c0 + plane.shape[1]] = plane

    map_on_threads(one, _aligned(r0, c0, r1, c1, size), n_threads, "ml4paleo-preview")
    keep_painted_on_grid(out, painted, ax, index, np.arange(r0, r1) * fr, np.arange(c0, c1) * fc)
    covered = (r0 * fr, c0 * fc, min(r1 * fr, rows), min(c1 * fc, cols))
    return PlanePreview(out, level, (fr, fc), covered)
