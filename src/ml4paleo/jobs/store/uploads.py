"""Uploads: which bytes of which file arrived (chunks in any order, repeats harmless), the
per-job size limit, and closing the upload, which queues its conversion."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, select

from ml4paleo.errors import ArtifactNotFound, InputError, InvalidTransition, PayloadTooLarge
from ml4paleo.jobs.statuses import JobEvent, RunnerKind, Status, TaskKind
from ml4paleo.jobs.store._base import Database, get_job, set_status
from ml4paleo.jobs.store.documents import job_document
from ml4paleo.jobs.store.queue import enqueue
from ml4paleo.jobs.tables import Upload


def merge_ranges(ranges: list[list[int]]) -> list[list[int]]:
    """Sorted, merged ``[start, end)`` byte ranges (touching ranges join)."""
    out: list[list[int]] = []
    for start, end in sorted((int(a), int(b)) for a, b in ranges if b > a):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return out


class Uploads:
    """The files of a job's upload, as the chunks of each arrive."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def begin_chunk(self, job_id: str, filename: str, offset: int, length: int, total_size: int) -> None:
        """Check that a chunk may be written: the job is uploading, the chunk fits the file and
        the job stays within its size limit. Chunks may come in any order and be repeated."""
        if offset < 0 or length < 0 or total_size < 0 or offset + length > total_size:
            raise InputError(f"chunk [{offset}, {offset + length}) does not fit a file of {total_size} bytes")
        limit = self.db.settings.max_job_bytes
        with self.db.session() as s:
            job = get_job(s, job_id)
            set_status(s, job, JobEvent.UPLOAD)
            row = s.get(Upload, (job.id, filename))
            if row is not None and row.total_size != total_size:
                raise InputError(f"{filename}: total_size {total_size} differs from the {row.total_size} announced before")
            others = s.scalar(select(func.coalesce(func.sum(Upload.total_size), 0))
                              .where(Upload.job_id == job.id, Upload.filename != filename))
            if others + total_size > limit:
                raise PayloadTooLarge(f"the job's upload would exceed {limit} bytes")
            if row is None:
                s.add(Upload(job_id=job.id, filename=filename, total_size=total_size, received=0, ranges=[],
                             updated_at=time.time()))

    def end_chunk(self, job_id: str, filename: str, start: int, end: int) -> dict[str, Any]:
        """Record bytes ``[start, end)`` of a file as written. ``received`` is the length of the
        part received without holes from byte 0: where a client resumes."""
        with self.db.session() as s:
            job = get_job(s, job_id)
            row = s.get(Upload, (job.id, filename), with_for_update=True)
            if row is None:
                raise ArtifactNotFound(f"no upload {filename!r}")
            row.ranges = merge_ranges([*(row.ranges or []), [start, end]])
            row.received = row.ranges[0][1] if row.ranges and row.ranges[0][0] == 0 else 0
            row.updated_at = job.updated_at = time.time()
            s.flush()
            job.upload_bytes = s.scalar(select(func.coalesce(func.sum(Upload.received), 0))
                                        .where(Upload.job_id == job.id))
            return {"filename": filename, "received": row.received, "total_size": row.total_size,
                    "complete": row.received >= row.total_size}

    def uploads(self, job_id: str) -> list[dict[str, Any]]:
        with self.db.session() as s:
            job = get_job(s, job_id)
            rows = s.scalars(select(Upload).where(Upload.job_id == job.id).order_by(Upload.filename)).all()
            return [{"filename": r.filename, "received": r.received, "total_size": r.total_size} for r in rows]

    def upload_complete(self, job_id: str, keep_upload: bool = False) -> dict[str, Any]:
        """Close the upload and queue its conversion; a repeat changes nothing. The uploaded files
        are deleted once converted unless ``keep_upload``."""
        with self.db.session() as s:
            job = get_job(s, job_id)
            if job.status in (Status.UPLOADING, Status.ERROR) and job.shape is None:
                rows = s.scalars(select(Upload).where(Upload.job_id == job.id)).all()
                if not rows:
                    raise InvalidTransition("nothing was uploaded yet")
                missing = [r.filename for r in rows if r.received < r.total_size]
                if missing:
                    raise InvalidTransition(f"upload incomplete: {missing[0]} ({len(missing)} file(s) unfinished)")
            before = job.status
            if set_status(s, job, JobEvent.UPLOAD_COMPLETE) == Status.UPLOADED and before != Status.UPLOADED:
                job.progress, job.stage = 0.0, "waiting for the converter"
                enqueue(s, job, RunnerKind.CONVERT, TaskKind.CONVERT, prev_status=before,
                        params={"keep_upload": True} if keep_upload else None)
            return job_document(s, job)

    def queue_import(self, job_id: str, source: dict[str, Any]) -> dict[str, Any]:
        """Queue the conversion of a scan registered where it lies (``source``: the task's params,
        ``{"source", "kind", "in_place"}``, see :mod:`ml4paleo.jobs.imports`) for a new job."""
        with self.db.session() as s:
            job = get_job(s, job_id)
            before = job.status
            set_status(s, job, JobEvent.UPLOAD_COMPLETE)
            job.progress, job.stage = 0.0, "waiting for the converter"
            enqueue(s, job, RunnerKind.CONVERT, TaskKind.CONVERT, prev_status=before, params=dict(source))
            return job_document(s, job)
