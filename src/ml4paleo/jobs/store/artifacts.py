"""Artifacts: the models, segmentations and meshes a job's tasks made (their files are under
the job's folder, see ``ml4paleo.jobs.paths``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ml4paleo.errors import ArtifactNotFound
from ml4paleo.jobs.paths import check_job_id
from ml4paleo.jobs.statuses import ModelStatus
from ml4paleo.jobs.store._base import Database
from ml4paleo.jobs.tables import Mesh, Model, Segmentation


class Artifacts:
    """Look-ups of one job's models, segmentations and meshes."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def model(self, job_id: str, model_id: str) -> dict[str, Any]:
        with self.db.session() as s:
            row = s.get(Model, model_id)
            if row is None or row.job_id != check_job_id(job_id):
                raise ArtifactNotFound(f"no model {model_id!r} in this job")
            return {"model_id": row.id, "status": row.status, "annotation_rev": row.annotation_rev}

    def newest_model(self, job_id: str) -> str | None:
        """The newest model ready to predict, or None."""
        with self.db.session() as s:
            return s.scalar(select(Model.id).where(Model.job_id == check_job_id(job_id),
                                                   Model.status == ModelStatus.READY)
                            .order_by(Model.created_at.desc()).limit(1))

    def segmentation(self, job_id: str, seg_id: str) -> dict[str, Any]:
        with self.db.session() as s:
            row = s.get(Segmentation, seg_id)
            if row is None or row.job_id != check_job_id(job_id):
                raise ArtifactNotFound(f"no segmentation {seg_id!r} in this job")
            return {"seg_id": row.id, "status": row.status, "mesh_status": row.mesh_status, "model_id": row.model_id}

    def meshes(self, job_id: str, seg_id: str) -> list[dict[str, Any]]:
        with self.db.session() as s:
            rows = s.scalars(select(Mesh).where(Mesh.job_id == check_job_id(job_id), Mesh.seg_id == seg_id)
                             .order_by(Mesh.label)).all()
            return [{"label": r.label, "name": r.name, "files": r.files, "measurements": r.measurements}
                    for r in rows]
