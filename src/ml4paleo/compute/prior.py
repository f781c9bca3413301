"""A shape prior from painted slices: each class's outline interpolated between the slices
that carry it (shape-based interpolation of signed distances), numpy in, numpy out.

Why: where a fossil and its matrix have the same density, no filter of the image tells them
apart, but the painted outlines do. Per class and painted slice the prior holds the signed
distance (negative inside, in physical units); between two painted slices it is their linear
blend, whose zero level morphs one outline into the next; past the first or last painted slice
structures shrink as a cone, so a structure does not continue forever. Planes painted across the
stack correct this *base* interpolation by what it gets wrong on them, mixed by inverse squared
distance, so the prior is exact on every painted plane and a plane bounds the interpolation where
the base slices are far. As features it gives every class's distance plus the distance to the
nearest painted plane. Any region can be asked for, with some painted planes left out
(``exclude``: :class:`ml4paleo.planes.SliceRef` values), as leave-one-slice-out needs. The
formulas and the measurements: docs/decisions.md and docs/benchmarks.md ("Shape prior").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Collection, Mapping, Sequence

import numpy as np

from ml4paleo.errors import InputError
from ml4paleo.planes import AXES, SliceRef

__all__ = ["ShapePrior", "signed_distance"]

FRAMES = ((0, 1, 2), (1, 0, 2), (2, 0, 1))
"""Volume axes in the frame of the planes across each axis: a y plane's masks are (z, x), an
x plane's (z, y), as annotations store them."""
POWER = 2.0
"""The inverse distance's power in the mix of base and planes (1 to 4 changed Dice by at most 0.01:
docs/benchmarks.md, "Shape prior")."""


def _consistent(base: np.ndarray, own: np.ndarray, half: float, scale: float) -> np.ndarray:
    """The base's distances on a painted plane made consistent with the plane's own (``own``,
    clipped to ``scale``). A distance measured within the plane bounds the volume's from above
    (the nearest outline in 3D may lie off the plane): where the base is on the plane's side,
    it keeps its value within that bound, so a plane painted from the base's own answer corrects
    nothing; where it is on the other side, it takes the plane's value, or just past the outline
    for a class absent from (or covering) the whole plane, whose distance bounds nothing."""
    bounded = np.abs(own) < scale
    other_side = np.where(bounded, own, np.where(own > 0, half, -half))
    same = np.where(own > 0, np.minimum(base, own), np.maximum(base, own))
    return np.where((own > 0) == (base > 0), same, other_side).astype(np.float32)


def signed_distance(mask: np.ndarray, spacing: Sequence[float] = (1.0, 1.0)) -> np.ndarray:
    """(u, v) float32 signed distance of a 2D boolean ``mask`` in physical units: negative
    inside, positive outside, zero half a voxel outside the mask's own voxels; ``+inf``
    everywhere for an empty mask, ``-inf`` for a full one (no outline to measure from)."""
    mask = np.asarray(mask, bool)
    half = 0.5 * float(min(spacing))
    if mask.all():
        return np.full(mask.shape, -np.inf, np.float32)
    if not mask.any():
        return np.full(mask.shape, np.inf, np.float32)
    from scipy import ndimage as ndi  # lazy: a segmentation of a model without a prior never imports scipy

    outside = ndi.distance_transform_edt(~mask, sampling=spacing)
    inside = ndi.distance_transform_edt(mask, sampling=spacing)
    return np.where(mask, half - inside, outside - half).astype(np.float32)


