"""Predict one whole slice or plane at full resolution (the CLI's ``predict-slice``, tests): the exact
answer a whole-volume segmentation gives there.

Two caches make repeated calls cheap: the model (per process, keyed by model folder and file
modification times, so a retrained model is picked up) and the features of the last few
slices (keyed by volume, its modification time, slice and feature settings): painting does
not change the features, so after the first call on a slice only the prediction runs. The
annotation page's overlay and the drafts go through :mod:`ml4paleo.pipelines.view_preview`
instead (the region a view shows, on its pyramid level, tile by tile, with a tile cache).
"""

from __future__ import annotations

import collections
import os
import threading
from pathlib import Path

import numpy as np

from ml4paleo.errors import InputError
from ml4paleo.compute.painted import keep_painted
from ml4paleo.compute.regions import features_of_region, plane_region, slice_features
from ml4paleo.io.omezarr import open_level, read_info
from ml4paleo.io.planes import cached_planes, clear_planes
from ml4paleo.models import cached_model, labels_from_proba

__all__ = ["cached_features", "clear_cache", "plane_features_cached", "plane_proba", "predict_plane", "predict_slice", "slice_features_cached",
           "volume_stamp"]

FEATURE_CACHE_SLICES = 4
"""Slices whose features are kept (512^2 x 61 float32 = 64 MB each) ..."""
FEATURE_CACHE_BYTES = 512 << 20
"""... within this many bytes (a single larger slice is still cached alone)."""

_features: "collections.OrderedDict[tuple, np.ndarray]" = collections.OrderedDict()
_lock = threading.Lock()


def clear_cache() -> None:
    """Forget cached slice features and raw planes (models are cached by
    :func:`ml4paleo.models.cached_model`)."""
    with _lock:
        _features.clear()
    clear_planes()


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def volume_stamp(volume_path: str | Path) -> int:
    """Modification time (ns) of the volume's metadata: changes when the volume is rewritten."""
    meta = Path(volume_path) / "zarr.json"
    return meta.stat().st_mtime_ns if meta.exists() else 0


def slice_features_cached(volume_path: str | Path, z: int, settings) -> np.ndarray:
    """(y, x, n_features) features of slice ``z`` (:func:`ml4paleo.compute.regions.slice_features`
    on every core), from this process's cache of the last few slices when there; read-only."""
    volume_path = Path(volume_path)
    stamp = volume_stamp(volume_path)
    # the halo's raw planes from memory when a nearby slice was shown before (ml4paleo.io.planes)
    return _cached((str(volume_path.resolve()), stamp, int(z), settings),
                   lambda: slice_features(cached_planes(volume_path, stamp), z, settings, workers=_cores()))


def plane_features_cached(volume_path: str | Path, axis: int, index: int, settings) -> np.ndarray:
    """(z, y, x, n_features) features of the plane ``index`` across ``axis`` (1: y, 2: x) as a
    one-voxel-thick region, cached as slices are: each stroke on a plane across the stack only
    predicts (or, in a draft, indexes) again, the features stay."""
    volume_path = Path(volume_path)
    stamp = volume_stamp(volume_path)
    shape = read_info(volume_path).shape
    rows, cols = (n for i, n in enumerate(shape) if i != axis)
    start, stop = plane_region(axis, index, (0, rows), (0, cols))
    return _cached((str(volume_path.resolve()), stamp, ("plane", axis, index), settings),
                   lambda: features_of_region(open_level(volume_path, 0), start, stop, settings))


def cached_features(volume_path: str | Path, axis: int, index: int, settings) -> np.ndarray | None:
    """The features of plane ``index`` across ``axis`` (0: a z slice, (y, x, n); 1 or 2: (z, y, x, n)
    with one voxel along ``axis``) if this process has them cached, else None (nothing computed)."""
    volume_path = Path(volume_path)
    what = int(index) if axis == 0 else ("plane", int(axis), int(index))
    key = (str(volume_path.resolve()), volume_stamp(volume_path), what, settings)
    with _lock:
        return _features.get(key)


