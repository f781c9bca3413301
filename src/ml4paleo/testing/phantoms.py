"""Generated CT-like volumes whose truth is known, for the cases that decide a method.

- :func:`touching_blobs`: two blobs of the same density and noise, touching, in a darker
  matrix; one of them is the structure. Only the painted outlines tell the structure from
  its neighbour (a fossil against bone of the same density, a cast in its mould).
- :func:`thin_tubes`: thin tubes brighter than the matrix, crossing the volume obliquely, so
  each slice cuts them somewhere else. Only appearance tells them apart; outlines move too
  fast between slices to interpolate.
- :func:`texture_only`: a structure with the matrix's mean grey value but a coarser grain
  (``grain="size"``), or grains of the same size and spread lying another way
  (``grain="orientation"``: along z in the structure, along y in the matrix), which filters
  that do not care about direction (a forest's Gaussian, LoG, structure-tensor and Hessian
  eigenvalue bank) barely tell apart, and a convolutional network sees at once.

Each returns ``(volume uint16, truth uint8 class indices)``, axes (z, y, x), and is
deterministic for a given ``seed``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

__all__ = ["paint_balls", "strokes", "texture_only", "thin_tubes", "touching_blobs"]


def _noise(rng: np.random.Generator, shape, sigma: float) -> np.ndarray:
    return rng.normal(0.0, sigma, shape)


def touching_blobs(shape=(60, 96, 96), seed: int = 0, noise: float = 60.0) -> tuple[np.ndarray, np.ndarray]:
    """Class 1: a blob whose cross-section drifts and changes size along z; a second blob of the
    same density pressed against it (class 0, with the matrix)."""
    rng = np.random.default_rng(seed)
    nz, ny, nx = shape
    zz, yy, xx = np.indices(shape, dtype=np.float32)
    t = zz / max(nz - 1, 1)
    phase = rng.uniform(0, 2 * np.pi)
    cy = ny * (0.42 + 0.06 * np.sin(2 * np.pi * t + phase))
    cx = nx * (0.40 + 0.05 * np.cos(2 * np.pi * t + phase))
    ry = ny * (0.16 + 0.06 * np.sin(np.pi * t))
    rx = nx * (0.13 + 0.05 * np.sin(np.pi * t))
    rz = nz * 0.55
    structure = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 + ((zz - nz / 2) / rz) ** 2 <= 1.0
    # the neighbour: an ellipse on the structure's right, overlapping it (the structure wins)
    ny2, nx2 = cy + ny * 0.02, cx + rx + nx * 0.12
    neighbour = ((yy - ny2) / (ry * 1.1)) ** 2 + ((xx - nx2) / (nx * 0.15)) ** 2 + ((zz - nz / 2) / rz) ** 2 <= 1.0
    neighbour &= ~structure
    dense = structure | neighbour
    vol = 800.0 + 700.0 * dense + _noise(rng, shape, noise)
    vol = ndi.gaussian_filter(vol, 0.7) + _noise(rng, shape, noise / 2)
    return np.clip(vol, 0, 65535).astype(np.uint16), structure.astype(np.uint8)


def thin_tubes(shape=(60, 96, 96), seed: int = 0, n_tubes: int = 14, noise: float = 70.0) -> tuple[np.ndarray, np.ndarray]:
    """Class 1: tubes of radius 1.5-2.5 voxels along random oblique lines; class 0: matrix."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape, dtype=np.float32).reshape(3, -1).T
    truth = np.zeros(int(np.prod(shape)), bool)
    for _ in range(n_tubes):
        p = rng.uniform(0.1, 0.9, 3) * np.array(shape)
        d = rng.normal(size=3)
        d[0] *= 0.8
        d /= np.linalg.norm(d)
        r = rng.uniform(1.5, 2.5)
        rel = grid - p
        dist2 = (rel**2).sum(axis=1) - (rel @ d) ** 2
        truth |= dist2 <= r * r
    truth = truth.reshape(shape)
    vol = 1000.0 + 450.0 * ndi.gaussian_filter(truth.astype(np.float32), 0.6) + _noise(rng, shape, noise)
    return np.clip(vol, 0, 65535).astype(np.uint16), truth.astype(np.uint8)


def _grain(rng: np.random.Generator, shape, sigma) -> np.ndarray:
    """Smoothed noise scaled to a standard deviation of 120 grey values."""
    g = ndi.gaussian_filter(_noise(rng, shape, 1.0), sigma)
    return g * (120.0 / max(float(g.std()), 1e-6))


def texture_only(shape=(40, 96, 96), seed: int = 0, grain: str = "size") -> tuple[np.ndarray, np.ndarray]:
    """Class 1: a thick slab-like body; class 0 around it; same mean and spread, another grain:
    ``size``, coarse in the body and fine around; ``orientation``, elongated along z in the
    body and along y around (same grain size and spectrum up to a rotation)."""
    if grain not in ("size", "orientation"):
        raise ValueError(f"grain must be size or orientation; got {grain!r}")
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.indices(shape, dtype=np.float32)
    body = np.abs((yy - shape[1] * 0.5) + 0.4 * (xx - shape[2] * 0.5) + 0.3 * (zz - shape[0] / 2)) <= shape[1] * 0.18
    if grain == "size":
        outside = _noise(rng, shape, 120.0)  # fine grain drawn first: the same volumes as before
        inside = _grain(rng, shape, 2.0)
    else:
        inside, outside = _grain(rng, shape, (3.0, 0.8, 0.8)), _grain(rng, shape, (0.8, 3.0, 0.8))
    vol = 1000.0 + np.where(body, inside, outside)
    return np.clip(vol, 0, 65535).astype(np.uint16), body.astype(np.uint8)


def strokes(truth_slice: np.ndarray, step: int = 6, erode: int = 2, width: int = 1) -> np.ndarray:
    """Brush-like strokes of a truth slice: every ``step``-th row and column of each class,
    kept ``erode`` voxels away from class borders; annotation values (class + 1), 0 elsewhere."""
    out = np.zeros(truth_slice.shape, np.uint8)
    for c in np.unique(truth_slice):
        inside = truth_slice == c
        if erode:
            eroded = ndi.binary_erosion(inside, iterations=erode)
            inside = eroded if eroded.any() else inside
        lines = np.zeros_like(inside)
        for w in range(width):
            lines[w::step] = True
            lines[:, w::step] = True
        out[inside & lines] = c + 1
    return out


def paint_balls(slab: np.ndarray, z0: int, centres, radii, values, hollow=frozenset()) -> None:
    """Paint balls into ``slab``, the slices ``z0``.. of a volume, in place (benchmarks write
    big label volumes slab by slab this way): ball ``i`` (centre z, y, x in volume voxels,
    radius ``radii[i]``) gets ``values[i]``; balls whose index is in ``hollow`` keep a cavity
    (value 0) of 0.4 times their radius."""
    for i, ((cz, cy, cx), r) in enumerate(zip(centres, radii)):
        lo = [max(int(c - r), 0) for c in (cz - z0, cy, cx)]
        hi = [min(int(c + r) + 1, m) for c, m in zip((cz - z0, cy, cx), slab.shape)]
        if any(a >= b for a, b in zip(lo, hi)):
            continue
        bz, by, bx = np.ogrid[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        d2 = (bz + z0 - cz) ** 2 + (by - cy) ** 2 + (bx - cx) ** 2
        box = slab[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        box[d2 <= r * r] = values[i]
        if i in hollow:
            box[d2 <= (0.4 * r) ** 2] = 0
