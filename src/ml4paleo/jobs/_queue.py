"""The task queue the runners work from (mixed into :class:`ml4paleo.jobs.store.JobStore`).

A runner claims the oldest queued task of its queue — or a running one whose lease expired
because its runner died — with one atomic ``UPDATE ... WHERE status/lease still allow it``; a
random claim token then identifies the claim. Every later write of that runner (progress, lease
renewal, result, failure) is guarded by the token, so a runner that lost its lease can never
overwrite the work of the one that took over: each task completes exactly once.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Sequence

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from ml4paleo.errors import ArtifactNotFound, InvalidTransition
from ml4paleo.jobs.paths import check_artifact_id, new_artifact_id
from ml4paleo.jobs.tables import Annotation, Event, Job, Mesh, Model, Segmentation, Task

QUEUES: dict[str, tuple[str, ...]] = {"convert": ("convert",), "segment": ("train", "start"), "mesh": ("mesh", "export")}
"""Runner kind -> the task kinds it runs."""
ACTIVE = ("queued", "running")
_START_EVENT = {"convert": "convert_start", "train": "train_start", "start": "train_start", "mesh": "mesh_start"}
_DONE_EVENT = {"convert": "convert_done", "train": "train_done", "start": "segment_done", "mesh": "mesh_done"}


@dataclass(frozen=True)
class Claim:
    """What a runner holds while it works on a task."""

    task_id: int
    job_id: str
    kind: str
    token: str
    attempts: int
    model_id: str | None = None
    seg_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    model_ready: bool = False
    """For a ``start`` task taken over after its model was trained: skip straight to segmenting."""


class QueueMixin:
    settings: Any

    # -- queueing (web side) ---------------------------------------------------------------

    def _queue(self, s: Session, job: Job, queue: str, kind: str, *, prev_status: str | None,
               model_id: str | None = None, seg_id: str | None = None, params: dict | None = None) -> Task:
        now = time.time()
        task = Task(job_id=job.id, queue=queue, kind=kind, status="queued", model_id=model_id, seg_id=seg_id,
                    params=params or {}, prev_status=prev_status, created_at=now, attempts=0,
                    cancel_requested=False, progress=0.0, stage="")
        s.add(task)
        s.flush()
        s.add(Event(job_id=job.id, task_id=task.id, at=now, kind="task:queued", detail=kind))
        return task

    def _queue_training(self, job_id: str, *, segment: bool) -> tuple[str, str | None]:
        with self.session() as s:
            job = self._job(s, job_id)
            before = job.status
            self._set_status(s, job, "train_queue")
            if not s.scalar(select(func.count()).select_from(Annotation).where(Annotation.job_id == job.id)):
                raise InvalidTransition("annotate at least one slice before training")
            now = time.time()
            classes = [c["name"] for c in job.classes]
            model = self._reusable_model(s, job, classes) if segment else None
            if model is None:
                model = Model(id=new_artifact_id(), job_id=job.id, status="queued", created_at=now,
                              classes=classes, n_slices=0, annotation_rev=job.annotation_rev)
                s.add(model)
            else:
                s.add(Event(job_id=job.id, at=now, kind="model:reused",
                            detail=f"{model.id}: no annotation changed since it was trained"))
            seg_id = None
            if segment:
                seg_id = new_artifact_id()
                s.add(Segmentation(id=seg_id, job_id=job.id, model_id=model.id, status="queued", created_at=now,
                                   mesh_status="none", progress=0.0, stage="", annotation_rev=job.annotation_rev))
            job.progress, job.stage = 0.0, "waiting for the segmentation runner"
            self._queue(s, job, "segment", "start" if segment else "train", prev_status=before,
                        model_id=model.id, seg_id=seg_id)
            return model.id, seg_id

    def _reusable_model(self, s: Session, job: Job, classes: list[str]) -> Model | None:
        """The newest ready model trained on exactly the job's current annotations and classes
        (``Model.annotation_rev`` is the job's annotation revision when its training began), or None."""
        model = s.scalars(select(Model).where(Model.job_id == job.id, Model.status == "ready")
                          .order_by(Model.created_at.desc()).limit(1)).first()
        if model is None or model.annotation_rev != job.annotation_rev or list(model.classes or []) != classes:
            return None
        return model

    def queue_train(self, job_id: str) -> str:
        """Queue a train-only task (``retrain``); returns the new model id."""
        return self._queue_training(job_id, segment=False)[0]

    def queue_start(self, job_id: str) -> tuple[str, str]:
        """Queue training on every annotation, then segmentation of the whole volume; the newest
        finished model is reused (no training) when no annotation or class changed since it was trained."""
        model_id, seg_id = self._queue_training(job_id, segment=True)
        assert seg_id is not None
        return seg_id, model_id

    def queue_mesh(self, job_id: str, seg_id: str | None = None, formats: Sequence[str] = ("stl",)) -> str:
        """Queue meshing of ``seg_id`` (default: the newest finished segmentation)."""
        with self.session() as s:
            job = self._job(s, job_id)
            query = select(Segmentation).where(Segmentation.job_id == job.id)
            if seg_id is not None:
                query = query.where(Segmentation.id == check_artifact_id(seg_id))
            else:
                query = query.where(Segmentation.status == "done").order_by(Segmentation.created_at.desc())
            seg = s.scalars(query.limit(1)).first()
            if seg is None and seg_id is not None:
                raise ArtifactNotFound(f"no segmentation {seg_id!r} in this job")
            if seg is None or seg.status != "done":
                raise InvalidTransition("there is no finished segmentation to mesh" if seg is None else
                                        f"segmentation {seg.id} is not finished ({seg.status})")
            before = job.status
            self._set_status(s, job, "mesh_queue")
            seg.mesh_status = "queued"
            job.progress, job.stage = 0.0, "waiting for the mesh runner"
            self._queue(s, job, "mesh", "mesh", prev_status=before, seg_id=seg.id, params={"formats": list(formats)})
            return seg.id

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel the job's queued task at once, or ask its runner to stop the running one."""
        with self.session() as s:
            job = self._job(s, job_id)
            task = s.scalars(select(Task).where(Task.job_id == job.id, Task.status.in_(ACTIVE),
                                                Task.kind != "export").order_by(Task.id.desc())).first()
            if task is None:
                raise InvalidTransition(f"nothing to cancel: the job is {job.status}")
            if task.status == "queued":
                self._end_cancelled(s, task, job)
            else:
                task.cancel_requested = True
                job.stage = "cancelling"
            return self._doc(s, job)

    def queue_depths(self) -> dict[str, dict[str, int]]:
        """Queued and running tasks per runner kind (for ``/api/health`` and monitoring)."""
        depths = {queue: {"queued": 0, "running": 0} for queue in QUEUES}
        with self.session() as s:
            rows = s.execute(select(Task.queue, Task.status, func.count()).where(Task.status.in_(ACTIVE))
                             .group_by(Task.queue, Task.status)).all()
        for queue, status, count in rows:
            depths.setdefault(queue, {"queued": 0, "running": 0})[status] = int(count)
        return depths

    # -- claiming and working (runner side) ------------------------------------------------

    def claim(self, queue: str, owner: str) -> Claim | None:
        """Take the oldest claimable task of ``queue`` for ``owner``, or None."""
        if queue not in QUEUES:
            raise ValueError(f"queue must be one of {', '.join(QUEUES)}; got {queue!r}")
        now = time.time()
        claimable = or_(Task.status == "queued", and_(Task.status == "running", Task.lease_until < now))
        with self.session() as s:
            dead = s.scalars(select(Task).where(Task.queue == queue, Task.status == "running", Task.lease_until < now,
                                                Task.attempts >= self.settings.max_attempts)).all()
            for task in dead:
                task.status = "error"
                self._fail_effects(s, task, f"gave up after its runner stopped {task.attempts} times "
                                            f"(last runner: {task.owner})", None)
            token = uuid.uuid4().hex
            # exports (PNG/TIFF of a finished segmentation) yield to work a user is waiting for
            oldest = (select(Task.id).where(Task.queue == queue, claimable)
                      .order_by(case((Task.kind == "export", 1), else_=0), Task.id).limit(1).scalar_subquery())
            result = s.execute(
                update(Task).where(Task.id == oldest, claimable)
                .values(status="running", claim_token=token, owner=owner, lease_until=now + self.settings.lease_seconds,
                        attempts=Task.attempts + 1, started_at=func.coalesce(Task.started_at, now))
                .execution_options(synchronize_session=False))
            if result.rowcount != 1:
                return None
            task = s.scalars(select(Task).where(Task.claim_token == token)).one()
            s.refresh(task)
            job = s.get(Job, task.job_id)
            s.add(Event(job_id=task.job_id, task_id=task.id, at=now, kind="task:claimed",
                        detail=f"{owner} attempt {task.attempts}"))
            model_ready = False
            if task.kind in _START_EVENT:
                model = s.get(Model, task.model_id) if task.model_id else None
                model_ready = task.kind == "start" and model is not None and model.status == "ready"
                event = "segment_start" if model_ready else _START_EVENT[task.kind]
                try:
                    self._set_status(s, job, event, task_id=task.id)
                except InvalidTransition as exc:  # the job moved on (e.g. deleted files, manual fix)
                    task.status, task.error = "error", str(exc)
                    return None
                job.progress, job.stage = 0.0, "started"
                if model_ready and task.seg_id:
                    s.get(Segmentation, task.seg_id).status = "segmenting"
                if model is not None and not model_ready:
                    model.status, model.annotation_rev = "training", job.annotation_rev
                    if task.seg_id:
                        seg = s.get(Segmentation, task.seg_id)
                        seg.status, seg.annotation_rev = "training", job.annotation_rev
                if task.kind == "mesh":
                    s.get(Segmentation, task.seg_id).mesh_status = "meshing"
            return Claim(task_id=task.id, job_id=task.job_id, kind=task.kind, token=token, attempts=task.attempts,
                         model_id=task.model_id, seg_id=task.seg_id, params=dict(task.params or {}),
                         model_ready=model_ready)

    def _held(self, s: Session, claim: Claim) -> Task | None:
        task = s.get(Task, claim.task_id)
        if task is None or task.claim_token != claim.token or task.status != "running":
            return None
        return task

    def heartbeat(self, claim: Claim) -> str:
        """Renew the lease: ``"ok"``, ``"cancel"`` (the user asked to stop) or ``"lost"``
        (another runner took the task over, or the job was deleted)."""
        with self.session() as s:
            result = s.execute(update(Task).where(Task.id == claim.task_id, Task.claim_token == claim.token,
                                                  Task.status == "running")
                               .values(lease_until=time.time() + self.settings.lease_seconds)
                               .execution_options(synchronize_session=False))
            if result.rowcount != 1:
                return "lost"
            return "cancel" if s.scalar(select(Task.cancel_requested).where(Task.id == claim.task_id)) else "ok"

    def report_progress(self, claim: Claim, fraction: float, stage: str) -> bool:
        """Write progress (0..1) and stage text of a held task to the task and its job."""
        fraction = min(max(float(fraction), 0.0), 1.0)
        with self.session() as s:
            task = self._held(s, claim)
            if task is None:
                return False
            task.progress, task.stage = fraction, stage[:200]
            if task.kind != "export":
                job = s.get(Job, task.job_id)
                job.progress, job.stage, job.updated_at = fraction, stage[:200], time.time()
            if task.seg_id and task.kind == "start":
                seg = s.get(Segmentation, task.seg_id)
                seg.progress, seg.stage = fraction, stage[:200]
            return True

    def model_trained(self, claim: Claim, info: dict[str, Any]) -> bool:
        """First half of a ``start`` task done: the model is ready, segmentation begins."""
        with self.session() as s:
            task = self._held(s, claim)
            if task is None:
                return False
            self._model_ready(s, task, info)
            job = s.get(Job, task.job_id)
            self._set_status(s, job, "segment_start", task_id=task.id)
            s.get(Segmentation, task.seg_id).status = "segmenting"
            return True

    def _model_ready(self, s: Session, task: Task, info: dict[str, Any]) -> None:
        model = s.get(Model, task.model_id)
        model.status = "ready"
        for key in ("classes", "n_slices", "voxels_per_class", "metrics"):
            if key in info:
                setattr(model, key, info[key])
        s.add(Event(job_id=task.job_id, task_id=task.id, at=time.time(), kind="model:ready", detail=model.id))

    def finish(self, claim: Claim, result: dict[str, Any]) -> bool:
        """Record a task's result; False if the claim was lost (then nothing is written)."""
        with self.session() as s:
            task = self._held(s, claim)
            if task is None:
                return False
            now = time.time()
            task.status, task.finished_at, task.progress, task.stage = "done", now, 1.0, ""
            job = s.get(Job, task.job_id)
            if task.kind == "convert":
                for key in ("shape", "dtype", "voxel_size", "unit", "window", "warnings"):
                    if key in result:
                        setattr(job, key, result[key])
            elif task.kind == "train":
                self._model_ready(s, task, result.get("model", {}))
            elif task.kind == "start":
                if "model" in result:
                    self._model_ready(s, task, result["model"])
                seg = s.get(Segmentation, task.seg_id)
                seg.status, seg.progress, seg.stage = "done", 1.0, ""
                self._queue(s, job, "mesh", "export", prev_status=None, seg_id=seg.id,
                            params={"formats": ["png-zip", "tiff"]})
            elif task.kind == "mesh":
                s.get(Segmentation, task.seg_id).mesh_status = "done"
                for row in s.scalars(select(Mesh).where(Mesh.seg_id == task.seg_id)).all():
                    s.delete(row)
                s.flush()
                for m in result.get("meshes", []):
                    s.add(Mesh(seg_id=task.seg_id, job_id=job.id, label=int(m["label"]), name=str(m["name"]),
                               files=m.get("files", {}), measurements=m.get("measurements")))
            s.add(Event(job_id=job.id, task_id=task.id, at=now, kind="task:done", detail=task.kind))
            if task.kind in _DONE_EVENT:
                self._set_status(s, job, _DONE_EVENT[task.kind], task_id=task.id)
                job.progress, job.stage = 1.0, ""
            return True

    def fail(self, claim: Claim, reason: str, traceback: str | None = None) -> bool:
        """Put a held task and its job in the error state, keeping the reason and traceback."""
        with self.session() as s:
            task = self._held(s, claim)
            if task is None:
                return False
            task.status = "error"
            self._fail_effects(s, task, reason, traceback)
            return True

    def _fail_effects(self, s: Session, task: Task, reason: str, traceback: str | None) -> None:
        now = time.time()
        task.error, task.traceback, task.finished_at = reason, traceback, now
        s.add(Event(job_id=task.job_id, task_id=task.id, at=now, kind="task:error", detail=reason[:2000]))
        if task.model_id and (model := s.get(Model, task.model_id)) and model.status != "ready":
            model.status, model.error = "error", reason
        if task.seg_id and (seg := s.get(Segmentation, task.seg_id)):
            if task.kind == "start":
                seg.status, seg.error = "error", reason
            elif task.kind == "mesh":
                seg.mesh_status = "error"
        if task.kind == "export":
            return  # a failed export leaves the job as it is; the download shows it as missing
        job = s.get(Job, task.job_id)
        self._set_status(s, job, "fail", task_id=task.id, note=reason[:2000])
        job.error, job.traceback, job.stage = reason, traceback, ""

    def release(self, claim: Claim) -> bool:
        """Hand a held task back to the queue (its runner is stopping); this attempt does not
        count against the retry limit."""
        with self.session() as s:
            task = self._held(s, claim)
            if task is None:
                return False
            if task.cancel_requested:  # the user asked to stop it anyway
                self._end_cancelled(s, task, s.get(Job, task.job_id))
                return True
            task.status, task.claim_token, task.lease_until = "queued", None, None
            task.attempts = max(task.attempts - 1, 0)
            s.add(Event(job_id=task.job_id, task_id=task.id, at=time.time(), kind="task:released", detail=task.owner))
            return True

    def cancelled(self, claim: Claim) -> bool:
        """The runner stopped a task at the user's request."""
        with self.session() as s:
            task = self._held(s, claim)
            if task is None:
                return False
            self._end_cancelled(s, task, s.get(Job, task.job_id))
            return True

    def _end_cancelled(self, s: Session, task: Task, job: Job) -> None:
        now = time.time()
        task.status, task.finished_at = "cancelled", now
        s.add(Event(job_id=job.id, task_id=task.id, at=now, kind="task:cancelled", detail=task.kind))
        if task.model_id and (model := s.get(Model, task.model_id)) and model.status != "ready":
            model.status = "cancelled"
        if task.seg_id and (seg := s.get(Segmentation, task.seg_id)):
            if task.kind == "start":
                seg.status = "cancelled"
            elif task.kind == "mesh":
                seg.mesh_status = "cancelled"
        if task.kind != "export":
            target = task.prev_status
            if task.kind == "start" and task.model_id and s.get(Model, task.model_id).status == "ready":
                target = "trained"  # the first half (training) finished before the cancel
            self._set_status(s, job, "cancel", task_id=task.id, target=target)
            job.progress, job.stage = 0.0, "cancelled"
