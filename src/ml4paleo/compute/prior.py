"""A shape prior from painted slices: each class's outline interpolated between the slices
that carry it (shape-based interpolation of signed distances), numpy in, numpy out.

Why: where a fossil and its matrix have the same density, no filter of the image tells them
apart, but the painted outlines do, and a person segments such a scan by following how the
outline changes from one painted slice to the next. Per class ``k`` and painted slice ``i``
the prior holds the signed distance ``d_ik`` (negative inside, positive outside, in physical
units of the slice's y/x voxel size, the zero level half a voxel outside the painted
voxels). Between two painted slices ``a < z < b`` it is the linear blend
``(1 - t) d_a + t d_b``, ``t = (z - a) / (b - a)``, whose zero level morphs one outline into the
next (several components per slice and splits/merges come for free). Beyond the first or
last painted slice it decays as a cone: structures (classes 1..) shrink by the physical
distance travelled along z, ``d_end + |z - z_end| * dz``, and the background (class 0, the
matrix) grows by as much, so a structure does not continue forever (anisotropic voxels count in
their own units). A class absent from a painted slice tapers towards it the same way: its
outline on the other slice erodes uniformly and its deepest voxel vanishes exactly at the
absent slice (a class covering a whole slice grows to fill it, likewise).

The prediction of the prior alone is the class of smallest signed distance; as features for a
classifier it gives every class's distance plus the physical distance to the nearest painted
slice (how far the prior had to reach). Any region can be asked for, with some painted slices
left out (``exclude``): leave-one-slice-out validation and training rows must not see the
slice they are scored or trained on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Collection, Sequence

import numpy as np
from scipy import ndimage as ndi

from ml4paleo.errors import InputError

__all__ = ["ShapePrior", "signed_distance"]


def signed_distance(mask: np.ndarray, spacing: Sequence[float] = (1.0, 1.0)) -> np.ndarray:
    """(y, x) float32 signed distance of a 2D boolean ``mask`` in physical units: negative
    inside, positive outside, zero half a voxel outside the mask's own voxels; ``+inf``
    everywhere for an empty mask, ``-inf`` for a full one (no outline to measure from)."""
    mask = np.asarray(mask, bool)
    half = 0.5 * float(min(spacing))
    if mask.all():
        return np.full(mask.shape, -np.inf, np.float32)
    if not mask.any():
        return np.full(mask.shape, np.inf, np.float32)
    outside = ndi.distance_transform_edt(~mask, sampling=spacing)
    inside = ndi.distance_transform_edt(mask, sampling=spacing)
    return np.where(mask, half - inside, outside - half).astype(np.float32)


@dataclass
class ShapePrior:
    """Interpolation of painted class masks between their slices.

    ``slices``: sorted z indices of the painted slices; ``masks``: (n_slices, y, x) class
    indices 0..``n_classes``-1, every voxel of those slices labeled; ``spacing``: the voxel
    size (z, y, x) in physical units."""

    slices: tuple[int, ...]
    masks: np.ndarray
    n_classes: int
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    _sdf: dict[tuple[int, int], np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.slices = tuple(int(z) for z in self.slices)
        self.masks = np.asarray(self.masks)
        self.spacing = tuple(float(s) for s in self.spacing)  # type: ignore[assignment]
        if self.masks.ndim != 3 or self.masks.shape[0] != len(self.slices):
            raise InputError(f"the prior needs one 2D mask per slice; got masks {self.masks.shape} for {len(self.slices)} slices")
        if list(self.slices) != sorted(set(self.slices)):
            raise InputError(f"painted slices must be distinct and sorted; got {list(self.slices)}")
        if len(self.spacing) != 3 or not all(s > 0 for s in self.spacing):
            raise InputError(f"spacing must be three positive numbers; got {self.spacing}")
        if self.n_classes < 2:
            raise InputError(f"the prior needs at least two classes; got {self.n_classes}")

    @property
    def n_features(self) -> int:
        """Columns of :meth:`features`: one distance per class, and the distance along z."""
        return self.n_classes + 1

    @property
    def _scale(self) -> float:
        """A length larger than any distance on a slice (the slice's physical diagonal)."""
        return float(np.hypot(self.masks.shape[1] * self.spacing[1], self.masks.shape[2] * self.spacing[2]))

    def slice_distance(self, i: int, k: int) -> np.ndarray:
        """Signed distance of class ``k`` on the ``i``-th painted slice (cached; ``inf`` where
        the class is absent from that slice)."""
        key = (int(i), int(k))
        if key not in self._sdf:
            self._sdf[key] = signed_distance(self.masks[i] == k, self.spacing[1:])
        return self._sdf[key]

    def _allowed(self, exclude: Collection[int]) -> np.ndarray:
        return np.array([i for i, z in enumerate(self.slices) if z not in exclude], dtype=np.intp)

    def distances(self, start: Sequence[int], stop: Sequence[int], exclude: Collection[int] = ()) -> np.ndarray:
        """(n_classes, z, y, x) float32 interpolated signed distance of region ``start:stop``,
        from the painted slices not in ``exclude`` (all ``inf`` if none is left)."""
        (z0, y0, x0), (z1, y1, x1) = start, stop
        window = (slice(y0, y1), slice(x0, x1))
        out = np.empty((self.n_classes, z1 - z0, y1 - y0, x1 - x0), np.float32)
        allowed = self._allowed(exclude)
        if allowed.size == 0:
            out.fill(np.inf)
            return out
        zs = np.array(self.slices)[allowed]
        dz = self.spacing[0]
        for j, z in enumerate(range(z0, z1)):
            pos = int(np.searchsorted(zs, z))
            exact = pos < zs.size and zs[pos] == z
            for k in range(self.n_classes):
                if exact:
                    out[k, j] = self.slice_distance(allowed[pos], k)[window]
                elif pos == 0 or pos == zs.size:  # beyond the painted range: structures shrink, background grows
                    end = 0 if pos == 0 else zs.size - 1
                    grow = -1.0 if k == 0 else 1.0
                    out[k, j] = self.slice_distance(allowed[end], k)[window] + grow * abs(z - zs[end]) * dz
                else:
                    a, b = pos - 1, pos
                    t = (z - zs[a]) / (zs[b] - zs[a])
                    out[k, j] = self._blend(allowed[a], allowed[b], k, t, window)
        return out

    def _blend(self, ia: int, ib: int, k: int, t: float, window) -> np.ndarray:
        da, db = self.slice_distance(ia, k), self.slice_distance(ib, k)
        flat_a, flat_b = not np.isfinite(da.flat[0]), not np.isfinite(db.flat[0])  # absent (+inf) or everywhere (-inf)
        if flat_a and flat_b:
            return np.full(da[window].shape, da.flat[0] if t < 0.5 else db.flat[0], np.float32)  # the nearer state
        if flat_a or flat_b:
            present, flat = (db, da.flat[0]) if flat_a else (da, db.flat[0])
            # the outline moves uniformly towards the flat slice's state and reaches it there: an
            # absent class tapers to its deepest point, a class present everywhere swallows its
            # farthest voxel, as a cone from the other slice would
            half = 0.5 * min(self.spacing[1:])
            shift = max(float(-present.min()), 0.0) + half if flat > 0 else -(max(float(present.max()), 0.0) + half)
            share = t if flat_b else 1.0 - t  # how far along towards the flat slice
            return (present[window] + share * shift).astype(np.float32)
        return ((1.0 - t) * da[window] + t * db[window]).astype(np.float32)

    def z_distance(self, start: Sequence[int], stop: Sequence[int], exclude: Collection[int] = ()) -> np.ndarray:
        """(z,) physical distance from each slice of the region to the nearest painted slice
        not in ``exclude`` (``inf`` if none)."""
        zs = np.array(self.slices)[self._allowed(exclude)]
        planes = np.arange(start[0], stop[0])
        if zs.size == 0:
            return np.full(planes.shape, np.inf, np.float32)
        return (np.min(np.abs(planes[:, None] - zs[None, :]), axis=1) * self.spacing[0]).astype(np.float32)

    def features(self, start: Sequence[int], stop: Sequence[int], exclude: Collection[int] = ()) -> np.ndarray:
        """(z, y, x, n_classes + 1) float32: each class's signed distance (clipped to the
        slice diagonal, so absent classes stay finite) and the distance to the nearest painted
        slice, for a classifier to weigh against the image."""
        scale = self._scale
        dist = np.clip(self.distances(start, stop, exclude), -scale, scale)
        zdist = np.minimum(self.z_distance(start, stop, exclude), scale)
        shape = dist.shape[1:]
        out = np.empty(shape + (self.n_features,), np.float32)
        out[..., : self.n_classes] = np.moveaxis(dist, 0, -1)
        out[..., self.n_classes] = zdist[:, None, None]
        return out

    def labels(self, start: Sequence[int], stop: Sequence[int], exclude: Collection[int] = ()) -> np.ndarray:
        """(z, y, x) uint8 class of smallest interpolated distance (the prior's own answer)."""
        return np.argmin(self.distances(start, stop, exclude), axis=0).astype(np.uint8)

    def proba(self, start: Sequence[int], stop: Sequence[int], exclude: Collection[int] = ()) -> np.ndarray:
        """(z, y, x, n_classes) float32 soft version of :meth:`labels`: a softmax of minus the
        distance over one voxel, so the probability is 1/2 on the interpolated outline."""
        dist = np.clip(self.distances(start, stop, exclude), -self._scale, self._scale)
        logits = -dist / float(min(self.spacing[1:]))
        logits -= logits.max(axis=0, keepdims=True)
        e = np.exp(logits)
        return np.moveaxis(e / e.sum(axis=0, keepdims=True), 0, -1).astype(np.float32)
