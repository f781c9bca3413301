"""How far a correction reaches: a weight per voxel from the physical distance to corrected voxels.

Why: a correction is a dab painted where the model was wrong. Its rows teach the classifier
everywhere at once, and a few rows of an ambiguous kind (a partial-volume rim a thin tube
leaves) can turn every similar voxel of the volume (docs/decisions.md, "A correction acts
where it was painted"). The models that take corrections (:mod:`ml4paleo.models._local`) weigh
the model that learned them against the one that did not by this weight: 1 within
``radius / 2`` of a corrected voxel, falling linearly to 0 at ``radius``, in the volume's units.
Numpy in, numpy out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ml4paleo.compute.painted import PaintedPlane

__all__ = ["CorrectionReach"]


@dataclass(frozen=True)
class _Near:
    """One corrected plane: the in-plane distance (physical units) to its painted voxels over
    the box ``u0:u0+rows, v0:v0+cols`` of the plane that lies within reach of them."""

    axis: int
    index: int
    u0: int
    v0: int
    distance: np.ndarray


class CorrectionReach:
    """The weight of corrections (painted planes) at every voxel of a region.

    The 3D distance from a voxel to the painted voxels of a plane is exactly
    ``sqrt(d_plane^2 + h^2)``: ``d_plane`` the in-plane distance at the voxel's foot on the plane,
    ``h`` its physical height above the plane; so one 2D distance map per plane serves every region."""

    def __init__(self, planes: Iterable[PaintedPlane], voxel_size: Sequence[float], radius: float) -> None:
        self.voxel_size = tuple(float(v) for v in voxel_size)
        self.radius = float(radius)
        self._near: list[_Near] = []
        for axis, index, mask in planes:
            painted = np.asarray(mask) > 0
            if not painted.any() or not self.radius > 0:
                continue
            spacing = [self.voxel_size[a] for a in range(3) if a != axis]
            pad = [int(np.ceil(self.radius / s)) for s in spacing]
            (u_lo, v_lo), (u_hi, v_hi) = np.argwhere(painted).min(0), np.argwhere(painted).max(0) + 1
            u0, v0 = max(u_lo - pad[0], 0), max(v_lo - pad[1], 0)
            u1, v1 = min(u_hi + pad[0], painted.shape[0]), min(v_hi + pad[1], painted.shape[1])
            box = painted[u0:u1, v0:v1]
            from scipy import ndimage as ndi  # lazy: a segmentation without corrections never imports scipy

            self._near.append(_Near(int(axis), int(index), int(u0), int(v0),
                                    ndi.distance_transform_edt(~box, sampling=spacing).astype(np.float32)))

    def __bool__(self) -> bool:
        return bool(self._near)

    def weight(self, start: Sequence[int], stop: Sequence[int]) -> np.ndarray:
        """(z, y, x) float32 weights in [0, 1] of region ``start:stop``: 1 within half the radius of
        a corrected voxel, 0 from the radius on, linear between."""
        out = np.zeros([b - a for a, b in zip(start, stop)], np.float32)
        half = self.radius / 2
        for near in self._near:
            a = near.axis
            rest = [d for d in range(3) if d != a]
            (ru, rv), (su, sv) = ([start[d] for d in rest], [stop[d] for d in rest])
            # the box of the plane inside the region, in plane and region coordinates
            bu0, bv0 = max(ru, near.u0), max(rv, near.v0)
            bu1, bv1 = min(su, near.u0 + near.distance.shape[0]), min(sv, near.v0 + near.distance.shape[1])
            if bu0 >= bu1 or bv0 >= bv1:
                continue
            plane = near.distance[bu0 - near.u0:bu1 - near.u0, bv0 - near.v0:bv1 - near.v0]
            for pos in range(start[a], stop[a]):
                h = abs(pos - near.index) * self.voxel_size[a]
                if h >= self.radius:
                    continue
                w = np.clip((self.radius - np.sqrt(plane * plane + h * h)) / half, 0.0, 1.0)
                at: list = [slice(None)] * 3
                at[a] = pos - start[a]
                at[rest[0]] = slice(bu0 - ru, bu1 - ru)
                at[rest[1]] = slice(bv0 - rv, bv1 - rv)
                np.maximum(out[tuple(at)], w, out=out[tuple(at)])
        return out
