"""Generated CT-like volumes whose truth is known, for the cases that decide a method.

- :func:`touching_blobs`: two touching blobs of the same density; only painted outlines tell the
  structure from its neighbour (a fossil against bone of the same density, a cast in its mould).
- :func:`thin_tubes`: thin bright tubes crossing obliquely; only appearance tells them apart.
- :func:`texture_only`: the matrix's mean grey value with a coarser grain (``grain="size"``) or the
  same grain lying another way (``grain="orientation"``).
- :func:`texture_family`: bone against sediment in a convoluted shape, classes of exactly the same
  mean and spread: lamellae lying another way (``orientation``), long against short lamellae
  (``length``), lamellae against an isotropic grain (``anisotropy``).

Each returns ``(volume uint16, truth uint8 class indices)``, axes (z, y, x), and is deterministic
for a given ``seed``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

__all__ = ["TEXTURE_KINDS", "paint_balls", "strokes", "texture_family", "texture_only", "thin_tubes", "touching_blobs"]

TEXTURE_KINDS: tuple[str, ...] = ("orientation", "length", "anisotropy")


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


def _oriented_grain(rng: np.random.Generator, shape, sigmas, frame: np.ndarray) -> np.ndarray:
    """White noise smoothed by a Gaussian of standard deviations ``sigmas`` (voxels) along the
    rows of ``frame`` (3 orthonormal (z, y, x) directions): any orientation, not only the
    axes, filtered in Fourier space (periodic, which stationary noise does not mind)."""
    cov = frame.T @ np.diag(np.square(np.asarray(sigmas, float))) @ frame
    k = np.meshgrid(*(np.fft.fftfreq(n) for n in shape[:-1]), np.fft.rfftfreq(shape[-1]), indexing="ij")
    quad = sum(cov[i, j] * k[i] * k[j] for i in range(3) for j in range(3))
    spectrum = np.fft.rfftn(_noise(rng, shape, 1.0)) * np.exp(-2.0 * np.pi ** 2 * quad)
    return np.fft.irfftn(spectrum, s=shape, axes=(0, 1, 2))


def _lamella_frame(angle_deg: float, tilt_deg: float = 0.0) -> np.ndarray:
    """Rows: the lamellae's normal (in the y-x plane at ``angle_deg`` from x, tilted out of it
    towards z by ``tilt_deg``), then two directions within the lamellae."""
    a, t = np.radians(angle_deg), np.radians(tilt_deg)
    normal = np.array([np.sin(t), np.cos(t) * np.sin(a), np.cos(t) * np.cos(a)])
    helper = np.array([1.0, 0.0, 0.0]) if abs(normal[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = np.cross(normal, helper)
    u /= np.linalg.norm(u)
    return np.stack([normal, u, np.cross(normal, u)])


def _bend(rng: np.random.Generator, fields: list[np.ndarray], amplitude: float, scale: float) -> list[np.ndarray]:
    """The fields resampled through one smooth random displacement (the same for all), so
    straight lamellae bend as real ones do."""
    shape = fields[0].shape
    grid = np.indices(shape, dtype=np.float32)
    for axis in range(3):
        d = ndi.gaussian_filter(_noise(rng, shape, 1.0), scale, mode="wrap")
        grid[axis] += d * (amplitude / max(float(d.std()), 1e-6))
    return [ndi.map_coordinates(f, grid, order=1, mode="mirror") for f in fields]


def _convoluted_body(rng: np.random.Generator, shape, fraction: float) -> np.ndarray:
    """A smooth random body filling ``fraction`` of the volume: lobes and bays in every
    direction, so no plane or slab separates it from the matrix."""
    field = ndi.gaussian_filter(_noise(rng, shape, 1.0), min(shape) / 7.0, mode="wrap")
    return field > np.quantile(field, 1.0 - fraction)


def _standardised(field: np.ndarray, where: np.ndarray, spread: float) -> np.ndarray:
    """``field`` shifted and scaled so that its voxels in ``where`` have mean 0, std ``spread``."""
    part = field[where]
    return (field - part.mean()) * (spread / max(float(part.std()), 1e-6))


def texture_family(kind: str, shape=(48, 64, 64), seed: int = 0, noise: float = 30.0) -> tuple[np.ndarray, np.ndarray]:
    """Class 1: a convoluted body; class 0: the matrix around it; both of mean 1000 and grain
    spread 120 grey values (exactly, per class) plus the same white noise; they differ only in
    ``kind`` (one of :data:`TEXTURE_KINDS`):

    - ``orientation``: bent lamellae (thin across, 0.8 voxel; long within, 4) whose normal
      lies at 30 degrees from x in the body and 120 degrees around it: the same grain turned;
    - ``length``: lamellae all lying the same way, long (6 voxels) in the body, short (1.6) around;
    - ``anisotropy``: lamellae in domains of three orientations in the body, an isotropic grain
      of the same spread around.
    """
    if kind not in TEXTURE_KINDS:
        raise ValueError(f"kind must be one of {', '.join(TEXTURE_KINDS)}; got {kind!r}")
    rng = np.random.default_rng(seed)
    shape = tuple(int(n) for n in shape)
    body = _convoluted_body(rng, shape, 0.4)
    if kind == "orientation":
        inside = _oriented_grain(rng, shape, (0.8, 4.0, 4.0), _lamella_frame(30.0))
        outside = _oriented_grain(rng, shape, (0.8, 4.0, 4.0), _lamella_frame(120.0))
    elif kind == "length":
        frame = _lamella_frame(60.0, 20.0)
        inside = _oriented_grain(rng, shape, (0.8, 6.0, 6.0), frame)
        outside = _oriented_grain(rng, shape, (0.8, 1.6, 1.6), frame)
    else:
        frames = [_lamella_frame(a, t) for a, t in ((0.0, 0.0), (60.0, 40.0), (120.0, -40.0))]
        lamellae = [_oriented_grain(rng, shape, (0.8, 4.0, 4.0), f) for f in frames]
        # domains: each voxel takes the lamellae of the largest of three smooth random fields
        votes = np.stack([ndi.gaussian_filter(_noise(rng, shape, 1.0), min(shape) / 10.0, mode="wrap") for _ in frames])
        inside = np.choose(np.argmax(votes, axis=0), [g / g.std() for g in lamellae])
        outside = _oriented_grain(rng, shape, (1.6, 1.6, 1.6), np.eye(3))
    inside, outside = _bend(rng, [inside, outside], amplitude=2.0, scale=min(shape) / 6.0)
    grain = np.where(body, _standardised(inside, body, 120.0), _standardised(outside, ~body, 120.0))
    vol = 1000.0 + grain + _noise(rng, shape, noise)
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
