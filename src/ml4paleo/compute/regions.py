"""Features of a region of a volume, equal to the same voxels of whole-volume features.

Train, preview and segment all featurise regions (a block, a slice, the labeled tiles of a
slice) of an array that may be a zarr array or numpy: each reads its region plus the filters'
halo, mirrored beyond the volume, so the result never depends on how the volume was cut.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Iterator, Sequence

import numpy as np

from ml4paleo.compute.features import FeatureSettings, block_features, halo
from ml4paleo.threads import map_on_threads

__all__ = ["TILE", "features_of_region", "labeled_features", "plane_region", "read_padded", "region_tiles",
           "slice_features", "tiles"]

TILE = 512
"""Slices are featurised in tiles of at most TILE x TILE voxels (plus halo) to bound memory."""


def read_padded(array: Any, start: Sequence[int], stop: Sequence[int], settings: FeatureSettings) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Region ``start:stop`` of ``array`` (zarr or numpy) with the feature halo on each filtered
    axis, mirrored (numpy ``symmetric``) beyond the volume; returns it and its global origin."""
    h = halo(settings)
    pads = [h if a in settings.axes else 0 for a in range(3)]
    lo = [max(0, s - p) for s, p in zip(start, pads)]
    hi = [min(n, e + p) for n, e, p in zip(array.shape, stop, pads)]
    data = np.asarray(array[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]])
    width = [(l - (s - p), (e + p) - u) for l, u, s, e, p in zip(lo, hi, start, stop, pads)]
    if any(w != (0, 0) for w in width):
        data = mirror_pad(data, width)
    return data, tuple(s - p for s, p in zip(start, pads))  # type: ignore[return-value]


MAX_RUN_COPIES = 64
"""Above this many block copies (a region a few voxels wide mirrored many times over),
:func:`mirror_pad` leaves the work to ``np.pad``."""


def mirror_pad(data: np.ndarray, width: Sequence[tuple[int, int]]) -> np.ndarray:
    """``np.pad(data, width, mode="symmetric")``, the same array, by one copy per run of the
    mirrored index along each axis (forward or reversed: a few block copies) into an empty array.

    Why: np.pad fills the pad axis by axis, re-reading what it wrote: several times the copy
    itself on a training slice's region (docs/benchmarks.md, "Seventh stop: the painted slices'
    features without pad copies")."""
    runs = [_mirror_runs(n, before, after) for n, (before, after) in zip(data.shape, width)]
    if math.prod(len(r) for r in runs) > MAX_RUN_COPIES or data.size == 0:
        return np.pad(data, width, mode="symmetric")
    out = np.empty(tuple(n + b + a for n, (b, a) in zip(data.shape, width)), dtype=data.dtype)
    for combo in itertools.product(*runs):
        out[tuple(dst for dst, _ in combo)] = data[tuple(src for _, src in combo)]
    return out


def _mirror_runs(n: int, before: int, after: int) -> list[tuple[slice, slice]]:
    """(destination, source) slices along one axis of ``n`` voxels padded symmetrically (the
    edge voxel repeated, period 2n) by ``before`` and ``after``: the maximal runs where the
    source index steps by +1 or -1."""
    index = [m if m < n else 2 * n - 1 - m for m in ((p % (2 * n)) for p in range(-before, n + after))]
    runs, first = [], 0
    for k in range(1, len(index) + 1):
        if k < len(index):
            step = index[k] - index[k - 1]
            if abs(step) == 1 and (k - first == 1 or step == index[first + 1] - index[first]):
                continue
        lo, hi = index[first], index[k - 1]
        src = slice(lo, hi + 1) if hi >= lo else slice(lo, hi - 1 if hi > 0 else None, -1)
        runs.append((slice(first, k), src))
        first = k
    return runs


def features_of_region(array: Any, start: Sequence[int], stop: Sequence[int], settings: FeatureSettings,
                       feature_major: bool = False, compiled: bool = False) -> np.ndarray:
    """(z, y, x, n_features) features of region ``start:stop``, identical to the same voxels
    of a whole-volume :func:`ml4paleo.compute.features.compute_features` (``feature_major``,
    ``compiled``: see :func:`~ml4paleo.compute.features.block_features`)."""
    padded, origin = read_padded(array, start, stop, settings)
    return block_features(padded, origin, settings, feature_major, compiled)


