"""Segmentation concern: queue training, train-then-segment, meshing; cancel; the models page."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template

from ml4paleo.enums import DEFAULT_MESH_FORMAT, MESH_FORMATS
from ml4paleo.errors import InputError, InvalidTransition
from ml4paleo.jobs.statuses import ModelStatus
from ml4paleo.models import model_report
from ml4paleo.web._common import json_body, paths, store

bp = Blueprint("segment", __name__)


@bp.get("/job/<job_id>/models")
def models_page(job_id: str):
    paths(job_id)
    return render_template("models.html", job_id=job_id)


@bp.get("/api/job/<job_id>/models/<model_id>")
def model_detail(job_id: str, model_id: str):
    """The method a model uses and why: every candidate's held-out Dice, warnings, painted and
    completed slices (409 while it trains)."""
    job_paths = paths(job_id)
    model = store().artifacts.model(job_id, model_id)
    if model["status"] != ModelStatus.READY:
        raise InvalidTransition(f"model {model_id} is not ready ({model['status']})")
    return jsonify(model_id=model_id, **model_report(job_paths.model(model_id)))


@bp.post("/api/job/<job_id>/retrain")
def retrain(job_id: str):
    """Queue a train-only task; the model shows in the status when ready. Body (optional):
    ``{"method": "auto"|"forest"|...}``, else the server's setting. When the newest model was
    trained on the same annotations, classes and method, nothing is queued: 200 with its id and
    ``model_reused: true``."""
    queued = store().queue.queue_train(job_id, _method())
    return jsonify(model_id=queued.model_id, model_reused=queued.model_reused), 200 if queued.model_reused else 202


@bp.post("/api/job/<job_id>/start")
def start(job_id: str):
    """Queue training on every annotation, then segmentation of the whole volume; the newest model
    is reused (``model_reused: true``) when no annotation changed since it was trained."""
    queued = store().queue.queue_start(job_id, _method())
    return jsonify(seg_id=queued.seg_id, model_id=queued.model_id, model_reused=queued.model_reused), 202


def _method() -> str | None:
    method = json_body().get("method")
    if method is not None and not isinstance(method, str):
        raise InputError("method must be a string")
    return method or None


@bp.post("/api/job/<job_id>/mesh")
def mesh(job_id: str):
    """Queue meshing of the given (or newest finished) segmentation; the files are simplified
    within half a voxel unless ``full_resolution`` is true (meshes are now smoothed, hence full
    resolution either way: :mod:`ml4paleo.pipelines.mesh`)."""
    data = json_body()
    seg_id = data.get("seg_id")
    if seg_id is not None and not isinstance(seg_id, str):
        raise InputError("seg_id must be a string")
    formats = data.get("formats", [DEFAULT_MESH_FORMAT])
    if isinstance(formats, str):
        formats = [f.strip() for f in formats.split(",") if f.strip()]
    if (not isinstance(formats, list) or not formats
            or not all(isinstance(f, str) and f in MESH_FORMATS for f in formats)):
        raise InputError(f"formats must be a non-empty list of {', '.join(MESH_FORMATS)}")
    if DEFAULT_MESH_FORMAT not in formats:
        formats = [DEFAULT_MESH_FORMAT, *formats]  # the mesh download is a zip of these files
    full = data.get("full_resolution", False)
    if not isinstance(full, bool):
        raise InputError("full_resolution must be true or false (default false: simplified within half a voxel)")
    return jsonify(seg_id=store().queue.queue_mesh(job_id, seg_id, list(dict.fromkeys(formats)), full_resolution=full)), 202


@bp.post("/api/job/<job_id>/cancel")
def cancel(job_id: str):
    """Cancel the queued task at once, or ask the runner of the running one to stop."""
    return jsonify(job=store().queue.cancel(job_id))
