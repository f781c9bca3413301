"""Publish outputs atomically: write under a temporary sibling name, rename when complete.

Layer-neutral (standard library and ml4paleo.errors only) so that compute-side code such as
``models`` can use it without importing ``io``. A crash leaves a ``*.partial-*`` sibling, never
an output that looks finished.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from ml4paleo.errors import OutputExistsError


def partial_path(dst: Path) -> Path:
    """Temporary sibling name for an output being written (same folder, so rename is atomic)."""
    return dst.with_name(f"{dst.name}.partial-{uuid.uuid4().hex[:8]}")


def replace_atomically(tmp: Path, dst: Path, overwrite: bool) -> None:
    """Move the finished ``tmp`` (file or folder) onto ``dst``; the old ``dst`` goes only after."""
    if dst.exists():
        if not overwrite:
            raise OutputExistsError(f"{dst} already exists (pass overwrite to replace it)")
        trash = dst.with_name(f"{dst.name}.old-{uuid.uuid4().hex[:8]}")
        dst.rename(trash)
        tmp.rename(dst)
        if trash.is_dir():
            shutil.rmtree(trash, ignore_errors=True)
        else:
            trash.unlink(missing_ok=True)
    else:
        tmp.rename(dst)


def write_atomically(path: Path, data: str | bytes) -> None:
    """Write a small file whole under a temporary name and rename it over ``path``: a reader sees
    the old file or the new one, never a half-written one; a failed write leaves nothing."""
    tmp = partial_path(path)
    try:
        if isinstance(data, str):
            tmp.write_text(data)
        else:
            tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
