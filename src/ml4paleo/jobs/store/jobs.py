"""Jobs: create, rename, delete, classes and voxel size, and the job's log (the status document
of the HTTP API is :mod:`ml4paleo.jobs.store.documents`'s)."""

from __future__ import annotations

import time
from typing import Any, Sequence

from sqlalchemy import delete, select

from ml4paleo.enums import CLASS_NAME_MAX, ON_REQUEST_EXPORTS, SEGMENTATION_EXPORTS, default_classes
from ml4paleo.errors import InputError, InvalidTransition
from ml4paleo.jobs.paths import check_job_id, new_job_id
from ml4paleo.jobs.statuses import BUSY, SegmentationStatus, Status
from ml4paleo.jobs.store._base import Database, get_job, iso, log
from ml4paleo.jobs.store.accounts import Viewer
from ml4paleo.jobs.store.documents import job_document
from ml4paleo.jobs.store.queue import queue_exports
from ml4paleo.jobs.store.sharing import visible
from ml4paleo.jobs.tables import (Annotation, AuthSession, Event, Job, Mesh, Model, Segmentation, Share, ShareLink, Task,
                                  Upload)
from ml4paleo.units import check_unit, check_voxel_size

MAX_NAME = 200


def check_classes(classes: Any) -> list[dict[str, Any]]:
    """Annotation classes as ``[{value, name, color}]``: values 1 (background), 2.. unique."""
    if not isinstance(classes, list) or not 2 <= len(classes) <= 255:
        raise InputError("classes must be a list of 2 to 255 {value, name, color} objects")
    out, seen, names = [], set(), set()
    for c in classes:
        if not isinstance(c, dict) or not isinstance(c.get("value"), int) or isinstance(c.get("value"), bool):
            raise InputError(f"each class needs an integer value; got {c!r}"[:200])
        value, name, color = c["value"], c.get("name"), c.get("color", "#888888")
        if not 1 <= value <= 255 or value in seen:
            raise InputError(f"class values must be unique, from 1 to 255; got {value}")
        if not isinstance(name, str) or not name.strip() or len(name) > CLASS_NAME_MAX:
            raise InputError(f"class {value} needs a name of 1 to {CLASS_NAME_MAX} characters")
        if not isinstance(color, str) or len(color) > 32:
            raise InputError(f"class {value} has an invalid color {color!r}"[:200])
        if name.strip() in names:  # a model and its exports name the classes: two of one name are one
            raise InputError(f"class names must be unique; {name.strip()!r} is given twice")
        seen.add(value)
        names.add(name.strip())
        out.append({"value": value, "name": name.strip(), "color": color})
    if seen != set(range(1, len(out) + 1)):
        raise InputError(f"class values must be 1 (background), 2, ... without gaps; got {sorted(seen)}")
    return sorted(out, key=lambda c: c["value"])


def _listed(voxel_size: tuple[float, ...] | None) -> list[float] | None:
    """A checked voxel size as the JSON list the job record keeps."""
    return None if voxel_size is None else list(voxel_size)


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InputError("name must be a non-empty string")
    if len(name) > MAX_NAME:
        raise InputError(f"name must be at most {MAX_NAME} characters; got {len(name)}")
    return name.strip()


