"""Headers and streaming for the files medical tools open: NIfTI-1 (``.nii.gz``, nibabel's
header) and 3D Slicer segmentations (``.seg.nrrd``, formatted with pynrrd's field formatters).

Why a volume never has to be held whole: both formats store voxels with x varying fastest, then
y, then z, which is exactly the memory order of a C-ordered (z, y, x) array. So the header is
built from the shape alone and the voxels follow slab by slab in z, straight from the OME-Zarr
through one gzip stream (:func:`iter_gzip`): memory holds one slab whatever the volume's size.

Geometry, the same in both files so that a segmentation and its volume overlay in Slicer (and
in any tool between NIfTI and NRRD): voxel index i is x, j is y, k is z (the slice index, the
scan axis); in ITK/Slicer's LPS world the index axes are the identity, which NIfTI (RAS) writes
as the affine ``diag(-vx, -vy, vz)``. Units: Slicer reads NRRD spacing as millimetres, so the
NRRD is written in mm; NIfTI names its unit (``xyzt_units``), so it keeps the volume's unit when
NIfTI has a code for it (m, mm, micron) and is converted to the nearest one that does otherwise.
"""

from __future__ import annotations

import colorsys
import struct
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping, Sequence

import nibabel as nib
import nrrd
import numpy as np

from ml4paleo.compute.display import hex_to_rgb
from ml4paleo.enums import DEFAULT_CLASSES
from ml4paleo.errors import InputError
from ml4paleo.units import convert_lengths

__all__ = ["Segment", "iter_gzip", "nifti_header", "nifti_spacing", "seg_nrrd_header", "segments_for"]

_NIFTI_UNITS = {"meter": "meter", "millimeter": "mm", "micrometer": "micron"}
"""Our units that NIfTI-1 can name (nibabel's spelling)."""
_NIFTI_NEAREST = {"centimeter": "millimeter", "nanometer": "micrometer", "angstrom": "micrometer"}
"""Where NIfTI has no code for a unit, the nearest one it has."""
_NRRD_TYPES = {"u1": "uint8", "i1": "int8", "u2": "uint16", "i2": "int16", "u4": "uint32", "i4": "int32"}
"""Label types of a Slicer segmentation (NRRD's names)."""
_NIFTI_MAX_DIM = 32767
"""NIfTI-1 stores each dimension as a 16-bit signed integer."""
_GZIP_LEVEL = 1
"""Fastest deflate: label maps shrink ~100x even at level 1, and exports are CPU-bound."""
_GZIP_BLOCK = 1 << 20
"""Bytes deflated per task (1 MiB): memory holds about ``2 x (threads + 1)`` of them (input and
output), beside the slab being read."""
_WINDOW = 1 << 15
"""Deflate's window: each block is primed with this much of the data before it."""


def nifti_spacing(voxel_size: Sequence[float], unit: str) -> tuple[tuple[float, float, float], str]:
    """Voxel size (x, y, z) and the nibabel unit name a NIfTI file carries for ``voxel_size``
    (z, y, x) in ``unit`` (an NGFF name)."""
    target = _NIFTI_NEAREST.get(unit, unit)
    if target not in _NIFTI_UNITS:
        raise InputError(f"cannot express the unit {unit!r} in NIfTI")
    vz, vy, vx = convert_lengths(tuple(voxel_size), unit, target)
    return (vx, vy, vz), _NIFTI_UNITS[target]


