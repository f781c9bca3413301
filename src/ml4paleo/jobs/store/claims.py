"""The task queue, runner side: claim a task, renew its lease, report progress, record its end.

A runner claims the oldest queued task of its queue — or a running one whose lease expired
because its runner died — with one atomic ``UPDATE ... WHERE status/lease still allow it``; a
random claim token then identifies the claim. Every later write of that runner (progress, lease
renewal, result, failure) is guarded by the token, so a runner that lost its lease can never
overwrite the work of the one that took over: each task completes exactly once.

:class:`TaskQueue` is what a runner needs of the store; :class:`Claims` (and ``JobStore``,
which delegates to it) provides it.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from ml4paleo.errors import InvalidTransition
from ml4paleo.jobs.statuses import (BACKSTAGE, QUEUES, JobEvent, Lease, MeshStatus, ModelStatus, RunnerKind,
                                    SegmentationStatus, TaskKind, TaskStatus)
from ml4paleo.jobs.store._base import Database, log, queued_on, set_status
from ml4paleo.jobs.store.queue import end_cancelled, enqueue, queue_exports
from ml4paleo.jobs.tables import Job, Mesh, Model, Segmentation, Task

_START_EVENT = {TaskKind.CONVERT: JobEvent.CONVERT_START, TaskKind.TRAIN: JobEvent.TRAIN_START,
                TaskKind.START: JobEvent.TRAIN_START, TaskKind.MESH: JobEvent.MESH_START}
_DONE_EVENT = {TaskKind.CONVERT: JobEvent.CONVERT_DONE, TaskKind.TRAIN: JobEvent.TRAIN_DONE,
               TaskKind.START: JobEvent.SEGMENT_DONE, TaskKind.MESH: JobEvent.MESH_DONE}
"""Task kinds that move the job along (an export does not)."""
_YIELDING = (TaskKind.VALIDATE,)
"""Task kinds claimed after every other queued task of their queue."""
_FIRST = (TaskKind.EXPORT,)
"""Task kinds claimed before every other queued task of their queue: a segmentation's downloads
(seconds of deflating) never wait behind a mesh queued earlier, of another segmentation or job
(behind meshes, the downloads of a 1024^3 scan came 2 minutes after it)."""


@dataclass(frozen=True)
class Claim:
    """What a runner holds while it works on a task, with what the task needs of its job
    (read in the transaction that claimed it)."""

    task_id: int
    job_id: str
    kind: TaskKind
    token: str
    attempts: int
    model_id: str | None = None
    seg_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    model_ready: bool = False
    """For a ``start`` task taken over after its model was trained: skip straight to segmenting."""
    voxel_size: tuple[float, ...] | None = None
    """The job's voxel size (z, y, x) as the user gave it or as converted, None if unknown."""
    unit: str | None = None
    classes: tuple[str, ...] = ()
    """The job's class names, by value (1 background, 2.. structures)."""


class TaskQueue(Protocol):
    """What a runner needs of the store (``ml4paleo.jobs.runner.Runner``)."""

    def claim(self, queue: str, owner: str) -> Claim | None: ...
    def heartbeat(self, claim: Claim) -> Lease: ...
    def report_progress(self, claim: Claim, fraction: float, stage: str) -> bool: ...
    def model_trained(self, claim: Claim, info: dict[str, Any]) -> bool: ...
    def finish(self, claim: Claim, result: dict[str, Any]) -> bool: ...
    def fail(self, claim: Claim, reason: str, traceback: str | None = None) -> bool: ...
    def release(self, claim: Claim) -> bool: ...
    def cancelled(self, claim: Claim) -> bool: ...


def _held(s: Session, claim: Claim) -> Task | None:
    """The claimed task if the claim still holds it, else None (another runner took it over,
    or the job was deleted)."""
    task = s.get(Task, claim.task_id)
    if task is None or task.claim_token != claim.token or task.status != TaskStatus.RUNNING:
        return None
    return task


def _model_ready(s: Session, task: Task, info: dict[str, Any]) -> None:
    """The model of ``task`` is ready; a model saved before its validation (``info["validation"]``
    pending) gets a ``validate`` task, which the segment runner takes after the segmentation."""
    model = s.get(Model, task.model_id)
    model.status = ModelStatus.READY
    for key in ("classes", "n_slices", "voxels_per_class", "metrics"):
        if key in info:
            setattr(model, key, info[key])
    log(s, task.job_id, "model:ready", model.id, task_id=task.id)
    if info.get("validation") == "pending":
        enqueue(s, s.get(Job, task.job_id), RunnerKind.SEGMENT, TaskKind.VALIDATE, prev_status=None,
                model_id=model.id)


