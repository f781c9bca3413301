"""Measurements of one object (a boolean mask in its bounding box), in physical units.

Volume (voxel count times the voxel volume); surface area from marching cubes of the mask blurred
by :data:`SURFACE_SIGMA_VOXELS` voxel per axis (the bare mask's staircase overestimates a sphere by
10-18 %, a voxel-face count by ~50 %; ``voxel_face_area`` is given too, to compare); bounding box
and centroid; principal axes of the inertia ellipsoid (a sphere of diameter D has three axes of
length D) and their orientation; sphericity ``pi^(1/3) (6 V)^(2/3) / A`` from the same mesh; local
thickness (:func:`local_thickness`: mean, median, max); and the scan's grey value inside (mean and
standard deviation: density), when given. Figures and definitions: docs/objects.md, "Measurements".
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from scipy import ndimage as ndi
from skimage.measure import marching_cubes, mesh_surface_area

from ml4paleo.compute.objects import check_mask, check_spacing

__all__ = ["SURFACE_SIGMA_VOXELS", "local_thickness", "measure_object", "mesh_of_mask", "thickness_radii"]

SURFACE_SIGMA_VOXELS = 1.0
"""Gaussian blur (voxels) of a mask before marching cubes: removes the staircase at the cost of
rounding edges finer than a voxel or two."""
THICKNESS_STEP_VOXELS = 0.25
"""Radius step of :func:`local_thickness` in units of the smallest voxel edge."""


def mesh_of_mask(mask: np.ndarray, voxel_size: Sequence[float], sigma: float = SURFACE_SIGMA_VOXELS
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(vertices (physical z, y, x, relative to the mask's first voxel), faces) of the blurred
    mask's 0.5 level: a closed surface (the mask is padded with background)."""
    mask = check_mask(mask)
    vs = check_spacing(voxel_size)
    pad = int(np.ceil(3 * sigma)) + 1
    field = np.pad(mask, pad).astype(np.float32)
    if sigma > 0:
        field = ndi.gaussian_filter(field, sigma, truncate=3.0)
    if field.max() <= 0.5:  # a speck thinner than the blur: mesh it unblurred
        field = np.pad(mask, 1).astype(np.float32)
        pad = 1
    verts, faces, _, _ = marching_cubes(field, 0.5, spacing=vs)
    return verts - np.asarray(vs) * pad, faces


def _mesh_volume(verts: np.ndarray, faces: np.ndarray) -> float:
    a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    return float(abs(np.einsum("ij,ij->i", a, np.cross(b, c)).sum()) / 6.0)


def voxel_face_area(mask: np.ndarray, voxel_size: Sequence[float]) -> float:
    """Area of the faces between the mask and the outside (the "Lego" surface)."""
    vs = check_spacing(voxel_size)
    m = np.pad(check_mask(mask), 1).astype(np.int8)
    face = (vs[1] * vs[2], vs[0] * vs[2], vs[0] * vs[1])
    return float(sum(np.count_nonzero(np.diff(m, axis=a)) * face[a] for a in range(3)))


def thickness_radii(radius: np.ndarray, voxel_size: Sequence[float]) -> np.ndarray:
    """The ball radii :func:`local_thickness` tries: the radii of the ridge of ``radius`` (voxels
    no neighbour exceeds: the centres of the maximal balls), rounded down to steps of
    :data:`THICKNESS_STEP_VOXELS` of the smallest voxel edge. A ball centred off the ridge lies
    in a ridge ball, so no other radius can be a voxel's thickness; a sphere needs one radius,
    a plate or a rod a few, not one per step up to the largest."""
    step = THICKNESS_STEP_VOXELS * min(voxel_size)
    ridge = (radius > 0) & (ndi.maximum_filter(radius, size=3, mode="constant") <= radius)
    return np.unique(np.floor(radius[ridge] / step) * step)


def _inscribed_radius(mask: np.ndarray, vs: tuple[float, float, float]) -> np.ndarray:
    """Distance from each voxel centre to the object's surface, taken as the distance to the
    nearest outside voxel's centre less half that voxel's edge along the axis nearest to the
    direction (the surface lies between the last voxel inside and the first outside): a plate
    of T voxels then has radius T/2 at its middle voxel, not T/2 + 1/2, whatever the voxel shape."""
    padded = np.pad(mask, 1)
    dist, nearest = ndi.distance_transform_edt(padded, sampling=vs, return_indices=True)
    grid = np.indices(padded.shape, sparse=True)
    longest = np.zeros(padded.shape, np.float32)  # the largest per-axis gap so far, and half that axis' edge
    half = np.zeros(padded.shape, np.float32)
    for a in range(3):  # axis by axis: a few float32 arrays, not three float64 gaps stacked
        gap = np.abs(nearest[a] - grid[a]).astype(np.float32) * np.float32(vs[a])
        wider = gap > longest
        longest[wider], half[wider] = gap[wider], vs[a] / 2.0
    del nearest, longest, gap, wider
    r = (dist - half)[1:-1, 1:-1, 1:-1]
    r[~mask] = 0.0
    return r.astype(np.float32)


