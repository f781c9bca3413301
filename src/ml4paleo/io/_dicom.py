"""A DICOM series (one file per slice, or one multi-frame file) as a (z, y, x) volume.

Headers of every file are read first (no pixels) to group files by series, order slices by
their position along the slice normal (ImagePositionPatient . (row x column cosines)), with
InstanceNumber as fallback, and to pick the output dtype before any pixel is read: stored
values with RescaleSlope/Intercept applied, kept integer (int16/uint16) when every slope and
intercept is an integer and the whole stored range fits, float32 otherwise. Voxel size comes
from PixelSpacing (y, x) and the median distance between slice positions (z), in millimetres.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pydicom
import pydicom.pixels

from ml4paleo.errors import InputError, Ml4PaleoError, UnsupportedFileError
from ml4paleo.io._base import VolumeReader, to_gray
from ml4paleo.io._sources import Entry, describe


@dataclass
class _Header:
    entry: Entry
    series: str
    description: str
    rows: int
    cols: int
    frames: int
    samples: int
    bits: int
    signed: bool
    slope: float
    intercept: float
    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    instance: int | None
    spacing: tuple[float, float] | None
    thickness: float | None


def _float_list(value, n: int) -> tuple[float, ...] | None:
    try:
        vals = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return vals if len(vals) == n and all(np.isfinite(vals)) else None


def _first(ds, *keywords):
    """First keyword present at top level or in the shared functional groups (enhanced CT/MR)."""
    for kw in keywords:
        if kw in ds and ds[kw].value not in (None, ""):
            return ds[kw].value
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        for group in shared[0]:
            if group.VR == "SQ" and group.value:
                for kw in keywords:
                    item = group.value[0]
                    if kw in item and item[kw].value not in (None, ""):
                        return item[kw].value
    return None


def _check_pixel_bytes(entry: Entry, ds) -> None:
    """Fail before any conversion when an uncompressed file is shorter than its pixels."""
    syntax = getattr(ds.get("file_meta"), "TransferSyntaxUID", None)
    if syntax is None or syntax.is_compressed:
        return
    try:
        need = int(ds.Rows) * int(ds.Columns) * int(ds.get("NumberOfFrames", 1) or 1)
        need *= int(ds.get("SamplesPerPixel", 1) or 1) * int(ds.get("BitsAllocated", 16) or 16) // 8
    except (TypeError, ValueError):
        return
    if entry.size < need:
        raise UnsupportedFileError(
            f"{entry.name}: truncated DICOM ({entry.size} bytes, but its {ds.Rows}x{ds.Columns} pixels need {need})"
        )


def read_header(entry: Entry) -> _Header | None:
    """Header of one DICOM file, None if it holds no image (DICOMDIR, structured report...)."""
    try:
        with entry.open() as fh:
            ds = pydicom.dcmread(fh, stop_before_pixels=True, force=True)
    except Exception as exc:
        raise UnsupportedFileError(f"{entry.name}: corrupt or truncated DICOM ({exc})") from exc
    if "Rows" not in ds or "Columns" not in ds:
        sop = ds.get("SOPClassUID") or getattr(ds.get("file_meta"), "MediaStorageSOPClassUID", None)
        if sop is not None and "Image" not in getattr(sop, "name", "Image"):
            return None  # DICOMDIR, structured report, presentation state...: not a slice
        raise UnsupportedFileError(f"{entry.name}: corrupt or truncated DICOM (no image size in its header)")
    _check_pixel_bytes(entry, ds)
    try:
        instance = int(ds.InstanceNumber) if ds.get("InstanceNumber") not in (None, "") else None
    except (TypeError, ValueError):
        instance = None
    spacing = _first(ds, "PixelSpacing", "ImagerPixelSpacing")
    thickness = _first(ds, "SpacingBetweenSlices", "SliceThickness")
    try:
        return _Header(
            entry=entry,
            series=str(ds.get("SeriesInstanceUID", "") or "(no SeriesInstanceUID)"),
            description=str(ds.get("SeriesDescription", "") or ""),
            rows=int(ds.Rows),
            cols=int(ds.Columns),
            frames=int(ds.get("NumberOfFrames", 1) or 1),
            samples=int(ds.get("SamplesPerPixel", 1) or 1),
            bits=int(ds.get("BitsStored", ds.get("BitsAllocated", 16)) or 16),
            signed=int(ds.get("PixelRepresentation", 0) or 0) == 1,
            slope=float(_first(ds, "RescaleSlope") or 1.0),
            intercept=float(_first(ds, "RescaleIntercept") or 0.0),
            position=_float_list(ds.get("ImagePositionPatient"), 3),  # type: ignore[arg-type]
            orientation=_float_list(ds.get("ImageOrientationPatient"), 6),
            instance=instance,
            spacing=_float_list(spacing, 2),  # type: ignore[arg-type]
            thickness=float(thickness) if thickness not in (None, "") else None,
        )
    except (TypeError, ValueError) as exc:
        raise UnsupportedFileError(f"{entry.name}: unreadable DICOM header ({exc})") from exc


_INTEGER_DTYPES = (np.uint8, np.int8, np.uint16, np.int16)


def _narrowest(lo: float, hi: float) -> np.dtype | None:
    for dt in _INTEGER_DTYPES:
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return np.dtype(dt)
    return None


def _output_dtype(headers: list[_Header]) -> np.dtype | None:
    """Narrowest of uint8/int8/uint16/int16 that holds every rescaled value the stored bits
    allow; float32 when a slope or intercept is fractional; None when integral but the header
    range is too wide to decide (the caller then looks at the actual values)."""
    lo = hi = 0.0
    for i, h in enumerate(headers):
        if not (float(h.slope).is_integer() and float(h.intercept).is_integer()):
            return np.dtype(np.float32)
        smin, smax = (-(2 ** (h.bits - 1)), 2 ** (h.bits - 1) - 1) if h.signed else (0, 2**h.bits - 1)
        a, b = sorted((smin * h.slope + h.intercept, smax * h.slope + h.intercept))
        lo, hi = (a, b) if i == 0 else (min(lo, a), max(hi, b))
    return _narrowest(lo, hi)


def _pick_series(headers: list[_Header], warnings: list[str]) -> list[_Header]:
    groups: dict[str, list[_Header]] = defaultdict(list)
    for h in headers:
        groups[h.series].append(h)
    if len(groups) == 1:
        return headers

    def label(uid: str) -> str:
        g = groups[uid]
        desc = f" {g[0].description!r}" if g[0].description else ""
        return f"{uid}{desc} ({sum(h.frames for h in g)} slices, e.g. {g[0].entry.name})"

    ranked = sorted(groups, key=lambda uid: -sum(h.frames for h in groups[uid]))
    sizes = [sum(h.frames for h in groups[uid]) for uid in ranked]
    if sizes[0] == sizes[1]:
        raise InputError(
            "the upload holds several DICOM series of the same size; upload one series only: "
            + "; ".join(label(uid) for uid in ranked)
        )
    warnings.append(
        f"the upload holds {len(groups)} DICOM series; converted the largest, {label(ranked[0])}; ignored: "
        + "; ".join(label(uid) for uid in ranked[1:])
    )
    return groups[ranked[0]]


def _order(headers: list[_Header], warnings: list[str]) -> tuple[list[_Header], float | None]:
    """Slices sorted along the normal, and the z spacing (median step) if positions are known."""
    if len(headers) == 1:
        return headers, None
    if all(h.position and h.orientation for h in headers):
        o = np.asarray(headers[0].orientation)
        normal = np.cross(o[:3], o[3:])
        pos = np.array([np.dot(h.position, normal) for h in headers])
        order = np.argsort(pos, kind="stable")
        steps = np.diff(pos[order])
        dup = np.flatnonzero(np.abs(steps) < 1e-4)
        if dup.size:
            a, b = headers[order[dup[0]]], headers[order[dup[0] + 1]]
            raise InputError(
                f"{a.entry.name} and {b.entry.name} are at the same slice position "
                f"({pos[order[dup[0]]]:.4g}); a series must have one slice per position "
                "(time series or multi-echo scans are not supported)"
            )
        dz = float(np.median(steps))
        if steps.max() - steps.min() > 0.01 * dz + 1e-6:
            warnings.append(
                f"DICOM slice spacing is uneven ({steps.min():.4g} to {steps.max():.4g} mm); the median {dz:.4g} mm is used"
            )
        return [headers[i] for i in order], dz
    if all(h.instance is not None for h in headers):
        ordered = sorted(headers, key=lambda h: h.instance)  # type: ignore[arg-type, return-value]
        for a, b in zip(ordered, ordered[1:]):
            if a.instance == b.instance:
                raise InputError(f"{a.entry.name} and {b.entry.name} have the same InstanceNumber {a.instance}")
        warnings.append("DICOM files have no ImagePositionPatient; slices ordered by InstanceNumber")
        return ordered, None
    warnings.append("DICOM files have neither ImagePositionPatient nor InstanceNumber; slices kept in file-name order")
    return headers, None


class DicomSeriesReader(VolumeReader):
    """The largest DICOM series among ``entries``, slices ordered along the normal."""

    def __init__(self, entries: list[Entry]) -> None:
        super().__init__()
        try:
            self._setup(entries)
        except BaseException:
            self.close()
            raise

    def _setup(self, entries: list[Entry]) -> None:
        headers = self._map(lambda i: read_header(entries[i]), range(len(entries)))
        skipped = [e for e, h in zip(entries, headers) if h is None]
        if skipped:
            self.warnings.append(f"skipped DICOM files without an image: {describe(skipped)}")
        images = [h for h in headers if h is not None]
        if not images:
            raise InputError(f"no DICOM file holds an image ({describe(entries)})")
        images = _pick_series(images, self.warnings)
        if any(h.frames > 1 for h in images) and len(images) > 1:
            multi = next(h for h in images if h.frames > 1)
            raise InputError(
                f"{multi.entry.name}: a multi-frame DICOM among {len(images)} files; upload the multi-frame file alone"
            )
        first = images[0]
        for h in images[1:]:
            if (h.rows, h.cols) != (first.rows, first.cols):
                raise InputError(
                    f"{h.entry.name}: slice size {h.rows}x{h.cols} (y x) differs from {first.entry.name} "
                    f"({first.rows}x{first.cols}); all slices of a series must have the same size"
                )
        self._headers, dz = _order(images, self.warnings)
        self._multiframe = first.frames > 1
        depth = first.frames if self._multiframe else len(images)
        self.shape = (depth, first.rows, first.cols)  # type: ignore[assignment]
        dtype = _output_dtype(self._headers)
        if dtype is None:
            # e.g. 16 stored bits with intercept -1024: the header range misses int16 by a bit;
            # one pass over the pixels finds whether the real values fit (CT usually does)
            self.dtype = np.dtype(np.float32)
            lo, hi = self._value_range()
            dtype = _narrowest(lo, hi) or np.dtype(np.float32)
        self.dtype = dtype
        self.n_files = len(images)
        if first.samples > 1:
            self.warnings.append(f"{first.entry.name} (and any like it): RGB converted to grayscale (luminance)")
        if first.spacing:
            dy, dx = first.spacing
            if dz is None:
                dz = first.thickness
                if dz is None and depth > 1:
                    self.warnings.append("DICOM gives no slice spacing; z spacing set equal to x")
            self.voxel_size = (float(dz or dx), float(dy), float(dx))
            self.voxel_size_source = "dicom"
            self.unit = "millimeter"

    def _slice(self, header: _Header, index: int | None) -> np.ndarray:
        try:
            with header.entry.open() as fh:
                raw = pydicom.pixels.pixel_array(fh, index=index)
        except Ml4PaleoError:
            raise
        except Exception as exc:
            raise UnsupportedFileError(f"{header.entry.name}: cannot decode the DICOM pixel data ({exc})") from exc
        if raw.ndim == 3 and raw.shape[-1] in (3, 4):
            raw, _ = to_gray(raw)
        if raw.shape != self.shape[1:]:
            raise UnsupportedFileError(f"{header.entry.name}: pixel data of shape {raw.shape}, header says {self.shape[1:]}")
        if header.slope == 1.0 and header.intercept == 0.0 and np.can_cast(raw.dtype, self.dtype):
            return raw
        val = raw.astype(np.float64) * header.slope + header.intercept
        if self.dtype.kind in "iu":
            val = np.rint(val)
        return val.astype(self.dtype)

    def _value_range(self) -> tuple[float, float]:
        """Min and max of the rescaled values over the whole series (read one slice at a time)."""

        def one(z: int) -> tuple[float, float]:
            img = self._slice(self._headers[0], z) if self._multiframe else self._slice(self._headers[z], None)
            return float(img.min()), float(img.max())

        ranges = self._map(one, range(self.shape[0]))
        return min(r[0] for r in ranges), max(r[1] for r in ranges)

    def read(self, z0: int, z1: int) -> np.ndarray:
        out = np.empty((z1 - z0, *self.shape[1:]), self.dtype)

        def one(z: int) -> None:
            if self._multiframe:
                out[z - z0] = self._slice(self._headers[0], z)
            else:
                out[z - z0] = self._slice(self._headers[z], None)

        self._map(one, range(z0, z1))
        return out
