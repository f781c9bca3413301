"""The job store: jobs, uploads, annotations and the status document, over SQLAlchemy.

Every status change goes through :func:`ml4paleo.jobs.statuses.transition` inside the same
transaction that reads the current status, so two requests (or a request and a runner) never
both act on a stale status. The task queue the runners use lives in :mod:`ml4paleo.jobs._queue`.
"""

from __future__ import annotations

import contextlib
import time
from datetime import datetime, timezone
from typing import Any, Iterator, Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from ml4paleo.enums import default_classes
from ml4paleo.errors import ArtifactNotFound, InputError, InvalidTransition, JobNotFound, PayloadTooLarge
from ml4paleo.jobs._db import make_engine
from ml4paleo.jobs._queue import QueueMixin
from ml4paleo.jobs.paths import JobPaths, check_job_id, new_job_id
from ml4paleo.jobs.statuses import BUSY, Status, transition
from ml4paleo.jobs.tables import Annotation, Event, Job, Mesh, Model, Segmentation, Task, Upload
from ml4paleo.settings import Settings
from ml4paleo.units import check_unit, check_voxel_size

MAX_NAME = 200


def iso(t: float | None) -> str | None:
    return datetime.fromtimestamp(t, timezone.utc).isoformat() if t is not None else None


def check_classes(classes: Any) -> list[dict[str, Any]]:
    """Annotation classes as ``[{value, name, color}]``: values 1 (background), 2.. unique."""
    if not isinstance(classes, list) or not 2 <= len(classes) <= 255:
        raise InputError("classes must be a list of 2 to 255 {value, name, color} objects")
    out, seen = [], set()
    for c in classes:
        if not isinstance(c, dict) or not isinstance(c.get("value"), int) or isinstance(c.get("value"), bool):
            raise InputError(f"each class needs an integer value; got {c!r}"[:200])
        value, name, color = c["value"], c.get("name"), c.get("color", "#888888")
        if not 1 <= value <= 255 or value in seen:
            raise InputError(f"class values must be unique, from 1 to 255; got {value}")
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise InputError(f"class {value} needs a name of 1 to 100 characters")
        if not isinstance(color, str) or len(color) > 32:
            raise InputError(f"class {value} has an invalid color {color!r}"[:200])
        seen.add(value)
        out.append({"value": value, "name": name.strip(), "color": color})
    if seen != set(range(1, len(out) + 1)):
        raise InputError(f"class values must be 1 (background), 2, ... without gaps; got {sorted(seen)}")
    return sorted(out, key=lambda c: c["value"])


def merge_ranges(ranges: list[list[int]]) -> list[list[int]]:
    """Sorted, merged ``[start, end)`` byte ranges (touching ranges join)."""
    out: list[list[int]] = []
    for start, end in sorted((int(a), int(b)) for a, b in ranges if b > a):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return out


def _listed(voxel_size: tuple[float, ...] | None) -> list[float] | None:
    """A checked voxel size as the JSON list the job record keeps."""
    return None if voxel_size is None else list(voxel_size)


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InputError("name must be a non-empty string")
    if len(name) > MAX_NAME:
        raise InputError(f"name must be at most {MAX_NAME} characters; got {len(name)}")
    return name.strip()


