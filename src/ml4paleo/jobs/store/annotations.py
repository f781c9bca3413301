"""Annotations: which slices are painted (the masks themselves are PNG files, see
``ml4paleo.io.annotations``) and the job's annotation revision, which tells whether a model or
a segmentation was made from the current annotations."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from ml4paleo.errors import ArtifactNotFound
from ml4paleo.jobs.statuses import JobEvent
from ml4paleo.jobs.store._base import Database, get_job, set_status
from ml4paleo.jobs.tables import Annotation


class Annotations:
    """The painted slices of a job."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def annotation_saved(self, job_id: str, z: int, labeled_voxels: int, values: list[int]) -> None:
        with self.db.session() as s:
            job = get_job(s, job_id)
            set_status(s, job, JobEvent.ANNOTATE)
            row = s.get(Annotation, (job.id, z))
            if row is None:
                s.add(Annotation(job_id=job.id, z=z, labeled_voxels=labeled_voxels, values=values,
                                 updated_at=time.time()))
            else:
                row.labeled_voxels, row.values, row.updated_at = labeled_voxels, values, time.time()
            job.annotation_rev += 1

    def annotation_deleted(self, job_id: str, z: int) -> None:
        with self.db.session() as s:
            job = get_job(s, job_id)
            row = s.get(Annotation, (job.id, z))
            if row is None:
                raise ArtifactNotFound(f"no annotation on slice {z}")
            s.delete(row)
            job.annotation_rev += 1
            job.updated_at = time.time()

    def annotations(self, job_id: str) -> list[dict[str, Any]]:
        with self.db.session() as s:
            job = get_job(s, job_id)
            rows = s.scalars(select(Annotation).where(Annotation.job_id == job.id).order_by(Annotation.z)).all()
            return [{"z": r.z, "labeled_voxels": r.labeled_voxels, "values": r.values} for r in rows]
