"""Objects of a label map of any size, slab by slab, equal to :func:`~ml4paleo.compute.objects.objects_whole`.

1. **Pieces** (:func:`find_pieces`): each z-slab is labelled on its own and its components joined
   across slab faces (:mod:`ml4paleo.compute.components`); the merged table gives each piece its
   class, size, first voxel and bounding box.
2. **Objects** (:func:`objects_by_slabs`): slab by slab again, each piece whose first voxel lies in
   the slab is cut out in its bounding box, split and measured there; the slab's ids are written.

A split depends only on its piece's voxels, so splitting in the box is exact; the one limit is that
a piece's box must fit in memory (``max_box_voxels``, ~60 bytes a voxel): a larger piece is refused
with a message naming it, never cut at a block border. Numbering follows the whole-volume
reference (first voxel in raster order). Memory: one slab plus the split pieces reaching into it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from scipy import ndimage as ndi

from ml4paleo.compute import components as cc
from ml4paleo.compute.measure import measure_object
from ml4paleo.compute.objects import FACES, SPLIT_MODES, split_object
from ml4paleo.errors import InputError
from ml4paleo.progress import ProgressCallback, no_progress

__all__ = ["MAX_BOX_VOXELS", "Pieces", "find_pieces", "objects_by_slabs", "piece_mask", "slab_edges"]

MAX_BOX_VOXELS = 1 << 26
"""Largest bounding box (voxels) of a piece that is split or measured: 64 M voxels, ~4 GB at
~60 bytes a voxel (distance map, reconstruction, watershed, thickness)."""


def slab_edges(nz: int, depth: int) -> list[tuple[int, int]]:
    """(z0, z1) of the slabs of ``depth`` slices covering ``nz``."""
    if int(depth) < 1:
        raise InputError(f"depth must be at least one slice; got {depth!r}")
    return [(z, min(z + int(depth), nz)) for z in range(0, nz, int(depth))]


@dataclass
class Pieces:
    """The pieces of a label map (index ``k - 1`` for piece ``k``) and how to find them again."""

    shape: tuple[int, int, int]
    classes_present: list[int]  # the classes labelled
    slabs: list[tuple[int, int]]
    offsets: np.ndarray  # (slabs + 1,) global id of each slab's first component
    piece_of: np.ndarray  # (components,) piece (1..n) of each slab component, 0 = dropped
    classes: np.ndarray  # (n,) class of each piece
    sizes: np.ndarray  # (n,) voxels
    first: np.ndarray  # (n,) raster index of its first voxel
    start: np.ndarray  # (n, 3) bounding box start (z, y, x)
    stop: np.ndarray  # (n, 3) bounding box stop (exclusive)

    @property
    def n(self) -> int:
        return len(self.sizes)

    def box(self, k: int) -> tuple[slice, slice, slice]:
        """The bounding box of piece ``k`` (1-based)."""
        return tuple(slice(int(a), int(b)) for a, b in zip(self.start[k - 1], self.stop[k - 1]))  # type: ignore[return-value]


def _slab_labels(block: np.ndarray, classes: Sequence[int]) -> cc.Labelled:
    """The slab's components (their first voxels are found from their boxes, :func:`_first_voxels`)."""
    return cc.label_block(block, "small", classes)


def _first_voxels(ids: np.ndarray, boxes: Sequence[tuple[slice, ...]]) -> np.ndarray:
    """Raster index within the slab of each component's first voxel: it lies in the first plane
    of its box, so only that plane of the box is searched (the whole-slab running maximum of
    ``components`` costs two slab-sized temporaries)."""
    first = np.zeros(len(boxes), np.int64)
    for i, box in enumerate(boxes):
        plane = ids[box[0].start, box[1], box[2]]
        y, x = np.unravel_index(int(np.argmax(plane == i + 1)), plane.shape)
        first[i] = np.ravel_multi_index((box[0].start, box[1].start + y, box[2].start + x), ids.shape)
    return first


