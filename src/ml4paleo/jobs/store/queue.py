"""The task queue, web side: queue training, segmentation and meshing (one ``tasks`` row each),
cancel, and report queue depths. The runner side (claiming and working on a task) is in
:mod:`ml4paleo.jobs.store.claims`."""

from __future__ import annotations

import time
from typing import Any, NamedTuple, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ml4paleo.enums import DEFAULT_MESH_FORMAT, EXPORT_FORMATS, SEGMENTATION_EXPORTS, TIFF_COMPRESSIONS, TRAIN_METHODS
from ml4paleo.errors import ArtifactNotFound, InputError, InvalidTransition
from ml4paleo.jobs.paths import DRAFTS_KEPT, PREVIEWS_KEPT, check_artifact_id, check_job_id, new_artifact_id
from ml4paleo.jobs.statuses import (ACTIVE, BACKSTAGE, QUEUES, JobEvent, MeshStatus, ModelStatus, RunnerKind,
                                    SegmentationStatus, Status, TaskKind, TaskStatus, transition)
from ml4paleo.jobs.store._base import Database, get_job, log, queued_on, set_status
from ml4paleo.jobs.store.documents import job_document
from ml4paleo.jobs.tables import Annotation, Job, Model, Segmentation, Task


def enqueue(s: Session, job: Job, queue: RunnerKind, kind: TaskKind, *, prev_status: str | None,
            model_id: str | None = None, seg_id: str | None = None, params: dict | None = None) -> Task:
    """Add a queued task; ``prev_status`` is the job's status to restore if it is cancelled."""
    now = time.time()
    task = Task(job_id=job.id, queue=queue, kind=kind, status=TaskStatus.QUEUED, model_id=model_id, seg_id=seg_id,
                params=params or {}, prev_status=prev_status, created_at=now, attempts=0,
                cancel_requested=False, progress=0.0, stage="")
    s.add(task)
    s.flush()
    log(s, job.id, "task:queued", kind, task_id=task.id, at=now)
    queued_on(s, queue)
    return task


def queue_exports(s: Session, job: Job, seg_id: str, formats: Sequence[str] = SEGMENTATION_EXPORTS,
                  compression: str | None = None) -> Task:
    """Write a finished segmentation's download files (default ``SEGMENTATION_EXPORTS``) from its
    labels, with the job's classes (Slicer segment names and colours) and voxel size as they are
    now; ``compression`` of a TIFF (:data:`ml4paleo.enums.TIFF_COMPRESSIONS`)."""
    params: dict[str, Any] = {"formats": list(formats), "classes": job.classes}
    if compression:
        params["compression"] = compression
    return enqueue(s, job, RunnerKind.MESH, TaskKind.EXPORT, prev_status=None, seg_id=seg_id, params=params)


def _finished_segmentation(s: Session, job: Job, seg_id: str | None, what: str) -> Segmentation:
    """``seg_id`` of the job (default: its newest finished segmentation), finished, or
    ArtifactNotFound / InvalidTransition saying there is nothing to ``what``."""
    query = select(Segmentation).where(Segmentation.job_id == job.id)
    if seg_id is not None:
        query = query.where(Segmentation.id == check_artifact_id(seg_id))
    else:
        query = query.where(Segmentation.status == SegmentationStatus.DONE).order_by(Segmentation.created_at.desc())
    seg = s.scalars(query.limit(1)).first()
    if seg is None and seg_id is not None:
        raise ArtifactNotFound(f"no segmentation {seg_id!r} in this job")
    if seg is None or seg.status != SegmentationStatus.DONE:
        raise InvalidTransition(f"there is no finished segmentation to {what}" if seg is None else
                                f"segmentation {seg.id} is not finished ({seg.status})")
    return seg