class JobStore(QueueMixin):
    """All job state of one deployment (one database, one data folder)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings.sqlalchemy_url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back on an exception."""
        with self._sessions() as session, session.begin():
            yield session

    def paths(self, job_id: str) -> JobPaths:
        return JobPaths.of(self.settings.jobs_dir, job_id)

    # -- jobs ------------------------------------------------------------------------------

    def _job(self, session: Session, job_id: str) -> Job:
        job = session.get(Job, check_job_id(job_id))
        if job is None:
            raise JobNotFound(f"no job {job_id!r}")
        return job

    def _set_status(self, session: Session, job: Job, event: str, *, note: str = "", task_id: int | None = None,
                    target: str | None = None) -> Status:
        new = transition(job.status, event, has_volume=job.shape is not None, target=target)
        if new != job.status:
            session.add(Event(job_id=job.id, task_id=task_id, at=time.time(), kind=f"status:{new.value}",
                              detail=note or event))
            job.status = new.value
            if new != Status.ERROR:
                job.error = job.traceback = None
        job.updated_at = time.time()
        return new

    def create_job(self, name: str, *, voxel_size: Sequence[float] | None = None, unit: str | None = None,
                   source_type: str | None = None) -> dict[str, Any]:
        name = check_name(name)
        voxel_size, unit = _listed(check_voxel_size(voxel_size)), check_unit(unit)
        if source_type is not None and (not isinstance(source_type, str) or len(source_type) > 40):
            raise InputError(f"source_type must be a short string; got {source_type!r}"[:200])
        now = time.time()
        job = Job(id=new_job_id(), name=name, status=Status.UPLOADING.value, progress=0.0, stage="",
                  created_at=now, updated_at=now, voxel_size=voxel_size, unit=unit, source_type=source_type,
                  classes=default_classes(), upload_bytes=0, annotation_rev=0)
        with self.session() as s:
            s.add(job)
            s.add(Event(job_id=job.id, at=now, kind="status:uploading", detail="created"))
        return self.job_doc(job.id)

    def job_doc(self, job_id: str) -> dict[str, Any]:
        """The status document of the HTTP API (``GET /api/job/<id>/status``)."""
        with self.session() as s:
            return self._doc(s, self._job(s, job_id))

    def _doc(self, s: Session, job: Job) -> dict[str, Any]:
        models = s.scalars(select(Model).where(Model.job_id == job.id).order_by(Model.created_at)).all()
        segs = s.scalars(select(Segmentation).where(Segmentation.job_id == job.id)
                         .order_by(Segmentation.created_at)).all()
        zs = s.scalars(select(Annotation.z).where(Annotation.job_id == job.id).order_by(Annotation.z)).all()
        done = [g for g in segs if g.status == "done"]
        return {
            "job_id": job.id, "name": job.name, "status": job.status, "progress": round(job.progress, 4),
            "stage": job.stage, "error": job.error, "created_at": iso(job.created_at),
            "updated_at": iso(job.updated_at), "shape": job.shape, "dtype": job.dtype,
            "voxel_size": job.voxel_size, "unit": job.unit, "source_type": job.source_type,
            "window": job.window, "warnings": job.warnings or [], "classes": job.classes,
            "annotations": list(zs),
            "models": [{"model_id": m.id, "status": m.status, "created_at": iso(m.created_at),
                        "classes": m.classes, "n_slices": m.n_slices, "voxels_per_class": m.voxels_per_class,
                        "metrics": m.metrics, "error": m.error} for m in models],
            "segmentations": [{"seg_id": g.id, "model_id": g.model_id, "status": g.status,
                               "progress": round(g.progress, 4), "stage": g.stage, "error": g.error,
                               "created_at": iso(g.created_at), "mesh_status": g.mesh_status} for g in segs],
            "annotations_changed_since_segmentation": bool(done) and done[-1].annotation_rev != job.annotation_rev,
            "upload_bytes": job.upload_bytes,
        }

    def list_jobs(self) -> list[dict[str, Any]]:
        with self.session() as s:
            jobs = s.scalars(select(Job).order_by(Job.created_at.desc())).all()
            return [self._doc(s, j) for j in jobs]

    def rename_job(self, job_id: str, name: str) -> dict[str, Any]:
        name = check_name(name)
        with self.session() as s:
            job = self._job(s, job_id)
            job.name, job.updated_at = name, time.time()
            return self._doc(s, job)

    def set_voxel_size(self, job_id: str, voxel_size: Any = None, unit: Any = None) -> dict[str, Any]:
        """Change the job's voxel size and/or unit. Before conversion it is only recorded (the
        converter uses it); after, the NGFF scale metadata of the volume and of its finished
        segmentations is rewritten in place (``zarr.json`` only, no voxel). Existing meshes keep
        the units they were made with. Returns the job document plus ``voxel_size_note``."""
        voxel_size, unit = _listed(check_voxel_size(voxel_size)), check_unit(unit)
        if voxel_size is None and unit is None:
            raise InputError("give voxel_size [z, y, x] and/or unit")
        with self.session() as s:
            job = self._job(s, job_id)
            status = Status(job.status)
            if job.shape is None:
                if status not in (Status.UPLOADING, Status.UPLOADED, Status.ERROR):
                    raise InvalidTransition(f"the volume is being converted ({status.value}); "
                                            "change the voxel size when conversion is done")
                note = "recorded; the conversion will use it"
            else:
                if status in BUSY:
                    raise InvalidTransition(f"the job is busy ({status.value}); change the voxel size when it is done")
                from ml4paleo.io.omezarr import read_info, set_voxel_size

                paths = self.paths(job.id)
                new_size = voxel_size or job.voxel_size or list(read_info(paths.volume).voxel_size)
                new_unit = unit or job.unit or read_info(paths.volume).unit
                targets = [paths.volume] + [paths.labels(g.id) for g in s.scalars(
                    select(Segmentation).where(Segmentation.job_id == job.id, Segmentation.status == "done"))]
                for target in targets:
                    if target.exists():
                        set_voxel_size(target, new_size, new_unit)
                voxel_size, unit = new_size, new_unit
                note = ("volume metadata rewritten in place (NGFF scale and unit only, no voxel rewritten; "
                        "finished segmentations too); meshes already made keep the units they were made with")
            if voxel_size is not None:
                job.voxel_size = voxel_size
            if unit is not None:
                job.unit = unit
            job.updated_at = time.time()
            s.add(Event(job_id=job.id, at=job.updated_at, kind="voxel_size",
                        detail=f"{job.voxel_size} {job.unit}: {note}"))
            return {**self._doc(s, job), "voxel_size_note": note}

    def delete_job(self, job_id: str) -> None:
        """Remove the job's rows (its runner notices at its next lease renewal and stops);
        the caller removes its folder."""
        with self.session() as s:
            job = self._job(s, job_id)
            for table in (Mesh, Task, Segmentation, Model, Annotation, Upload, Event):
                s.execute(delete(table).where(table.job_id == job.id))
            s.delete(job)

    def set_classes(self, job_id: str, classes: Any) -> dict[str, Any]:
        classes = check_classes(classes)
        with self.session() as s:
            job = self._job(s, job_id)
            job.classes, job.updated_at = classes, time.time()
            return self._doc(s, job)

    def job_field(self, job_id: str, name: str) -> Any:
        """One column of a job (cheap: shape, window, classes...)."""
        with self.session() as s:
            return getattr(self._job(s, job_id), name)

    # -- uploads ---------------------------------------------------------------------------

    def begin_chunk(self, job_id: str, filename: str, offset: int, length: int, total_size: int) -> None:
        """Check that a chunk may be written: the job is uploading, the chunk fits the file and
        the job stays within its size limit. Chunks may come in any order and be repeated."""
        if offset < 0 or length < 0 or total_size < 0 or offset + length > total_size:
            raise InputError(f"chunk [{offset}, {offset + length}) does not fit a file of {total_size} bytes")
        with self.session() as s:
            job = self._job(s, job_id)
            self._set_status(s, job, "upload")
            row = s.get(Upload, (job.id, filename))
            if row is not None and row.total_size != total_size:
                raise InputError(f"{filename}: total_size {total_size} differs from the {row.total_size} announced before")
            others = s.scalar(select(func.coalesce(func.sum(Upload.total_size), 0))
                              .where(Upload.job_id == job.id, Upload.filename != filename))
            if others + total_size > self.settings.max_job_bytes:
                raise PayloadTooLarge(f"the job's upload would exceed {self.settings.max_job_bytes} bytes")
            if row is None:
                s.add(Upload(job_id=job.id, filename=filename, total_size=total_size, received=0, ranges=[],
                             updated_at=time.time()))

    def end_chunk(self, job_id: str, filename: str, start: int, end: int) -> dict[str, Any]:
        """Record bytes ``[start, end)`` of a file as written. ``received`` is the length of the
        part received without holes from byte 0: where a client resumes."""
        with self.session() as s:
            job = self._job(s, job_id)
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
        with self.session() as s:
            job = self._job(s, job_id)
            rows = s.scalars(select(Upload).where(Upload.job_id == job.id).order_by(Upload.filename)).all()
            return [{"filename": r.filename, "received": r.received, "total_size": r.total_size} for r in rows]

    def upload_complete(self, job_id: str) -> dict[str, Any]:
        """Close the upload and queue its conversion; a repeat changes nothing."""
        with self.session() as s:
            job = self._job(s, job_id)
            if job.status in (Status.UPLOADING, Status.ERROR) and job.shape is None:
                rows = s.scalars(select(Upload).where(Upload.job_id == job.id)).all()
                if not rows:
                    raise InvalidTransition("nothing was uploaded yet")
                missing = [r.filename for r in rows if r.received < r.total_size]
                if missing:
                    raise InvalidTransition(f"upload incomplete: {missing[0]} ({len(missing)} file(s) unfinished)")
            before = job.status
            if self._set_status(s, job, "upload_complete") == Status.UPLOADED and before != Status.UPLOADED:
                job.progress, job.stage = 0.0, "waiting for the converter"
                self._queue(s, job, "convert", "convert", prev_status=before)
            return self._doc(s, job)

    # -- annotations -----------------------------------------------------------------------

    def annotation_saved(self, job_id: str, z: int, labeled_voxels: int, values: list[int]) -> None:
        with self.session() as s:
            job = self._job(s, job_id)
            self._set_status(s, job, "annotate")
            row = s.get(Annotation, (job.id, z))
            if row is None:
                s.add(Annotation(job_id=job.id, z=z, labeled_voxels=labeled_voxels, values=values,
                                 updated_at=time.time()))
            else:
                row.labeled_voxels, row.values, row.updated_at = labeled_voxels, values, time.time()
            job.annotation_rev += 1

    def annotation_deleted(self, job_id: str, z: int) -> None:
        with self.session() as s:
            job = self._job(s, job_id)
            row = s.get(Annotation, (job.id, z))
            if row is None:
                raise ArtifactNotFound(f"no annotation on slice {z}")
            s.delete(row)
            job.annotation_rev += 1
            job.updated_at = time.time()

    def annotations(self, job_id: str) -> list[dict[str, Any]]:
        with self.session() as s:
            job = self._job(s, job_id)
            rows = s.scalars(select(Annotation).where(Annotation.job_id == job.id).order_by(Annotation.z)).all()
            return [{"z": r.z, "labeled_voxels": r.labeled_voxels, "values": r.values} for r in rows]

    # -- artifacts -------------------------------------------------------------------------

    def model(self, job_id: str, model_id: str) -> dict[str, Any]:
        with self.session() as s:
            row = s.get(Model, model_id)
            if row is None or row.job_id != check_job_id(job_id):
                raise ArtifactNotFound(f"no model {model_id!r} in this job")
            return {"model_id": row.id, "status": row.status}

    def newest_model(self, job_id: str) -> str | None:
        with self.session() as s:
            return s.scalar(select(Model.id).where(Model.job_id == check_job_id(job_id), Model.status == "ready")
                            .order_by(Model.created_at.desc()).limit(1))

    def segmentation(self, job_id: str, seg_id: str) -> dict[str, Any]:
        with self.session() as s:
            row = s.get(Segmentation, seg_id)
            if row is None or row.job_id != check_job_id(job_id):
                raise ArtifactNotFound(f"no segmentation {seg_id!r} in this job")
            return {"seg_id": row.id, "status": row.status, "mesh_status": row.mesh_status, "model_id": row.model_id}

    def export_error(self, job_id: str, seg_id: str) -> str | None:
        """Why the newest export of a segmentation failed, or None (queued, running or done)."""
        with self.session() as s:
            task = s.scalars(select(Task).where(Task.job_id == check_job_id(job_id), Task.seg_id == seg_id,
                                                Task.kind == "export").order_by(Task.id.desc()).limit(1)).first()
            return task.error if task is not None and task.status == "error" else None

    def meshes(self, job_id: str, seg_id: str) -> list[dict[str, Any]]:
        with self.session() as s:
            rows = s.scalars(select(Mesh).where(Mesh.job_id == check_job_id(job_id), Mesh.seg_id == seg_id)
                             .order_by(Mesh.label)).all()
            return [{"label": r.label, "name": r.name, "files": r.files, "measurements": r.measurements}
                    for r in rows]

    def events(self, job_id: str) -> list[dict[str, Any]]:
        """The job's log, oldest first."""
        with self.session() as s:
            rows = s.scalars(select(Event).where(Event.job_id == check_job_id(job_id)).order_by(Event.id)).all()
            return [{"at": iso(e.at), "task_id": e.task_id, "kind": e.kind, "detail": e.detail} for e in rows]

    def tasks(self, job_id: str) -> list[dict[str, Any]]:
        with self.session() as s:
            rows = s.scalars(select(Task).where(Task.job_id == check_job_id(job_id)).order_by(Task.id)).all()
            return [{"task_id": t.id, "kind": t.kind, "queue": t.queue, "status": t.status, "attempts": t.attempts,
                     "owner": t.owner, "error": t.error, "model_id": t.model_id, "seg_id": t.seg_id,
                     "progress": t.progress, "stage": t.stage} for t in rows]
