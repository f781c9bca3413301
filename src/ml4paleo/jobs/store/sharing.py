"""Ownership (accounts on): who may see and change a job, read-only shares with named users,
revocable reviewer links, and the audit trail of who did what.

The one visibility rule, :func:`visible`, is an SQL condition: the job list filters by it and
:meth:`Sharing.access` (every request naming a job) asks it, so the two cannot disagree.
"""

from __future__ import annotations

import time
from enum import Enum
from typing import Any

from sqlalchemy import ColumnElement, delete, false, or_, select, true, update

from ml4paleo.errors import ArtifactNotFound, InputError, JobNotFound
from ml4paleo.jobs.paths import check_job_id
from ml4paleo.jobs.store._base import Database, get_job, iso, log
from ml4paleo.jobs.store.accounts import Accounts, Viewer, digest, new_secret
from ml4paleo.jobs.tables import AuthSession, Event, Job, Share, ShareLink, User


class Access(str, Enum):
    READ = "read"
    """See, view and download (shared read-only, or a reviewer's link)."""
    WRITE = "write"
    """Also annotate, start, rename, share and delete (the owner, an admin)."""


def visible(viewer: Viewer) -> ColumnElement[bool]:
    """The jobs ``viewer`` may see, as a condition on :class:`Job`."""
    if viewer.is_admin:
        return true()
    if viewer.user_id is not None:
        return or_(Job.owner_id == viewer.user_id,
                   Job.id.in_(select(Share.job_id).where(Share.user_id == viewer.user_id)))
    if viewer.link_job_id is not None:
        return Job.id == viewer.link_job_id
    return false()


class Sharing:
    """Access checks, shares, links and the audit trail."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def access(self, job_id: str, viewer: Viewer) -> Access:
        """What ``viewer`` may do with the job; :class:`JobNotFound` when it may not see it
        (the same answer as for a job that does not exist)."""
        with self.db.session() as s:
            job = s.scalar(select(Job).where(Job.id == check_job_id(job_id), visible(viewer)))
            if job is None:
                raise JobNotFound(f"no job {str(job_id)[:60]!r}")
            owns = viewer.user_id is not None and job.owner_id == viewer.user_id
            return Access.WRITE if viewer.is_admin or owns else Access.READ

    def give(self, user_name: str, job_ids: list[str] | None = None) -> int:
        """Make ``user_name`` the owner of these jobs, or of every job without an owner (made
        before accounts were turned on); returns how many changed hands."""
        with self.db.session() as s:
            user = Accounts._user(s, user_name)
            if job_ids is None:
                return s.execute(update(Job).where(Job.owner_id.is_(None)).values(owner_id=user.id)).rowcount
            jobs = [get_job(s, job_id) for job_id in job_ids]  # all known, or nothing changes
            for job in jobs:
                job.owner_id = user.id
            return len(jobs)

    # -- shares with named users -----------------------------------------------------------------

    def share(self, job_id: str, user_name: Any) -> dict[str, Any]:
        with self.db.session() as s:
            job = get_job(s, job_id)
            user = Accounts._user(s, user_name)
            if user.id == job.owner_id:
                raise InputError(f"{user.name} owns this job already")
            if s.get(Share, (job.id, user.id)) is None:
                s.add(Share(job_id=job.id, user_id=user.id, created_at=time.time()))
        return self.shares(job_id)

    def unshare(self, job_id: str, user_name: str) -> dict[str, Any]:
        with self.db.session() as s:
            job = get_job(s, job_id)
            user = Accounts._user(s, user_name)
            if not s.execute(delete(Share).where(Share.job_id == job.id, Share.user_id == user.id)).rowcount:
                raise ArtifactNotFound(f"the job is not shared with {user.name}")
        return self.shares(job_id)

    def shares(self, job_id: str) -> dict[str, Any]:
        """Who sees the job besides its owner: users, and links (without their secrets)."""
        with self.db.session() as s:
            job = get_job(s, job_id)
            users = s.execute(select(User.name, Share.created_at).join(Share, Share.user_id == User.id)
                              .where(Share.job_id == job.id).order_by(User.name)).all()
            links = s.scalars(select(ShareLink).where(ShareLink.job_id == job.id).order_by(ShareLink.id)).all()
            owner = s.scalar(select(User.name).where(User.id == job.owner_id)) if job.owner_id is not None else None
            return {"owner": owner, "users": [{"name": n, "shared_at": iso(t)} for n, t in users],
                    "links": [{"link_id": k.id, "label": k.label, "created_at": iso(k.created_at)} for k in links]}

    # -- reviewer links --------------------------------------------------------------------------

    def new_link(self, job_id: str, label: Any = "") -> dict[str, Any]:
        """A read-only link for a reviewer without an account; its secret is in the answer only."""
        if not isinstance(label, str) or len(label) > 100:
            raise InputError("label must be a string of at most 100 characters")
        secret = new_secret()
        with self.db.session() as s:
            job = get_job(s, job_id)
            link = ShareLink(job_id=job.id, digest=digest(secret), label=label.strip(), created_at=time.time())
            s.add(link)
            s.flush()
            return {"link_id": link.id, "label": link.label, "secret": secret}

    def revoke_link(self, job_id: str, link_id: int) -> dict[str, Any]:
        """The link stops working at once, also for a reviewer who opened it already."""
        with self.db.session() as s:
            job = get_job(s, job_id)
            if not s.execute(delete(ShareLink).where(ShareLink.id == link_id, ShareLink.job_id == job.id)).rowcount:
                raise ArtifactNotFound(f"no link {link_id} on this job")
            s.execute(delete(AuthSession).where(AuthSession.link_id == link_id))
        return self.shares(job_id)

    def link(self, secret: str) -> tuple[int, str] | None:
        """``(link_id, job_id)`` of a live link's secret, or None."""
        with self.db.session() as s:
            row = s.scalar(select(ShareLink).where(ShareLink.digest == digest(secret or "")))
            return (row.id, row.job_id) if row else None

    # -- the audit trail -------------------------------------------------------------------------

    def audit(self, job_id: str, action: str, detail: str, actor: str) -> None:
        """Record that ``actor`` did ``action`` on the job (kept even after the job is deleted)."""
        with self.db.session() as s:
            log(s, check_job_id(job_id), f"audit:{action}", detail[:500], actor=actor)

    def audit_log(self, *, job_id: str | None = None, actor: str | None = None,
                  limit: int = 100) -> list[dict[str, Any]]:
        """The newest audit entries first, of one job and/or one actor."""
        with self.db.session() as s:
            query = select(Event).where(Event.kind.like("audit:%"))
            if job_id:
                query = query.where(Event.job_id == check_job_id(job_id))
            if actor:
                query = query.where(Event.actor == actor)
            rows = s.scalars(query.order_by(Event.id.desc()).limit(limit)).all()
            return [{"at": iso(e.at), "job_id": e.job_id, "actor": e.actor, "action": e.kind.split(":", 1)[1],
                     "detail": e.detail} for e in rows]
