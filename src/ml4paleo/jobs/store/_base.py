"""What every part of the store shares: one database (engine and session factory) and the row
helpers each part needs — the job row, a change of its status, an entry of its log."""

from __future__ import annotations

import contextlib
import time
from datetime import datetime, timezone
from typing import Iterator

from sqlalchemy.orm import Session, sessionmaker

from ml4paleo.errors import JobNotFound
from ml4paleo.jobs.bells import ring
from ml4paleo.jobs.paths import JobPaths, check_job_id
from ml4paleo.jobs.statuses import JobEvent, Status, transition
from ml4paleo.jobs.store._engine import make_engine
from ml4paleo.jobs.tables import Event, Job
from ml4paleo.settings import Settings


class Database:
    """One deployment's database and data folder; every part of the store works through it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings.sqlalchemy_url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back on an exception; then the
        bells of the queues it added tasks to are rung (:func:`queued_on`)."""
        with self._sessions() as session:
            with session.begin():
                yield session
            queued = session.info.pop(QUEUED, None)
        if queued:
            ring(self.settings.data, queued)

    def paths(self, job_id: str) -> JobPaths:
        return JobPaths.of(self.settings.jobs_dir, job_id)


QUEUED = "ml4paleo.queued"
"""Key of a session's ``info``: the queues its transaction added tasks to."""


def queued_on(s: Session, queue: str) -> None:
    """Record that this transaction queues a task on ``queue``: its runners are woken once it commits."""
    s.info.setdefault(QUEUED, set()).add(queue)


def iso(t: float | None) -> str | None:
    return datetime.fromtimestamp(t, timezone.utc).isoformat() if t is not None else None


def get_job(s: Session, job_id: str) -> Job:
    """The job's row, or :class:`JobNotFound` (also for a malformed id)."""
    job = s.get(Job, check_job_id(job_id))
    if job is None:
        raise JobNotFound(f"no job {job_id!r}")
    return job


def log(s: Session, job_id: str, kind: str, detail: str, *, task_id: int | None = None,
        at: float | None = None, actor: str | None = None) -> None:
    """Append to the job's event log (``GET /api/job/<id>/events``); ``actor``: the user whose
    request it was (accounts on)."""
    s.add(Event(job_id=job_id, task_id=task_id, at=time.time() if at is None else at, kind=kind, detail=detail,
                actor=actor))


def set_status(s: Session, job: Job, event: JobEvent, *, note: str = "", task_id: int | None = None,
               target: str | None = None) -> Status:
    """Apply ``event`` to the job in the transaction that read its status (see
    :func:`~ml4paleo.jobs.statuses.transition`), logging a change; returns the new status."""
    new = transition(job.status, event, has_volume=job.shape is not None, target=target)
    if new != job.status:
        log(s, job.id, f"status:{new.value}", note or str(event), task_id=task_id)
        job.status = new.value
        if new != Status.ERROR:
            job.error = job.traceback = None
    job.updated_at = time.time()
    return new
