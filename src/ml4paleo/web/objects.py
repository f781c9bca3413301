"""Objects concern: queue the objects of a segmentation (with merges), read their table, the
CSV/JSON downloads, slices with the objects coloured one by one, the object under a pixel, and
one object's smoothed mesh (STL)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from flask import Blueprint, jsonify, render_template, request, send_file

from ml4paleo.compute import display
from ml4paleo.errors import ArtifactNotFound, InputError
from ml4paleo.io.png import encode_png
from ml4paleo.io.slices import read_slice
from ml4paleo.io.slices import volume_window
from ml4paleo.web._common import float_arg, int_field, int_value, json_body, paths, png_response, store, window_arg

bp = Blueprint("objects", __name__)

MAX_MERGES = 200
"""Merge groups (and seeded splits) one request may carry (each re-measures objects)."""
MAX_SEED_POINTS = 100
"""Clicked points of one seeded split."""
MESH_MAX_BOX_VOXELS = 1 << 24
"""Largest bounding box meshed in a request (16 M voxels: a few seconds)."""
ZIP_MAX_VOXELS = 1 << 26
"""Largest sum of the objects' boxes meshed for the zip in one request (64 M voxels: tens of seconds)."""


@bp.get("/job/<job_id>/objects")
def objects_page(job_id: str):
    paths(job_id)
    return render_template("objects.html", job_id=job_id)


