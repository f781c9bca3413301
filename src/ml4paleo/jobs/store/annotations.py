"""Annotations: which slices are painted (the masks themselves are PNG files, see
``ml4paleo.io.annotations``) and the job's annotation revision, which tells whether a model or
a segmentation was made from the current annotations.

A slice is a :class:`ml4paleo.planes.SliceRef`, checked by the caller against the job's shape;
a row holds its axis and its index along it.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from ml4paleo.errors import ArtifactNotFound
from ml4paleo.jobs.statuses import JobEvent
from ml4paleo.jobs.store._base import Database, get_job, set_status
from ml4paleo.jobs.tables import Annotation
from ml4paleo.planes import AXES, SliceRef

def annotation_record(ref: SliceRef, labeled_voxels: int, values: list[int]) -> dict[str, Any]:
    """How the API lists a painted slice: ``{axis, index, key, z, labeled_voxels, values}``;
    ``z`` is the index for a z slice (the seed's field) and None for the other planes."""
    return {"axis": ref.axis, "index": ref.index, "key": ref.name, "z": ref.index if ref.axis == "z" else None,
            "labeled_voxels": labeled_voxels, "values": values}


class Annotations:
    """The painted slices of a job."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def annotation_saved(self, job_id: str, ref: SliceRef, labeled_voxels: int, values: list[int]) -> None:
        axis, index = ref.axis, ref.index
        with self.db.session() as s:
            job = get_job(s, job_id)
            set_status(s, job, JobEvent.ANNOTATE)
            row = s.get(Annotation, (job.id, index, axis))
            if row is None:
                s.add(Annotation(job_id=job.id, z=index, axis=axis, labeled_voxels=labeled_voxels, values=values,
                                 updated_at=time.time()))
            else:
                row.labeled_voxels, row.values, row.updated_at = labeled_voxels, values, time.time()
            job.annotation_rev += 1

    def annotation_deleted(self, job_id: str, ref: SliceRef) -> None:
        axis, index = ref.axis, ref.index
        with self.db.session() as s:
            job = get_job(s, job_id)
            row = s.get(Annotation, (job.id, index, axis))
            if row is None:
                raise ArtifactNotFound(f"no annotation on slice {ref.name}")
            s.delete(row)
            job.annotation_rev += 1
            job.updated_at = time.time()

    def annotations(self, job_id: str) -> list[dict[str, Any]]:
        """Every painted slice, z slices first, then y, then x, each by index."""
        with self.db.session() as s:
            job = get_job(s, job_id)
            rows = s.scalars(select(Annotation).where(Annotation.job_id == job.id)).all()
            rows = sorted(rows, key=lambda r: (AXES.index(r.axis), r.z))
            return [annotation_record(SliceRef(r.axis, r.z), r.labeled_voxels, r.values) for r in rows]