def nifti_header(shape: Sequence[int], dtype: np.dtype, voxel_size: Sequence[float], unit: str, *,
                 labels: bool = False) -> bytes:
    """The 352 bytes that start a single-file NIfTI-1 of a (z, y, x) volume (header, empty
    extension block); the little-endian voxels in C order follow at once. ``labels``: the
    voxels are class indices (intent ``label``, so viewers colour them instead of windowing)."""
    nz, ny, nx = (int(n) for n in shape)
    if max(nz, ny, nx) > _NIFTI_MAX_DIM:
        raise InputError(f"NIfTI-1 holds at most {_NIFTI_MAX_DIM} voxels along an axis; the volume is "
                         f"{nz} x {ny} x {nx} (export it as tiff or zarr-zip)")
    (sx, sy, sz), nifti_unit = nifti_spacing(voxel_size, unit)
    header = nib.Nifti1Header()
    header.set_data_dtype(np.dtype(dtype).newbyteorder("<"))
    header.set_data_shape((nx, ny, nz))
    affine = np.diag([-sx, -sy, sz, 1.0])
    header.set_qform(affine, code="scanner")
    header.set_sform(affine, code="scanner")
    header.set_zooms((sx, sy, sz))
    header.set_xyzt_units(xyz=nifti_unit)
    header["descrip"] = b"ml4paleo"
    if labels:
        header.set_intent("label")
    out = _Buffer()
    header.write_to(out)
    return out.value()


class _Buffer:
    """Collects what nibabel writes (it needs only ``write`` and, for checks, ``tell``)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._n = 0

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        self._n += len(data)
        return len(data)

    def tell(self) -> int:
        return self._n

    def value(self) -> bytes:
        return b"".join(self._parts)


@dataclass(frozen=True)
class Segment:
    """One segment of a Slicer segmentation: the voxels equal to ``label``."""

    label: int
    name: str
    color: str
    """``#rrggbb``."""
    extent: tuple[int, int, int, int, int, int] | None
    """Inclusive voxel bounds ``(x0, x1, y0, y1, z0, z1)``; None when the label is absent."""


def _fallback_color(value: int) -> str:
    """A distinct colour for a class without one: hues a golden angle apart by class value."""
    r, g, b = colorsys.hsv_to_rgb((value * 0.618034) % 1.0, 0.65, 0.95)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def segments_for(classes: Sequence[Mapping[str, Any]] | None, names: Sequence[str],
                 extents: Mapping[int, tuple[int, int, int, int, int, int]]) -> list[Segment]:
    """The segments of a label map: one per structure class (label = class value - 1; label 0,
    the background, is not a segment in Slicer) and one per other label found in the voxels.

    ``classes`` are the job's ``{value, name, color}``; without them the class ``names`` by
    label (a segmentation's own record) and the default classes' colours are used.
    """
    by_label: dict[int, tuple[str, str]] = {}
    default_colors = {c["value"]: c["color"] for c in DEFAULT_CLASSES}
    if classes:
        for c in classes:
            value = int(c["value"])
            by_label[value - 1] = (str(c["name"]), str(c.get("color") or _fallback_color(value)))
    else:
        for label, name in enumerate(names):
            by_label[label] = (str(name), default_colors.get(label + 1) or _fallback_color(label + 1))
    labels = sorted((set(by_label) | set(extents)) - {0})
    return [Segment(label, *by_label.get(label, (f"label {label}", _fallback_color(label + 1))), extents.get(label))
            for label in labels]