class _Stack:
    """Interpolation along the first axis of its frame between painted planes across it."""

    def __init__(self, indices: Sequence[int], masks: np.ndarray, n_classes: int, spacing: Sequence[float]) -> None:
        self.indices = np.asarray(indices, np.int64)
        self.masks = masks
        self.n_classes = n_classes
        self.spacing = tuple(spacing)
        self._sdf: dict[tuple[int, int], np.ndarray] = {}

    def slice_distance(self, i: int, k: int) -> np.ndarray:
        """Signed distance of class ``k`` on the ``i``-th plane (cached)."""
        key = (int(i), int(k))
        if key not in self._sdf:
            self._sdf[key] = signed_distance(self.masks[i] == k, self.spacing[1:])
        return self._sdf[key]

    def allowed(self, exclude: Collection[int]) -> np.ndarray:
        return np.array([i for i, z in enumerate(self.indices) if int(z) not in exclude], dtype=np.intp)

    def distances(self, start: Sequence[int], stop: Sequence[int], exclude: Collection[int]) -> np.ndarray:
        """(n_classes, a, u, v) float32 interpolated signed distance of a region of the frame."""
        (z0, y0, x0), (z1, y1, x1) = start, stop
        window = (slice(y0, y1), slice(x0, x1))
        out = np.empty((self.n_classes, z1 - z0, y1 - y0, x1 - x0), np.float32)
        allowed = self.allowed(exclude)
        if allowed.size == 0:
            out.fill(np.inf)
            return out
        zs = self.indices[allowed]
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

    def nearest(self, a0: int, a1: int, exclude: Collection[int]) -> np.ndarray:
        """(a,) physical distance from planes ``a0:a1`` to the nearest painted one (``inf`` if none)."""
        zs = self.indices[self.allowed(exclude)]
        planes = np.arange(a0, a1)
        if zs.size == 0:
            return np.full(planes.shape, np.inf, np.float32)
        return (np.min(np.abs(planes[:, None] - zs[None, :]), axis=1) * self.spacing[0]).astype(np.float32)


def _inverse_power(r: np.ndarray) -> np.ndarray:
    """``1 / r**POWER`` (0 where ``r`` is 0 or infinite: those voxels are decided apart)."""
    r = np.asarray(r, np.float32)
    return np.divide(1.0, r ** POWER, out=np.zeros_like(r), where=(r > 0) & np.isfinite(r))


def _split(exclude: Collection) -> tuple[set[int], set[int], set[int]]:
    """Excluded plane indices per axis, from planes (:class:`SliceRef`, or a z index)."""
    out: tuple[set[int], set[int], set[int]] = (set(), set(), set())
    for ref in map(SliceRef.of, exclude):
        out[ref.dim].add(ref.index)
    return out


