"""The job database schema (SQLAlchemy 2 declarative): jobs, uploads, annotations, models,
segmentations, meshes, the task queue the runners claim from, and an event log; with accounts on
(``ML4PALEO_AUTH=accounts``) also users, their sessions and API tokens, read-only shares and
reviewer links, and failed logins (the rate limit).

Times are UNIX seconds (float) so that lease arithmetic is the same on SQLite and PostgreSQL.
Status and kind columns hold the values of the enums of :mod:`ml4paleo.jobs.statuses`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ml4paleo.jobs.statuses import MeshStatus


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), index=True)  # Status
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    stage: Mapped[str] = mapped_column(String(200), default="")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    traceback: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    source_type: Mapped[str | None] = mapped_column(String(40), nullable=True)
    shape: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    dtype: Mapped[str | None] = mapped_column(String(20), nullable=True)
    voxel_size: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    unit: Mapped[str | None] = mapped_column(String(40), nullable=True)
    window: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    classes: Mapped[list[Any]] = mapped_column(JSON)
    upload_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    annotation_rev: Mapped[int] = mapped_column(Integer, default=0)
    """Incremented on every annotation change; models remember the revision they were trained on."""
    warnings: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    owner_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    """The user who created the job (accounts on); None: made with accounts off, seen by admins only."""


class Upload(Base):
    __tablename__ = "uploads"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    filename: Mapped[str] = mapped_column(String(1000), primary_key=True)
    total_size: Mapped[int] = mapped_column(BigInteger)
    received: Mapped[int] = mapped_column(BigInteger, default=0)
    """Bytes received without holes from byte 0 (where a client resumes)."""
    ranges: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    """Merged ``[start, end)`` byte ranges written so far (chunks may arrive in any order)."""
    updated_at: Mapped[float] = mapped_column(Float)


class Annotation(Base):
    __tablename__ = "annotations"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    z: Mapped[int] = mapped_column(Integer, primary_key=True)
    """The slice's index along ``axis`` (the column keeps its first name, from when every slice was a z slice)."""
    axis: Mapped[str] = mapped_column(String(1), primary_key=True, default="z")
    """The axis the painted plane is across: z (an XY slice), y (XZ) or x (YZ)."""
    labeled_voxels: Mapped[int] = mapped_column(BigInteger)
    values: Mapped[list[Any]] = mapped_column(JSON)
    updated_at: Mapped[float] = mapped_column(Float)


class Model(Base):
    __tablename__ = "models"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(20))  # ModelStatus
    created_at: Mapped[float] = mapped_column(Float)
    classes: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    n_slices: Mapped[int] = mapped_column(Integer, default=0)
    voxels_per_class: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    annotation_rev: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class Segmentation(Base):
    __tablename__ = "segmentations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(20))  # SegmentationStatus
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    stage: Mapped[str] = mapped_column(String(200), default="")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    mesh_status: Mapped[str] = mapped_column(String(20), default=MeshStatus.NONE.value)  # MeshStatus
    annotation_rev: Mapped[int] = mapped_column(Integer, default=0)


class Mesh(Base):
    __tablename__ = "meshes"

    seg_id: Mapped[str] = mapped_column(ForeignKey("segmentations.id", ondelete="CASCADE"), primary_key=True)
    label: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    files: Mapped[dict[str, Any]] = mapped_column(JSON)
    measurements: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class Task(Base):
    """One unit of work for a runner queue (convert, segment, mesh or train)."""

    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_claim", "queue", "status", "lease_until"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    queue: Mapped[str] = mapped_column(String(20))  # RunnerKind
    kind: Mapped[str] = mapped_column(String(20))  # TaskKind
    status: Mapped[str] = mapped_column(String(20))  # TaskStatus
    model_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    seg_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    """The job's status before the task was queued: restored when it is cancelled."""
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    claim_token: Mapped[str | None] = mapped_column(String(32), nullable=True, unique=True)
    owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    stage: Mapped[str] = mapped_column(String(200), default="")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    traceback: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """What the task returned (kept for tasks whose result is read back, e.g. a draft's revision)."""


class Event(Base):
    """Append-only log of status changes and task milestones (debugging, and tests that
    check a task completed exactly once)."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(36), index=True)
    task_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    at: Mapped[float] = mapped_column(Float)
    kind: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """The user (or ``link:<id>`` reviewer) whose request it was (accounts on); None otherwise."""


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)


class AuthSession(Base):
    """A signed-in browser: a user's, or a reviewer's who opened a share link (``link_id``).
    The cookie holds a random secret; only its SHA-256 is stored, so a database leak signs no one in."""

    __tablename__ = "auth_sessions"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    link_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    name: Mapped[str] = mapped_column(String(100))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[float] = mapped_column(Float)
    last_used_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class Share(Base):
    """A job shared read-only with a named user."""

    __tablename__ = "job_shares"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, index=True)
    created_at: Mapped[float] = mapped_column(Float)


class ShareLink(Base):
    """A revocable read-only link to a job for a reviewer without an account (only the
    SHA-256 of its secret is stored)."""

    __tablename__ = "job_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[float] = mapped_column(Float)


class LoginFailure(Base):
    """One wrong password, kept for the rate-limit window (per account and per address)."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(String(64), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[float] = mapped_column(Float, index=True)
