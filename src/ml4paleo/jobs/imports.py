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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml4paleo.errors import ArtifactNotFound, Forbidden, InputError
from ml4paleo.io.omezarr_existing import check_existing, is_ome_zarr
from ml4paleo.jobs.store import JobStore
from ml4paleo.settings import Settings

__all__ = ["IMPORT_RECORD", "SOURCE_TYPES", "ImportRoots", "import_roots", "list_folder", "register_scan", "resolve_under_roots",
           "scan_kind"]

MAX_PATH = 4096
"""Longest path text taken from a request."""
MAX_WALK = 2_000_000
"""Entries walked to check a registered folder's links (an OME-Zarr of 2048^3 in 64^3 chunks holds
~37 k chunk files over its levels)."""
MAX_ENTRIES = 2000
"""Entries of one folder listed by the picker (a folder of slices may hold tens of thousands)."""
IMPORT_RECORD = "import.json"
"""In the job folder: where the scan was registered from (``{"source", "kind", "in_place"}``)."""
SOURCE_TYPES = {"ome-zarr": "registered-ome-zarr", "slices": "registered-slices"}
"""The job's ``source_type`` for each kind of registered scan."""


@dataclass(frozen=True)
class ImportRoots:
    """Where registration may reach: inside ``roots``, never inside ``hidden`` (the server's own data
    folder, should an admin name a root above it: other jobs' scans and the database live there)."""

    roots: tuple[Path, ...]
    hidden: tuple[Path, ...] = ()

    def reaches(self, resolved: Path) -> bool:
        """Whether the resolved path lies inside a root and outside every hidden folder."""
        inside = any(resolved == root or resolved.is_relative_to(root) for root in self.roots)
        return inside and not any(resolved == h or resolved.is_relative_to(h) for h in self.hidden)


def import_roots(settings: Settings) -> ImportRoots:
    """The configured roots that exist, resolved (a root that is a link counts as where it points),
    with the data folder hidden."""
    roots: list[Path] = []
    for root in settings.import_root_paths:
        resolved = root.expanduser().resolve()
        if resolved.is_dir() and resolved not in roots:
            roots.append(resolved)
    return ImportRoots(tuple(roots), (Path(settings.data).resolve(),))


def _outside(text: str) -> Forbidden:
    return Forbidden(f"{text[:200]!r} is not inside an import root (ML4PALEO_IMPORT_ROOTS)")


def resolve_under_roots(roots: ImportRoots, text: Any) -> Path:
    """``text`` (an absolute path) resolved, if ``roots`` reach it: else Forbidden (403) for anything
    outside, whether it exists or not, and ArtifactNotFound (404) for a path inside a root that
    does not exist."""
    if not roots.roots:
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
    if not roots.reaches(resolved):
        raise _outside(text)
    if not resolved.exists():
        raise ArtifactNotFound(f"nothing at {text[:200]!r}")
    return resolved


def check_links_inside(roots: ImportRoots, source: Path) -> None:
    """Forbidden (403) if a link anywhere under ``source`` leads out of the roots: a slice or a
    chunk file that is a link to another study would be read as part of this scan."""
    if not source.is_dir():
        return
    pending, seen, walked = [source], {source}, 0
    while pending:
        with os.scandir(pending.pop()) as found:
            for item in found:
                walked += 1
                if walked > MAX_WALK:
                    raise InputError(f"{source.name} holds more than {MAX_WALK} files and folders: register "
                                     "the folder of the scan itself")
                if item.is_symlink():
                    try:
                        target = Path(item.path).resolve()
                    except (OSError, RuntimeError):
                        raise _outside(item.path) from None
                    if not roots.reaches(target):
                        raise Forbidden(f"{item.name!r} in {source.name} is a link that leads out of the import "
                                        "roots: it cannot be registered")
                    if target.is_dir() and target not in seen:
                        seen.add(target)
                        pending.append(target)
                elif item.is_dir(follow_symlinks=False):
                    pending.append(Path(item.path))


def scan_kind(path: Path) -> str:
    """``ome-zarr`` (read in place) or ``slices`` (converted from where it lies)."""
    return "ome-zarr" if is_ome_zarr(path) else "slices"


def _entry(path: Path, roots: ImportRoots) -> dict[str, Any] | None:
    """One listed entry; None for hidden names, links leading out of the roots, the data folder."""
    if path.name.startswith("."):
        return None
    try:
        resolved = path.resolve()
        if not roots.reaches(resolved):
            return None
        is_dir = resolved.is_dir()
        size = None if is_dir else resolved.stat().st_size
    except (OSError, RuntimeError):
        return None
    kind = ("ome-zarr" if is_ome_zarr(resolved) else "folder") if is_dir else "file"
    return {"name": path.name, "path": str(path), "kind": kind, "size": size}


def list_folder(roots: ImportRoots, text: str | None) -> dict[str, Any]:
    """What the folder picker shows: without ``text`` the roots; else the folder's sub-folders and
    files (an OME-Zarr as one entry, hidden names and links out of the roots left out), folders
    first, at most :data:`MAX_ENTRIES`, with its ``parent`` (None at a root)."""
    if not text:
        if not roots.roots:
            raise Forbidden("no import root is configured (ML4PALEO_IMPORT_ROOTS): scans can only be uploaded")
        return {"path": None, "parent": None, "roots": [str(r) for r in roots.roots],
                "entries": [{"name": str(r), "path": str(r), "kind": "folder", "size": None} for r in roots.roots],
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
    at_root = folder in roots.roots
    return {"path": str(folder), "parent": None if at_root else str(folder.parent),
            "roots": [str(r) for r in roots.roots],
            "kind": scan_kind(folder), "entries": entries, "truncated": truncated}


def register_scan(store: JobStore, settings: Settings, path: Any, name: str | None = None, *,
                  voxel_size: Any = None, unit: Any = None, owner_id: int | None = None) -> dict[str, Any]:
    """A new job for the scan at ``path`` (under an import root), its conversion queued: an
    OME-Zarr is checked here (InputError naming what does not fit) and read in place, anything
    else is converted from where it lies. Returns the job document."""
    roots = import_roots(settings)
    source = resolve_under_roots(roots, path)
    check_links_inside(roots, source)
    name = name or source.name.split(".")[0] or source.name  # the folder picked, not its image group
    kind = scan_kind(source)
    if kind == "ome-zarr":
        existing = check_existing(source)
        if voxel_size is not None or unit is not None:
            raise InputError("an OME-Zarr is read in place with the voxel size of its metadata: "
                             "leave voxel_size and unit out")
        source = existing.path
    job = store.jobs.create_job(name, voxel_size=voxel_size, unit=unit,
                           source_type=SOURCE_TYPES[kind], owner_id=owner_id)
    job_paths = store.paths(job["job_id"])
    job_paths.root.mkdir(parents=True, exist_ok=True)
    record = {"source": str(source), "kind": kind, "in_place": kind == "ome-zarr"}
    (job_paths.root / IMPORT_RECORD).write_text(json.dumps(record))
    return store.uploads.queue_import(job["job_id"], record)


def checked_source(settings: Settings, params: dict[str, Any]) -> tuple[Path, bool]:
    """The source of a registered scan's conversion task (``params`` as queued), checked again
    against the roots as they are now (a root removed since, or a link changed since, ends it)."""
    roots = import_roots(settings)
    source = resolve_under_roots(roots, params.get("source"))
    check_links_inside(roots, source)
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
