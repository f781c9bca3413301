"""Numpy helpers of the U-Net: mirrored region reads, the normalisation sample, training crops.

No torch here: numpy in, numpy out (the network and its training live in ``unet.py``).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["FOCUS_SHARE", "NORM_PERCENTILES", "PLANE_SLICES", "Patches", "plane_pieces", "read_mirrored", "robust_range"]

NORM_PERCENTILES = (0.5, 99.5)
"""Normalisation: grey values at these percentiles of a sample of the volume map to -1 and 1."""


FOCUS_SHARE = 0.5
"""With focus voxels (weights above 1: the newest strokes of a warm-started fit), this share of
the crops is centred near one of them, so that a dab of a few voxels among thousands is seen in
half the batches instead of almost never."""


PLANE_SLICES = 64
"""A painted XZ or YZ plane trains on at most this many of the z slices it crosses (spread
evenly over its painted rows): each holds a band of its z slice in memory."""


def plane_pieces(labels: np.ndarray, dim: int, index: int, shape_yx: Sequence[int], half: int,
                 max_slices: int = PLANE_SLICES) -> list[tuple[int, tuple[int, int, int, int], np.ndarray]]:
    """A painted XZ (``dim`` 1, at y = ``index``) or YZ (``dim`` 2, at x = ``index``) plane as
    what the network trains on, z slices: per painted row z of the plane, ``(z, (y0, y1, x0, x1),
    band)`` where ``band`` holds the window of slice z within ``half`` voxels of the plane, -1
    (unlabeled, masked out of the loss) but for the plane's line, which holds the plane's row.
    ``labels``: the plane's (z, u) class indices, -1 unlabeled."""
    Y, X = (int(n) for n in shape_yx)
    rows = np.flatnonzero((labels >= 0).any(axis=1))
    if rows.size > max_slices:
        rows = rows[np.linspace(0, rows.size - 1, max_slices).round().astype(int)]
    extent = Y if dim == 1 else X
    lo, hi = max(0, index - half), min(extent, index + half)
    out = []
    for z in rows:
        if dim == 1:
            window, band = (lo, hi, 0, X), np.full((hi - lo, X), -1, labels.dtype)
            band[index - lo] = labels[z]
        else:
            window, band = (0, Y, lo, hi), np.full((Y, hi - lo), -1, labels.dtype)
            band[:, index - lo] = labels[z]
        out.append((int(z), window, band))
    return out


def read_mirrored(array: Any, start: Sequence[int], stop: Sequence[int]) -> np.ndarray:
    """Region ``start:stop`` of ``array`` (zarr or numpy), which may reach beyond the volume on
    any side: voxels outside are mirrored (numpy ``symmetric``, as ``read_padded`` does)."""
    lo = [min(max(0, s), n - 1) for s, n in zip(start, array.shape)]
    hi = [max(min(n, e), l + 1) for e, n, l in zip(stop, array.shape, lo)]
    data = np.asarray(array[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]])
    width = [(l - s, e - h) for l, h, s, e in zip(lo, hi, start, stop)]
    if any(w != (0, 0) for w in width):
        data = np.pad(data, [(max(a, 0), max(b, 0)) for a, b in width], mode="symmetric")
        cut = tuple(slice(max(-a, 0), data.shape[i] - max(-b, 0)) for i, (a, b) in enumerate(width))
        data = data[cut]
    return data


