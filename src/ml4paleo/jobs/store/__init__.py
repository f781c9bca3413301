"""The job store: all job state of one deployment, over SQLAlchemy.

:class:`JobStore` holds small parts over one :class:`~ml4paleo.jobs.store._base.Database`,
each a module of its own and reached directly (``store.jobs.job_doc(job_id)``): ``jobs``
(create, rename, delete, classes, voxel size, the log), ``uploads``, ``annotations`` (painted
slices and the annotation revision), ``artifacts`` (models, segmentations, meshes), ``queue``
(the task queue, web side), ``claims`` (runner side: :class:`TaskQueue` is what a runner needs),
``accounts`` and ``sharing``; :mod:`.documents` builds the status document they return. Every
status change goes through :func:`ml4paleo.jobs.statuses.transition` inside the same
transaction that reads the current status, so two requests (or a request and a runner) never
both act on a stale status.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from sqlalchemy.orm import Session

from ml4paleo.jobs.paths import JobPaths
from ml4paleo.jobs.store._base import Database, iso
from ml4paleo.jobs.store.accounts import Accounts, SignedIn, Viewer
from ml4paleo.jobs.store.annotations import Annotations
from ml4paleo.jobs.store.artifacts import Artifacts
from ml4paleo.jobs.store.claims import Claim, Claims, TaskQueue
from ml4paleo.jobs.store.jobs import MAX_NAME, Jobs, check_classes, check_name
from ml4paleo.jobs.store.queue import Queue
from ml4paleo.jobs.store.sharing import Access, Sharing
from ml4paleo.jobs.store.uploads import Uploads, merge_ranges
from ml4paleo.settings import Settings

__all__ = ["MAX_NAME", "Access", "Claim", "Database", "JobStore", "SignedIn", "TaskQueue", "Viewer", "check_classes",
           "check_name", "iso", "merge_ranges"]


class JobStore:
    """All job state of one deployment (one database, one data folder): the parts of this
    package over one :class:`Database`, each reached directly (``store.jobs.job_doc(...)``,
    ``store.queue.queue_train(...)``, ``store.claims``: what a runner needs)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings)
        self.engine = self.db.engine
        self.jobs = Jobs(self.db)
        self.uploads = Uploads(self.db)
        self.annotations = Annotations(self.db)
        self.artifacts = Artifacts(self.db)
        self.queue = Queue(self.db)
        self.claims = Claims(self.db)
        self.accounts = Accounts(self.db)
        self.sharing = Sharing(self.db)

    def close(self) -> None:
        self.db.close()

    def session(self) -> AbstractContextManager[Session]:
        """One transaction: committed when the block ends, rolled back on an exception."""
        return self.db.session()

    def paths(self, job_id: str) -> JobPaths:
        return self.db.paths(job_id)
