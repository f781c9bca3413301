"""Jobs: the job store (SQLAlchemy), the status lifecycle, and the runners that work the queues.

``web`` imports this package; this package never imports ``web``.
"""

from ml4paleo.jobs._queue import QUEUES, Claim
from ml4paleo.jobs.paths import JobPaths
from ml4paleo.jobs.runner import Runner
from ml4paleo.jobs.statuses import Status, transition
from ml4paleo.jobs.store import JobStore

__all__ = ["QUEUES", "Claim", "JobPaths", "JobStore", "Runner", "Status", "transition"]
