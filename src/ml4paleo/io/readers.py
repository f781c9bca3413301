"""Open whatever a scanner or a lab produced as one (z, y, x) volume read slab by slab.

:func:`open_volume` takes a folder (a tree of slices, one multi-page TIFF, a DICOM series,
or one .zip of any of these), a single file, or a .zip, decides what it holds from the files'
content (never their extensions), and returns a :class:`VolumeReader`::

    with open_volume("upload/") as vol:
        vol.shape, vol.dtype, vol.voxel_size, vol.source_kind, vol.warnings
        slab = vol.read(0, 64)          # slices 0..63 only

Files that are clearly not slices (``__MACOSX/``, dot-files, ``Thumbs.db``, ``notes.txt``) are
skipped with a warning; a file that claims to be an image but is not, a truncated image,
slices of different sizes, or a mix of formats is an error naming the file and the reason.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path, PurePosixPath

from ml4paleo.errors import ArtifactNotFound, InputError, UnsafeArchiveError, UnsupportedFileError
from ml4paleo.io._base import VolumeReader
from ml4paleo.io._dicom import DicomSeriesReader
from ml4paleo.io._sniff import natural_key, promises_image, sniff_bytes, unsupported_format
from ml4paleo.io._sources import Archive, Entry, Scratch, describe, list_archive, list_folder, split_junk
from ml4paleo.io._stack import SliceStackReader
from ml4paleo.io._tiff import TiffVolumeReader

__all__ = ["VolumeReader", "open_volume", "sniff", "natural_key", "SOURCE_KINDS"]

SOURCE_KINDS = ("tiff-stack", "png-stack", "jpeg-stack", "tiff-volume", "dicom-series")
"""What :attr:`VolumeReader.source_kind` can be; prefixed ``zip:`` when read from a zip."""

_NAMES = {"tiff": "TIFF", "png": "PNG", "jpeg": "JPEG", "dicom": "DICOM", "zip": "zip"}


def sniff(path: str | Path) -> str | None:
    """Kind of one file by content: ``tiff``, ``png``, ``jpeg``, ``dicom``, ``zip``, or None."""
    with open(path, "rb") as fh:
        return sniff_bytes(fh.read(132))


def _classify(entries: list[Entry], pool_reader: VolumeReader) -> tuple[list[Entry], list[Entry]]:
    """Sniff every entry: (readable entries with ``kind`` set, skipped non-image files).
    A file named like an image that is not one is an error, not a skip."""
    heads = pool_reader._map(lambda i: entries[i].head(), range(len(entries)))
    keep, skipped = [], []
    for entry, head in zip(entries, heads):
        entry.kind, entry.first_bytes = sniff_bytes(head), head
        if entry.kind is not None:
            keep.append(entry)
            continue
        fmt = unsupported_format(head)
        if fmt:
            raise UnsupportedFileError(f"{entry.name}: {fmt} images are not supported (use TIFF, PNG, JPEG or DICOM)")
        if promises_image(entry.member or entry.name):
            reason = "the file is empty" if entry.size == 0 else "its content is not a TIFF, PNG, JPEG, DICOM or zip"
            raise UnsupportedFileError(f"{entry.name}: not a readable image ({reason}); corrupt or mis-named?")
        skipped.append(entry)
    return keep, skipped


def _single_kind(images: list[Entry], where: str) -> str:
    kinds = Counter(e.kind for e in images)
    if len(kinds) > 1:
        parts = [f"{n} {_NAMES[k]} (e.g. {next(e.name for e in images if e.kind == k)})" for k, n in kinds.most_common()]
        raise InputError(f"{where} mixes file types: {', '.join(parts)}; upload one kind of file per scan")
    return next(iter(kinds))


def open_volume(src: str | Path, *, scratch_dir: str | Path | None = None) -> VolumeReader:
    """Open ``src`` (folder, file or .zip) as a slab reader; see the module docstring.

    ``scratch_dir`` is where a multi-page TIFF inside a zip is unpacked (the only input that
    needs a real file); default: the system temporary folder. The reader removes it on close.
    """
    src = Path(src)
    if not src.exists():
        raise ArtifactNotFound(f"{src}: no such file or folder")
    probe = VolumeReader()  # only for its thread pool while sniffing
    scratch = Scratch(Path(scratch_dir) if scratch_dir is not None else None)
    try:
        reader, notes, container = _open(src, probe, scratch)
    except BaseException:
        scratch.close()
        raise
    finally:
        probe.close()
    reader.warnings[:0] = notes
    if container:
        reader.source_kind = f"{container}:{reader.source_kind}"
    reader._on_close.append(scratch.close)
    return reader


def _open(src: Path, probe: VolumeReader, scratch: Scratch) -> tuple[VolumeReader, list[str], str | None]:
    notes: list[str] = []
    where = src.name or str(src)
    if src.is_dir():
        entries = list_folder(src)
        if not entries:
            raise InputError(f"{where}: the folder is empty; upload the slices of a scan")
    else:
        entries = [Entry(name=src.name, size=src.stat().st_size, path=src)]
    entries, junk = split_junk(entries)
    images, skipped = _classify(entries, probe)
    container = None
    zips = [e for e in images if e.kind == "zip"]
    if zips:
        if len(images) > 1:
            others = [e for e in images if e is not zips[0]]
            raise InputError(
                f"{where}: holds the archive {zips[0].name} and also {describe(others)}; "
                "upload either one .zip or the files themselves"
            )
        archive = Archive(zips[0].path)  # type: ignore[arg-type]
        container, where = "zip", zips[0].name
        members, more_junk = split_junk(list_archive(archive))
        junk += more_junk
        images, more_skipped = _classify(members, probe)
        skipped += more_skipped
        nested = [e for e in images if e.kind == "zip"]
        if nested:
            raise UnsafeArchiveError(f"{nested[0].name}: a zip inside the zip; upload one archive with the slices inside")
    if junk:
        notes.append(f"skipped {len(junk)} system file(s): {describe(junk)}")
    if skipped:
        notes.append(f"skipped {len(skipped)} file(s) that are not images: {describe(skipped)}")
    if not images:
        extra = f" (only {describe(skipped + junk)})" if skipped or junk else ""
        raise InputError(f"{where}: no image files found{extra}; expected TIFF, PNG, JPEG or DICOM slices")
    kind = _single_kind(images, where)
    if kind == "dicom":
        # DICOM files often have no extension: a binary one we could not recognise among them
        # is a damaged slice, not a stray file (a README would be text)
        broken = [e for e in skipped if not PurePosixPath(e.name).suffix and b"\x00" in e.first_bytes]
        if broken:
            raise UnsupportedFileError(f"{broken[0].name}: not a readable DICOM file (corrupt or truncated?)")
        reader: VolumeReader = DicomSeriesReader(images)
        reader.source_kind = "dicom-series"
    elif kind == "tiff" and len(images) == 1:
        path = scratch.extract(images[0])
        reader = TiffVolumeReader(path, images[0].name)
        reader.source_kind = "tiff-volume"
        reader.n_files = 1
    else:
        reader = SliceStackReader(images, kind)
        reader.source_kind = f"{kind}-stack"
    return reader, notes, container
