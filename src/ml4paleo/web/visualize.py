"""Visualization concern: files of the Zarr stores and meshes (for the viewer and an external
Neuroglancer), mesh list, and rendered slices with window/level and a label overlay."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template, request

from ml4paleo.io.png import encode_png
from ml4paleo.io.slices import read_voxel
from ml4paleo.jobs.volume_views import converted, slice_image, volume_histogram
from ml4paleo.web._common import float_arg, int_value, paths, png_response, safe_file, store, window_arg

bp = Blueprint("visualize", __name__)


@bp.get("/job/<job_id>/viewer")
def viewer_page(job_id: str):
    paths(job_id)
    return render_template("viewer.html", job_id=job_id)


@bp.get("/api/job/<job_id>/zarr/<path:path>")
def volume_file(job_id: str, path: str):
    return safe_file(paths(job_id).volume, path)


def _seg_paths(job_id: str, seg_id: str):
    job_paths = paths(job_id)
    store().artifacts.segmentation(job_id, seg_id)  # 404 for an id of another job
    return job_paths


@bp.get("/api/job/<job_id>/segmentation/<seg_id>/zarr/<path:path>")
def labels_file(job_id: str, seg_id: str, path: str):
    return safe_file(_seg_paths(job_id, seg_id).labels(seg_id), path)


@bp.get("/api/job/<job_id>/segmentation/<seg_id>/obj/<path:path>")
def mesh_file(job_id: str, seg_id: str, path: str):
    return safe_file(_seg_paths(job_id, seg_id).meshes(seg_id), path)


@bp.get("/api/job/<job_id>/segmentation/<seg_id>/meshes")
def meshes(job_id: str, seg_id: str):
    _seg_paths(job_id, seg_id)
    base = f"/api/job/{job_id}/segmentation/{seg_id}/obj/"
    items = []
    for m in store().artifacts.meshes(job_id, seg_id):
        files = dict(m["files"] or {})
        preview = files.pop("preview", None)  # the light copy for the 3D view, not a download format
        items.append({"label": m["label"], "name": m["name"], "measurements": m["measurements"],
                      "files": {fmt: base + name for fmt, name in files.items()},
                      "preview": base + preview if preview else None})
    return jsonify(unit=store().jobs.job_field(job_id, "unit"), meshes=items)


@bp.get("/api/job/<job_id>/slice/<axis>/<int:index>.png")
def slice_png(job_id: str, axis: str, index: int):
    """One slice as 8-bit PNG (``window=lo,hi``), optionally with a segmentation overlay
    (``seg=<seg_id>&opacity=0.5``), from a pyramid ``level``, shrunk to at most ``max`` pixels
    a side (thumbnails, nearest neighbour). ``seg=<seg_id>&labels=1`` gives the segmentation's
    class indices as a gray PNG instead (the viewer colours and hides classes itself)."""
    image = slice_image(store(), job_id, axis, index, level=int(float_arg("level", 0)),
                        max_side=int(float_arg("max", 0)) if request.args.get("max") else None,
                        seg_id=request.args.get("seg") or None,
                        raw_labels=request.args.get("labels", "") not in ("", "0", "false"),
                        window=window_arg(), opacity=float_arg("opacity", 0.5) if request.args.get("seg") else 0.5)
    return png_response(encode_png(image))


@bp.get("/api/job/<job_id>/voxel")
def voxel(job_id: str):
    """The scan's raw value at voxel ``z``, ``y``, ``x`` (what the cursor points at, not its
    display grey), and ``source_kind`` (``dicom-series``: rescaled values, HU for CT)."""
    converted(store(), job_id)
    z, y, x = (int_value(request.args.get(name), name, minimum=0) for name in "zyx")
    value, source_kind = read_voxel(paths(job_id).volume, z, y, x)
    return jsonify(z=z, y=y, x=x, value=value, source_kind=source_kind)


@bp.get("/api/job/<job_id>/histogram")
def histogram(job_id: str):
    """The histogram of the volume's raw values, for choosing a display window on them
    (``window=lo,hi`` of the slice routes), with the presets ``auto`` and ``full``."""
    return jsonify(volume_histogram(store(), job_id))
