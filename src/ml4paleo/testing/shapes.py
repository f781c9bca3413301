"""Binary shapes of known size for object and measurement tests and ``bench/objects.py``.

Everything is placed in physical coordinates (``voxel_size`` (z, y, x)), so one call draws the
same shape on an isotropic or a 3:1 anisotropic grid. A voxel is inside when its centre is.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["ellipsoid", "neck_distance", "plate", "rod", "touching_pair"]


def _coords(shape: Sequence[int], voxel_size: Sequence[float], box: tuple[slice, ...] | None = None):
    box = box or tuple(slice(0, n) for n in shape)
    return np.ogrid[tuple(slice(s.start * v, s.stop * v, v) for s, v in zip(box, voxel_size))]


def _box(centre, semi, shape, voxel_size) -> tuple[slice, ...]:
    return tuple(slice(max(0, int((c - a) / v) - 1), min(n, int((c + a) / v) + 2))
                 for c, a, n, v in zip(centre, semi, shape, voxel_size))


def ellipsoid(out: np.ndarray, centre: Sequence[float], semi: Sequence[float], voxel_size: Sequence[float],
              value: int = 1) -> None:
    """Set to ``value`` the voxels of ``out`` inside the axis-aligned ellipsoid (physical units)."""
    box = _box(centre, semi, out.shape, voxel_size)
    z, y, x = _coords(out.shape, voxel_size, box)
    inside = ((z - centre[0]) / semi[0]) ** 2 + ((y - centre[1]) / semi[1]) ** 2 + ((x - centre[2]) / semi[2]) ** 2 <= 1
    out[box][inside] = value


def neck_distance(r1: float, r2: float, neck: float) -> float:
    """Centre distance of two spheres (radii r1, r2) whose intersection circle has radius
    ``neck`` (a length, smaller than both radii): they touch through a neck of that radius."""
    return float(np.sqrt(r1 * r1 - neck * neck) + np.sqrt(r2 * r2 - neck * neck))


def touching_pair(out: np.ndarray, centre: Sequence[float], r1: float, r2: float, neck_ratio: float,
                  voxel_size: Sequence[float], value: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Two spheres along x through a neck of ``neck_ratio`` times the smaller radius; returns
    their centres (physical)."""
    d = neck_distance(r1, r2, neck_ratio * min(r1, r2))
    c1 = np.array([centre[0], centre[1], centre[2] - d / 2])
    c2 = np.array([centre[0], centre[1], centre[2] + d / 2])
    ellipsoid(out, c1, (r1,) * 3, voxel_size, value)
    ellipsoid(out, c2, (r2,) * 3, voxel_size, value)
    return c1, c2


def plate(out: np.ndarray, start: Sequence[float], size: Sequence[float], voxel_size: Sequence[float],
          value: int = 1) -> None:
    """An axis-aligned box from ``start`` of ``size`` (physical): voxels whose centre is inside."""
    z, y, x = _coords(out.shape, voxel_size)
    inside = ((z >= start[0]) & (z < start[0] + size[0]) & (y >= start[1]) & (y < start[1] + size[1])
              & (x >= start[2]) & (x < start[2] + size[2]))
    out[inside] = value


def rod(out: np.ndarray, centre_yx: Sequence[float], radius: float, z_range: Sequence[float],
        voxel_size: Sequence[float], value: int = 1) -> None:
    """A cylinder along z of ``radius`` (physical) between ``z_range``."""
    z, y, x = _coords(out.shape, voxel_size)
    inside = ((y - centre_yx[0]) ** 2 + (x - centre_yx[1]) ** 2 <= radius * radius) & (z >= z_range[0]) & (z < z_range[1])
    out[inside] = value
