"""Jobs concern: list, rename, delete, classes, the job's event log, health, the enumerations
the pages offer (``/api/enums``) and the OpenAPI document."""

from __future__ import annotations

import shutil

from flask import Blueprint, jsonify

from ml4paleo.enums import CLASS_NAME_MAX, CODECS, DEFAULT_MESH_FORMAT, EXPORT_FORMATS, MESH_FORMATS, TRAIN_METHODS, default_classes
from ml4paleo.errors import InputError
from ml4paleo.jobs import voxel_size
from ml4paleo.jobs.statuses import (JOB_STEPS, STATUS_STEPS, MeshStatus, ModelStatus, SegmentationStatus, Status,
                                    TaskStatus)
from ml4paleo.jobs.store import check_name
from ml4paleo.units import DEFAULT_VOXEL_SIZE, LENGTH_UNITS, UNIT_SYMBOLS
from ml4paleo.version import __version__
from ml4paleo.web._common import json_body, paths, store
from ml4paleo.web.auth.current import viewer
from ml4paleo.web.openapi import document

bp = Blueprint("jobs", __name__)


@bp.get("/api/jobs")
def list_jobs():
    return jsonify(jobs=store().jobs.list_jobs(viewer()))


@bp.patch("/api/job/<job_id>")
def update(job_id: str):
    """Rename (``name``) and/or set the voxel size (``voxel_size`` [z, y, x], ``unit``)."""
    data = json_body()
    if not any(k in data for k in ("name", "voxel_size", "unit")):
        raise InputError("give name, voxel_size and/or unit")
    if "name" in data:
        check_name(data["name"])  # before any change, so a bad name changes nothing
    doc: dict = {}
    if "voxel_size" in data or "unit" in data:
        doc = voxel_size.set_voxel_size(store(), job_id, data.get("voxel_size"), data.get("unit"))
    doc = {**doc, **store().jobs.rename_job(job_id, data["name"])} if "name" in data else doc
    return jsonify(doc)


@bp.delete("/api/job/<job_id>")
def delete(job_id: str):
    """Delete the job's records, then its folder (a runner working on it stops at its next beat)."""
    root = paths(job_id).root
    store().jobs.delete_job(job_id)
    shutil.rmtree(root, ignore_errors=True)
    return jsonify(job_id=job_id, deleted=True)


@bp.put("/api/job/<job_id>/classes")
def set_classes(job_id: str):
    return jsonify(store().jobs.set_classes(job_id, json_body().get("classes")))


@bp.get("/api/job/<job_id>/events")
def events(job_id: str):
    return jsonify(events=store().jobs.events(job_id), tasks=store().queue.tasks(job_id))


@bp.get("/api/health")
def health():
    """Liveness (the database answers) plus queue depths per runner kind."""
    return jsonify(status="ok", version=__version__, queues=store().queue.queue_depths())


@bp.get("/api/enums")
def enums():
    """Every enumerated value a page offers, from its one definition (pages never copy them)."""
    return jsonify(mesh_formats=list(MESH_FORMATS), default_mesh_format=DEFAULT_MESH_FORMAT,
                   export_formats=list(EXPORT_FORMATS), codecs=list(CODECS),
                   default_classes=default_classes(), job_statuses=list(Status), model_statuses=list(ModelStatus),
                   segmentation_statuses=list(SegmentationStatus), mesh_statuses=list(MeshStatus),
                   task_statuses=list(TaskStatus), units=list(LENGTH_UNITS), unit_symbols=dict(UNIT_SYMBOLS),
                   default_voxel_size=list(DEFAULT_VOXEL_SIZE), train_methods=list(TRAIN_METHODS),
                   class_name_max=CLASS_NAME_MAX, job_steps=list(JOB_STEPS),
                   status_steps={s.value: {"step": step, "running": running}
                                 for s, (step, running) in STATUS_STEPS.items()})


@bp.get("/api/openapi.json")
def openapi():
    return jsonify(document())
