"""Scans registered where they lie: the import roots, the folder picker's listing, registration.

A lab keeps its scans on a shared disk; copying a 16 GiB stack through the browser only to keep
a second copy is waste. The admin names import roots (``ML4PALEO_IMPORT_ROOTS``); a folder or
file under one can become a job: a folder of slices (or a multi-page TIFF, a DICOM series, a
zip) is converted from where it lies, an existing OME-Zarr is read in place (the job's
``volume.ome.zarr`` is a link to it). Nothing is ever written there.

Every path from a request or the command line goes through :func:`resolve_under_roots`: it is
resolved (symlinks followed, ``..`` collapsed) and must then lie inside a root, so a link
pointing out, ``..``, an absolute path elsewhere or an encoded form all end in the same refusal,
which says nothing about what exists outside the roots.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

from ml4paleo.errors import ArtifactNotFound, Forbidden, InputError
from ml4paleo.io.omezarr_existing import check_existing, is_ome_zarr
from ml4paleo.jobs.store import JobStore
from ml4paleo.settings import Settings

__all__ = ["IMPORT_RECORD", "SOURCE_TYPES", "import_roots", "list_folder", "register_scan", "resolve_under_roots",
           "scan_kind"]

MAX_PATH = 4096
"""Longest path text taken from a request."""
MAX_ENTRIES = 2000
"""Entries of one folder listed by the picker (a folder of slices may hold tens of thousands)."""
IMPORT_RECORD = "import.json"
"""In the job folder: where the scan was registered from (``{"source", "kind", "in_place"}``)."""
SOURCE_TYPES = {"ome-zarr": "registered-ome-zarr", "slices": "registered-slices"}
"""The job's ``source_type`` for each kind of registered scan."""


def import_roots(settings: Settings) -> tuple[Path, ...]:
    """The configured roots that exist, resolved (a root that is a link counts as where it points)."""
    roots = []
    for root in settings.import_root_paths:
        resolved = root.expanduser().resolve()
        if resolved.is_dir() and resolved not in roots:
            roots.append(resolved)
    return tuple(roots)


def _outside(text: str) -> Forbidden:
    return Forbidden(f"{text[:200]!r} is not inside an import root (ML4PALEO_IMPORT_ROOTS)")


def resolve_under_roots(roots: Sequence[Path], text: Any) -> Path:
    """``text`` (an absolute path) resolved, if it lies inside one of ``roots``: else Forbidden
    (403) for anything outside, whether it exists or not, and ArtifactNotFound (404) for a path
    inside a root that does not exist."""
    if not roots:
        raise Forbidden("no import root is configured (ML4PALEO_IMPORT_ROOTS): scans can only be uploaded")
    if not isinstance(text, str) or not text.strip():
        raise InputError("path must be the absolute path of a folder or file under an import root")
    if len(text) > MAX_PATH or "\x00" in text:
        raise InputError("path is too long or holds a NUL character")
    if not os.path.isabs(text):
        raise InputError(f"path must be absolute (as the folder listing gives it); got {text[:200]!r}")
    try:
        resolved = Path(text).resolve()
    except (OSError, RuntimeError):  # a symlink loop
        raise _outside(text) from None
    if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
        raise _outside(text)
    if not resolved.exists():
        raise ArtifactNotFound(f"nothing at {text[:200]!r}")
    return resolved


def scan_kind(path: Path) -> str:
    """``ome-zarr`` (read in place) or ``slices`` (converted from where it lies)."""
    return "ome-zarr" if is_ome_zarr(path) else "slices"


def _entry(path: Path, roots: Sequence[Path]) -> dict[str, Any] | None:
    """One listed entry; None for hidden names and links leading out of the roots."""
    if path.name.startswith("."):
        return None
    try:
        resolved = path.resolve()
        if not any(resolved == r or resolved.is_relative_to(r) for r in roots):
            return None
        is_dir = resolved.is_dir()
        size = None if is_dir else resolved.stat().st_size
    except (OSError, RuntimeError):
        return None
    kind = ("ome-zarr" if is_ome_zarr(resolved) else "folder") if is_dir else "file"
    return {"name": path.name, "path": str(path), "kind": kind, "size": size}


