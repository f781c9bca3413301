"""The job store: all job state of one deployment, over SQLAlchemy.

Small parts over one :class:`~ml4paleo.jobs.store._base.Database` (engine and sessions), each a
module of its own:

- :mod:`.jobs` — create, rename, delete, classes and voxel size, the log;
- :mod:`.documents` — the status document every part returns;
- :mod:`.uploads` — chunks received, size limits, closing the upload (queues the conversion);
- :mod:`.annotations` — painted slices and the annotation revision;
- :mod:`.artifacts` — models, segmentations and meshes;
- :mod:`.queue` — the task queue, web side: queue training, drafts, segmentation, meshing; cancel;
- :mod:`.claims` — the task queue, runner side: claim, lease, progress, result (:class:`TaskQueue`
  is what a runner needs of it);
- :mod:`.accounts` and :mod:`.sharing` — with accounts on: users, sessions, API tokens; who may see
  a job, shares, reviewer links, the audit trail (``store.accounts`` and ``store.sharing``: the
  web layer's sign-in and access check, and ``ml4paleo user``, are their only callers).

:class:`JobStore` composes them and is what the web app, the runners and the CLI use. Every
status change goes through :func:`ml4paleo.jobs.statuses.transition` inside the same
transaction that reads the current status, so two requests (or a request and a runner) never
both act on a stale status.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Sequence

from sqlalchemy.orm import Session

from ml4paleo.enums import DEFAULT_MESH_FORMAT
from ml4paleo.jobs.paths import JobPaths
from ml4paleo.jobs.statuses import Lease
from ml4paleo.jobs.store._base import Database, iso
from ml4paleo.jobs.store.accounts import Accounts, SignedIn, Viewer
from ml4paleo.jobs.store.annotations import Annotations
from ml4paleo.jobs.store.artifacts import Artifacts
from ml4paleo.jobs.store.claims import Claim, Claims, TaskQueue
from ml4paleo.jobs.store.jobs import MAX_NAME, Jobs, check_classes, check_name
from ml4paleo.jobs.store.queue import Queue
from ml4paleo.jobs.store.sharing import Access, Sharing
from ml4paleo.jobs.store.uploads import Uploads, merge_ranges
from ml4paleo.planes import SliceRef
from ml4paleo.settings import Settings

__all__ = ["MAX_NAME", "Access", "Claim", "Database", "JobStore", "SignedIn", "TaskQueue", "Viewer", "check_classes",
           "check_name", "iso", "merge_ranges"]


class JobStore:
    """All job state of one deployment (one database, one data folder): the parts of this
    package over one :class:`Database`, each method handed to the part that owns it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings)
        self.engine = self.db.engine
        self._jobs = Jobs(self.db)
        self._uploads = Uploads(self.db)
        self._annotations = Annotations(self.db)
        self._artifacts = Artifacts(self.db)
        self._queue = Queue(self.db)
        self._claims = Claims(self.db)
        self.accounts = Accounts(self.db)
        self.sharing = Sharing(self.db)

    def close(self) -> None:
        self.db.close()

    def session(self) -> AbstractContextManager[Session]:
        """One transaction: committed when the block ends, rolled back on an exception."""
        return self.db.session()

    def paths(self, job_id: str) -> JobPaths:
        return self.db.paths(job_id)

    # -- jobs (.jobs) --------------------------------------------------------------------------

    def create_job(self, name: str, *, voxel_size: Sequence[float] | None = None, unit: str | None = None,
                   source_type: str | None = None, owner_id: int | None = None) -> dict[str, Any]:
        return self._jobs.create_job(name, voxel_size=voxel_size, unit=unit, source_type=source_type,
                                     owner_id=owner_id)

    def job_doc(self, job_id: str) -> dict[str, Any]:
        return self._jobs.job_doc(job_id)

    def list_jobs(self, viewer: Viewer | None = None) -> list[dict[str, Any]]:
        return self._jobs.list_jobs(viewer)

    def rename_job(self, job_id: str, name: str) -> dict[str, Any]:
        return self._jobs.rename_job(job_id, name)

    def set_voxel_size(self, job_id: str, voxel_size: Any = None, unit: Any = None) -> dict[str, Any]:
        return self._jobs.set_voxel_size(job_id, voxel_size, unit)

    def delete_job(self, job_id: str) -> None:
        self._jobs.delete_job(job_id)

    def set_classes(self, job_id: str, classes: Any) -> dict[str, Any]:
        return self._jobs.set_classes(job_id, classes)

    def job_field(self, job_id: str, name: str) -> Any:
        return self._jobs.job_field(job_id, name)

    def events(self, job_id: str) -> list[dict[str, Any]]:
        return self._jobs.events(job_id)

    # -- uploads (.uploads) --------------------------------------------------------------------

    def begin_chunk(self, job_id: str, filename: str, offset: int, length: int, total_size: int) -> None:
        self._uploads.begin_chunk(job_id, filename, offset, length, total_size)

    def end_chunk(self, job_id: str, filename: str, start: int, end: int) -> dict[str, Any]:
        return self._uploads.end_chunk(job_id, filename, start, end)

    def uploads(self, job_id: str) -> list[dict[str, Any]]:
        return self._uploads.uploads(job_id)

    def upload_complete(self, job_id: str, keep_upload: bool = False) -> dict[str, Any]:
        return self._uploads.upload_complete(job_id, keep_upload)

    def queue_import(self, job_id: str, source: dict[str, Any]) -> dict[str, Any]:
        return self._uploads.queue_import(job_id, source)

    # -- annotations (.annotations) ------------------------------------------------------------

    def annotation_saved(self, job_id: str, ref: SliceRef, labeled_voxels: int, values: list[int]) -> None:
        self._annotations.annotation_saved(job_id, ref, labeled_voxels, values)

    def annotation_deleted(self, job_id: str, ref: SliceRef) -> None:
        self._annotations.annotation_deleted(job_id, ref)

    def annotations(self, job_id: str) -> list[dict[str, Any]]:
        return self._annotations.annotations(job_id)

    # -- artifacts (.artifacts) ----------------------------------------------------------------

    def model(self, job_id: str, model_id: str) -> dict[str, Any]:
        return self._artifacts.model(job_id, model_id)

    def newest_model(self, job_id: str) -> str | None:
        return self._artifacts.newest_model(job_id)

    def segmentation(self, job_id: str, seg_id: str) -> dict[str, Any]:
        return self._artifacts.segmentation(job_id, seg_id)

    def meshes(self, job_id: str, seg_id: str) -> list[dict[str, Any]]:
        return self._artifacts.meshes(job_id, seg_id)

    # -- the queue, web side (.queue) ----------------------------------------------------------

    def queue_train(self, job_id: str, method: str | None = None) -> str:
        return self._queue.queue_train(job_id, method)

    def queue_start(self, job_id: str, method: str | None = None) -> tuple[str, str]:
        return self._queue.queue_start(job_id, method)

    def queue_mesh(self, job_id: str, seg_id: str | None = None, formats: Sequence[str] = (DEFAULT_MESH_FORMAT,), *,
                   full_resolution: bool = False) -> str:
        return self._queue.queue_mesh(job_id, seg_id, formats, full_resolution=full_resolution)

    def queue_draft(self, job_id: str, z: int | None = None) -> dict[str, Any]:
        return self._queue.queue_draft(job_id, z)

    def draft(self, job_id: str) -> dict[str, Any]:
        return self._queue.draft(job_id)

    def queue_preview(self, job_id: str, params: dict[str, Any], view: str | None = None) -> int:
        return self._queue.queue_preview(job_id, params, view)

    def preview(self, job_id: str, task_id: int) -> dict[str, Any]:
        return self._queue.preview(job_id, task_id)

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._queue.cancel(job_id)

    def queue_depths(self) -> dict[str, dict[str, int]]:
        return self._queue.queue_depths()

    def tasks(self, job_id: str) -> list[dict[str, Any]]:
        return self._queue.tasks(job_id)

    def queue_objects(self, job_id: str, seg_id: str | None, params: dict[str, Any]) -> dict[str, Any]:
        return self._queue.queue_objects(job_id, seg_id, params)

    def objects_state(self, job_id: str, seg_id: str) -> dict[str, Any]:
        return self._queue.objects_state(job_id, seg_id)

    def queue_export(self, job_id: str, seg_id: str, fmt: str, compression: str | None = None) -> dict[str, Any]:
        return self._queue.queue_export(job_id, seg_id, fmt, compression)

    def exports_pending(self, job_id: str, seg_id: str) -> set[str]:
        return self._queue.exports_pending(job_id, seg_id)

    def export_error(self, job_id: str, seg_id: str) -> str | None:
        return self._queue.export_error(job_id, seg_id)

    # -- the queue, runner side (.claims; the TaskQueue protocol) ------------------------------

    def claim(self, queue: str, owner: str) -> Claim | None:
        return self._claims.claim(queue, owner)

    def heartbeat(self, claim: Claim) -> Lease:
        return self._claims.heartbeat(claim)

    def report_progress(self, claim: Claim, fraction: float, stage: str) -> bool:
        return self._claims.report_progress(claim, fraction, stage)

    def model_trained(self, claim: Claim, info: dict[str, Any]) -> bool:
        return self._claims.model_trained(claim, info)

    def finish(self, claim: Claim, result: dict[str, Any]) -> bool:
        return self._claims.finish(claim, result)

    def fail(self, claim: Claim, reason: str, traceback: str | None = None) -> bool:
        return self._claims.fail(claim, reason, traceback)

    def release(self, claim: Claim) -> bool:
        return self._claims.release(claim)

    def cancelled(self, claim: Claim) -> bool:
        return self._claims.cancelled(claim)
