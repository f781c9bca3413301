"""The local-thickness map of an object volume and per-class measurements, slab by slab.

Once the object ids are written (splits and corrections applied), each object is read in its
bounding box from the ids, its local thickness computed there
(:func:`~ml4paleo.compute.measure.local_thickness`: an object's thickness depends on its own
voxels only, so the map is exact at any size), and the map is written slab by slab: an object
stays in memory from the slab where its box starts to the one where it ends, as in
:func:`~ml4paleo.compute.objects_chunked.objects_by_slabs`. The same pass gives each object's
thickness statistics and cavity volume, and each class's thickness histogram and porosity.
Cavities, porosity and the histogram's bins are defined in docs/objects.md ("Thickness map").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from scipy import ndimage as ndi

from ml4paleo.compute.measure import local_thickness
from ml4paleo.compute.objects import FACES
from ml4paleo.compute.objects_chunked import TaskRun, serial_run
from ml4paleo.progress import ProgressCallback, no_progress

__all__ = ["ClassMeasures", "thickness_by_slabs", "cavity_voxels"]


def cavity_voxels(mask: np.ndarray) -> int:
    """Background voxels enclosed by ``mask`` (not face-connected to the box's outside)."""
    filled = ndi.binary_fill_holes(mask, structure=FACES)
    return int(filled.sum() - mask.sum())


@dataclass
class ClassMeasures:
    """Per-class sums of the thickness pass: voxels, cavity voxels and the thickness histogram."""

    bin_width: float
    voxels: dict[int, int] = field(default_factory=dict)
    cavity_voxels: dict[int, int] = field(default_factory=dict)
    counts: dict[int, np.ndarray] = field(default_factory=dict)
    sums: dict[int, float] = field(default_factory=dict)

    def add(self, cls: int, thickness: np.ndarray, cavities: int) -> None:
        bins = np.bincount(np.floor(thickness / self.bin_width + 1e-6).astype(np.int64))
        old = self.counts.get(cls, np.zeros(0, np.int64))
        size = max(len(old), len(bins))
        self.counts[cls] = np.pad(old, (0, size - len(old))) + np.pad(bins, (0, size - len(bins)))
        self.sums[cls] = self.sums.get(cls, 0.0) + float(thickness.sum(dtype=np.float64))
        self.voxels[cls] = self.voxels.get(cls, 0) + int(thickness.size)
        self.cavity_voxels[cls] = self.cavity_voxels.get(cls, 0) + int(cavities)

    def rows(self, voxel_volume: float, names: dict[int, str]) -> list[dict[str, Any]]:
        """One summary per class: volume, cavity volume, porosity, thickness histogram."""
        out = []
        for cls in sorted(self.voxels):
            counts = self.counts[cls]
            n, cav = self.voxels[cls], self.cavity_voxels[cls]
            out.append({
                "class": cls, "class_name": names.get(cls, f"class {cls}"),
                "volume": n * voxel_volume, "cavity_volume": cav * voxel_volume,
                "porosity": cav / (n + cav) if n + cav else 0.0,
                "thickness_mean": self.sums[cls] / max(n, 1),
                "thickness_histogram": {"bin_width": self.bin_width, "counts": [int(c) for c in counts]},
            })
        return out


def _object_thickness(ids: Any, box: tuple[slice, ...], object_id: int, voxel_size: tuple[float, float, float]
                      ) -> tuple[np.ndarray, int]:
    """One object's thickness over its box (0 outside it) and its cavity voxels: a task."""
    mask = np.asarray(ids[box]) == object_id
    return local_thickness(mask, voxel_size), cavity_voxels(mask)


def thickness_by_slabs(ids: Any, rows: Sequence[dict[str, Any]], slabs: Sequence[tuple[int, int]],
                       voxel_size: Sequence[float], write: Callable[[int, np.ndarray], None],
                       progress: ProgressCallback | None = None, *, run: TaskRun | None = None) -> ClassMeasures:
    """Write the float32 local-thickness map of the object volume ``ids`` slab by slab
    (``write(z0, slab)``, slabs in order), and update each row (``id``, ``class``, ``bbox_start``,
    ``bbox_stop``) with ``thickness_mean/median/max`` and ``cavity_volume``. The objects whose
    box starts in a slab are independent tasks (``run`` as for
    :func:`~ml4paleo.compute.objects_chunked.objects_by_slabs`; ``ids`` then a zarr array)."""

    progress = progress or no_progress
    vs = tuple(float(v) for v in voxel_size)
    measures = ClassMeasures(bin_width=min(vs))
    order = sorted(rows, key=lambda r: (r["bbox_start"][0], r["id"]))
    next_row = 0
    open_maps: list[tuple[tuple[slice, ...], np.ndarray, int]] = []  # box, thickness (0 outside), id
    for index, (z0, z1) in enumerate(slabs):
        starting = []
        while next_row < len(order) and order[next_row]["bbox_start"][0] < z1:
            starting.append(order[next_row])
            next_row += 1
        boxes = [tuple(slice(a, b) for a, b in zip(r["bbox_start"], r["bbox_stop"])) for r in starting]
        done = (run or serial_run)(_object_thickness, [(ids, box, int(r["id"]), vs) for r, box in zip(starting, boxes)])
        for row, box, (t, cavities) in zip(starting, boxes, done):
            inside = t[t > 0]
            row.update(thickness_mean=float(inside.mean()), thickness_median=float(np.median(inside)),
                       thickness_max=float(inside.max()), cavity_volume=float(cavities * np.prod(vs)))
            measures.add(int(row["class"]), inside, cavities)
            open_maps.append((box, t, int(row["id"])))
        out = np.zeros((z1 - z0,) + tuple(ids.shape[1:]), np.float32)
        still_open = []
        for box, t, _ in open_maps:
            lo, hi = max(box[0].start, z0), min(box[0].stop, z1)
            if lo < hi:
                part = t[lo - box[0].start:hi - box[0].start]
                target = out[lo - z0:hi - z0, box[1], box[2]]
                np.maximum(target, part, out=target)  # objects never overlap; 0 outside each
            if box[0].stop > z1:
                still_open.append((box, t, _))
        open_maps = still_open
        write(z0, out)
        progress(index + 1, len(slabs), "thickness")
    return measures