def list_folder(roots: Sequence[Path], text: str | None) -> dict[str, Any]:
    """What the folder picker shows: without ``text`` the roots; else the folder's sub-folders and
    files (an OME-Zarr as one entry, hidden names and links out of the roots left out), folders
    first, at most :data:`MAX_ENTRIES`, with its ``parent`` (None at a root)."""
    if not text:
        if not roots:
            raise Forbidden("no import root is configured (ML4PALEO_IMPORT_ROOTS): scans can only be uploaded")
        return {"path": None, "parent": None, "roots": [str(r) for r in roots],
                "entries": [{"name": str(r), "path": str(r), "kind": "folder", "size": None} for r in roots],
                "truncated": False}
    folder = resolve_under_roots(roots, text)
    if not folder.is_dir():
        raise InputError(f"{text[:200]!r} is a file, not a folder")
    entries, truncated = [], False
    with os.scandir(folder) as found:
        for item in sorted(found, key=lambda e: e.name):
            entry = _entry(Path(folder) / item.name, roots)
            if entry is None:
                continue
            if len(entries) >= MAX_ENTRIES:
                truncated = True
                break
            entries.append(entry)
    entries.sort(key=lambda e: (e["kind"] == "file", e["name"].lower()))
    at_root = folder in roots
    return {"path": str(folder), "parent": None if at_root else str(folder.parent), "roots": [str(r) for r in roots],
            "kind": scan_kind(folder), "entries": entries, "truncated": truncated}


def register_scan(store: JobStore, settings: Settings, path: Any, name: str | None = None, *,
                  voxel_size: Any = None, unit: Any = None, owner_id: int | None = None) -> dict[str, Any]:
    """A new job for the scan at ``path`` (under an import root), its conversion queued: an
    OME-Zarr is checked here (InputError naming what does not fit) and read in place, anything
    else is converted from where it lies. Returns the job document."""
    source = resolve_under_roots(import_roots(settings), path)
    name = name or source.name.split(".")[0] or source.name  # the folder picked, not its image group
    kind = scan_kind(source)
    if kind == "ome-zarr":
        existing = check_existing(source)
        if voxel_size is not None or unit is not None:
            raise InputError("an OME-Zarr is read in place with the voxel size of its metadata: "
                             "leave voxel_size and unit out")
        source = existing.path
    job = store.create_job(name, voxel_size=voxel_size, unit=unit,
                           source_type=SOURCE_TYPES[kind], owner_id=owner_id)
    job_paths = store.paths(job["job_id"])
    job_paths.root.mkdir(parents=True, exist_ok=True)
    record = {"source": str(source), "kind": kind, "in_place": kind == "ome-zarr"}
    (job_paths.root / IMPORT_RECORD).write_text(json.dumps(record))
    return store.queue_import(job["job_id"], record)


def checked_source(settings: Settings, params: dict[str, Any]) -> tuple[Path, bool]:
    """The source of a registered scan's conversion task (``params`` as queued), checked again
    against the roots as they are now (a root removed since, or a link changed since, ends it)."""
    source = resolve_under_roots(import_roots(settings), params.get("source"))
    return source, bool(params.get("in_place"))


def link_in_place(volume: Path, source: Path) -> None:
    """Make the job's ``volume`` path a link to the OME-Zarr ``source`` (replacing an older link,
    never a folder): every reader of the job then reads the scan where it lies."""
    if volume.exists() and not volume.is_symlink():
        raise InputError(f"the job already has a volume of its own at {volume.name}")
    tmp = volume.with_name(volume.name + ".link-partial")
    tmp.unlink(missing_ok=True)
    os.symlink(source, tmp, target_is_directory=True)
    os.replace(tmp, volume)


def in_place(volume: Path) -> bool:
    """Whether a job's volume is a registered OME-Zarr read where it lies (never to be written)."""
    return volume.is_symlink()