def robust_range(array: Any) -> tuple[float, float]:
    """The ``NORM_PERCENTILES`` of a sample of ``array``: 4 x 4 x 4 cubes of up to 32^3 voxels
    spread over the volume, each starting on a chunk boundary of a zarr array (so one cube
    decompresses a few chunks, where a strided slice would decompress a chunk's depth of slices)."""
    chunks = getattr(array, "chunks", None)
    chunks = chunks if isinstance(chunks, tuple) and all(isinstance(c, int) for c in chunks) else (1, 1, 1)
    edge = [min(32, n) for n in array.shape]
    starts = [np.unique((np.linspace(0, n - e, 4).round().astype(int) // c) * c)
              for n, e, c in zip(array.shape, edge, chunks)]
    sample = np.concatenate([np.asarray(array[z:z + edge[0], y:y + edge[1], x:x + edge[2]]).ravel()
                             for z in starts[0] for y in starts[1] for x in starts[2]]).astype(np.float64)
    lo, hi = np.percentile(sample, NORM_PERCENTILES)
    return float(lo), float(hi) if hi > lo else float(lo) + 1.0


class Patches:
    """Random training crops near painted voxels (classes drawn uniformly), augmented. The
    images may differ in size (whole slices, bands of slices along a painted plane). With
    ``weights`` (per label image, the loss weight of each painted voxel) the voxels weighing more
    than 1 are the focus: ``FOCUS_SHARE`` of the crops are centred near them, and :meth:`batch`
    returns the weights of each crop too."""

    def __init__(self, images: list[np.ndarray], labels: list[np.ndarray], patch: int, align: int,
                 augment: Sequence[str], rng: np.random.Generator,
                 weights: list[np.ndarray] | None = None) -> None:
        Y, X = (max(lab.shape[a] for lab in labels) for a in (0, 1))
        self.size = (min(patch, -(-Y // align) * align), min(patch, -(-X // align) * align))
        self.images, self.labels, self.weights = [], [], [] if weights is not None else None
        for j, (im, lab) in enumerate(zip(images, labels)):  # each padded to the crop size (a plane's band may be smaller)
            py, px = max(0, self.size[0] - lab.shape[0]), max(0, self.size[1] - lab.shape[1])
            self.images.append(np.pad(im, ((0, 0), (0, py), (0, px)), mode="symmetric"))
            self.labels.append(np.pad(lab, ((0, py), (0, px)), constant_values=-1))
            if self.weights is not None:
                w = np.where(lab >= 0, np.maximum(weights[j], 0), 0).astype(np.float32)  # type: ignore[index]
                self.weights.append(np.pad(w, ((0, py), (0, px))))
        self.anchors = []
        for k in range(int(max(lab.max() for lab in labels)) + 1):
            self.anchors += self._where([lab == k for lab in self.labels])
        self.focus = self._where([w > 1 for w in self.weights]) if self.weights is not None else []
        self.augment = set(augment)
        self.rng = rng

    @staticmethod
    def _where(masks: list[np.ndarray]) -> list[np.ndarray]:
        """The (image, y, x) rows of every True voxel of ``masks``, as one array (none if none)."""
        where = [np.stack([np.full(n.size, i), *np.unravel_index(n, m.shape)], 1)
                 for i, m in enumerate(masks) if (n := np.flatnonzero(m)).size]
        return [np.concatenate(where)] if where else []

    def batch(self, n: int) -> tuple[np.ndarray, ...]:
        """``n`` crops: (images, labels), and their loss weights when the patches have weights."""
        rng, (P, Q) = self.rng, self.size
        xs, ys, ws = [], [], []
        for _ in range(n):
            if self.focus and rng.random() < FOCUS_SHARE:
                pts = self.focus[0]
            else:
                pts = self.anchors[rng.integers(len(self.anchors))]
            i, y, x = pts[rng.integers(len(pts))]
            H, W = self.labels[i].shape
            y0 = int(np.clip(y - rng.integers(P), 0, H - P))
            x0 = int(np.clip(x - rng.integers(Q), 0, W - Q))
            img = self.images[i][:, y0:y0 + P, x0:x0 + Q]
            lab = self.labels[i][y0:y0 + P, x0:x0 + Q]
            w = self.weights[i][y0:y0 + P, x0:x0 + Q] if self.weights is not None else lab
            if "rot90" in self.augment:
                k = int(rng.integers(4)) if P == Q else 2 * int(rng.integers(2))
                img, lab, w = np.rot90(img, k, axes=(1, 2)), np.rot90(lab, k), np.rot90(w, k)
            if "flip" in self.augment:
                if rng.integers(2):
                    img, lab, w = img[:, :, ::-1], lab[:, ::-1], w[:, ::-1]
                if rng.integers(2):
                    img = img[::-1]
            if "intensity" in self.augment:
                img = img * np.float32(rng.uniform(0.8, 1.2)) + np.float32(rng.uniform(-0.2, 0.2))
            xs.append(np.ascontiguousarray(img, dtype=np.float32))
            ys.append(np.ascontiguousarray(lab))
            ws.append(np.ascontiguousarray(w))
        return (np.stack(xs), np.stack(ys)) + ((np.stack(ws),) if self.weights is not None else ())