def seg_nrrd_header(shape: Sequence[int], dtype: np.dtype, voxel_size: Sequence[float], unit: str,
                    segments: Sequence[Segment]) -> bytes:
    """The text header of a 3D Slicer segmentation (one layer, gzip-encoded label map) of a
    (z, y, x) volume; the gzip stream of the C-ordered voxels follows at once.

    Keys as Slicer writes them (``Segment{i}_ID/_Name/_Color/_ColorAutoGenerated/_Extent/
    _LabelValue/_Layer/_NameAutoGenerated``); spacing in millimetres (module docstring)."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "ui" or dtype.str[1:] not in _NRRD_TYPES:
        raise InputError(f"a Slicer segmentation holds integer labels; got {dtype}")
    nz, ny, nx = (int(n) for n in shape)
    vz, vy, vx = convert_lengths(tuple(voxel_size), unit, "millimeter")
    fields: list[tuple[str, str]] = [
        ("type", _NRRD_TYPES[dtype.str[1:]]),
        ("dimension", "3"),
        ("space", "left-posterior-superior"),
        ("sizes", nrrd.format_number_list([nx, ny, nz])),
        ("space directions", nrrd.format_optional_matrix(np.diag([vx, vy, vz]))),
        ("kinds", "domain domain domain"),
        *([("endian", "little")] if dtype.itemsize > 1 else []),
        ("encoding", "gzip"),
        ("space units", '"mm" "mm" "mm"'),
        ("space origin", nrrd.format_vector(np.zeros(3))),
    ]
    custom: list[tuple[str, str]] = [
        ("Segmentation_MasterRepresentation", "Binary labelmap"),
        ("Segmentation_ContainedRepresentationNames", "Binary labelmap|"),
        ("Segmentation_ReferenceImageExtentOffset", "0 0 0"),
    ]
    for i, seg in enumerate(segments):
        rgb = " ".join(nrrd.format_number(v / 255.0) for v in hex_to_rgb(seg.color))
        extent = seg.extent if seg.extent is not None else (0, -1, 0, -1, 0, -1)
        custom += [
            (f"Segment{i}_ID", f"Segment_{seg.label}"),
            (f"Segment{i}_Name", _one_line(seg.name)),
            (f"Segment{i}_NameAutoGenerated", "0"),
            (f"Segment{i}_Color", rgb),
            (f"Segment{i}_ColorAutoGenerated", "0"),
            (f"Segment{i}_Extent", nrrd.format_number_list(list(extent))),
            (f"Segment{i}_LabelValue", str(seg.label)),
            (f"Segment{i}_Layer", "0"),
        ]
    lines = ["NRRD0004", "# 3D Slicer segmentation written by ml4paleo"]
    lines += [f"{k}: {v}" for k, v in fields] + [f"{k}:={v}" for k, v in custom]
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def _one_line(text: str) -> str:
    """A header value must stay on its line (a class name is free text)."""
    return " ".join(text.split())


def _deflate(block: bytes, zdict: bytes, level: int) -> bytes:
    """One block as raw deflate ending on a byte boundary (sync flush), primed with the 32 KiB
    before it: concatenated in order, the blocks are one deflate stream."""
    c = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, **({"zdict": zdict} if zdict else {}))
    return c.compress(block) + c.flush(zlib.Z_SYNC_FLUSH)


def _blocks(pieces: Iterable[bytes | np.ndarray], size: int) -> Iterator[bytes]:
    """``pieces`` (arrays as their C-ordered bytes) cut and joined into blocks of ``size`` bytes."""
    pending = bytearray()
    for piece in pieces:
        data = memoryview(np.ascontiguousarray(piece)).cast("B") if isinstance(piece, np.ndarray) else memoryview(piece)
        for start in range(0, len(data), size):
            pending += data[start : start + size]
            if len(pending) >= size:
                yield bytes(pending[:size])
                del pending[:size]
    if pending:
        yield bytes(pending)


def iter_gzip(pieces: Iterable[bytes | np.ndarray], *, level: int = _GZIP_LEVEL, threads: int = 1) -> Iterator[bytes]:
    """One gzip member of ``pieces`` in order (arrays as their C-ordered bytes), compressed as
    they come: an HTTP response or a file takes each compressed block while memory holds a few.

    Deflate is the bottleneck of these exports (one core: a few tens of MB/s on scanner noise),
    so blocks of ``_GZIP_BLOCK`` bytes are compressed on ``threads`` threads (zlib releases the
    GIL) the way pigz does: each primed with the 32 KiB before it and ended by a sync flush,
    then an empty final block, CRC-32 and length. The bytes do not depend on ``threads``."""
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, no mtime (reproducible), OS unknown
    yield header
    crc, length, window = 0, 0, b""
    in_flight: deque[Future[bytes]] = deque()
    with ThreadPoolExecutor(max(1, threads)) as pool:
        for block in _blocks(pieces, _GZIP_BLOCK):
            crc, length = zlib.crc32(block, crc), length + len(block)
            in_flight.append(pool.submit(_deflate, block, window, level))
            window = block[-_WINDOW:]
            while len(in_flight) > max(1, threads) or (in_flight and in_flight[0].done()):
                yield in_flight.popleft().result()
        while in_flight:
            yield in_flight.popleft().result()
    yield zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS).flush(zlib.Z_FINISH)  # the empty final block
    yield struct.pack("<II", crc & 0xFFFFFFFF, length & 0xFFFFFFFF)
