"""List the files of an upload (a folder tree, one file, or a .zip) as uniform entries.

An :class:`Entry` is one file that can be read as bytes or opened as a file, whether it lies on
disk or inside a zip archive; readers never care which. Zip members are read one at a time
from the archive (no extraction of the whole archive), each thread with its own handle.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from ml4paleo.errors import UnsafeArchiveError, UnsupportedFileError
from ml4paleo.io._sniff import HEAD_BYTES, is_hidden_or_system, natural_key


class Archive:
    """A zip file opened once per thread (``ZipFile`` objects are not safe to share)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        try:
            with zipfile.ZipFile(path) as zf:
                self.infos = [i for i in zf.infolist() if not i.is_dir()]
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise UnsupportedFileError(f"{path.name}: not a readable zip archive ({exc})") from exc
        for info in self.infos:
            _check_member_name(path, info)

    def zip(self) -> zipfile.ZipFile:
        zf = getattr(self._local, "zf", None)
        if zf is None:
            zf = self._local.zf = zipfile.ZipFile(self.path)
        return zf


def _check_member_name(archive: Path, info: zipfile.ZipInfo) -> None:
    name = info.filename.replace("\\", "/")
    parts = PurePosixPath(name).parts
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in parts:
        raise UnsafeArchiveError(
            f"{archive.name}: entry {info.filename!r} points outside the archive (path traversal); refusing to read it"
        )
    if info.flag_bits & 0x1:
        raise UnsafeArchiveError(f"{archive.name}: entry {info.filename!r} is encrypted; upload an unencrypted zip")


@dataclass
class Entry:
    """One input file: on disk (``path``) or a member of ``archive`` (``member``)."""

    name: str
    """Path relative to the upload root (or ``archive.zip/inner/path``), shown in messages."""
    size: int
    path: Path | None = None
    archive: Archive | None = None
    member: str | None = None
    kind: str | None = field(default=None, compare=False)
    first_bytes: bytes = field(default=b"", compare=False, repr=False)

    def read_bytes(self) -> bytes:
        try:
            if self.path is not None:
                return self.path.read_bytes()
            return self.archive.zip().read(self.member)  # type: ignore[union-attr]
        except (OSError, zipfile.BadZipFile, EOFError) as exc:
            raise UnsupportedFileError(f"{self.name}: cannot be read ({exc})") from exc

    def head(self, n: int = HEAD_BYTES) -> bytes:
        try:
            if self.path is not None:
                with open(self.path, "rb") as fh:
                    return fh.read(n)
            with self.archive.zip().open(self.member) as fh:  # type: ignore[union-attr]
                return fh.read(n)
        except (OSError, zipfile.BadZipFile, EOFError) as exc:
            raise UnsupportedFileError(f"{self.name}: cannot be read ({exc})") from exc

    def open(self) -> BinaryIO:
        """A seekable binary file: the file itself, or the member's bytes in memory (one slice)."""
        if self.path is not None:
            return open(self.path, "rb")
        return io.BytesIO(self.read_bytes())

    @property
    def on_disk(self) -> bool:
        return self.path is not None


def list_folder(root: Path) -> list[Entry]:
    """Every regular file under ``root`` (recursively), names relative to it, natural order."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for fname in filenames:
            p = Path(dirpath) / fname
            if not p.is_file():
                continue
            rel = p.relative_to(root).as_posix()
            entries.append(Entry(name=rel, size=p.stat().st_size, path=p))
    entries.sort(key=lambda e: natural_key(e.name))
    return entries


def list_archive(archive: Archive) -> list[Entry]:
    """The archive's members as entries (``zipname/member``), natural order."""
    entries = [
        Entry(name=f"{archive.path.name}/{i.filename}", size=i.file_size, archive=archive, member=i.filename)
        for i in archive.infos
    ]
    entries.sort(key=lambda e: natural_key(e.name))
    return entries


def split_junk(entries: list[Entry]) -> tuple[list[Entry], list[Entry]]:
    """(candidates, skipped system files such as ``__MACOSX/``, ``.DS_Store``, ``Thumbs.db``)."""
    keep, junk = [], []
    for e in entries:
        (junk if is_hidden_or_system(e.member or e.name) else keep).append(e)
    return keep, junk


class Scratch:
    """A private temporary folder for the one case that needs a real file: a multi-page TIFF
    inside a zip (tifffile seeks all over it). Removed on :meth:`close`."""

    def __init__(self, parent: Path | None) -> None:
        self.parent = parent
        self._dir: Path | None = None

    def extract(self, entry: Entry) -> Path:
        if entry.path is not None:
            return entry.path
        if self._dir is None:
            if self.parent is not None:
                self.parent.mkdir(parents=True, exist_ok=True)
            self._dir = Path(tempfile.mkdtemp(prefix=".ml4paleo-unzip-", dir=self.parent))
        out = self._dir / PurePosixPath(entry.member or "member").name
        try:
            with entry.archive.zip().open(entry.member) as src, open(out, "wb") as dst:  # type: ignore[union-attr]
                shutil.copyfileobj(src, dst, 4 << 20)
        except (OSError, zipfile.BadZipFile, EOFError) as exc:
            raise UnsupportedFileError(f"{entry.name}: cannot be extracted ({exc})") from exc
        return out

    def close(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def describe(entries: list[Entry], limit: int = 5) -> str:
    """``a.txt, b.db and 3 more`` for messages."""
    names = [e.name for e in entries[:limit]]
    more = len(entries) - len(names)
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")
