"""A stack of 2D slices, one file per slice (TIFF, PNG or JPEG), read a slab at a time.

Files are decoded on a thread pool (the codecs release the GIL), straight into the slab.
Every slice is checked against the first: a different size or dtype is an error naming the
file, so a stack with one odd slice never converts into a silently wrong volume.
"""

from __future__ import annotations

import threading
from typing import Callable

import imagecodecs
import numpy as np

from ml4paleo.errors import InputError, Ml4PaleoError, UnsupportedFileError
from ml4paleo.io import _tiff
from ml4paleo.io._base import VolumeReader, to_gray
from ml4paleo.io._sources import Entry
from ml4paleo.io.png import decode_scan_png


def _decode_png(entry: Entry) -> np.ndarray:
    return decode_scan_png(entry.read_bytes(), what=entry.name)


def _decode_jpeg(entry: Entry) -> np.ndarray:
    data = entry.read_bytes()
    if not data.rstrip(b"\x00")[-2:] == b"\xff\xd9":
        # libjpeg decodes a cut-off file without error, filling the rest with gray
        raise UnsupportedFileError(f"{entry.name}: truncated JPEG (no end-of-image marker)")
    try:
        return imagecodecs.jpeg_decode(data)
    except Ml4PaleoError:
        raise
    except Exception as exc:
        raise UnsupportedFileError(f"{entry.name}: corrupt or truncated JPEG ({exc})") from exc


DECODERS: dict[str, Callable[[Entry], np.ndarray]] = {
    "tiff": _tiff.decode_slice,
    "png": _decode_png,
    "jpeg": _decode_jpeg,
}

_FORMAT = {"tiff": "TIFF", "png": "PNG", "jpeg": "JPEG"}


def _yx(shape: tuple[int, ...]) -> str:
    return "x".join(str(n) for n in shape)


class SliceStackReader(VolumeReader):
    """Slices ``entries`` (already in natural order, all of one ``kind``) as a (z, y, x) volume."""

    def __init__(self, entries: list[Entry], kind: str) -> None:
        super().__init__()
        if kind not in DECODERS:
            raise InputError(f"cannot read {kind} files as slices")
        self.entries = entries
        self.kind = kind
        self._decode_file = DECODERS[kind]
        self._notes: set[str] = set()
        self._lock = threading.Lock()
        first = self._decode(0)
        self.shape = (len(entries), *first.shape)  # type: ignore[assignment]
        self.dtype = first.dtype
        self.n_files = len(entries)
        if kind == "tiff":
            self.voxel_size, self.unit = _tiff.read_voxel_size(entries[0], self.warnings)
            self.voxel_size_source = "tiff" if self.voxel_size else None

    def _decode(self, i: int) -> np.ndarray:
        entry = self.entries[i]
        img = self._decode_file(entry)
        if img.ndim == 3 and img.shape[-1] in (2, 3, 4):
            img, note = to_gray(img)
            with self._lock:
                if note and note not in self._notes:
                    self._notes.add(note)
                    self.warnings.append(f"{entry.name} (and any like it): {note}")
        if img.ndim != 2:
            raise UnsupportedFileError(f"{entry.name}: expected one 2D slice, found an image of shape {img.shape}")
        if img.dtype == bool:
            img = img.astype(np.uint8)
        if img.dtype.kind not in "uif":
            raise UnsupportedFileError(f"{entry.name}: pixel type {img.dtype} is not supported")
        return img

    def read(self, z0: int, z1: int) -> np.ndarray:
        out = np.empty((z1 - z0, *self.shape[1:]), self.dtype)

        def one(z: int) -> None:
            img = self._decode(z)
            if img.shape != self.shape[1:]:
                raise InputError(
                    f"{self.entries[z].name}: slice size {_yx(img.shape)} (y x) differs from the first slice "
                    f"{self.entries[0].name}, {_yx(self.shape[1:])}; all slices must have the same size"
                )
            if img.dtype != self.dtype:
                raise InputError(
                    f"{self.entries[z].name}: pixel type {img.dtype} differs from the first slice "
                    f"{self.entries[0].name} ({self.dtype}); all slices must have the same bit depth"
                )
            out[z - z0] = img

        self._map(one, range(z0, z1))
        return out
