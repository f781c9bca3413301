"""Mesh a label volume: one closed mesh per label, in physical units, plus measurements.

Chunk tasks (one per window of ``chunk`` voxels, :mod:`ml4paleo.compute.mesh`) mesh their window,
smooth it (the default; :mod:`ml4paleo.compute.smooth_mesh`: a window grown by a halo, so smoothed
pieces weld without a seam) and save the pieces in a scratch folder; then, label by label, the
pieces are read back in chunk order and either **streamed** (welded piece by piece, measured and
written as they come: memory follows the chunk, not the surface) or, when a label's mesh must be
held whole (triangle-ratio simplification, GLB, a preview), welded **whole per label**. Smoothed
surfaces are written at full resolution: simplifying them would open holes
(docs/objects.md, "How meshing streams"). The output folder is written under a temporary name
and renamed when complete.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ml4paleo.compute import mesh as meshing
from ml4paleo.compute.smooth_mesh import (SMOOTH_ITERATIONS, carry_smoothing, grown_window, halo_voxels,
                                          smooth_pieces)
from ml4paleo.compute.weld import StreamWeld, shared_planes
from ml4paleo.errors import InputError, NotALabelMap, OutputExistsError
from ml4paleo.enums import DEFAULT_MESH_FORMAT, MESH_FORMATS
from ml4paleo.io.exports import STREAM_FORMATS, MeshStreamWriter, write_mesh
from ml4paleo.atomic import partial_path, replace_atomically
from ml4paleo.io.omezarr import VolumeInfo, open_level, read_info
from ml4paleo.pipelines._tasks import LOCAL, run_tasks, scheduler_setting
from ml4paleo.progress import ProgressCallback, no_progress, scaled

MESH_CHUNK = 256
"""Chunk edge for meshing: a 257^3 uint8 window is 17 MB, and each task is long enough
(~0.5 s) that scheduling costs nothing; two in flight on two cores."""
PARALLEL_MIN_VOXELS = 1 << 25
"""Below this many voxels (32 M, ~320^3) chunks run in this process unless a scheduler is named:
starting worker processes (~1.5 CPU s of imports) costs more than meshing them."""
DOWNLOAD_MAX_ERROR_VOXELS = 0.5
"""Mesh downloads (the ``mesh`` command, the web app's mesh task) are simplified by default
within half a voxel (of the meshed grid, along its largest edge): below the scan's own
resolution, and measured on ``bench/fullsize.py`` grains several times fewer triangles; the
full-resolution mesh is one option away (``--full-resolution``, ``full_resolution: true``)."""
PREVIEW_DIR = "preview"
"""Sub-folder of the light copies written with ``preview_triangles``."""
PREVIEW_WELD_MAX_TRIANGLES = 8_000_000
"""A label's preview is simplified from its full mesh up to this many triangles (~1 GB while
simplifying); above, from the mesh of every 2^k-th voxel that is under it."""


@dataclass
class MeshResult:
    """What :func:`mesh_labels` wrote: files, measurements per label, and messages (empty labels)."""

    out_dir: Path
    files: list[Path]
    measurements: dict[int, dict[str, Any]]
    messages: list[str] = field(default_factory=list)
    unit: str = "micrometer"
    voxel_size: tuple[float, float, float] = (1.0, 1.0, 1.0)


def download_max_error(labels_path: str | Path, downsample: int = 1) -> float:
    """The default ``max_error`` of mesh downloads, in the volume's physical unit: half a voxel
    (:data:`DOWNLOAD_MAX_ERROR_VOXELS`) of the grid meshed with ``downsample``."""
    info = read_info(labels_path)
    return DOWNLOAD_MAX_ERROR_VOXELS * max(float(v) for v in info.voxel_size) * int(downsample)


def _grid(info: VolumeInfo, downsample: int) -> tuple[int, int, tuple[int, int, int]]:
    """(pyramid level, stride within it, shape of the meshed grid) for a downsampling factor.

    A stored pyramid level is used when it is exactly every ``downsample``-th voxel (levels are
    built by taking every second voxel of labels), so only its smaller chunks are read.
    """
    grid = tuple(-(-n // downsample) for n in info.shape)
    for level, shape in enumerate(info.level_shapes):
        if 2**level == downsample and tuple(shape) == grid:
            return level, 1, grid  # type: ignore[return-value]
    return 0, downsample, grid  # type: ignore[return-value]


def _mesh_window(
    path: str, level: int, stride: int, grid: tuple[int, int, int], window: meshing.ChunkWindow, labels,
    scratch: str | None = None, index: int = 0, max_error_voxels: float | None = None, smooth: int = 0,
) -> tuple[dict[int, Any], dict[int, int]]:
    """One chunk task: read the window (zero padded), mesh it, count the voxels it owns; with
    ``smooth``, smooth each piece in the mesh of the window grown by its halo
    (:mod:`ml4paleo.compute.smooth_mesh`); or with ``max_error_voxels``, simplify each piece
    within it, its border kept (``simplify_piece``).

    Returns (label -> piece, label -> voxels); with ``scratch``, the pieces go to
    ``<scratch>/<index>.npz`` and label -> triangles comes back instead of the pieces."""
    arr = open_level(path, level)
    block = _read_window(arr, stride, grid, window)
    own = block[tuple(slice(1, min(b, n) - a) for a, b, n in zip(window.start, window.stop, grid))]
    if own.dtype.itemsize == 1:
        counts = np.bincount(own.ravel(), minlength=1)
        values = np.flatnonzero(counts)
        counts = counts[values]
    else:  # sort-based count (numpy 2's hash np.unique is slow on large arrays)
        flat = np.sort(own, axis=None)
        starts = np.flatnonzero(np.concatenate(([True], flat[1:] != flat[:-1])))
        values, counts = flat[starts], np.diff(np.append(starts, len(flat)))
    voxels = {int(v): int(c) for v, c in zip(values, counts) if v != 0}
    pieces = meshing.mesh_block(block, window.start, labels)
    if smooth and pieces:
        grown = grown_window(window, halo_voxels(smooth), grid)
        pieces = smooth_pieces(pieces, _read_window(arr, stride, grid, grown), grown.start, iterations=smooth)
    elif max_error_voxels is not None:
        pieces = {label: meshing.simplify_piece(piece, max_error_voxels) for label, piece in pieces.items()}
    if scratch is None:
        return pieces, voxels
    if pieces:
        arrays = {}
        for label, piece in pieces.items():
            arrays[f"c{label}"], arrays[f"f{label}"] = piece.coords, piece.faces
            if piece.positions is not None:
                arrays[f"p{label}"] = piece.positions
            if piece.keyed is not None:
                arrays[f"k{label}"] = piece.keyed
        np.savez(Path(scratch) / f"{index}.npz", **arrays)
    return {label: len(piece.faces) for label, piece in pieces.items()}, voxels


def _read_window(arr, stride: int, grid, window: meshing.ChunkWindow) -> np.ndarray:
    """A window's voxels of the meshed grid (every ``stride``-th of ``arr``), zero padded outside."""
    sl = window.read_slices(grid)
    data = arr[tuple(slice(s.start * stride, s.stop * stride, stride) for s in sl)]
    pad = window.pad_widths(grid)
    return np.pad(data, pad) if any(p != (0, 0) for p in pad) else np.asarray(data)