def local_thickness(mask: np.ndarray, voxel_size: Sequence[float]) -> np.ndarray:
    """float32 local thickness (physical units, 0 outside): at each voxel, the diameter of the
    largest ball that lies inside the object and contains the voxel (BoneJ's definition,
    Hildebrand & Ruegsegger 1997).

    A ball of radius r centred at c lies inside when c's distance to the outside is at least r;
    the voxels it covers are those within r of such a centre, i.e. ``distance_to({centres of
    radius >= r}) <= r``: one exact distance transform per tried radius (:func:`thickness_radii`,
    ``sampling`` = voxel size, so balls are round in physical space whatever the voxel shape).
    Thicknesses are rounded down to the radius step (a quarter of the smallest voxel edge, so
    less than half a voxel; radii: :func:`thickness_radii`), and a plate of T voxels measures T (odd T) or T - 1 (even T: no voxel
    centre lies at its mid-plane), as BoneJ's voxel-centred spheres do.
    """
    mask = check_mask(mask)
    vs = check_spacing(voxel_size)
    out = np.zeros(mask.shape, np.float32)
    if not mask.any():
        return out
    radius = _inscribed_radius(mask, vs)
    r_min = min(vs) / 2.0
    out[mask] = 2.0 * max(float(radius[mask].min()), r_min)
    for r in thickness_radii(radius, vs):
        if r <= 0:
            continue
        centres = radius >= r
        covered = ndi.distance_transform_edt(~centres, sampling=vs) <= r
        np.maximum(out, np.where(covered & mask, np.float32(2.0 * r), np.float32(0)), out=out)
    return out


def _principal_axes(coords: np.ndarray, vs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(full lengths of the inertia ellipsoid's axes, largest first; their unit vectors as rows)."""
    centred = coords - coords.mean(axis=0)
    cov = centred.T @ centred / len(coords) + np.diag(vs**2 / 12.0)  # each voxel is a box, not a point
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1]
    lengths = 2.0 * np.sqrt(5.0 * np.maximum(values[order], 0.0))
    axes = vectors[:, order].T
    largest = axes[np.arange(3), np.abs(axes).argmax(axis=1)]
    axes *= np.where(largest < 0, -1.0, 1.0)[:, None]  # a stable sign: largest component positive
    return lengths, axes


def measure_object(mask: np.ndarray, voxel_size: Sequence[float], origin: Sequence[int] = (0, 0, 0),
                   grey: np.ndarray | None = None, *, thickness: bool = True) -> dict[str, Any]:
    """Measurements of one object; ``mask`` is its bounding box (or any box holding it) whose
    first voxel is ``origin`` (voxel indices in the volume); ``grey`` the scan over that box."""
    mask = check_mask(mask)
    vs_t = check_spacing(voxel_size)
    vs = np.asarray(vs_t)
    idx = np.nonzero(mask)
    n = len(idx[0])
    if n == 0:
        raise ValueError("measure_object: the mask is empty")
    lo = np.array([int(i.min()) for i in idx])
    hi = np.array([int(i.max()) + 1 for i in idx])
    box = mask[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    coords = (np.stack(idx, axis=1) + np.asarray(origin)) * vs
    centroid = coords.mean(axis=0)
    lengths, axes = _principal_axes(coords, vs)
    verts, faces = mesh_of_mask(box, vs_t)
    area = float(mesh_surface_area(verts, faces)) if len(faces) else 0.0
    mesh_volume = _mesh_volume(verts, faces) if len(faces) else 0.0
    out: dict[str, Any] = {
        "voxel_count": int(n),
        "volume": float(n * vs.prod()),
        "surface_area": area,
        "voxel_face_area": voxel_face_area(box, vs_t),
        "mesh_volume": mesh_volume,
        "sphericity": float(np.pi ** (1 / 3) * (6 * mesh_volume) ** (2 / 3) / area) if area > 0 else 0.0,
        "bbox_start": [int(v) for v in lo + np.asarray(origin)],
        "bbox_stop": [int(v) for v in hi + np.asarray(origin)],
        "centroid": [float(v) for v in centroid],
        "axis_lengths": [float(v) for v in lengths],
        "axes": [[float(v) for v in row] for row in axes],
    }
    if thickness:
        t = local_thickness(box, vs_t)[box]
        out.update(thickness_mean=float(t.mean()), thickness_median=float(np.median(t)), thickness_max=float(t.max()))
    if grey is not None:
        values = np.asarray(grey)[mask].astype(np.float64)
        out.update(grey_mean=float(values.mean()), grey_std=float(values.std()))
    return out