def _options(job_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """The options of an objects run from a request body, checked (400 naming the field)."""
    out: dict[str, Any] = {}
    classes = data.get("classes")
    if classes is not None:
        if (not isinstance(classes, list) or not classes or len(classes) > 255
                or not all((isinstance(c, str) and 0 < len(c) <= 100) or (isinstance(c, int) and not isinstance(c, bool)
                                                                           and c >= 1) for c in classes)):
            raise InputError("classes must be a non-empty list of class names or values >= 1")
        out["classes"] = classes
    split = data.get("split", "auto")
    if split not in ("auto", "none"):
        raise InputError(f"split must be 'auto' or 'none'; got {str(split)[:20]!r}")
    out["split"] = split
    out["min_size"] = int_field(data, "min_size", default=0, minimum=0)
    merge = data.get("merge", [])
    if (not isinstance(merge, list) or len(merge) > MAX_MERGES
            or not all(isinstance(g, list) and 2 <= len(g) <= 100 and all(isinstance(i, int) and not isinstance(i, bool)
                                                                         and i >= 1 for i in g) for g in merge)):
        raise InputError(f"merge must be a list of at most {MAX_MERGES} groups of two or more object ids (>= 1)")
    out["merge"] = merge
    seeds = data.get("seeds", [])
    if not isinstance(seeds, list) or len(seeds) > MAX_MERGES or not all(_seed_ok(s) for s in seeds):
        raise InputError(f"seeds must be a list of {{z, points: [[row, col, part], ...]}} (at most "
                         f"{MAX_SEED_POINTS} points, parts 1-255)")
    if seeds:
        shape = store().jobs.job_field(job_id, "shape") or [0, 0, 0]
        for s in seeds:
            if not 0 <= s["z"] < shape[0] or any(not (0 <= r < shape[1] and 0 <= c < shape[2]) for r, c, _ in s["points"]):
                raise InputError(f"seed points must lie in the volume ({shape[0]} slices of {shape[1]}x{shape[2]})")
    out["seeds"] = seeds
    return out


def _seed_ok(seed: Any) -> bool:
    """One seeded split: ``{"z": slice, "points": [[row, col, part], ...]}`` with whole numbers."""
    if not isinstance(seed, dict) or set(seed) != {"z", "points"}:
        return False
    points = seed["points"]
    whole = lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0  # noqa: E731
    return (whole(seed["z"]) and isinstance(points, list) and 2 <= len(points) <= MAX_SEED_POINTS
            and all(isinstance(p, list) and len(p) == 3 and all(whole(v) for v in p) and 1 <= p[2] <= 255
                    for p in points))


@bp.post("/api/job/<job_id>/objects")
def queue_objects(job_id: str):
    """Queue the objects of ``seg_id`` (default: the newest finished segmentation). Body:
    ``classes`` (names or values), ``split`` (auto|none), ``min_size`` (voxels), ``merge``
    (``[[12, 15], ...]``: ids of the run with the same options and the merges before), ``seeds``
    (``[{"z": 40, "points": [[row, col, part], ...]}, ...]``: each splits the object under its
    points, one part per value, after the merges)."""
    data = json_body()
    seg_id = data.get("seg_id")
    if seg_id is not None and not isinstance(seg_id, str):
        raise InputError("seg_id must be a string")
    queued = store().queue.queue_objects(job_id, seg_id, _options(job_id, data))
    return jsonify(queued), 202


def _ready_run(job_id: str, seg_id: str) -> tuple[dict[str, Any], Path]:
    """The objects state of a segmentation and the folder of its newest finished run (404 if none)."""
    job_paths = paths(job_id)
    store().artifacts.segmentation(job_id, seg_id)  # 404 for an id of another job
    state = store().queue.objects_state(job_id, seg_id)
    if state["ready"] is None:
        raise ArtifactNotFound(f"segmentation {seg_id} has no objects yet")
    return state, job_paths.objects(seg_id, state["ready"]["task_id"])


@bp.get("/api/job/<job_id>/segmentation/<seg_id>/objects")
def objects_table(job_id: str, seg_id: str):
    """``ready`` (the newest finished run), ``pending`` (progress of a queued or running one),
    ``error``; with a ready run, its table (``objects``), ``unit``, ``parameters``, ``messages``."""
    paths(job_id)
    store().artifacts.segmentation(job_id, seg_id)
    state = store().queue.objects_state(job_id, seg_id)
    doc: dict[str, Any] = {}
    if state["ready"] is not None:
        folder = paths(job_id).objects(seg_id, state["ready"]["task_id"])
        doc = json.loads((folder / "objects.json").read_text())
    return jsonify(ready=state["ready"], pending=state["pending"], error=state["error"],
                   objects=_with_colors(doc.get("objects", [])), unit=doc.get("unit"), voxel_size=doc.get("voxel_size"),
                   parameters=state["ready"]["params"] if state["ready"] else None, messages=doc.get("messages", []),
                   classes=doc.get("classes", []), thickness_map=bool(doc.get("thickness_map")),
                   thickness_top=_thickness_top(doc), thickness_colors=list(display.THICKNESS_COLORS))


def _with_colors(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with each object's colour in the slices (``color``, hex), for the 3D view."""
    rgb = display.id_colors(np.array([int(r["id"]) for r in rows], np.int64)).reshape(-1, 3)
    return [{**r, "color": "#%02x%02x%02x" % tuple(int(v) for v in c)} for r, c in zip(rows, rgb)]


def _thickness_top(doc: dict[str, Any]) -> float | None:
    """The top of the thickness colour scale: the largest thickness of any object."""
    values = [o["thickness_max"] for o in doc.get("objects", []) if o.get("thickness_max")]
    return max(values) if values else None


@bp.get("/api/job/<job_id>/segmentation/<seg_id>/objects.<fmt>")
def objects_download(job_id: str, seg_id: str, fmt: str):
    """The newest finished table as ``objects.csv`` or ``objects.json``."""
    if fmt not in ("csv", "json"):
        raise ArtifactNotFound("objects are downloaded as .csv or .json")
    _, folder = _ready_run(job_id, seg_id)
    return send_file(folder / f"objects.{fmt}", as_attachment=True, download_name=f"objects_{seg_id}.{fmt}",
                     mimetype="text/csv" if fmt == "csv" else "application/json", max_age=0)


@bp.get("/api/job/<job_id>/segmentation/<seg_id>/objects/slice/<axis>/<int:index>.png")
def objects_slice(job_id: str, seg_id: str, axis: str, index: int):
    """A slice of the scan (``window=lo,hi``) with every object in its own colour
    (``opacity``), the ``selected`` one opaque."""
    _, folder = _ready_run(job_id, seg_id)
    job_paths = paths(job_id)
    window = window_arg() or store().jobs.job_field(job_id, "window") or volume_window(job_paths.volume)
    gray = display.to_uint8(read_slice(job_paths.volume, axis, index), window)
    ids = read_slice(folder / "objects.ome.zarr", axis, index)
    selected = int_value(request.args.get("selected"), "selected", default=0, minimum=0)
    return png_response(encode_png(display.overlay_ids(gray, ids, float_arg("opacity", 0.5), selected or None)))


@bp.get("/api/job/<job_id>/segmentation/<seg_id>/objects/thickness/<axis>/<int:index>.png")
def thickness_slice(job_id: str, seg_id: str, axis: str, index: int):
    """A slice of the scan (``window=lo,hi``) with the objects' local thickness in colour
    (``opacity``; the scale runs from 0 to ``top``, default the largest thickness, in the
    volume's unit: the colour bar of the table's ``thickness_colors``)."""
    _, folder = _ready_run(job_id, seg_id)
    map_path = folder / "objects_thickness.ome.zarr"
    if not map_path.is_dir():
        raise ArtifactNotFound("this objects run has no thickness map; find the objects again to make one")
    job_paths = paths(job_id)
    window = window_arg() or store().jobs.job_field(job_id, "window") or volume_window(job_paths.volume)
    gray = display.to_uint8(read_slice(job_paths.volume, axis, index), window)
    values = read_slice(map_path, axis, index)
    top = float_arg("top", 0.0)
    if request.args.get("top") and not top > 0:
        raise InputError(f"top must be a positive thickness in the volume's unit; got {top:g}")
    if not top > 0:
        top = _thickness_top(json.loads((folder / "objects.json").read_text())) or 1.0
    return png_response(encode_png(display.overlay_values(gray, values, top, float_arg("opacity", 0.7))))


@bp.get("/api/job/<job_id>/segmentation/<seg_id>/objects/at/<axis>/<int:index>/<int:row>/<int:col>")
def object_at(job_id: str, seg_id: str, axis: str, index: int, row: int, col: int):
    """The object id (0: none) at pixel (``row``, ``col``) of a slice."""
    _, folder = _ready_run(job_id, seg_id)
    ids = read_slice(folder / "objects.ome.zarr", axis, index)
    if not (0 <= row < ids.shape[0] and 0 <= col < ids.shape[1]):
        raise InputError(f"pixel ({row}, {col}) is outside the {ids.shape[0]}x{ids.shape[1]} slice")
    return jsonify(id=int(ids[row, col]))


@bp.get("/api/job/<job_id>/segmentation/<seg_id>/objects/meshes.zip")
def object_meshes(job_id: str, seg_id: str):
    """One smoothed STL per object (``object_<id>.stl``, physical units, in place), zipped: made
    on the first request and kept in the run's folder; 400 when the objects' boxes add up to more
    than :data:`ZIP_MAX_VOXELS` (the CLI's ``objects --per-object`` has no such limit)."""
    from ml4paleo.pipelines.object_meshes import meshes_zip_path, write_object_meshes  # lazy: meshing

    _, folder = _ready_run(job_id, seg_id)
    target = meshes_zip_path(folder / "objects.ome.zarr")
    if not target.is_file():
        rows = json.loads((folder / "objects.json").read_text())["objects"]
        total = sum(int(np.prod(np.subtract(r["bbox_stop"], r["bbox_start"]))) for r in rows)
        if total > ZIP_MAX_VOXELS:
            raise InputError(f"the objects' boxes hold {total} voxels, above the {ZIP_MAX_VOXELS} meshed in a "
                             "request; use `ml4paleo objects LABELS OUT --per-object`")
        write_object_meshes(folder / "objects.ome.zarr", rows, target, overwrite=True,
                            max_box_voxels=MESH_MAX_BOX_VOXELS)
    return send_file(target, as_attachment=True, download_name=f"objects_meshes_{seg_id}.zip",
                     mimetype="application/zip", max_age=0)


@bp.get("/api/job/<job_id>/segmentation/<seg_id>/objects/<int:object_id>.stl")
def object_mesh(job_id: str, seg_id: str, object_id: int):
    """One object's smoothed closed surface (the mesh its area was measured on), physical units,
    made on the first request and kept in the run's folder."""
    from ml4paleo.compute.measure import mesh_of_mask  # lazy: scikit-image
    from ml4paleo.io.exports import write_mesh
    from ml4paleo.io.omezarr import open_level

    _, folder = _ready_run(job_id, seg_id)
    target = folder / "meshes" / f"object_{object_id}.stl"
    if not target.is_file():
        doc = json.loads((folder / "objects.json").read_text())
        row = next((o for o in doc["objects"] if o["id"] == object_id), None)
        if row is None:
            raise ArtifactNotFound(f"there is no object {object_id}")
        box = tuple(slice(a, b) for a, b in zip(row["bbox_start"], row["bbox_stop"]))
        if int(np.prod([s.stop - s.start for s in box])) > MESH_MAX_BOX_VOXELS:
            raise InputError(f"object {object_id} is too large to mesh in a request; use `ml4paleo mesh` on "
                             "objects.ome.zarr")
        mask = np.asarray(open_level(folder / "objects.ome.zarr", 0)[box]) == object_id
        verts, faces = mesh_of_mask(mask, doc["voxel_size"])
        verts = verts + np.asarray(row["bbox_start"]) * np.asarray(doc["voxel_size"])
        target.parent.mkdir(exist_ok=True)
        write_mesh(target, verts, faces, "stl")
    return send_file(target, as_attachment=True, download_name=f"object_{object_id}_{seg_id}.stl", max_age=0)
