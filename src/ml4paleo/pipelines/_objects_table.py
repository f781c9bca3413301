"""The table of objects while the user's corrections are applied, and its CSV.

:class:`ObjectTable` holds one row per object and the written object ids (a zarr array); a merge
or a seeded split rewrites the ids inside the objects' bounding box only and measures the
objects it changed again, from the ids as written.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Sequence

import numpy as np

from ml4paleo.compute.measure import measure_object
from ml4paleo.compute.objects import seeded_split
from ml4paleo.errors import InputError
from ml4paleo.planes import SliceRef

__all__ = ["CSV_FIELDS", "ObjectTable", "csv_text"]


def _row_box(row: dict[str, Any]) -> tuple[slice, ...]:
    return tuple(slice(a, b) for a, b in zip(row["bbox_start"], row["bbox_stop"]))


def _union_box(rows: Sequence[dict[str, Any]]) -> tuple[slice, ...]:
    lo = np.min([r["bbox_start"] for r in rows], axis=0)
    hi = np.max([r["bbox_stop"] for r in rows], axis=0)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))


def _check_box(box: tuple[slice, ...], what: str, max_box_voxels: int) -> None:
    size = int(np.prod([s.stop - s.start for s in box]))
    if size > max_box_voxels:
        raise InputError(f"{what}: its bounding box holds {size} voxels, above the {max_box_voxels} handled in memory")


class ObjectTable:
    """The object rows by id, and their re-measurement from the written ids."""

    def __init__(self, rows: list[dict[str, Any]], arr: Any, grey: Any, voxel_size, max_box_voxels: int) -> None:
        self.rows = {int(r["id"]): r for r in rows}
        self.arr, self.grey, self.voxel_size, self.max_box_voxels = arr, grey, voxel_size, max_box_voxels

    def get(self, i: int) -> dict[str, Any]:
        if i not in self.rows:
            raise InputError(f"there is no object {i} (ids 1..{max(self.rows, default=0)})")
        return self.rows[i]

    def remeasure(self, i: int, region: np.ndarray, box: tuple[slice, ...], cls: int) -> None:
        mask = region == i
        grey = np.asarray(self.grey[box]) if self.grey is not None else None
        row = {"id": i, "class": cls}
        row.update(measure_object(mask, self.voxel_size, [s.start for s in box], grey))
        self.rows[i] = row

    def merge(self, ids: list[int]) -> None:
        rows = [self.get(i) for i in ids]
        if len({r["class"] for r in rows}) > 1:
            raise InputError(f"objects {ids} are of different classes; only objects of one class merge")
        box = _union_box(rows)
        _check_box(box, f"merge {ids}", self.max_box_voxels)
        region = np.asarray(self.arr[box])
        region[np.isin(region, ids[1:])] = ids[0]
        self.arr[box] = region
        for i in ids[1:]:
            del self.rows[i]
        self.remeasure(ids[0], region, box, rows[0]["class"])

    def split(self, ref: SliceRef, strokes: np.ndarray) -> tuple[int, list[int]]:
        axis, index = ref.dim, ref.index
        shape = self.arr.shape
        plane_shape = tuple(n for a, n in enumerate(shape) if a != axis)
        strokes = np.asarray(strokes)
        if strokes.shape != plane_shape or not 0 <= index < shape[axis]:
            raise InputError(f"seeds for slice {ref.name} must be a {plane_shape[1]}x{plane_shape[0]} image on a "
                             f"slice of the volume; got shape {strokes.shape}")
        plane = np.asarray(self.arr[tuple(index if a == axis else slice(None) for a in range(3))])
        under = np.unique(plane[(strokes > 0) & (plane > 0)])
        if len(under) != 1:
            found = f"objects {under.tolist()}" if len(under) else "no object"
            raise InputError(f"the seeds on slice {ref.name} must lie on one object; they touch {found}")
        target = int(under[0])
        row = self.get(target)
        box = _row_box(row)
        _check_box(box, f"object {target}", self.max_box_voxels)
        region = np.asarray(self.arr[box])
        mask = region == target
        seeds = np.zeros(mask.shape, np.int32)
        if box[axis].start <= index < box[axis].stop:
            cut = tuple(s for a, s in enumerate(box) if a != axis)
            seeds[tuple(index - box[a].start if a == axis else slice(None) for a in range(3))] = strokes[cut]
        parts = seeded_split(mask, seeds, self.voxel_size)
        new_ids = [target] + [max(self.rows) + j for j in range(1, int(parts.max()))]
        lut = np.asarray([0] + new_ids, np.uint32)
        region[mask] = lut[parts[mask]]
        self.arr[box] = region
        for i in new_ids:
            self.remeasure(i, region, box, row["class"])
        return target, new_ids[1:]


CSV_FIELDS = ["id", "class", "class_name", "voxel_count", "volume", "surface_area", "voxel_face_area", "sphericity",
              "thickness_mean", "thickness_median", "thickness_max", "cavity_volume", "grey_mean", "grey_std",
              "centroid_z", "centroid_y", "centroid_x", "axis_major", "axis_middle", "axis_minor",
              "major_z", "major_y", "major_x", "bbox_z0", "bbox_y0", "bbox_x0", "bbox_z1", "bbox_y1", "bbox_x1"]


def csv_text(rows: list[dict[str, Any]], unit: str) -> str:
    units = {"volume": f"{unit}^3", "cavity_volume": f"{unit}^3", "surface_area": f"{unit}^2",
             "voxel_face_area": f"{unit}^2"}
    units.update({k: unit for k in CSV_FIELDS if k.startswith(("thickness", "centroid", "axis_"))})
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([f"{k} ({units[k]})" if k in units else k for k in CSV_FIELDS])
    for r in rows:
        flat = dict(r)
        for a, name in enumerate("zyx"):
            flat[f"centroid_{name}"] = r["centroid"][a]
            flat[f"major_{name}"] = r["axes"][0][a]
            flat[f"bbox_{name}0"], flat[f"bbox_{name}1"] = r["bbox_start"][a], r["bbox_stop"][a]
        flat["axis_major"], flat["axis_middle"], flat["axis_minor"] = r["axis_lengths"]
        writer.writerow([_cell(flat.get(k)) for k in CSV_FIELDS])
    return buf.getvalue()


def json_text(doc: dict[str, Any]) -> str:
    """``objects.json``: the header indented, then one object per line. An indented dump of the
    whole goes through Python's encoder, not the C one: 3.6 of the main process's 20 CPU s on
    2590 objects; one line per object keeps the file readable at a tenth of that."""
    head = json.dumps({k: v for k, v in doc.items() if k != "objects"}, indent=1)
    rows = ",\n".join(json.dumps(r) for r in doc["objects"])
    return f'{head[:-2]},\n "objects": [\n{rows}\n ]\n}}\n'


def _cell(v: Any) -> Any:
    return "" if v is None else (f"{v:.6g}" if isinstance(v, float) else v)
