"""The data folder is the server's alone: it holds unpublished scans, annotations and (in the
SQLite file) password hashes, so other local users of a lab machine must not read it.

Every process that writes it (``ml4paleo serve``, its runners, ``ml4paleo user``) sets the umask
077 first, so whatever the shell's umask, folders are created 0700 and files 0600 (SQLite's own
included). A folder made earlier with looser modes is not changed behind the admin's back:
:func:`exposed` names what others can read, and ``serve`` warns at start with the fix.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ml4paleo.settings import DATABASE_FILE

PRIVATE_UMASK = 0o077


def keep_private() -> None:
    """Files and folders this process creates from now on: owner only."""
    os.umask(PRIVATE_UMASK)


def create_data_folder(data: Path) -> None:
    """The data folder (and its ``jobs/``), created 0700 when missing."""
    for folder in (Path(data), Path(data) / "jobs"):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)


def exposed(data: Path) -> list[str]:
    """``"path (mode 0755)"`` for the data folder, its ``jobs/`` folder and the SQLite files
    when group or others have any permission on them; empty when all are private."""
    data = Path(data)
    found = []
    database = [data / f"{DATABASE_FILE}{suffix}" for suffix in ("", "-wal", "-shm")]
    for path in (data, data / "jobs", *database):
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            found.append(f"{path} (mode {mode:04o})")
    return found


def exposure_warning(data: Path) -> str | None:
    """The start-up warning for :func:`exposed` paths, with the command that fixes them; None if private."""
    paths = exposed(data)
    if not paths:
        return None
    return ("the data folder is readable by other users of this machine: " + ", ".join(paths)
            + f". It holds the scans, the annotations and the password hashes; make it private with: "
            f"chmod -R go-rwx {Path(data).resolve()}")
