"""Who the current request acts for, and which job it names: read by the guard, the audit trail,
the job list and job creation (the only places that need them).

With accounts off there is no viewer (None): the job list is unfiltered and jobs have no owner.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import g, request

from ml4paleo.jobs.store import Viewer

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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


def requested_job_ids() -> list[str]:
    """Every job the request names: in its URL (``<job_id>``), the query, the ``X-Job-ID`` header,
    the form field or the JSON field ``job_id`` (uploads, upload-complete, status). All are
    checked, so a route reading another of these places than the first cannot be tricked."""
    candidates = [(request.view_args or {}).get("job_id"), request.args.get("job_id"),
                  request.headers.get("X-Job-ID")]
    if request.method not in SAFE_METHODS:
        if request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
            candidates.append(request.form.get("job_id"))
        elif request.content_length:
            body = request.get_json(silent=True, force=True)
            candidates.append(body.get("job_id") if isinstance(body, dict) else None)
    return list(dict.fromkeys(c for c in candidates if isinstance(c, str) and c))
