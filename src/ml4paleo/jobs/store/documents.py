"""The status document of the HTTP API (``GET /api/job/<id>/status``): what every part of the
store returns after changing a job, so it lives apart from each of them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ml4paleo.jobs.statuses import (ACTIVE, MODEL_PENDING, READY, TRAINING, JobEvent, MeshStatus, ModelStatus,
                                    SegmentationStatus, TaskKind, TaskStatus, can_happen)
from ml4paleo.jobs.store._base import iso
from ml4paleo.jobs.tables import Annotation, Job, Model, Segmentation, Task

__all__ = ["job_document"]


def _validations(s: Session, job_id: str) -> dict[str, dict[str, Any]]:
    """Model id -> ``{"validation": "pending" | "failed" | "done", "validating": bool}`` (and
    ``validation_error``) from its newest ``validate`` task: a model saved before its figures
    says so until they come (``validating``: the flag the pages read)."""
    rows = s.execute(select(Task.model_id, Task.status, Task.error).where(Task.job_id == job_id,
                                                                          Task.kind == TaskKind.VALIDATE)
                     .order_by(Task.id)).all()
    out: dict[str, dict[str, Any]] = {}
    for model_id, status, error in rows:  # the newest task of each model wins
        if status in ACTIVE:
            out[model_id] = {"validation": "pending", "validating": True}
        elif status == TaskStatus.DONE:
            out[model_id] = {"validation": "done", "validating": False}
        else:
            out[model_id] = {"validation": "failed", "validating": False, "validation_error": error or str(status)}
    return out


def job_document(s: Session, job: Job) -> dict[str, Any]:
    """The status document of the HTTP API (``GET /api/job/<id>/status``) of a job row."""
    models = s.scalars(select(Model).where(Model.job_id == job.id).order_by(Model.created_at)).all()
    segs = s.scalars(select(Segmentation).where(Segmentation.job_id == job.id)
                     .order_by(Segmentation.created_at)).all()
    painted = s.execute(select(Annotation.axis, Annotation.z).where(Annotation.job_id == job.id)
                        .order_by(Annotation.axis.desc(), Annotation.z)).all()
    zs = [index for axis, index in painted if axis == "z"]
    done = [g for g in segs if g.status == SegmentationStatus.DONE]
    validations = _validations(s, job.id)
    ready = [m for m in models if m.status == ModelStatus.READY]
    # whether segmenting now uses the newest model as it is, or trains a new one first
    current = bool(ready) and ready[-1].annotation_rev == job.annotation_rev and \
        list(ready[-1].classes or []) == [c["name"] for c in job.classes or []]
    return {
        "job_id": job.id, "name": job.name, "status": job.status, "progress": round(job.progress, 4),
        "stage": job.stage, "error": job.error, "created_at": iso(job.created_at),
        "updated_at": iso(job.updated_at), "shape": job.shape, "dtype": job.dtype,
        "voxel_size": job.voxel_size, "unit": job.unit, "source_type": job.source_type,
        "window": job.window, "warnings": job.warnings or [], "classes": job.classes,
        "annotations": zs,
        "plane_annotations": [{"axis": axis, "index": index} for axis, index in painted if axis != "z"],
        "models": [{"model_id": m.id, "status": m.status, "ready": m.status == ModelStatus.READY,
                    "created_at": iso(m.created_at),
                    "classes": m.classes, "n_slices": m.n_slices, "voxels_per_class": m.voxels_per_class,
                    "metrics": m.metrics, "error": m.error,
                    **validations.get(m.id, {"validation": "done" if m.status == ModelStatus.READY else None,
                                             "validating": False})}
                   for m in models],
        "segmentations": [{"seg_id": g.id, "model_id": g.model_id, "status": g.status,
                           "progress": round(g.progress, 4), "stage": g.stage, "error": g.error,
                           "created_at": iso(g.created_at), "mesh_status": g.mesh_status,
                           "done": g.status == SegmentationStatus.DONE, "meshed": g.mesh_status == MeshStatus.DONE}
                          for g in segs],
        "annotations_changed_since_segmentation": bool(done) and done[-1].annotation_rev != job.annotation_rev,
        "newest_model_current": current,
        "upload_bytes": job.upload_bytes,
        # what the pages need to know of the statuses, decided here once (they never list status values)
        "ready": job.status in READY,
        "training": job.status in TRAINING or any(m.status in MODEL_PENDING for m in models),
        "can_train": can_happen(job.status, JobEvent.TRAIN_QUEUE, has_volume=job.shape is not None),
    }
