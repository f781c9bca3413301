"""Visualization concern: files of the Zarr stores and meshes (for the viewer and an external
Neuroglancer), mesh list, and rendered slices with window/level and a label overlay."""

from __future__ import annotations

import numpy as np
from flask import Blueprint, jsonify, render_template, request

from ml4paleo.errors import ArtifactNotFound, InputError
from ml4paleo.compute import display
from ml4paleo.io import slices
from ml4paleo.web._common import float_arg, paths, png_response, safe_file, store

bp = Blueprint("visualize", __name__)
MAX_LEVEL = 16


@bp.get("/job/<job_id>/viewer")
def viewer_page(job_id: str):
    paths(job_id)
    return render_template("viewer.html", job_id=job_id)


@bp.get("/api/job/<job_id>/zarr/<path:path>")
def volume_file(job_id: str, path: str):
    return safe_file(paths(job_id).volume, path)


def _seg_paths(job_id: str, seg_id: str):
    job_paths = paths(job_id)
    store().segmentation(job_id, seg_id)  # 404 for an id of another job
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
    for m in store().meshes(job_id, seg_id):
        files = dict(m["files"] or {})
        preview = files.pop("preview", None)  # the light copy for the 3D view, not a download format
        items.append({"label": m["label"], "name": m["name"], "measurements": m["measurements"],
                      "files": {fmt: base + name for fmt, name in files.items()},
                      "preview": base + preview if preview else None})
    return jsonify(unit=store().job_field(job_id, "unit"), meshes=items)


def _window(default: list[float]) -> list[float]:
    text = request.args.get("window")
    if not text:
        return default
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"window must be 'lo,hi'; got {text[:40]!r}") from None
    if not (hi > lo) or any(v != v or abs(v) == float("inf") for v in (lo, hi)):
        raise InputError(f"window must be two finite numbers lo < hi; got {text[:40]!r}")
    return [lo, hi]


@bp.get("/api/job/<job_id>/slice/<axis>/<int:index>.png")
def slice_png(job_id: str, axis: str, index: int):
    """One slice as 8-bit PNG (``window=lo,hi``), optionally with a segmentation overlay
    (``seg=<seg_id>&opacity=0.5``), from a pyramid ``level``, shrunk to at most ``max`` pixels
    a side (thumbnails, nearest neighbour). ``seg=<seg_id>&labels=1`` gives the segmentation's
    class indices as a gray PNG instead (the viewer colours and hides classes itself)."""
    if axis not in display.AXES:
        raise ArtifactNotFound(f"axis must be z, y or x; got {axis[:10]!r}")
    doc = store().job_doc(job_id)
    if not doc["shape"]:
        raise ArtifactNotFound("the volume is not converted yet")
    level = int(float_arg("level", 0))
    if not 0 <= level <= MAX_LEVEL:
        raise InputError(f"level must be from 0 to {MAX_LEVEL}; got {level}")
    longest = request.args.get("max")
    step = 1
    if longest:
        step = display.thumbnail_step(doc["shape"], axis, int(float_arg("max", 0)))
        step = max(1, step >> level)  # a pyramid level is already 2**level times smaller
    raw_labels = request.args.get("labels", "") not in ("", "0", "false")
    job_paths = store().paths(job_id)
    seg_id = request.args.get("seg")
    if raw_labels and not seg_id:
        raise InputError("labels=1 needs seg=<seg_id>")
    labels = None
    if seg_id:
        seg = store().segmentation(job_id, seg_id)
        if seg["status"] != "done":
            raise ArtifactNotFound(f"segmentation {seg_id} is not finished ({seg['status']})")
        labels = slices.read_slice(job_paths.labels(seg_id), axis, index, level, step)
        if raw_labels:
            return png_response(slices.encode_png(labels.astype(np.uint8)))
    window = _window(doc["window"] or slices.volume_window(job_paths.volume))
    image = display.to_uint8(slices.read_slice(job_paths.volume, axis, index, level, step), window)
    if labels is not None:
        colors = {c["value"] - 1: display.hex_to_rgb(c["color"]) for c in doc["classes"]}
        image = display.overlay(image, labels, colors, float_arg("opacity", 0.5))
    return png_response(slices.encode_png(image))