def end_cancelled(s: Session, task: Task, job: Job) -> None:
    """A task stopped at the user's request (queued, or its runner stopped it): its model,
    segmentation or meshes are cancelled and the job goes back to where it was."""
    now = time.time()
    task.status, task.finished_at = TaskStatus.CANCELLED, now
    log(s, job.id, "task:cancelled", task.kind, task_id=task.id, at=now)
    if task.model_id and (model := s.get(Model, task.model_id)) and model.status != ModelStatus.READY:
        model.status = ModelStatus.CANCELLED
    if task.seg_id and (seg := s.get(Segmentation, task.seg_id)):
        if task.kind == TaskKind.START:
            seg.status = SegmentationStatus.CANCELLED
        elif task.kind == TaskKind.MESH:
            seg.mesh_status = MeshStatus.CANCELLED
    if task.kind not in BACKSTAGE:
        target = task.prev_status
        if (task.kind == TaskKind.START and task.model_id
                and s.get(Model, task.model_id).status == ModelStatus.READY):
            target = Status.TRAINED  # the first half (training) finished before the cancel
        set_status(s, job, JobEvent.CANCEL, task_id=task.id, target=target)
        job.progress, job.stage = 0.0, "cancelled"


def _checked_method(method: str | None) -> str | None:
    if method is not None and method not in TRAIN_METHODS:
        raise InputError(f"method must be one of {', '.join(TRAIN_METHODS)}; got {method!r}")
    return method


def _reusable_model(s: Session, job: Job, classes: list[str], method: str | None) -> Model | None:
    """The newest ready model trained on exactly the job's current annotations and classes
    (``Model.annotation_rev`` is the job's annotation revision when its training began) with the
    method asked for now (None: the server's setting, as then), or None: training it again
    would only repeat it."""
    model = s.scalars(select(Model).where(Model.job_id == job.id, Model.status == ModelStatus.READY)
                      .order_by(Model.created_at.desc()).limit(1)).first()
    if model is None or model.annotation_rev != job.annotation_rev or list(model.classes or []) != classes:
        return None
    trained_by = s.scalars(select(Task).where(Task.model_id == model.id, Task.kind.in_((TaskKind.TRAIN, TaskKind.START)))
                           .order_by(Task.id.desc()).limit(1)).first()
    if trained_by is None or (trained_by.params or {}).get("method") != method:
        return None
    return model


def _draft_doc(task: Task) -> dict[str, Any]:
    result = task.result or {}
    return {"task_id": task.id, "annotation_rev": int((task.params or {}).get("annotation_rev", -1)),
            "z": result.get("z"), "finished_at": task.finished_at,
            **({"level": result["level"], "factors": result.get("factors")} if result.get("level") else {}),
            **({"region": result["region"], "factors": result.get("factors")} if result.get("region") else {})}


def _forget_old_drafts(s: Session, job_id: str) -> None:
    """Delete the rows of finished drafts beyond the newest ``DRAFTS_KEPT`` (one per pause in
    painting would otherwise pile up); their folders are removed by the draft task."""
    old = s.scalars(select(Task).where(Task.job_id == job_id, Task.kind == TaskKind.DRAFT, Task.status.not_in(ACTIVE))
                    .order_by(Task.id.desc()).offset(DRAFTS_KEPT)).all()
    for task in old:
        s.delete(task)


def _forget_old_previews(s: Session, job_id: str) -> None:
    """Delete the rows of finished previews beyond the newest ``PREVIEWS_KEPT`` (one per slice
    looked at); their folders are removed by the preview task."""
    old = s.scalars(select(Task).where(Task.job_id == job_id, Task.kind == TaskKind.PREVIEW, Task.status.not_in(ACTIVE))
                    .order_by(Task.id.desc()).offset(PREVIEWS_KEPT)).all()
    for task in old:
        s.delete(task)


class Queued(NamedTuple):
    """What queueing a training decided: the model that will answer (new, or the newest one
    reused when nothing changed since it was trained) and the segmentation queued after it."""

    model_id: str
    seg_id: str | None
    model_reused: bool


