"""Engine set-up: SQLite in WAL mode with immediate transactions (so that several processes
write without "database is locked" surprises), or any SQLAlchemy URL; schema created and
extended (missing columns added) on start."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.exc import OperationalError

from ml4paleo.jobs.tables import Base


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with the schema in place."""
    if url.startswith("sqlite"):
        db_file = url.split("///", 1)[-1]
        if db_file and db_file != ":memory:":
            Path(db_file).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record) -> None:  # pragma: no cover - driver hook
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves, below
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn) -> None:  # pragma: no cover - driver hook
            # Take the write lock at the start: a read-then-write transaction can otherwise
            # fail at once with SQLITE_BUSY when another process wrote in between.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    else:
        engine = create_engine(url, pool_pre_ping=True)
    _create_schema(engine)
    return engine


def _create_schema(engine: Engine) -> None:
    """Create missing tables and add missing (nullable/defaulted) columns; several processes
    starting at once may race, so a failure is retried."""
    for attempt in range(5):
        try:
            _annotations_by_plane(engine)
            Base.metadata.create_all(engine)
            _add_missing_columns(engine)
            return
        except OperationalError:
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))


def _add_missing_columns(engine: Engine) -> None:
    inspector = inspect(engine)
    for table in Base.metadata.sorted_tables:
        existing = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in existing:
                continue
            ddl_type = column.type.compile(dialect=engine.dialect)
            with engine.begin() as conn:
                conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {ddl_type}'))


def _annotations_by_plane(engine: Engine) -> None:
    """Give an older ``annotations`` table (key: job, z) the ``axis`` column in its key, so a
    job may have slices of the y and x planes too. SQL cannot widen a primary key in place,
    so the rows are copied into the new table once; every old row is a z slice."""
    with engine.begin() as conn:
        inspector = inspect(conn)
        if "annotations" not in inspector.get_table_names():
            return
        if "axis" in {c["name"] for c in inspector.get_columns("annotations")}:
            return
        conn.execute(text("CREATE TABLE annotations_by_z AS SELECT * FROM annotations"))
        conn.execute(text("DROP TABLE annotations"))
        Base.metadata.tables["annotations"].create(conn)
        conn.execute(text("INSERT INTO annotations (job_id, z, axis, labeled_voxels, \"values\", updated_at) "
                          "SELECT job_id, z, 'z', labeled_voxels, \"values\", updated_at FROM annotations_by_z"))
        conn.execute(text("DROP TABLE annotations_by_z"))