def _load_piece(scratch: Path, index: int, label: int) -> meshing.MeshPiece:
    with np.load(scratch / f"{index}.npz") as f:
        return meshing.MeshPiece(coords=f[f"c{label}"], faces=f[f"f{label}"],
                                 positions=f[f"p{label}"] if f"p{label}" in f.files else None,
                                 keyed=f[f"k{label}"] if f"k{label}" in f.files else None)


def _weld_whole(pieces: Iterable[meshing.MeshPiece], windows: Sequence[meshing.ChunkWindow], grid, chunk: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Pieces simplified on their own, welded into one mesh (vertices in voxel units): the same
    welding as the streamed path, collected."""
    welder = StreamWeld(shared_planes(grid, chunk), (1.0, 1.0, 1.0))
    verts, faces = [], []
    for piece, window in zip(pieces, windows):
        part = welder.add(piece, window.start[0])
        verts.append(part.vertices[part.new])  # new vertices come in id order
        faces.append(part.global_faces)
    return np.concatenate(verts), np.concatenate(faces)


def _lattice_mesh(pieces: list[meshing.MeshPiece], simplify: float | None, max_error_voxels: float | None,
                  windows: Sequence[meshing.ChunkWindow], grid, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """Weld one label's pieces (smoothed ones by their keys) and simplify (vertices in voxel
    units of the meshed grid)."""
    smoothed = None
    if any(p.keyed is not None for p in pieces) and all(p.keyed.all() for p in pieces):  # smoothed, full resolution
        coords, faces = meshing.weld(pieces)  # weld by the lattice keys
        keys = np.concatenate([meshing.pack_keys(p.coords) for p in pieces])
        first = np.unique(keys, return_index=True)[1]
        smoothed = np.concatenate([p.positions for p in pieces]).astype(np.float64)[first] / 2.0
        verts = coords.astype(np.float64) / 2.0
    elif any(p.positions is not None for p in pieces):
        verts, faces = _weld_whole(pieces, windows, grid, chunk)
    else:
        coords, faces = meshing.weld(pieces)
        verts = coords.astype(np.float64) / 2.0
    if smoothed is not None:
        if simplify is not None or max_error_voxels is not None:
            simple, faces = meshing.simplify_mesh(verts, faces, ratio=simplify, max_error=max_error_voxels)
            return carry_smoothing(simple, verts, smoothed), faces
        return smoothed, faces
    if simplify is not None or max_error_voxels is not None:
        verts, faces = meshing.simplify_mesh(verts, faces, ratio=simplify, max_error=max_error_voxels)
    return verts, faces


def _stream_label(pieces: Iterable[meshing.MeshPiece], windows: Sequence[meshing.ChunkWindow], grid, chunk: int,
                  voxel_size, paths: dict[str, Path]) -> dict[str, Any]:
    """Weld, measure and write one label piece by piece (pieces in chunk order); returns the
    measurements of :func:`ml4paleo.compute.mesh.measure_mesh`."""
    welder = StreamWeld(shared_planes(grid, chunk), voxel_size)
    writers = [MeshStreamWriter(path, fmt) for fmt, path in paths.items()]
    try:
        for piece, window in zip(pieces, windows):
            part = welder.add(piece, window.start[0])
            for w in writers:
                w.add(part.vertices, part.faces, part.ids, part.new)
        for w in writers:
            w.close()
    except BaseException:
        for w in writers:
            w.abort()
        raise
    return welder.measurements()


def _coarse_preview(labels_path, info: VolumeInfo, downsample: int, label: int, triangles: int, budget: int,
                    chunk: int, scheduler, smooth: int) -> tuple[np.ndarray, np.ndarray]:
    """A light copy of a label too big to weld whole: mesh every 2^k-th voxel (a pyramid level
    when one matches), with k the smallest that leaves under :data:`PREVIEW_WELD_MAX_TRIANGLES`
    (triangles scale with the area), then simplify to about ``budget`` triangles."""
    factor = 2
    while triangles / (factor * factor) > PREVIEW_WELD_MAX_TRIANGLES:
        factor *= 2
    level, stride, grid = _grid(info, downsample * factor)
    windows = meshing.chunk_windows(grid, int(chunk))
    args = [(str(labels_path), level, stride, grid, w, [label], None, 0, None, smooth) for w in windows]
    results = run_tasks(_mesh_window, args, scheduler=scheduler)
    kept = [i for i, r in enumerate(results) if label in r[0]]
    pieces = [results[i][0][label] for i in kept]
    n_faces = sum(len(p.faces) for p in pieces)
    lattice, faces = _lattice_mesh(pieces, budget / n_faces if n_faces > budget else None, None,
                                   [windows[i] for i in kept], grid, chunk)
    voxel = tuple(float(v) * downsample * factor for v in info.voxel_size)
    return meshing.to_physical(lattice, voxel), faces


def _write_preview(tmp: Path, label: int, safe_unit: str, verts: np.ndarray, faces: np.ndarray) -> str:
    name = f"{PREVIEW_DIR}/label_{label}_{safe_unit}.ply"
    (tmp / PREVIEW_DIR).mkdir(exist_ok=True)
    write_mesh(tmp / name, verts, faces, "ply")
    return name


def label_names(attrs: dict) -> dict[int, str]:
    """Class names recorded by the segmentation (``attrs["classes"]``, index = label value)."""
    names = {}
    for i, c in enumerate(attrs.get("classes") or []):
        name = c.get("name") if isinstance(c, dict) else c
        if isinstance(name, str) and name:
            names[int(c.get("value", i)) if isinstance(c, dict) and "value" in c else i] = name
    return names


def _validate(labels, downsample, simplify, max_error, smooth, formats, chunk) -> tuple[list[int] | None, tuple[str, ...]]:
    if labels is not None:
        labels = sorted({int(v) for v in labels})
        if not labels:
            raise InputError("labels is empty; pass None to mesh every label")
        if 0 in labels:
            raise InputError("label 0 is background and is never meshed; remove it from labels")
        if labels[0] < 0:
            raise InputError(f"labels must be positive; got {labels[0]}")
    if int(downsample) != downsample or downsample < 1:
        raise InputError(f"downsample must be a whole number >= 1; got {downsample!r}")
    if simplify is not None and not 0 < simplify <= 1:
        raise InputError(f"simplify is the fraction of triangles kept, in (0, 1]; got {simplify!r}")
    if max_error is not None and not max_error >= 0:
        raise InputError(f"max_error must be >= 0 (physical units); got {max_error!r}")
    if int(smooth) != smooth or smooth < 0:
        raise InputError(f"smooth is the smoothing filter's degree, a whole number >= 0 (0: the voxel "
                         f"surface); got {smooth!r}")
    if isinstance(formats, str):
        formats = tuple(f.strip() for f in formats.split(","))
    formats = tuple(dict.fromkeys(str(f).lower().lstrip(".") for f in formats))
    bad = [f for f in formats if f not in MESH_FORMATS]
    if bad or not formats:
        raise InputError(f"formats must be some of {', '.join(MESH_FORMATS)}; got {list(formats)!r}")
    if int(chunk) < 2:
        raise InputError(f"chunk must be at least 2 voxels; got {chunk!r}")
    return labels, formats


def mesh_labels(
    labels_path: str | Path,
    out_dir: str | Path,
    *,
    labels: Iterable[int] | None = None,
    downsample: int = 1,
    simplify: float | None = None,
    max_error: float | None = None,
    smooth: int | bool = SMOOTH_ITERATIONS,
    formats: Sequence[str] | str = (DEFAULT_MESH_FORMAT,),
    progress: ProgressCallback | None = None,
    overwrite: bool = False,
    chunk: int = MESH_CHUNK,
    scheduler: str | None = None,
    preview_triangles: int | None = None,
) -> MeshResult:
    """Write one closed mesh per label of ``labels_path`` into ``out_dir``, with ``meshes.json``.

    Parameters
    ----------
    labels_path : OME-Zarr label volume (integer voxels; 0 is background, never meshed).
    out_dir : folder to create (``label_<k>_<unit>.<fmt>`` files and ``meshes.json``).
    labels : labels to mesh (default: every nonzero label present).
    downsample : mesh every N-th voxel (a stored pyramid level when one matches).
    simplify : fraction of triangles to keep, in (0, 1]; ``max_error``: largest vertex
        displacement in the volume's unit (None with ``simplify`` None: full resolution; the
        downloads' default is :func:`download_max_error`, half a voxel). Simplification keeps
        each surface closed. ``max_error`` alone simplifies each chunk's piece in its task with
        the piece's border kept, so the label still streams in bounded memory.
    smooth : degree of the windowed-sinc smoothing that removes the voxel staircase while keeping
        volume (default :data:`~ml4paleo.compute.smooth_mesh.SMOOTH_ITERATIONS`; 0: the voxel
        surface, marching cubes of the voxels as they are; True/False: the default or 0). Done
        chunk by chunk, seamless; smoothed surfaces ignore ``max_error`` (full resolution).
    formats : any of stl, obj, ply, glb (a list or "stl,obj").
    chunk : chunk edge in voxels of the meshed grid; ``scheduler``: see
        :mod:`ml4paleo.pipelines._tasks` (None: the settings' ``dask_scheduler``, else local).
    preview_triangles : when a mesh has more triangles than this, also write a light copy
        simplified to about this many (``preview/label_<k>_<unit>.ply``, key ``preview`` in
        meshes.json) for a browser's 3D view, from the same welded mesh (no second meshing pass).

    A requested label without voxels gets no file, and a message in the result and meshes.json.
    Measurements: mesh volume (unit^3), surface area (unit^2), bounding box (z, y, x), solid
    components and cavities, and the voxel count of the meshed grid (with ``downsample`` N,
    of every N-th voxel) with its volume.

    Example::

        >>> from ml4paleo import mesh_labels
        >>> result = mesh_labels("labels.ome.zarr", "meshes", formats=("stl", "ply"), simplify=0.3)
        >>> result.measurements[1]["volume"], result.unit  # label 1, in unit^3
    """
    progress = progress or no_progress
    wanted, formats = _validate(labels, downsample, simplify, max_error, smooth, formats, chunk)
    smooth = SMOOTH_ITERATIONS if smooth is True else int(smooth)
    if smooth and simplify is None:
        max_error = None  # smoothed surfaces are not simplified within an error (module docstring)
    info = read_info(labels_path)
    if not np.issubdtype(info.dtype, np.integer):
        raise InputError(f"{labels_path} holds {info.dtype} voxels; meshing needs an integer label volume")
    if info.kind != "labels" and wanted is None:
        raise NotALabelMap(f"{labels_path} is an image volume, not a segmentation: every gray value would become a "
                           "mesh; pass labels=[...] to mesh chosen values anyway, or convert a label map with "
                           "convert_volume(..., labels=True)")
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise OutputExistsError(f"{out_dir} already exists (pass overwrite to replace it)")
    downsample = int(downsample)
    level, stride, grid = _grid(info, downsample)
    voxel_size = tuple(float(v) * downsample for v in info.voxel_size)
    unit = info.unit
    windows = meshing.chunk_windows(grid, int(chunk))
    scheduler = scheduler_setting(scheduler)
    if scheduler == LOCAL and int(np.prod(grid)) < PARALLEL_MIN_VOXELS:
        scheduler = "synchronous"
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    scratch = partial_path(out_dir.with_name(out_dir.name + ".pieces"))
    scratch.mkdir()
    tmp = partial_path(out_dir)
    try:
        # max_error alone: each chunk's piece is simplified in its task, borders kept, and the
        # label still streams; a triangle ratio needs the whole mesh (the simplifier's target)
        # smoothed surfaces are not simplified chunk by chunk: see the module's docstring
        per_piece = (None if max_error is None or simplify is not None or smooth
                     else float(max_error) / max(voxel_size))
        args = [(str(labels_path), level, stride, grid, w, wanted, str(scratch), i, per_piece, smooth)
                for i, w in enumerate(windows)]
        progress(0.0, 1.0, "meshing chunks")
        results = run_tasks(_mesh_window, args, scheduler=scheduler,
                            progress=scaled(progress, 0.0, 0.6, "meshing chunks"), stage="meshing chunks")
        where: dict[int, list[int]] = {}  # label -> indices of the windows with a piece of it, in order
        triangles: dict[int, int] = {}
        voxels: dict[int, int] = {}
        for index, (chunk_triangles, chunk_voxels) in enumerate(results):
            for label, n in chunk_triangles.items():
                where.setdefault(label, []).append(index)
                triangles[label] = triangles.get(label, 0) + n
            for label, n in chunk_voxels.items():
                voxels[label] = voxels.get(label, 0) + n
        del results
        targets = wanted if wanted is not None else sorted(voxels)
        names = label_names(info.attrs)
        safe_unit = re.sub(r"[^A-Za-z0-9]+", "_", unit).strip("_") or "unit"
        tmp.mkdir()
        files: list[str] = []
        measurements: dict[int, dict[str, Any]] = {}
        messages: list[str] = []
        meshes_doc: list[dict[str, Any]] = []
        post = scaled(progress, 0.6, 1.0, "welding and writing meshes")
        whole_needed = simplify is not None or any(f not in STREAM_FORMATS for f in formats)
        for i, label in enumerate(targets):
            post(i, max(len(targets), 1), f"label {label}")
            if label not in where:
                msg = f"label {label} has no voxels in {Path(labels_path).name}; no mesh written"
                messages.append(msg)
                meshes_doc.append({"label": label, "name": names.get(label, f"label {label}"), "files": {},
                                   "measurements": None, "message": msg})
                continue
            entry = {"label": label, "name": names.get(label, f"label {label}"), "files": {}}
            paths = {fmt: f"label_{label}_{safe_unit}.{fmt}" for fmt in formats}
            wants_preview = bool(preview_triangles) and triangles[label] > preview_triangles
            pieces = (_load_piece(scratch, index, label) for index in where[label])
            # a preview is simplified from the welded full-resolution mesh (lattice vertices); pieces
            # already simplified or smoothed off the lattice take the coarse grid's instead (zmesh's simplifier
            # measured minutes, not seconds, reducing such a mesh hundreds of times)
            weld_preview = (wants_preview and triangles[label] <= PREVIEW_WELD_MAX_TRIANGLES and per_piece is None
                            and not smooth)
            if whole_needed or weld_preview:
                # a displacement of e voxels is at most e * max(voxel_size) in physical units
                label_windows = [windows[index] for index in where[label]]
                if per_piece is not None:
                    lattice, faces = _weld_whole(pieces, label_windows, grid, chunk)
                else:
                    err = None if max_error is None or smooth else float(max_error) / max(voxel_size)
                    lattice, faces = _lattice_mesh(list(pieces), simplify, err, label_windows, grid, chunk)
                verts = meshing.to_physical(lattice, voxel_size)
                m = meshing.measure_mesh(verts, faces)
                for fmt, name in paths.items():
                    write_mesh(tmp / name, verts, faces, fmt)
                if wants_preview and len(faces) > preview_triangles and (per_piece is not None or smooth):
                    pv, pf = _coarse_preview(labels_path, info, downsample, label, triangles[label],
                                             preview_triangles, chunk, scheduler, smooth)
                    if len(pf):
                        entry["preview"] = _write_preview(tmp, label, safe_unit, pv, pf)
                elif wants_preview and len(faces) > preview_triangles:
                    pv, pf = meshing.simplify_mesh(lattice, faces, ratio=preview_triangles / len(faces))
                    entry["preview"] = _write_preview(tmp, label, safe_unit, meshing.to_physical(pv, voxel_size), pf)
                del lattice, verts, faces
            else:
                m = _stream_label(pieces, [windows[index] for index in where[label]], grid, chunk, voxel_size,
                                  {fmt: tmp / name for fmt, name in paths.items()})
                if wants_preview:
                    pv, pf = _coarse_preview(labels_path, info, downsample, label, triangles[label],
                                             preview_triangles, chunk, scheduler, smooth)
                    if len(pf):
                        entry["preview"] = _write_preview(tmp, label, safe_unit, pv, pf)
            m.update(voxel_count=voxels.get(label, 0),
                     voxel_volume=float(voxels.get(label, 0) * np.prod(voxel_size)),
                     unit=unit, volume_unit=f"{unit}^3", area_unit=f"{unit}^2", axes=["z", "y", "x"])
            entry["measurements"] = m
            entry["files"] = dict(paths)
            files.extend(paths.values())
            measurements[label] = m
            meshes_doc.append({k: entry[k] for k in ("label", "name", "files", "measurements", "preview") if k in entry})
        doc = {
            "source": str(labels_path),
            "unit": unit,
            "voxel_size": list(voxel_size),
            "source_voxel_size": list(info.voxel_size),
            "axes": ["z", "y", "x"],
            "file_axes": ["x", "y", "z"],
            "parameters": {"labels": wanted, "downsample": downsample, "simplify": simplify,
                           "max_error": max_error, "smooth": smooth, "formats": list(formats),
                           "chunk": int(chunk), "preview_triangles": preview_triangles},
            "meshes": meshes_doc,
            "messages": messages,
        }
        (tmp / "meshes.json").write_text(json.dumps(doc, indent=2))
        replace_atomically(tmp, out_dir, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    progress(1.0, 1.0, "done")
    return MeshResult(out_dir=out_dir, files=[out_dir / f for f in files], measurements=measurements,
                      messages=messages, unit=unit, voxel_size=voxel_size)  # type: ignore[arg-type]