def _cached(key: tuple, compute) -> np.ndarray:
    """The features under ``key`` in this process's cache, or ``compute()`` stored there (read-only,
    shared by every caller; the oldest are dropped beyond the cache's slices and bytes)."""
    with _lock:
        if key in _features:
            _features.move_to_end(key)
            return _features[key]
    feats = compute()
    feats.flags.writeable = False  # shared by every caller
    with _lock:
        _features[key] = feats
        while len(_features) > 1 and (len(_features) > FEATURE_CACHE_SLICES
                                      or sum(f.nbytes for f in _features.values()) > FEATURE_CACHE_BYTES):
            _features.popitem(last=False)
    return feats


def predict_slice(volume_path: str | Path, model_dir: str | Path, z: int) -> np.ndarray:
    """Class indices (2D uint8, 0 = background) of slice ``z`` predicted by the model.

    The slice's features use its z-neighbourhood exactly as a whole-volume segmentation does,
    so the preview equals that slice of :func:`ml4paleo.pipelines.segment.segment_volume`."""
    return labels_from_proba(_slice_proba(volume_path, model_dir, z))


def _slice_proba(volume_path: str | Path, model_dir: str | Path, z: int) -> np.ndarray:
    """(y, x, K) class probabilities of slice ``z`` (painted voxels certain of their class)."""
    volume_path = Path(volume_path)
    info = read_info(volume_path)
    if isinstance(z, bool) or not isinstance(z, (int, np.integer)) or not 0 <= z < info.shape[0]:
        raise InputError(f"z must be a slice index in 0..{info.shape[0] - 1}; got {z!r}")
    model = cached_model(model_dir)
    model.set_n_jobs(_cores())
    if getattr(model, "feature_settings", None) is None:  # a model that reads the volume itself (prior, U-Net)
        proba = model.predict_region(open_level(volume_path, 0), (int(z), 0, 0), (int(z) + 1, *info.shape[1:]))
    else:
        feats = slice_features_cached(volume_path, int(z), model.feature_settings)
        proba = model.proba_from_features(feats[None], (int(z), 0, 0))
    start = (int(z), 0, 0)
    return keep_painted(proba, getattr(model, "painted", ()), start, (int(z) + 1, *info.shape[1:]))[0]


def predict_plane(volume_path: str | Path, model_dir: str | Path, axis: str, index: int) -> np.ndarray:
    """Class indices (2D uint8) of the plane at ``index`` across ``axis`` (z: :func:`predict_slice`;
    y: rows z, columns x; x: rows z, columns y), equal to that plane of a whole-volume segmentation."""
    return labels_from_proba(plane_proba(volume_path, model_dir, axis, index))


def plane_proba(volume_path: str | Path, model_dir: str | Path, axis: str, index: int) -> np.ndarray:
    """(rows, columns, K) class probabilities of the plane :func:`predict_plane` labels (painted
    voxels certain of their class): the overlay's classes and its uncertainty come from one pass.

    A y or x plane is predicted as one region through the model, its features cached as a z
    slice's are (strokes on one plane follow each other)."""
    if axis == "z":
        return _slice_proba(volume_path, model_dir, index)
    if axis not in ("y", "x"):
        raise InputError(f"axis must be z, y or x; got {str(axis)[:10]!r}")
    volume_path = Path(volume_path)
    shape = read_info(volume_path).shape
    ax = "zyx".index(axis)
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < shape[ax]:
        raise InputError(f"{axis} must be a slice index in 0..{shape[ax] - 1}; got {index!r}")
    model = cached_model(model_dir)
    model.set_n_jobs(_cores())
    rows, cols = (n for i, n in enumerate(shape) if i != ax)
    start, stop = plane_region(ax, int(index), (0, rows), (0, cols))
    if getattr(model, "feature_settings", None) is None:  # a model that reads the volume itself (prior, U-Net)
        proba = model.predict_region(open_level(volume_path, 0), start, stop)
    else:
        proba = model.proba_from_features(plane_features_cached(volume_path, ax, int(index), model.feature_settings),
                                          start)
    return np.take(keep_painted(proba, getattr(model, "painted", ()), start, stop), 0, axis=ax)