def tiles(shape_yx: Sequence[int], tile: int | tuple[int, int]) -> Iterator[tuple[int, int, int, int]]:
    """(y0, x0, y1, x1) of the tiles of at most ``tile`` voxels covering a slice of ``shape_yx``."""
    ty, tx = (tile, tile) if isinstance(tile, int) else tile
    for y0 in range(0, shape_yx[0], ty):
        for x0 in range(0, shape_yx[1], tx):
            yield y0, x0, min(y0 + ty, shape_yx[0]), min(x0 + tx, shape_yx[1])


def region_tiles(start: Sequence[int], stop: Sequence[int], tile: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """(start, stop) of the sub-regions covering region ``start:stop``, each at most ``tile``
    voxels along every axis (cut from the region's start): a region's features are those of its
    sub-regions (each reads its own halo), so a large one is featurised piece by piece."""
    cuts = [[(a, min(a + tile, b)) for a in range(a0, b, tile)] or [(a0, b)] for a0, b in zip(start, stop)]
    return [((z[0], y[0], x[0]), (z[1], y[1], x[1])) for z in cuts[0] for y in cuts[1] for x in cuts[2]]


def slice_features(array: Any, z: int, settings: FeatureSettings, tile: int = TILE, workers: int = 1) -> np.ndarray:
    """(y, x, n_features) features of slice ``z`` of ``array`` (zarr or numpy), computed in
    tiles, equal to that slice of the whole-volume features.

    With ``workers`` > 1 the slice is cut into at least that many row bands, featurised on a
    thread pool (scipy.ndimage releases the GIL: two threads measured ~2x one): the annotation
    page's preview waits on this after each new slice. Tiles are independent, so the result
    is the same for any cut."""
    out = np.empty(tuple(array.shape[1:]) + (settings.n_features,), dtype=np.float32)
    bands = max(1, int(workers))
    parts = list(tiles(array.shape[1:], (min(tile, -(-array.shape[1] // bands)), tile)))

    def fill(t: tuple[int, int, int, int]) -> None:
        y0, x0, y1, x1 = t
        out[y0:y1, x0:x1] = features_of_region(array, (z, y0, x0), (z + 1, y1, x1), settings)[0]

    map_on_threads(fill, parts, bands, "ml4paleo-slice")
    return out


def plane_region(axis: int, index: int, u: tuple[int, int], v: tuple[int, int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(start, stop) of the 3D region that is rows ``u`` and columns ``v`` of plane ``index``
    along ``axis`` (0: a z slice, rows y, columns x; 1: rows z, columns x; 2: rows z, columns y)."""
    start, stop = [u[0], v[0]], [u[1], v[1]]
    start.insert(axis, index)
    stop.insert(axis, index + 1)
    return tuple(start), tuple(stop)


def labeled_features(array: Any, index: int, mask: np.ndarray, settings: FeatureSettings, tile: int = TILE,
                     axis: int = 0, compiled: bool = False) -> np.ndarray:
    """Feature rows of the voxels where ``mask`` is true on plane ``index`` along ``axis``
    (default: z slice ``index``), in row-major order of the plane, computed tile by tile (only
    tiles holding labels), so memory stays bounded by a tile. ``compiled``: numba's passes, the
    same values (see :func:`~ml4paleo.compute.features.block_features`)."""
    rows = []
    for u0, v0, u1, v1 in tiles(mask.shape, tile):
        sel = mask[u0:u1, v0:v1]
        if sel.any():
            start, stop = plane_region(axis, index, (u0, u1), (v0, v1))
            feats = np.take(features_of_region(array, start, stop, settings, compiled=compiled), 0, axis=axis)
            rows.append((u0, v0, feats[sel]))
    if not rows:
        return np.empty((0, settings.n_features), np.float32)
    if mask.shape[1] <= tile:  # one column of tiles (a small scan's slice: one tile): already row-major, no copy
        return rows[0][2] if len(rows) == 1 else np.concatenate([r for _, _, r in rows])
    # rows of each tile are row-major within the tile; restore the plane's row-major order
    order_keys = []
    for u0, v0, _ in rows:
        tu, tv = np.nonzero(mask[u0:u0 + tile, v0:v0 + tile])
        order_keys.append((tu + u0) * mask.shape[1] + (tv + v0))
    keys = np.concatenate(order_keys)
    data = np.concatenate([r for _, _, r in rows])
    return data[np.argsort(keys, kind="stable")]