class Queue:
    """Queueing work for the runners, cancelling it, and looking at the queue."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _queue_training(self, job_id: str, *, segment: bool, method: str | None = None) -> Queued:
        with self.db.session() as s:
            job = get_job(s, job_id)
            before = job.status
            now = time.time()
            classes = [c["name"] for c in job.classes]
            model = _reusable_model(s, job, classes, method)
            if model is not None and not segment:  # the same training again: nothing to queue
                transition(job.status, JobEvent.TRAIN_QUEUE, has_volume=job.shape is not None)  # busy: the usual 409
                log(s, job.id, "model:reused", f"{model.id}: no annotation, class or method changed since it was trained",
                    at=now)
                return Queued(model.id, None, model_reused=True)
            set_status(s, job, JobEvent.TRAIN_QUEUE)
            if not s.scalar(select(func.count()).select_from(Annotation).where(Annotation.job_id == job.id)):
                raise InvalidTransition("annotate at least one slice before training")
            reused = model is not None
            if model is None:
                model = Model(id=new_artifact_id(), job_id=job.id, status=ModelStatus.QUEUED, created_at=now,
                              classes=classes, n_slices=0, annotation_rev=job.annotation_rev)
                s.add(model)
            else:
                log(s, job.id, "model:reused", f"{model.id}: no annotation changed since it was trained", at=now)
            seg_id = None
            if segment:
                seg_id = new_artifact_id()
                s.add(Segmentation(id=seg_id, job_id=job.id, model_id=model.id, status=SegmentationStatus.QUEUED,
                                   created_at=now, mesh_status=MeshStatus.NONE, progress=0.0, stage="",
                                   annotation_rev=job.annotation_rev))
            job.progress, job.stage = 0.0, "waiting for the segmentation runner"
            enqueue(s, job, RunnerKind.SEGMENT, TaskKind.START if segment else TaskKind.TRAIN, prev_status=before,
                    model_id=model.id, seg_id=seg_id, params={"method": method} if method else None)
            return Queued(model.id, seg_id, model_reused=reused)

    def queue_train(self, job_id: str, method: str | None = None) -> Queued:
        """Queue a train-only task (``retrain``): a new model, or the newest one reused when it was
        trained on the same annotations, classes and method (two identical trainings are never
        queued: nothing is queued then). ``method``: one of :data:`ml4paleo.enums.TRAIN_METHODS`,
        else the setting ``train_method``."""
        return self._queue_training(job_id, segment=False, method=_checked_method(method))

    def queue_start(self, job_id: str, method: str | None = None) -> Queued:
        """Queue training on every annotation, then segmentation of the whole volume; the newest
        finished model is reused (no training) when no annotation, class or method changed since
        it was trained."""
        return self._queue_training(job_id, segment=True, method=_checked_method(method))

    def queue_draft(self, job_id: str, z: int | None = None, level: int = 0,
                    region: list[int] | None = None) -> dict[str, Any]:
        """Queue a draft model on the train queue (the overlay while painting), or update the one
        already queued: it reads the annotations when claimed, so one queued draft serves any
        number of strokes. ``z``: the slice shown, whose prediction the draft makes at once (on
        pyramid ``level``: the page's view, over ``region`` when given: what a zoomed-in view shows;
        the page refines it through the prediction route).
        Returns ``{task_id, annotation_rev}``; the draft is ready when a finished draft reports a
        revision at least this one (:meth:`draft`)."""
        with self.db.session() as s:
            job = get_job(s, job_id)
            if not job.shape:
                raise InvalidTransition(f"the volume is not converted yet (status: {job.status})")
            if not s.scalar(select(func.count()).select_from(Annotation).where(Annotation.job_id == job.id)):
                raise InvalidTransition("annotate at least one slice before training")
            params = {"z": z, **({"level": int(level)} if level else {}),
                      **({"region": [int(v) for v in region]} if region is not None else {})} if z is not None else {}
            task = s.scalars(select(Task).where(Task.job_id == job.id, Task.kind == TaskKind.DRAFT,
                                                Task.status == TaskStatus.QUEUED).order_by(Task.id.desc())).first()
            if task is None:
                _forget_old_drafts(s, job.id)
                task = enqueue(s, job, RunnerKind.TRAIN, TaskKind.DRAFT, prev_status=None, params=params)
            else:
                task.params = params
            return {"task_id": task.id, "annotation_rev": job.annotation_rev}

    def draft(self, job_id: str) -> dict[str, Any]:
        """Where the job's drafts stand: ``ready`` (the newest finished draft: task id, the
        annotation revision it was trained on, the slice it predicted) or None, ``pending``
        (a draft queued or running) and ``error`` (why the newest draft failed, if it is newer
        than the ready one)."""
        with self.db.session() as s:
            rows = s.scalars(select(Task).where(Task.job_id == check_job_id(job_id), Task.kind == TaskKind.DRAFT)
                             .order_by(Task.id.desc()).limit(DRAFTS_KEPT + 2)).all()
            done = next((t for t in rows if t.status == TaskStatus.DONE), None)
            failed = next((t for t in rows if t.status == TaskStatus.ERROR), None)
            return {"ready": _draft_doc(done) if done is not None else None,
                    "pending": any(t.status in ACTIVE for t in rows),
                    "error": failed.error if failed is not None and (done is None or failed.id > done.id) else None}

    def queue_preview(self, job_id: str, params: dict[str, Any], view: str | None = None) -> int:
        """Queue a preview (the ``preview`` task's ``params``) on the train queue; returns its task
        id. With a ``view`` (the page's name for what it shows), the view's older previews are
        superseded: a queued one is cancelled, a running one asked to stop."""
        with self.db.session() as s:
            job = get_job(s, job_id)
            if view is not None:
                older = s.scalars(select(Task).where(Task.job_id == job.id, Task.kind == TaskKind.PREVIEW,
                                                     Task.status.in_(ACTIVE))).all()
                for task in older:
                    if (task.params or {}).get("view") != view:
                        continue
                    if task.status == TaskStatus.QUEUED:
                        end_cancelled(s, task, job)
                    else:
                        task.cancel_requested = True
            _forget_old_previews(s, job.id)
            return enqueue(s, job, RunnerKind.TRAIN, TaskKind.PREVIEW, prev_status=None,
                           params={**params, **({"view": view} if view is not None else {})}).id

    def preview(self, job_id: str, task_id: int) -> dict[str, Any]:
        """A preview task's ``status``, ``result`` and ``error``; ArtifactNotFound if there is none."""
        with self.db.session() as s:
            task = s.get(Task, int(task_id))
            if task is None or task.job_id != check_job_id(job_id) or task.kind != TaskKind.PREVIEW:
                raise ArtifactNotFound(f"no preview {task_id} in this job")
            return {"status": task.status, "result": task.result, "error": task.error}

    def queue_mesh(self, job_id: str, seg_id: str | None = None, formats: Sequence[str] = (DEFAULT_MESH_FORMAT,), *,
                   full_resolution: bool = False) -> str:
        """Queue meshing of ``seg_id`` (default: the newest finished segmentation); the task
        simplifies within half a voxel unless ``full_resolution``."""
        with self.db.session() as s:
            job = get_job(s, job_id)
            seg = _finished_segmentation(s, job, seg_id, "mesh")
            before = job.status
            set_status(s, job, JobEvent.MESH_QUEUE)
            seg.mesh_status = MeshStatus.QUEUED
            job.progress, job.stage = 0.0, "waiting for the mesh runner"
            enqueue(s, job, RunnerKind.MESH, TaskKind.MESH, prev_status=before, seg_id=seg.id,
                    params={"formats": list(formats), "full_resolution": bool(full_resolution)})
            return seg.id

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel the job's queued task at once, or ask its runner to stop the running one."""
        with self.db.session() as s:
            job = get_job(s, job_id)
            task = s.scalars(select(Task).where(Task.job_id == job.id, Task.status.in_(ACTIVE),
                                                Task.kind.not_in(BACKSTAGE)).order_by(Task.id.desc())).first()
            if task is None:
                raise InvalidTransition(f"nothing to cancel: the job is {job.status}")
            if task.status == TaskStatus.QUEUED:
                end_cancelled(s, task, job)
            else:
                task.cancel_requested = True
                job.stage = "cancelling"
            return job_document(s, job)

    def queue_depths(self) -> dict[str, dict[str, int]]:
        """Queued and running tasks per runner kind (for ``/api/health`` and monitoring)."""
        depths = {queue.value: {TaskStatus.QUEUED.value: 0, TaskStatus.RUNNING.value: 0} for queue in QUEUES}
        with self.db.session() as s:
            rows = s.execute(select(Task.queue, Task.status, func.count()).where(Task.status.in_(ACTIVE))
                             .group_by(Task.queue, Task.status)).all()
        for queue, status, count in rows:
            depths.setdefault(queue, {TaskStatus.QUEUED.value: 0, TaskStatus.RUNNING.value: 0})[status] = int(count)
        return depths

    def tasks(self, job_id: str) -> list[dict[str, Any]]:
        """The job's tasks, oldest first."""
        with self.db.session() as s:
            rows = s.scalars(select(Task).where(Task.job_id == check_job_id(job_id)).order_by(Task.id)).all()
            return [{"task_id": t.id, "kind": t.kind, "queue": t.queue, "status": t.status, "attempts": t.attempts,
                     "owner": t.owner, "error": t.error, "model_id": t.model_id, "seg_id": t.seg_id,
                     "progress": t.progress, "stage": t.stage} for t in rows]

    def queue_objects(self, job_id: str, seg_id: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """Queue the objects of ``seg_id`` (default: the newest finished segmentation) with the
        options of ``objects_from_labels`` in ``params`` (checked by the caller)."""
        with self.db.session() as s:
            job = get_job(s, job_id)
            seg = _finished_segmentation(s, job, seg_id, "find objects in")
            task = enqueue(s, job, RunnerKind.MESH, TaskKind.OBJECTS, prev_status=None, seg_id=seg.id, params=params)
            return {"task_id": task.id, "seg_id": seg.id}

    def objects_state(self, job_id: str, seg_id: str) -> dict[str, Any]:
        """Where the objects of a segmentation stand: ``ready`` (the newest finished run: task
        id, its options) or None, ``pending`` (a run queued or running, with its progress and
        stage) and ``error`` (why the newest run failed, if it is newer than the ready one)."""
        with self.db.session() as s:
            rows = s.scalars(select(Task).where(Task.job_id == check_job_id(job_id), Task.kind == TaskKind.OBJECTS,
                                                Task.seg_id == check_artifact_id(seg_id))
                             .order_by(Task.id.desc())).all()
            done = next((t for t in rows if t.status == TaskStatus.DONE), None)
            failed = next((t for t in rows if t.status == TaskStatus.ERROR), None)
            active = next((t for t in rows if t.status in ACTIVE), None)
            return {"ready": {"task_id": done.id, "params": done.params or {}, "result": done.result or {}}
                    if done is not None else None,
                    "pending": {"task_id": active.id, "status": active.status, "progress": active.progress,
                                "stage": active.stage} if active is not None else None,
                    "error": failed.error if failed is not None and (done is None or failed.id > done.id) else None}

    def queue_export(self, job_id: str, seg_id: str, fmt: str, compression: str | None = None) -> dict[str, Any]:
        """Queue writing one download file of a finished segmentation on request (the TIFF is not
        made for every segmentation); one already queued or running for it is not repeated.
        Returns ``{task_id, seg_id, format, queued}``."""
        if fmt not in EXPORT_FORMATS:
            raise InputError(f"format must be one of {', '.join(EXPORT_FORMATS)}; got {fmt!r}")
        if compression is not None and compression not in TIFF_COMPRESSIONS:
            raise InputError(f"compression must be one of {', '.join(TIFF_COMPRESSIONS)}; got {compression!r}")
        with self.db.session() as s:
            job = get_job(s, job_id)
            seg = _finished_segmentation(s, job, seg_id, "export")
            for task in self._active_exports(s, job.id, seg.id):
                if fmt in (task.params or {}).get("formats", ()) and (task.params or {}).get("compression") == compression:
                    return {"task_id": task.id, "seg_id": seg.id, "format": fmt, "queued": False}
            task = queue_exports(s, job, seg.id, (fmt,), compression)
            return {"task_id": task.id, "seg_id": seg.id, "format": fmt, "queued": True}

    @staticmethod
    def _active_exports(s: Session, job_id: str, seg_id: str) -> list[Task]:
        return list(s.scalars(select(Task).where(Task.job_id == job_id, Task.seg_id == seg_id,
                                                 Task.kind == TaskKind.EXPORT, Task.status.in_(ACTIVE))).all())

    def exports_pending(self, job_id: str, seg_id: str) -> set[str]:
        """Formats of a segmentation's exports queued or running."""
        with self.db.session() as s:
            return {fmt for task in self._active_exports(s, check_job_id(job_id), check_artifact_id(seg_id))
                    for fmt in (task.params or {}).get("formats", ())}

    def export_error(self, job_id: str, seg_id: str) -> str | None:
        """Why the newest export of a segmentation failed, or None (queued, running or done)."""
        with self.db.session() as s:
            task = s.scalars(select(Task).where(Task.job_id == check_job_id(job_id), Task.seg_id == seg_id,
                                                Task.kind == TaskKind.EXPORT)
                             .order_by(Task.id.desc()).limit(1)).first()
            return task.error if task is not None and task.status == TaskStatus.ERROR else None