class Jobs:
    """The job rows: what a user creates, names, configures and deletes."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create_job(self, name: str, *, voxel_size: Sequence[float] | None = None, unit: str | None = None,
                   source_type: str | None = None, owner_id: int | None = None) -> dict[str, Any]:
        """A new job, owned by the user ``owner_id`` (accounts on; None with accounts off)."""
        name = check_name(name)
        voxel_size, unit = _listed(check_voxel_size(voxel_size)), check_unit(unit)
        if source_type is not None and (not isinstance(source_type, str) or len(source_type) > 40):
            raise InputError(f"source_type must be a short string; got {source_type!r}"[:200])
        now = time.time()
        job = Job(id=new_job_id(), name=name, status=Status.UPLOADING.value, progress=0.0, stage="",
                  created_at=now, updated_at=now, voxel_size=voxel_size, unit=unit, source_type=source_type,
                  classes=default_classes(), upload_bytes=0, annotation_rev=0, owner_id=owner_id)
        with self.db.session() as s:
            s.add(job)
            log(s, job.id, f"status:{Status.UPLOADING.value}", "created", at=now)
        return self.job_doc(job.id)

    def job_doc(self, job_id: str) -> dict[str, Any]:
        """The status document of the HTTP API (``GET /api/job/<id>/status``)."""
        with self.db.session() as s:
            return job_document(s, get_job(s, job_id))

    def list_jobs(self, viewer: Viewer | None = None) -> list[dict[str, Any]]:
        """Every job, newest first; with ``viewer`` (accounts on) only those it may see."""
        with self.db.session() as s:
            query = select(Job) if viewer is None else select(Job).where(visible(viewer))
            jobs = s.scalars(query.order_by(Job.created_at.desc())).all()
            return [job_document(s, j) for j in jobs]

    def _update(self, job_id: str, **columns: Any) -> dict[str, Any]:
        with self.db.session() as s:
            job = get_job(s, job_id)
            for name, value in columns.items():
                setattr(job, name, value)
            job.updated_at = time.time()
            return job_document(s, job)

    def rename_job(self, job_id: str, name: str) -> dict[str, Any]:
        return self._update(job_id, name=check_name(name))

    def voxel_size_change(self, job_id: str) -> tuple[dict[str, Any], list[str]]:
        """Whether the job's voxel size may change now: its current ``{voxel_size, unit, shape}`` and
        the ids of its finished segmentations (whose metadata the change rewrites too); InvalidTransition
        while it is being converted or busy, or for a scan read in place. Reads only: the caller writes
        the files, then :meth:`voxel_size_changed` records the change."""
        with self.db.session() as s:
            job = get_job(s, job_id)
            status = Status(job.status)
            if job.shape is None:
                if status not in (Status.UPLOADING, Status.UPLOADED, Status.ERROR):
                    raise InvalidTransition(f"the volume is being converted ({status.value}); "
                                            "change the voxel size when conversion is done")
                return {"voxel_size": job.voxel_size, "unit": job.unit, "shape": None}, []
            if status in BUSY:
                raise InvalidTransition(f"the job is busy ({status.value}); change the voxel size when it is done")
            if self.db.paths(job.id).volume.is_symlink():  # an OME-Zarr registered in place is never written
                raise InvalidTransition("this scan is read in place from an import root, never written: its voxel "
                                        "size is the one in its OME-Zarr metadata")
            finished = s.scalars(select(Segmentation.id).where(Segmentation.job_id == job.id,
                                                               Segmentation.status == SegmentationStatus.DONE)).all()
            return {"voxel_size": job.voxel_size, "unit": job.unit, "shape": job.shape}, list(finished)

    def voxel_size_changed(self, job_id: str, voxel_size: list[float] | None, unit: str | None,
                           rewritten: Sequence[str], note: str) -> dict[str, Any]:
        """Record the job's new voxel size and/or unit, and queue the download files of the
        segmentations ``rewritten`` (their headers hold the voxel size) to be written again.
        Returns the job document plus ``voxel_size_note``."""
        with self.db.session() as s:
            job = get_job(s, job_id)
            paths = self.db.paths(job.id)
            for seg_id in rewritten:  # a TIFF made on request is made again too: its tags hold the voxel size
                on_request = [fmt for fmt in ON_REQUEST_EXPORTS if paths.export(seg_id, fmt).exists()]
                queue_exports(s, job, seg_id, (*SEGMENTATION_EXPORTS, *on_request))
            if voxel_size is not None:
                job.voxel_size = voxel_size
            if unit is not None:
                job.unit = unit
            job.updated_at = time.time()
            log(s, job.id, "voxel_size", f"{job.voxel_size} {job.unit}: {note}", at=job.updated_at)
            return {**job_document(s, job), "voxel_size_note": note}

    def delete_job(self, job_id: str) -> None:
        """Remove the job's rows but its audit trail (its runner notices at its next lease renewal
        and stops); the caller removes its folder."""
        with self.db.session() as s:
            job = get_job(s, job_id)
            links = select(ShareLink.id).where(ShareLink.job_id == job.id)
            s.execute(delete(AuthSession).where(AuthSession.link_id.in_(links)))
            for table in (Mesh, Task, Segmentation, Model, Annotation, Upload, Share, ShareLink):
                s.execute(delete(table).where(table.job_id == job.id))
            # the audit trail (accounts on) outlives the job: who deleted it, and what was done before
            s.execute(delete(Event).where(Event.job_id == job.id, Event.kind.not_like("audit:%")))
            s.delete(job)

    def set_classes(self, job_id: str, classes: Any) -> dict[str, Any]:
        return self._update(job_id, classes=check_classes(classes))

    def job_field(self, job_id: str, name: str) -> Any:
        """One column of a job (cheap: shape, window, classes...)."""
        with self.db.session() as s:
            return getattr(get_job(s, job_id), name)

    def events(self, job_id: str) -> list[dict[str, Any]]:
        """The job's log, oldest first."""
        with self.db.session() as s:
            rows = s.scalars(select(Event).where(Event.job_id == check_job_id(job_id)).order_by(Event.id)).all()
            return [{"at": iso(e.at), "task_id": e.task_id, "kind": e.kind, "detail": e.detail, "actor": e.actor}
                    for e in rows]