TaskRun = Callable[[Callable[..., Any], Sequence[tuple]], list]
"""How independent tasks run: ``run(func, args)`` -> ``[func(*a) for a in args]``, in order
(the pipeline layer passes its pool; compute knows nothing of schedulers)."""


def serial_run(func: Callable[..., Any], args: Sequence[tuple]) -> list:
    """:data:`TaskRun` in this process, one task after the other."""
    return [func(*a) for a in args]


SLAB_BATCH = 4
"""Slabs labelled at once when ``find_pieces`` is given a task runner: enough for two cores to
share, few enough that their boundary planes stay small beside a slab."""


def _slab_summary(labels: Any, z0: int, z1: int, classes: Sequence[int], shape: tuple[int, ...]
                  ) -> tuple[cc.BlockTable, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One slab's components: their table and boxes (global), and the slab's first and last
    planes of ids, which join them across its faces. A task: it reads its own slab."""
    lab = _slab_labels(np.asarray(labels[z0:z1]), classes)
    boxes = ndi.find_objects(lab.ids[0]) if lab.n else []
    lab.first = _first_voxels(lab.ids[0], boxes)
    starts = np.array([[s.start + o for s, o in zip(b, (z0, 0, 0))] for b in boxes], np.int64).reshape(-1, 3)
    stops = np.array([[s.stop + o for s, o in zip(b, (z0, 0, 0))] for b in boxes], np.int64).reshape(-1, 3)
    return (cc.block_table(lab, (z0, 0, 0), shape), starts, stops,
            np.ascontiguousarray(lab.ids[:, 0]), np.ascontiguousarray(lab.ids[:, -1]))


def find_pieces(labels: Any, classes: Sequence[int], *, min_size: int = 0, depth: int = 64,
                progress: ProgressCallback | None = None, run: TaskRun | None = None) -> Pieces:
    """The face-connected pieces of ``classes`` in ``labels`` (a zarr or numpy (z, y, x) array),
    read ``depth`` slices at a time; pieces under ``min_size`` voxels are dropped. With ``run``
    (:data:`TaskRun`; ``labels`` then a zarr array) :data:`SLAB_BATCH` slabs are labelled at once."""
    progress = progress or no_progress
    shape = tuple(int(n) for n in labels.shape)
    classes = sorted({int(c) for c in classes if int(c) != 0})
    slabs = slab_edges(shape[0], depth)
    tables, pairs, starts, stops = [], [], [], []
    previous: tuple[np.ndarray, int] | None = None
    total = 0
    batch = SLAB_BATCH if run is not None else 1
    for b0 in range(0, len(slabs), batch):
        group = slabs[b0:b0 + batch]
        done = (run or serial_run)(_slab_summary, [(labels, z0, z1, classes, shape) for z0, z1 in group])
        for i, (table, box_starts, box_stops, top, bottom) in enumerate(done, start=b0):
            tables.append(table)
            starts.append(box_starts)
            stops.append(box_stops)
            if previous is not None:
                pairs.append(cc.face_pairs(previous[0], top, previous[1], total))
            previous = (bottom, total)
            total += table.n
            progress(i + 1, len(slabs), "finding pieces")
    merged = cc.merge_tables(tables, pairs)
    roots = len(merged.sizes)
    start = np.full((roots, 3), np.iinfo(np.int64).max, np.int64)
    stop = np.zeros((roots, 3), np.int64)
    if total:
        np.minimum.at(start, merged.root, np.concatenate(starts))
        np.maximum.at(stop, merged.root, np.concatenate(stops))
    kept = np.flatnonzero(merged.sizes >= max(1, int(min_size)))
    kept = kept[np.argsort(merged.first[kept], kind="stable")]
    piece_of_root = np.zeros(roots, np.int64)
    piece_of_root[kept] = np.arange(1, len(kept) + 1)
    return Pieces(shape=shape, classes_present=classes, slabs=slabs, offsets=merged.offsets,  # type: ignore[arg-type]
                  piece_of=piece_of_root[merged.root], classes=merged.classes[kept], sizes=merged.sizes[kept],
                  first=merged.first[kept], start=start[kept], stop=stop[kept])


def slab_pieces(block: np.ndarray, index: int, pieces: Pieces) -> np.ndarray:
    """uint32 piece ids (0 = none) of slab ``index`` of :attr:`Pieces.slabs`, given its voxels."""
    lab = _slab_labels(block, pieces.classes_present)
    table = np.concatenate(([0], pieces.piece_of[pieces.offsets[index]:pieces.offsets[index + 1]])).astype(np.uint32)
    return table[lab.ids[0]]


def piece_mask(region: np.ndarray, pieces: Pieces, k: int) -> np.ndarray:
    """Piece ``k`` in ``region`` (the labels over its bounding box): the component of its class
    that holds its first voxel."""
    return _component_at(region, int(pieces.classes[k - 1]), _first_local(pieces, k))


def _first_local(pieces: Pieces, k: int) -> tuple[int, int, int]:
    """Piece ``k``'s first voxel, relative to its box."""
    return tuple(int(v) for v in np.subtract(np.unravel_index(int(pieces.first[k - 1]), pieces.shape),
                                             pieces.start[k - 1]))  # type: ignore[return-value]


def _component_at(region: np.ndarray, cls: int, local: tuple[int, int, int]) -> np.ndarray:
    comp, _ = ndi.label(region == cls, structure=FACES)
    return comp == comp[local]


class _SlabReader:
    """``reader[box]``: from the slab in memory when the box lies in it, else from ``source``."""

    def __init__(self, source: Any, slab: np.ndarray | None, z0: int, z1: int) -> None:
        self.source, self.slab, self.z0, self.z1 = source, slab, z0, z1

    def __getitem__(self, box: tuple[slice, ...]) -> np.ndarray:
        if self.slab is not None and box[0].stop <= self.z1:
            return self.slab[(slice(box[0].start - self.z0, box[0].stop - self.z0), box[1], box[2])]
        return np.asarray(self.source[box])


def _piece_objects(labels: Any, grey: Any, box: tuple[slice, ...], cls: int, local: tuple[int, int, int],
                   voxel_size: Sequence[float], split: str, h: float | None, measure: bool, thickness: bool
                   ) -> tuple[np.ndarray | None, int, list[dict[str, Any]]]:
    """One piece, read in its box: cut out, split and measured. Returns (the parts when there
    are several, else None; the number of parts; each part's measurements). A task: the same in
    this process or a worker (``labels``/``grey``: zarr arrays, numpy, or a :class:`_SlabReader`)."""
    mask = _component_at(np.asarray(labels[box]), cls, local)
    parts = split_object(mask, voxel_size, h) if split == "auto" else mask.astype(np.uint32)
    n_parts = int(parts.max())
    region_grey = np.asarray(grey[box]) if grey is not None and measure else None
    origin = [s.start for s in box]
    rows = [measure_object(parts == j, voxel_size, origin, region_grey, thickness=thickness)
            for j in range(1, n_parts + 1)] if measure else []
    return (parts if n_parts > 1 else None), n_parts, rows


@dataclass
class ObjectsResult:
    """What :func:`objects_by_slabs` found: one row per object (``id``, ``class``, ``piece``,
    measurements), in id order."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.rows)


def _check_box(pieces: Pieces, k: int, max_box_voxels: int) -> None:
    size = int(np.prod(pieces.stop[k - 1] - pieces.start[k - 1]))
    if size > max_box_voxels:
        raise InputError(
            f"piece {k} (class {int(pieces.classes[k - 1])}, {int(pieces.sizes[k - 1])} voxels, bounding box "
            f"{pieces.start[k - 1].tolist()}..{pieces.stop[k - 1].tolist()}) has a box of {size} voxels, above "
            f"the {max_box_voxels} that are split and measured in memory: is it a matrix rather than objects? "
            "Choose another class, or allow larger boxes (max_box_voxels) if the memory allows")


def objects_by_slabs(labels: Any, pieces: Pieces, voxel_size: Sequence[float], write: Callable[[int, np.ndarray], None],
                     *, split: str = "auto", h: float | None = None, grey: Any = None, measure: bool = True,
                     max_box_voxels: int = MAX_BOX_VOXELS, progress: ProgressCallback | None = None,
                     thickness: bool = True, run: TaskRun | None = None) -> ObjectsResult:
    """Split and measure the ``pieces`` of ``labels`` and ``write(z0, uint32 slab)`` the objects
    slab by slab (:attr:`Pieces.slabs`, in order); ``grey``: the scan (zarr or numpy, same shape)
    for the grey-value measurements; ``thickness=False`` leaves local thickness to a later pass
    (:mod:`ml4paleo.compute.thickness_map`).

    The pieces that start in a slab are independent tasks: given ``run`` (``run(func, args)`` ->
    ``[func(*a) for a in args]`` in order, e.g. worker processes from the pipeline layer;
    ``labels`` and ``grey`` then zarr arrays, which pickle) each reads its own box; results are
    taken in piece order, so ids and rows are those of the serial run."""

    if split not in SPLIT_MODES:
        raise InputError(f"split must be one of {', '.join(SPLIT_MODES)}; got {split!r}")
    progress = progress or no_progress
    result = ObjectsResult()
    first_id = np.zeros(pieces.n + 1, np.uint32)  # piece -> its first object id
    open_parts: dict[int, tuple[tuple[slice, ...], np.ndarray]] = {}  # split pieces not yet written whole
    parallel = run is not None
    next_piece = 1
    next_id = 1
    for index, (z0, z1) in enumerate(pieces.slabs):
        block = np.asarray(labels[z0:z1])
        starting = []
        while next_piece <= pieces.n and pieces.start[next_piece - 1][0] < z1:
            starting.append(next_piece)
            next_piece += 1
        work = split == "auto" or measure
        if work:
            for k in starting:
                _check_box(pieces, k, max_box_voxels)
            if parallel:
                source, source_grey = labels, grey
            else:
                block_grey = np.asarray(grey[z0:z1]) if grey is not None and measure else None
                source, source_grey = _SlabReader(labels, block, z0, z1), \
                    (_SlabReader(grey, block_grey, z0, z1) if block_grey is not None else None)
            args = [(source, source_grey if measure else None, pieces.box(k), int(pieces.classes[k - 1]),
                     _first_local(pieces, k), tuple(voxel_size), split, h, measure, thickness) for k in starting]
            done = (run or serial_run)(_piece_objects, args)
        for i, k in enumerate(starting):
            if work:
                parts, n_parts, measured = done[i]
                if parts is not None:
                    open_parts[k] = (pieces.box(k), parts)
                for j in range(1, n_parts + 1):
                    row: dict[str, Any] = {"id": next_id + j - 1, "class": int(pieces.classes[k - 1]), "piece": k}
                    if measure:
                        row.update(measured[j - 1])
                    result.rows.append(row)
            else:
                n_parts = 1
                result.rows.append({"id": next_id, "class": int(pieces.classes[k - 1]), "piece": k,
                                    "voxel_count": int(pieces.sizes[k - 1])})
            first_id[k] = next_id
            next_id += n_parts
        ids = slab_pieces(block, index, pieces)
        del block
        out = first_id[ids]
        for k, (box, parts) in list(open_parts.items()):
            lo, hi = max(box[0].start, z0), min(box[0].stop, z1)
            if lo < hi:
                sub = (slice(lo - z0, hi - z0), box[1], box[2])
                own = ids[sub] == k
                out[sub][own] = parts[lo - box[0].start:hi - box[0].start][own] + (first_id[k] - np.uint32(1))
            if box[0].stop <= z1:
                del open_parts[k]
        write(z0, out)
        progress(index + 1, len(pieces.slabs), "objects")
    return result
