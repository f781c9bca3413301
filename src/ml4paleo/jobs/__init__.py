"""Jobs: the job store (SQLAlchemy), the statuses as types, and the runners that work the queues.

``web`` imports this package; this package never imports ``web``.
"""

from ml4paleo.jobs.paths import JobPaths
from ml4paleo.jobs.runner import Runner
from ml4paleo.jobs.statuses import (QUEUES, JobEvent, Lease, MeshStatus, ModelStatus, RunnerKind, SegmentationStatus,
                                    Status, TaskKind, TaskStatus, transition)
from ml4paleo.jobs.store import Claim, JobStore, TaskQueue

__all__ = ["QUEUES", "Claim", "JobEvent", "JobPaths", "JobStore", "Lease", "MeshStatus", "ModelStatus", "Runner",
           "RunnerKind", "SegmentationStatus", "Status", "TaskKind", "TaskQueue", "TaskStatus", "transition"]
