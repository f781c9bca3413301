"""Decide what a file is from its first bytes, never from its name.

Scanners and labs name files arbitrarily (DICOM often has no extension, a ``.tif`` may be a
JPEG), so the type comes from magic numbers. The name is used only to decide how loudly to
complain about a file we cannot read: ``notes.txt`` is skipped with a warning, ``s017.tif``
that is not a TIFF is an error.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

HEAD_BYTES = 132
"""Enough for every signature we check: DICOM puts ``DICM`` at byte 128."""

IMAGE_KINDS = ("tiff", "png", "jpeg", "dicom")
"""Kinds we read as slices or volumes; ``zip`` is a container, not an image."""

IMAGE_SUFFIXES = frozenset(
    {".tif", ".tiff", ".btf", ".tf8", ".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".dcm", ".dicom", ".ima", ".zip"}
)
"""Names that promise an image: such a file we cannot read is corrupt, not junk."""

_JUNK_NAMES = frozenset({"thumbs.db", "desktop.ini", "ehthumbs.db"})
_UNSUPPORTED = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000 codestream"),
    (b"\x89HDF\r\n\x1a\n", "HDF5"),
)


def sniff_bytes(head: bytes) -> str | None:
    """Kind of a file from its first :data:`HEAD_BYTES` bytes: ``tiff``, ``png``, ``jpeg``,
    ``dicom``, ``zip`` or None (not something we read)."""
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"  # classic TIFF and BigTIFF, both byte orders
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if _looks_like_bare_dicom(head):
        return "dicom"
    return None


def _looks_like_bare_dicom(head: bytes) -> bool:
    """DICOM written without the 128-byte preamble (older scanners): the data set starts
    directly with a little-endian group 0x0002/0x0008 tag, in explicit (two-letter VR) or
    implicit (4-byte length) form."""
    if len(head) < 8 or head[:2] not in (b"\x02\x00", b"\x08\x00"):
        return False
    if head[4:6].isalpha() and head[4:6].isupper():
        return True
    length = int.from_bytes(head[4:8], "little")
    return head[2:4] in (b"\x00\x00", b"\x05\x00", b"\x08\x00", b"\x16\x00") and length < 1024


def unsupported_format(head: bytes) -> str | None:
    """Name of an image format we recognise but do not read (for a clear error)."""
    for magic, name in _UNSUPPORTED:
        if head.startswith(magic):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head[:2] == b"BM" and len(head) >= 18 and head[14:15] in (b"\x0c", b"(", b"@", b"l", b"|"):
        return "BMP"
    return None


def is_hidden_or_system(rel_path: str) -> bool:
    """Files no user means as a slice: dot-files (incl. macOS ``._x`` forks), anything under
    ``__MACOSX``, Windows thumbnail caches."""
    parts = PurePosixPath(rel_path.replace("\\", "/")).parts
    return any(p.startswith(".") or p == "__MACOSX" for p in parts) or parts[-1].lower() in _JUNK_NAMES


def promises_image(rel_path: str) -> bool:
    """Whether the file name says it is an image (so unreadable content is an error)."""
    return PurePosixPath(rel_path).suffix.lower() in IMAGE_SUFFIXES


_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple:
    """Sort key so that ``s2.tif`` < ``s10.tif`` (digit runs compare as numbers)."""
    return tuple((0, int(tok), "") if tok.isdigit() else (1, 0, tok.lower()) for tok in _DIGITS.split(name) if tok)