@dataclass
class ShapePrior:
    """Interpolation of painted class masks between their slices.

    ``slices``: sorted z indices of the painted slices; ``masks``: (n_slices, y, x) class
    indices 0..``n_classes``-1, every voxel of those slices labeled (shape (0, y, x) when no z
    slice is painted); ``spacing``: the voxel size (z, y, x) in physical units; ``planes``:
    painted planes across the stack, ``SliceRef("y", i)`` -> (z, x) and ``SliceRef("x", i)`` ->
    (z, y) class masks; ``guessed``: painted slices and planes whose masks are the prior's own
    answer corrected near one-class strokes (corrections), not an outline the user drew: they
    shape the interpolation, but a model keeps only their painted voxels (:meth:`painted`)."""

    slices: tuple[int, ...]
    masks: np.ndarray
    n_classes: int
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    planes: Mapping[SliceRef, np.ndarray] = field(default_factory=dict)
    guessed: frozenset[SliceRef] = frozenset()
    _stacks: tuple[_Stack, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.slices = tuple(int(z) for z in self.slices)
        self.masks = np.asarray(self.masks)
        self.spacing = tuple(float(s) for s in self.spacing)  # type: ignore[assignment]
        if self.masks.ndim != 3 or self.masks.shape[0] != len(self.slices):
            raise InputError(f"the prior needs one 2D mask per slice; got masks {self.masks.shape} "
                             f"for {len(self.slices)} slices")
        if list(self.slices) != sorted(set(self.slices)):
            raise InputError(f"painted slices must be distinct and sorted; got {list(self.slices)}")
        if len(self.spacing) != 3 or not all(s > 0 for s in self.spacing):
            raise InputError(f"spacing must be three positive numbers; got {self.spacing}")
        if self.n_classes < 2:
            raise InputError(f"the prior needs at least two classes; got {self.n_classes}")
        planes = {SliceRef.of(ref): np.asarray(m) for ref, m in self.planes.items()}
        self.planes = {ref: planes[ref] for ref in sorted(planes)}
        _, Y, X = self.masks.shape
        depth = {m.shape[0] for m in self.planes.values()}
        for (axis, index), m in (((ref.axis, ref.index), m) for ref, m in self.planes.items()):
            side = {"y": X, "x": Y}.get(axis)
            if side is None or m.ndim != 2 or m.shape[1] != side or len(depth) != 1:
                raise InputError(f"plane {axis}{index} of the prior must be a (z, {'x' if axis == 'y' else 'y'}) mask "
                                 f"of the volume's size; got {m.shape}")
            if not 0 <= index < (Y if axis == "y" else X):
                raise InputError(f"plane {axis}{index} of the prior is outside the volume")
        if not self.slices and not self.planes:
            raise InputError("the prior needs at least one painted slice")
        self.guessed = frozenset(SliceRef.of(ref) for ref in self.guessed)
        if not self.guessed <= set(self.keys()):
            raise InputError(f"guessed planes {sorted(r.name for r in self.guessed - set(self.keys()))} are not in the prior")
        if depth and self.slices and max(self.slices) >= depth.pop():
            raise InputError(f"painted slice {max(self.slices)} is outside the planes' depth")
        sz, sy, sx = self.spacing
        stacks = [_Stack(self.slices, self.masks, self.n_classes, self.spacing)]
        for axis, side_spacing in (("y", (sy, sz, sx)), ("x", (sx, sz, sy))):
            refs = [ref for ref in self.planes if ref.axis == axis]
            masks = np.stack([self.planes[ref] for ref in refs]) if refs else np.zeros((0, 1, 1), np.uint8)
            stacks.append(_Stack([ref.index for ref in refs], masks, self.n_classes, side_spacing))
        self._stacks = tuple(stacks)

    @property
    def n_features(self) -> int:
        """Columns of :meth:`features`: one distance per class, and the distance to the nearest painted plane."""
        return self.n_classes + 1

    @property
    def _scale(self) -> float:
        """A length larger than any distance in the volume (its physical diagonal; a z slice's
        when only z slices are painted, the volume's depth being unknown then)."""
        _, Y, X = self.masks.shape
        sides = [Y * self.spacing[1], X * self.spacing[2]]
        if self.planes:
            sides.append(next(iter(self.planes.values())).shape[0] * self.spacing[0])
        return float(np.sqrt(np.sum(np.square(sides))))

    def slice_distance(self, i: int, k: int) -> np.ndarray:
        """Signed distance of class ``k`` on the ``i``-th painted z slice (cached; ``inf``
        where the class is absent from that slice)."""
        return self._stacks[0].slice_distance(i, k)

    def mask_of(self, ref: SliceRef) -> np.ndarray:
        """The class mask of a painted z slice or plane."""
        if ref.axis != "z":
            return self.planes[ref]
        return self.masks[self.slices.index(ref.index)]

    def keys(self) -> list[SliceRef]:
        """Every painted slice and plane."""
        return [*(SliceRef("z", z) for z in self.slices), *self.planes]

    def _base_axis(self, excluded: tuple[set[int], ...]) -> int:
        counts = [s.allowed(excluded[a]).size for a, s in enumerate(self._stacks)]
        return int(np.argmax(counts))  # the first of the largest: z on a tie

    def _in_frame(self, axis: int, start: Sequence[int], stop: Sequence[int], exclude: Collection[int]) -> np.ndarray:
        """(n_classes, z, y, x) distances of the stack across ``axis``, in volume order."""
        frame = FRAMES[axis]
        out = self._stacks[axis].distances([start[a] for a in frame], [stop[a] for a in frame], exclude)
        return np.transpose(out, (0, *(1 + frame.index(a) for a in range(3))))

    def distances(self, start: Sequence[int], stop: Sequence[int], exclude: Collection = ()) -> np.ndarray:
        """(n_classes, z, y, x) float32 interpolated signed distance of region ``start:stop``,
        from the painted slices and planes not in ``exclude`` (all ``inf`` if none is left)."""
        excluded = _split(exclude)
        base_axis = self._base_axis(excluded)
        base = self._in_frame(base_axis, start, stop, excluded[base_axis])
        others = [(a, int(self._stacks[a].indices[i]), i) for a in range(3) if a != base_axis
                  for i in self._stacks[a].allowed(excluded[a])]
        if not others:
            return base
        scale, half = self._scale, 0.5 * min(self.spacing)
        base = np.clip(base, -scale, scale)
        r0 = self._near(base_axis, start, stop, excluded[base_axis])
        total = np.zeros(base.shape, np.float32)
        weight = _inverse_power(r0)
        exact = []
        for axis, index, i in others:
            on_start, on_stop = list(start), list(stop)
            on_start[axis], on_stop[axis] = index, index + 1
            on_plane = np.clip(self._in_frame(base_axis, on_start, on_stop, excluded[base_axis]), -scale, scale)
            rest = [a for a in range(3) if a != axis]
            window = tuple(slice(start[a], stop[a]) for a in rest)
            own = np.stack([self._stacks[axis].slice_distance(i, k)[window] for k in range(self.n_classes)])
            own = np.expand_dims(np.clip(own, -scale, scale), 1 + axis)
            r = self._axis_distance(axis, index, start, stop)
            w = _inverse_power(r)
            total += w * (_consistent(on_plane, own, half, scale) - on_plane)
            weight = weight + w
            exact.append((r == 0, own))
        out = base + np.divide(total, weight, out=np.zeros_like(total), where=weight > 0)
        for on, own in exact:  # exact on each painted plane across the stack...
            out = np.where(on, own, out)
        return np.where(r0 == 0, base, out).astype(np.float32)  # ...and on the base slices, which win

    def _axis_distance(self, axis: int, index: int, start: Sequence[int], stop: Sequence[int]) -> np.ndarray:
        """Physical distance of the region's voxels to plane ``index`` across ``axis``, shaped to broadcast."""
        shape = [1, 1, 1]
        shape[axis] = stop[axis] - start[axis]
        d = np.abs(np.arange(start[axis], stop[axis]) - index) * self.spacing[axis]
        return d.reshape(shape).astype(np.float32)

    def _near(self, axis: int, start: Sequence[int], stop: Sequence[int], exclude: Collection[int]) -> np.ndarray:
        shape = [1, 1, 1]
        shape[axis] = stop[axis] - start[axis]
        return self._stacks[axis].nearest(start[axis], stop[axis], exclude).reshape(shape)

    def plane_distance(self, start: Sequence[int], stop: Sequence[int], exclude: Collection = ()) -> np.ndarray:
        """(z, y, x) physical distance from each voxel of the region to the nearest painted
        slice or plane not in ``exclude`` (``inf`` if none)."""
        excluded = _split(exclude)
        near = np.full(tuple(b - a for a, b in zip(start, stop)), np.inf, np.float32)
        for axis in range(3):
            np.minimum(near, self._near(axis, start, stop, excluded[axis]), out=near)
        return near

    def features(self, start: Sequence[int], stop: Sequence[int], exclude: Collection = ()) -> np.ndarray:
        """(z, y, x, n_classes + 1) float32: each class's signed distance (clipped to the
        volume's diagonal, so absent classes stay finite) and the distance to the nearest
        painted plane, for a classifier to weigh against the image."""
        scale = self._scale
        dist = np.clip(self.distances(start, stop, exclude), -scale, scale)
        out = np.empty(dist.shape[1:] + (self.n_features,), np.float32)
        out[..., : self.n_classes] = np.moveaxis(dist, 0, -1)
        out[..., self.n_classes] = np.minimum(self.plane_distance(start, stop, exclude), scale)
        return out

    def labels(self, start: Sequence[int], stop: Sequence[int], exclude: Collection = ()) -> np.ndarray:
        """(z, y, x) uint8 class of smallest interpolated distance (the prior's own answer)."""
        return np.argmin(self.distances(start, stop, exclude), axis=0).astype(np.uint8)

    def proba(self, start: Sequence[int], stop: Sequence[int], exclude: Collection = ()) -> np.ndarray:
        """(z, y, x, n_classes) float32 soft version of :meth:`labels`: a softmax of minus the
        distance over one voxel, so the probability is 1/2 on the interpolated outline."""
        dist = np.clip(self.distances(start, stop, exclude), -self._scale, self._scale)
        logits = -dist / float(min(self.spacing[1:]))
        logits -= logits.max(axis=0, keepdims=True)
        e = np.exp(logits)
        return np.moveaxis(e / e.sum(axis=0, keepdims=True), 0, -1).astype(np.float32)

    def painted(self) -> list[tuple[int, int, np.ndarray]]:
        """``(axis, index, mask)`` of every painted plane the user outlined (not the ``guessed``
        ones), in the order in which a later one overrides an earlier one where they cross (as
        :meth:`distances` decides)."""
        base_axis = self._base_axis(((), (), ()))  # type: ignore[arg-type]
        order = [a for a in range(3) if a != base_axis] + [base_axis]
        return [(a, int(z), self._stacks[a].masks[i]) for a in order for i, z in enumerate(self._stacks[a].indices)
                if SliceRef(AXES[a], int(z)) not in self.guessed]
