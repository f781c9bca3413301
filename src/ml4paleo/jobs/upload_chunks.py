"""Uploaded files written chunk by chunk, each chunk recorded in the store around its write
(begin, write at its byte offset, end), so that a retried or parallel chunk is harmless and a
file never leaves the job's upload folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, BinaryIO

from ml4paleo.errors import InputError
from ml4paleo.jobs.paths import clean_relative
from ml4paleo.jobs.store import JobStore

__all__ = ["receive_chunk"]

COPY_BLOCK = 1 << 20
"""Bytes copied per step from an upload chunk to its file."""


def receive_chunk(store: JobStore, job_id: str, filename: str, stream: BinaryIO, offset: int,
                  total_size: int | None) -> dict[str, Any]:
    """Write one chunk of an uploaded file at its byte offset (in place: a retried chunk
    overwrites itself; chunks of one file may come in any order, e.g. from parallel requests).
    ``total_size`` None means the file ends with this chunk. Returns ``{filename, received,
    total_size, complete}``."""
    rel = clean_relative(filename)
    stream.seek(0, os.SEEK_END)
    length = stream.tell()
    stream.seek(0)
    total = offset + length if total_size is None else total_size
    store.uploads.begin_chunk(job_id, rel.as_posix(), offset, length, total)
    _write_at(store.paths(job_id).upload, rel, filename, stream, offset, total)
    return store.uploads.end_chunk(job_id, rel.as_posix(), offset, offset + length)


def _write_at(root: Path, rel: Path, filename: str, stream: BinaryIO, offset: int, total: int) -> None:
    """Copy ``stream`` into ``root / rel`` from byte ``offset``; the file never grows past
    ``total``, and never leaves ``root`` (no symlink is followed)."""
    target = root / rel
    resolved_root = root.resolve()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.parent.resolve().is_relative_to(resolved_root) or target.is_symlink():
            raise InputError(f"filename {filename!r} is not allowed")
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            position = offset
            while block := stream.read(COPY_BLOCK):
                os.pwrite(fd, block, position)
                position += len(block)
            if os.fstat(fd).st_size > total:
                os.ftruncate(fd, total)
        finally:
            os.close(fd)
    except (IsADirectoryError, NotADirectoryError, FileExistsError) as exc:
        raise InputError(f"filename {filename!r} clashes with another uploaded file or folder") from exc
