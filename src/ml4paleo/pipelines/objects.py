"""Objects of a segmentation: a uint32 OME-Zarr of object ids and the table of their measurements.

``objects_from_labels`` finds the connected pieces of the chosen classes of a label map, splits
touching ones at their necks and measures each object (:mod:`ml4paleo.compute.objects_chunked`,
exact at any size), then applies the user's corrections: ``merge`` (groups of ids become one, the
smallest stays), then ``seeds`` (strokes on one slice, one value per part, split the object they
lie on by a seeded watershed inside it; the first part keeps the id). Corrected objects are
measured again. Outputs: ``OUT.ome.zarr`` (uint32, 0 = none, with a pyramid), its local-thickness
map (``OUT_thickness.ome.zarr``, :func:`thickness_path`, :mod:`ml4paleo.compute.thickness_map`) and
its table (``objects.csv``, ``objects.json`` with a ``classes`` summary, :func:`table_paths`), all
written under temporary names and renamed when complete.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ml4paleo.atomic import partial_path, replace_atomically
from ml4paleo.compute.objects import SPLIT_MODES
from ml4paleo.compute.objects_chunked import MAX_BOX_VOXELS, find_pieces, objects_by_slabs, slab_edges
from ml4paleo.compute.thickness_map import thickness_by_slabs
from ml4paleo.errors import InputError, NotALabelMap, OutputExistsError
from ml4paleo.io.omezarr import OmeZarrWriter, open_level, read_info
from ml4paleo.pipelines._objects_table import ObjectTable, csv_text, json_text
from ml4paleo.pipelines._tasks import LOCAL, process_pool, resolve_scheduler, run_tasks, scheduler_setting
from ml4paleo.pipelines.mesh import PARALLEL_MIN_VOXELS, label_names
from ml4paleo.progress import ProgressCallback, no_progress, scaled
from ml4paleo.planes import SliceRef

__all__ = ["ObjectsResult", "objects_from_labels", "seed_strokes", "table_paths", "thickness_path"]
SLAB_VOXELS = 1 << 24
"""Target voxels of a slab (16 M: uint8 labels, int32 component ids and their temporaries,
uint32 objects: ~0.3 GB); a slab thinner than a chunk when a chunk row is larger (a 1024^2 scan
in chunks 64 deep: 64 M voxels a row, 2.1 GB peak measured), its objects gathered per chunk row."""


def slab_depth(shape: Sequence[int], chunk_z: int, target: int = SLAB_VOXELS) -> int:
    """Slices per slab: whole chunk rows up to ``target`` voxels, else the largest divisor of the
    chunk depth that fits (at least one slice)."""
    plane = max(1, int(shape[1]) * int(shape[2]))
    if chunk_z * plane <= target:
        return chunk_z * max(1, target // (chunk_z * plane))
    return max([d for d in range(1, chunk_z + 1) if chunk_z % d == 0 and d * plane <= target] or [1])


class _ChunkRows:
    """``write(z0, slab)`` for slabs that come in order, written to ``arr`` one whole chunk row at
    a time: a chunk written in parts would be read, decoded and encoded again for each part."""

    def __init__(self, arr: Any) -> None:
        self.arr, self.depth = arr, int(arr.chunks[0])
        self.buf: np.ndarray | None = None
        self.start = 0

    def __call__(self, z0: int, slab: np.ndarray) -> None:
        z1 = z0 + len(slab)
        if z0 % self.depth == 0 and (len(slab) % self.depth == 0 or z1 == self.arr.shape[0]):
            self.arr[z0:z1] = slab  # whole chunk rows
            return
        if self.buf is None or z0 % self.depth == 0:
            self.buf, self.start = np.zeros((self.depth,) + slab.shape[1:], slab.dtype), z0 - z0 % self.depth
        self.buf[z0 - self.start:z1 - self.start] = slab
        if z1 - self.start == self.depth or z1 == self.arr.shape[0]:
            self.arr[self.start:z1] = self.buf[:z1 - self.start]
            self.buf = None


@dataclass
class ObjectsResult:
    """What :func:`objects_from_labels` wrote, and the table (one dict per object, by id)."""

    path: Path
    csv_path: Path
    json_path: Path
    objects: list[dict[str, Any]]
    unit: str
    voxel_size: tuple[float, float, float]
    messages: list[str] = field(default_factory=list)
    thickness_path: Path | None = None
    classes: list[dict[str, Any]] = field(default_factory=list)


def thickness_path(out_path: str | Path) -> Path:
    """The local-thickness map of an object volume, beside it (``grains.ome.zarr``:
    ``grains_thickness.ome.zarr``)."""
    out_path = Path(out_path)
    return out_path.with_name(f"{out_path.name.split('.')[0] or 'objects'}_thickness.ome.zarr")


def table_paths(out_path: str | Path) -> tuple[Path, Path]:
    """The CSV and JSON tables of an object volume: beside it, named by its name up to the first
    dot (``grains.ome.zarr``: ``grains.csv``, ``grains.json``), so runs into one folder never clash."""
    out_path = Path(out_path)
    stem = out_path.name.split(".")[0] or "objects"
    return out_path.with_name(f"{stem}.csv"), out_path.with_name(f"{stem}.json")


def seed_strokes(plane_shape: Sequence[int], points: Sequence[Sequence[int]]) -> np.ndarray:
    """A strokes image for ``seeds`` from clicked points ``[row, col, part]`` (a web page's clicks)."""
    strokes = np.zeros(tuple(int(n) for n in plane_shape), np.uint8)
    for row, col, part in points:
        if not (0 <= row < strokes.shape[0] and 0 <= col < strokes.shape[1]):
            raise InputError(f"seed point ({row}, {col}) is outside the {strokes.shape[0]}x{strokes.shape[1]} slice")
        strokes[row, col] = part
    return strokes


def _classes(wanted: Iterable[int | str] | None, names: dict[int, str], present: Sequence[int]) -> list[int]:
    """Class values from values or names (default: every nonzero class present)."""
    if wanted is None:
        return [c for c in present if c != 0]
    out = []
    by_name = {n.lower(): v for v, n in names.items()}
    for c in wanted:
        if isinstance(c, str) and not c.strip().lstrip("-").isdigit():
            if c.strip().lower() not in by_name:
                known = ", ".join(f"{n} ({v})" for v, n in sorted(names.items()) if v) or "none recorded"
                raise InputError(f"class {c!r} is not a class of this segmentation; classes: {known}")
            out.append(by_name[c.strip().lower()])
        else:
            out.append(int(c))
    if any(v <= 0 for v in out):
        raise InputError(f"classes must be structure classes (values >= 1; 0 is background); got {out}")
    return sorted(set(out))


def _values_present(arr: Any, depth: int) -> list[int]:
    seen: set[int] = set()
    for z0 in range(0, arr.shape[0], depth):
        seen.update(int(v) for v in np.unique(np.asarray(arr[z0:z0 + depth])))
    return sorted(seen)


def _merge_groups(merge: Iterable[Sequence[int]]) -> list[list[int]]:
    groups = []
    for g in merge or ():
        ids = sorted({int(v) for v in g})
        if len(ids) < 2 or ids[0] < 1:
            raise InputError(f"a merge names two or more object ids >= 1 (e.g. 12,15); got {list(g)}")
        groups.append(ids)
    return groups


def _grey(image: str | Path | None, labels_attrs: dict, shape: tuple[int, ...]) -> tuple[Any, str | None]:
    """The scan for grey values: ``image``, else the segmentation's recorded source when it is
    still there and of the same shape; (array or None, its path)."""
    candidate = image if image is not None else labels_attrs.get("source")
    if not candidate or not Path(candidate).is_dir():
        if image is not None:
            raise InputError(f"image {image} is not an OME-Zarr volume folder")
        return None, None
    info = read_info(candidate)
    if tuple(info.shape) != tuple(shape):
        if image is not None:
            raise InputError(f"image {image} has shape {info.shape}; the labels have {tuple(shape)}")
        return None, None
    return open_level(candidate, 0), str(candidate)


def objects_from_labels(
    labels_path: str | Path,
    out_path: str | Path,
    *,
    classes: Iterable[int | str] | None = None,
    split: str = "auto",
    min_size: int = 0,
    h: float | None = None,
    merge: Iterable[Sequence[int]] = (),
    seeds: Iterable[tuple[SliceRef | int | tuple[str, int], np.ndarray]] = (),
    image: str | Path | None = None,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    max_box_voxels: int = MAX_BOX_VOXELS,
    scheduler: str | None = None,
) -> ObjectsResult:
    """Find, split and measure the objects of a segmentation.

    Parameters
    ----------
    labels_path : OME-Zarr label map (integer classes, 0 = background).
    out_path : the uint32 object OME-Zarr to write; its tables go beside it (:func:`table_paths`:
        ``objects.ome.zarr`` gives ``objects.csv`` and ``objects.json``).
    classes : class values or names (``"bone"``) whose pieces are objects (default: every
        nonzero class); objects never span two classes.
    split : ``"auto"`` splits touching objects at necks (:mod:`ml4paleo.compute.objects`),
        ``"none"`` keeps each connected piece whole.
    min_size : pieces of fewer voxels are dropped (before splitting).
    h : neck depth of the split, in the volume's unit (default 1.5 of the smallest voxel edge).
    merge : groups of object ids to join (``[(12, 15)]``), applied after the split.
    seeds : ``(slice key, strokes)`` pairs: a 2D image of a z slice (key ``z``) or a plane
        (``("y", 120)``), 0 = no stroke, one value per part, all on one object; applied after
        the merges, each in turn.
    image : the scan, for grey values (default: the segmentation's recorded source, when it is
        there with the same shape).
    max_box_voxels : the largest bounding box split or measured in memory
        (:data:`~ml4paleo.compute.objects_chunked.MAX_BOX_VOXELS`).
    scheduler : where the pieces are split and measured (:mod:`ml4paleo.pipelines._tasks`; None:
        the settings', else worker processes on every core from ``PARALLEL_MIN_VOXELS`` up,
        this process below). Ids and measurements are the same whatever runs them.

    Example::

        >>> from ml4paleo import objects_from_labels
        >>> result = objects_from_labels("labels.ome.zarr", "objects/objects.ome.zarr", classes=["bone"])
        >>> [(o["id"], o["volume"]) for o in result.objects], result.unit
    """
    progress = progress or no_progress
    if split not in SPLIT_MODES:
        raise InputError(f"split must be one of {', '.join(SPLIT_MODES)}; got {split!r}")
    if isinstance(min_size, bool) or int(min_size) != min_size or min_size < 0:
        raise InputError(f"min_size must be a whole number of voxels >= 0; got {min_size!r}")
    if h is not None and not float(h) > 0:
        raise InputError(f"h must be a positive length in the volume's unit; got {h!r}")
    groups = _merge_groups(merge)
    seeds = [(SliceRef.of(ref), strokes) for ref, strokes in seeds]
    info = read_info(labels_path)
    if not np.issubdtype(info.dtype, np.integer):
        raise InputError(f"{labels_path} holds {info.dtype} voxels; objects need an integer label map")
    if info.kind != "labels":
        raise NotALabelMap(f"{labels_path} is an image volume, not a segmentation; convert a label map with "
                           "convert_volume(..., labels=True)")
    out_path = Path(out_path)
    csv_path, json_path = table_paths(out_path)
    map_path = thickness_path(out_path)
    for p in (out_path, csv_path, json_path, map_path):
        if p.exists() and not overwrite:
            raise OutputExistsError(f"{p} already exists (pass overwrite to replace it)")
    arr = open_level(labels_path, 0)
    shape = tuple(int(n) for n in info.shape)
    chunk_z = int(info.chunks[0])
    depth = slab_depth(shape, chunk_z)
    names = label_names(info.attrs)
    present = sorted(v for v in names if v) if names else _values_present(arr, depth)
    wanted = _classes(classes, names, present)
    grey, grey_path = _grey(image, info.attrs, shape)
    voxel_size = tuple(float(v) for v in info.voxel_size)
    scheduler = scheduler_setting(scheduler)
    if scheduler == LOCAL and int(np.prod(shape)) < PARALLEL_MIN_VOXELS:
        scheduler = "synchronous"
    stack = contextlib.ExitStack()  # the worker pool, from the first pass to the thickness map
    pool = stack.enter_context(process_pool(scheduler, 2))
    parallel = pool is not None or resolve_scheduler(scheduler, 2) not in ("sync", "synchronous")
    run = functools.partial(run_tasks, scheduler=scheduler, pool=pool) if parallel else None
    try:
        progress(0.0, 1.0, "finding pieces")
        pieces = find_pieces(arr, wanted, min_size=int(min_size), depth=depth, progress=scaled(progress, 0.0, 0.25),
                             run=run)
    except BaseException:
        stack.close()
        raise
    parameters = {"classes": wanted, "split": split, "min_size": int(min_size), "h": h,
                  "merge": groups, "seeds": [ref.name for ref, _ in seeds]}
    # the labels' class names under their own key: "classes" names label values, and here values are objects
    attrs = {"source": str(labels_path), "image": grey_path, "source_classes": info.attrs.get("classes"),
             "objects": parameters}
    writer = OmeZarrWriter(out_path, shape, np.uint32, voxel_size=voxel_size, unit=info.unit, chunks=info.chunks,
                           kind="labels", attrs=attrs, overwrite=overwrite,
                           pyramid_min_size=max(info.level_shapes[-1][1:]))  # the labels' levels, for overlays
    tmp_csv, tmp_json = partial_path(csv_path), partial_path(json_path)
    map_writer = None
    try:
        # level 0 only: finish() builds the pyramid after the corrections
        found = objects_by_slabs(arr, pieces, voxel_size, _ChunkRows(writer.array), split=split, h=h, grey=grey,
                                 max_box_voxels=max_box_voxels, progress=scaled(progress, 0.25, 0.75),
                                 thickness=False, run=run)
        table = ObjectTable(found.rows, writer.array, grey, voxel_size, max_box_voxels)
        messages = []
        for ids in groups:
            table.merge(ids)
            messages.append(f"merged objects {', '.join(map(str, ids))} into {ids[0]}")
        for ref, strokes in seeds:
            target, new = table.split(ref, strokes)
            messages.append(f"split object {target} into {', '.join(map(str, [target, *new]))} with the seeds "
                            f"on slice {ref.name}")
        rows = [table.rows[i] for i in sorted(table.rows)]
        map_writer = OmeZarrWriter(map_path, shape, np.float32, voxel_size=voxel_size, unit=info.unit,
                                   chunks=info.chunks, attrs={"source": out_path.name, "quantity": "local thickness",
                                                              "value_unit": info.unit},
                                   overwrite=overwrite, pyramid_min_size=max(info.level_shapes[-1][1:]))
        class_measures = thickness_by_slabs(writer.array, rows, slab_edges(shape[0], depth), voxel_size,
                                            _ChunkRows(map_writer.array), progress=scaled(progress, 0.8, 0.9),
                                            run=run)
        progress(0.9, 1.0, "writing the table")
        for r in rows:
            r.pop("piece", None)
            r["class_name"] = names.get(r["class"], f"class {r['class']}")
        tmp_csv.write_text(csv_text(rows, info.unit))
        doc = {"source": str(labels_path), "image": grey_path, "objects_volume": out_path.name, "unit": info.unit,
               "voxel_size": list(voxel_size), "axes": ["z", "y", "x"], "parameters": parameters,
               "units": {"volume": f"{info.unit}^3", "surface_area": f"{info.unit}^2", "lengths": info.unit},
               "thickness_map": map_path.name,
               "classes": class_measures.rows(float(np.prod(voxel_size)), names),
               "messages": messages, "objects": rows}
        tmp_json.write_text(json_text(doc))
        writer.finish(scaled(progress, 0.92, 0.96, "building pyramid"))
        map_writer.finish(scaled(progress, 0.96, 1.0, "building the thickness pyramid"))
        replace_atomically(tmp_csv, csv_path, overwrite)
        replace_atomically(tmp_json, json_path, overwrite)
    except BaseException:
        writer.abort()
        if map_writer is not None:
            map_writer.abort()
        for p in (tmp_csv, tmp_json):
            p.unlink(missing_ok=True)
        raise
    finally:
        stack.close()
    progress(1.0, 1.0, "done")
    return ObjectsResult(path=out_path, csv_path=csv_path, json_path=json_path, objects=rows, unit=info.unit,
                         voxel_size=voxel_size, messages=messages, thickness_path=map_path,  # type: ignore[arg-type]
                         classes=doc["classes"])