def _fail_effects(s: Session, task: Task, reason: str, traceback: str | None) -> None:
    now = time.time()
    task.error, task.traceback, task.finished_at = reason, traceback, now
    log(s, task.job_id, "task:error", reason[:2000], task_id=task.id, at=now)
    if task.model_id and (model := s.get(Model, task.model_id)) and model.status != ModelStatus.READY:
        model.status, model.error = ModelStatus.ERROR, reason
    if task.seg_id and (seg := s.get(Segmentation, task.seg_id)):
        if task.kind == TaskKind.START:
            seg.status, seg.error = SegmentationStatus.ERROR, reason
        elif task.kind == TaskKind.MESH:
            seg.mesh_status = MeshStatus.ERROR
    if task.kind in BACKSTAGE:
        return  # a failed export or draft leaves the job as it is; the page that uses it shows why
    job = s.get(Job, task.job_id)
    set_status(s, job, JobEvent.FAIL, task_id=task.id, note=reason[:2000])
    job.error, job.traceback, job.stage = reason, traceback, ""


class Claims:
    """The runner side of the queue over one database; see the module's docstring."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def claim(self, queue: str, owner: str) -> Claim | None:
        """Take the oldest claimable task of ``queue`` for ``owner``, or None."""
        if queue not in QUEUES:
            raise ValueError(f"queue must be one of {', '.join(QUEUES)}; got {queue!r}")
        settings = self.db.settings
        now = time.time()
        claimable = or_(Task.status == TaskStatus.QUEUED,
                        and_(Task.status == TaskStatus.RUNNING, Task.lease_until < now))
        with self.db.session() as s:
            dead = s.scalars(select(Task).where(Task.queue == queue, Task.status == TaskStatus.RUNNING,
                                                Task.lease_until < now, Task.attempts >= settings.max_attempts)).all()
            for task in dead:
                task.status = TaskStatus.ERROR
                _fail_effects(s, task, f"gave up after its runner stopped {task.attempts} times "
                                       f"(last runner: {task.owner})", None)
            token = uuid.uuid4().hex
            # downloads first; validations yield to work a user is waiting for
            oldest = (select(Task.id).where(Task.queue == queue, claimable)
                      .order_by(case((Task.kind.in_(_FIRST), 0), (Task.kind.in_(_YIELDING), 2), else_=1), Task.id)
                      .limit(1).scalar_subquery())
            result = s.execute(
                update(Task).where(Task.id == oldest, claimable)
                .values(status=TaskStatus.RUNNING, claim_token=token, owner=owner,
                        lease_until=now + settings.lease_seconds, attempts=Task.attempts + 1,
                        started_at=func.coalesce(Task.started_at, now))
                .execution_options(synchronize_session=False))
            if result.rowcount != 1:
                return None
            task = s.scalars(select(Task).where(Task.claim_token == token)).one()
            s.refresh(task)
            job = s.get(Job, task.job_id)
            log(s, task.job_id, "task:claimed", f"{owner} attempt {task.attempts}", task_id=task.id, at=now)
            kind = TaskKind(task.kind)
            model_ready = False
            if kind in _START_EVENT:
                model = s.get(Model, task.model_id) if task.model_id else None
                model_ready = kind == TaskKind.START and model is not None and model.status == ModelStatus.READY
                event = JobEvent.SEGMENT_START if model_ready else _START_EVENT[kind]
                try:
                    set_status(s, job, event, task_id=task.id)
                except InvalidTransition as exc:  # the job moved on (e.g. deleted files, manual fix)
                    task.status, task.error = TaskStatus.ERROR, str(exc)
                    return None
                job.progress, job.stage = 0.0, "started"
                if model_ready and task.seg_id:
                    s.get(Segmentation, task.seg_id).status = SegmentationStatus.SEGMENTING
                if model is not None and not model_ready:
                    model.status, model.annotation_rev = ModelStatus.TRAINING, job.annotation_rev
                    if task.seg_id:
                        seg = s.get(Segmentation, task.seg_id)
                        seg.status, seg.annotation_rev = SegmentationStatus.TRAINING, job.annotation_rev
                if kind == TaskKind.MESH:
                    s.get(Segmentation, task.seg_id).mesh_status = MeshStatus.MESHING
            if kind == TaskKind.DRAFT:  # the annotations it will read are at least this revision
                task.params = {**(task.params or {}), "annotation_rev": job.annotation_rev}
            classes = sorted(job.classes or [], key=lambda c: c["value"])
            return Claim(task_id=task.id, job_id=task.job_id, kind=kind, token=token, attempts=task.attempts,
                         model_id=task.model_id, seg_id=task.seg_id, params=dict(task.params or {}),
                         model_ready=model_ready,
                         voxel_size=tuple(float(v) for v in job.voxel_size) if job.voxel_size else None,
                         unit=job.unit or None, classes=tuple(c["name"] for c in classes))

    def heartbeat(self, claim: Claim) -> Lease:
        """Renew the lease: ``ok``, ``cancel`` (the user asked to stop) or ``lost`` (another
        runner took the task over, or the job was deleted)."""
        with self.db.session() as s:
            result = s.execute(update(Task).where(Task.id == claim.task_id, Task.claim_token == claim.token,
                                                  Task.status == TaskStatus.RUNNING)
                               .values(lease_until=time.time() + self.db.settings.lease_seconds)
                               .execution_options(synchronize_session=False))
            if result.rowcount != 1:
                return Lease.LOST
            return Lease.CANCEL if s.scalar(select(Task.cancel_requested).where(Task.id == claim.task_id)) else Lease.OK

    def report_progress(self, claim: Claim, fraction: float, stage: str) -> bool:
        """Write progress (0..1) and stage text of a held task to the task and its job."""
        fraction = min(max(float(fraction), 0.0), 1.0)
        with self.db.session() as s:
            task = _held(s, claim)
            if task is None:
                return False
            task.progress, task.stage = fraction, stage[:200]
            if task.kind not in BACKSTAGE:
                job = s.get(Job, task.job_id)
                job.progress, job.stage, job.updated_at = fraction, stage[:200], time.time()
            if task.seg_id and task.kind == TaskKind.START:
                seg = s.get(Segmentation, task.seg_id)
                seg.progress, seg.stage = fraction, stage[:200]
            return True

    def model_trained(self, claim: Claim, info: dict[str, Any]) -> bool:
        """First half of a ``start`` task done: the model is ready, segmentation begins."""
        with self.db.session() as s:
            task = _held(s, claim)
            if task is None:
                return False
            _model_ready(s, task, info)
            set_status(s, s.get(Job, task.job_id), JobEvent.SEGMENT_START, task_id=task.id)
            s.get(Segmentation, task.seg_id).status = SegmentationStatus.SEGMENTING
            return True

    def finish(self, claim: Claim, result: dict[str, Any]) -> bool:
        """Record a task's result; False if the claim was lost (then nothing is written)."""
        with self.db.session() as s:
            task = _held(s, claim)
            if task is None:
                return False
            now = time.time()
            task.status, task.finished_at, task.progress, task.stage = TaskStatus.DONE, now, 1.0, ""
            task.result = result
            job = s.get(Job, task.job_id)
            kind = TaskKind(task.kind)
            if kind == TaskKind.CONVERT:
                for key in ("shape", "dtype", "voxel_size", "unit", "window", "warnings"):
                    if key in result:
                        setattr(job, key, result[key])
            elif kind == TaskKind.TRAIN:
                _model_ready(s, task, result.get("model", {}))
            elif kind == TaskKind.START:
                if "model" in result:
                    _model_ready(s, task, result["model"])
                seg = s.get(Segmentation, task.seg_id)
                seg.status, seg.progress, seg.stage = SegmentationStatus.DONE, 1.0, ""
                queue_exports(s, job, seg.id)
            elif kind == TaskKind.VALIDATE and (model := s.get(Model, task.model_id)) is not None:
                model.metrics = result.get("metrics")
            elif kind == TaskKind.MESH:
                s.get(Segmentation, task.seg_id).mesh_status = MeshStatus.DONE
                for row in s.scalars(select(Mesh).where(Mesh.seg_id == task.seg_id)).all():
                    s.delete(row)
                s.flush()
                for m in result.get("meshes", []):
                    s.add(Mesh(seg_id=task.seg_id, job_id=job.id, label=int(m["label"]), name=str(m["name"]),
                               files=m.get("files", {}), measurements=m.get("measurements")))
            log(s, job.id, "task:done", task.kind, task_id=task.id, at=now)
            if kind in _DONE_EVENT:
                set_status(s, job, _DONE_EVENT[kind], task_id=task.id)
                job.progress, job.stage = 1.0, ""
            return True

    def fail(self, claim: Claim, reason: str, traceback: str | None = None) -> bool:
        """Put a held task and its job in the error state, keeping the reason and traceback."""
        with self.db.session() as s:
            task = _held(s, claim)
            if task is None:
                return False
            task.status = TaskStatus.ERROR
            _fail_effects(s, task, reason, traceback)
            return True

    def release(self, claim: Claim) -> bool:
        """Hand a held task back to the queue (its runner is stopping); this attempt does not
        count against the retry limit."""
        with self.db.session() as s:
            task = _held(s, claim)
            if task is None:
                return False
            if task.cancel_requested:  # the user asked to stop it anyway
                end_cancelled(s, task, s.get(Job, task.job_id))
                return True
            task.status, task.claim_token, task.lease_until = TaskStatus.QUEUED, None, None
            task.attempts = max(task.attempts - 1, 0)
            log(s, task.job_id, "task:released", task.owner, task_id=task.id)
            queued_on(s, task.queue)
            return True

    def cancelled(self, claim: Claim) -> bool:
        """The runner stopped a task at the user's request."""
        with self.db.session() as s:
            task = _held(s, claim)
            if task is None:
                return False
            end_cancelled(s, task, s.get(Job, task.job_id))
            return True
