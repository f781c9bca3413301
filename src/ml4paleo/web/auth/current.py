"""Who the current request acts for: read by the guard, the audit trail, the job list and job
creation (the only places that need it). Which job a request names is
:func:`ml4paleo.web.request_body.requested_job_ids`.

With accounts off there is no viewer (None): the job list is unfiltered and jobs have no owner.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import g

from ml4paleo.jobs.store import Viewer
from ml4paleo.web.request_body import SAFE_METHODS  # noqa: F401  (the guard and audit read it here)



@dataclass(frozen=True)
class Identity:
    """The viewer, how it proved itself (``session`` cookie or API ``token``) and, for a
    session, the CSRF token its pages send back with every change."""

    viewer: Viewer
    via: str
    csrf: str = ""


def identity() -> Identity | None:
    return g.get("ml4paleo_identity")


def viewer() -> Viewer | None:
    """The signed-in user or link reviewer; None with accounts off (or before signing in)."""
    found = identity()
    return found.viewer if found else None


def owner_id() -> int | None:
    """The owner of a job created by this request (None with accounts off)."""
    found = viewer()
    return found.user_id if found else None


def csrf_token() -> str:
    found = identity()
    return found.csrf if found else ""
