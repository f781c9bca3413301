"""Annotations on disk: one 8-bit grayscale PNG per annotated plane.

Values: 0 unlabeled (ignored in training), 1 background/matrix, 2..K structures. A file's plane
is :meth:`ml4paleo.planes.SliceRef.of_file` of its name: ``y_0120.png`` the plane y = 120 (rows
z, columns x), ``x_0080.png`` the plane x = 80 (rows z, columns y), else the last integer in
the name is a z slice (``12.png``, ``slice_0012.png``), so folders exported by other tools can
be used as they are; :func:`write_annotation` writes :attr:`~ml4paleo.planes.SliceRef.file_name`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ml4paleo.errors import ArtifactNotFound, InputError
from ml4paleo.io.png import png_pixels, write_png
from ml4paleo.planes import SliceRef

__all__ = ["annotation_files", "delete_annotation", "read_annotation", "read_annotations", "slice_of_name",
           "write_annotation"]


def slice_of_name(path: str | Path) -> SliceRef | None:
    """The plane a PNG's name gives, by the rule of annotation files (``12.png``,
    ``y_0120.png``); None when the name has no number."""
    return SliceRef.of_file(Path(path).stem)


def annotation_files(folder: str | Path) -> dict[SliceRef, Path]:
    """Plane -> PNG file in ``folder`` (a missing folder has none).

    Raises :class:`InputError` when two files name the same slice or a PNG has no number."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    files: dict[SliceRef, Path] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix.lower() != ".png" or path.name.startswith("."):
            continue
        ref = slice_of_name(path)
        if ref is None:
            raise InputError(f"annotation {path} has no slice index in its name (expected e.g. 12.png)")
        if ref in files:
            raise InputError(f"annotations {files[ref].name} and {path.name} in {folder} both name slice {ref.name}")
        files[ref] = path
    return files


def read_annotation(path: str | Path) -> np.ndarray:
    """One annotation PNG as a 2D uint8 array of label values."""
    path = Path(path)
    arr, mode = png_pixels(path.read_bytes(), what=f"annotation {path}")
    if arr.ndim == 3:
        # an RGB(A)/LA PNG is usable only if it is gray (every colour channel equal)
        color = arr[..., :3] if mode in ("RGB", "RGBA") else arr[..., :1]
        if np.any(color != color[..., :1]):
            raise InputError(f"annotation {path} must be a grayscale label image (values 0..K); got mode {mode}")
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise InputError(f"annotation {path} must be a 2D image; got shape {arr.shape}")
    if arr.dtype != np.uint8:
        if arr.dtype.kind not in "iub" or arr.min() < 0 or arr.max() > 255:
            raise InputError(f"annotation {path} must hold label values 0..255; got dtype {arr.dtype}")
        arr = arr.astype(np.uint8)
    return np.ascontiguousarray(arr)


def read_annotations(folder: str | Path) -> dict[SliceRef, np.ndarray]:
    """Every annotation of ``folder`` as plane -> 2D uint8 label image (z slices first, by
    index, then the other planes).

    A folder that does not exist has no annotations (``{}``); training refuses an empty set."""
    files = annotation_files(folder)
    return {ref: read_annotation(files[ref]) for ref in sorted(files)}


def write_annotation(folder: str | Path, ref: SliceRef | Any, mask: np.ndarray) -> Path:
    """Write ``mask`` (2D, values 0..255) as the plane's file (``ref.file_name``) atomically;
    returns the path. ``ref``: a :class:`SliceRef` (or a z index, or ``(axis, index)``).

    Any other file naming the same slice (``slice_0012.png``) is replaced too, so a slice never
    has two annotations."""
    ref = SliceRef.of(ref)
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.size == 0:
        raise InputError(f"an annotation mask must be a non-empty 2D image; got shape {mask.shape}")
    if mask.dtype.kind not in "iub" or (mask.size and (mask.min() < 0 or mask.max() > 255)):
        raise InputError(f"annotation values must be integers 0..255; got dtype {mask.dtype}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    dst = write_png(folder / ref.file_name, mask.astype(np.uint8))
    for other in folder.glob("*.png"):
        if other != dst and slice_of_name(other) == ref:
            other.unlink(missing_ok=True)
    return dst


def delete_annotation(folder: str | Path, ref: SliceRef | Any) -> None:
    """Delete the annotation of plane ``ref``; :class:`ArtifactNotFound` if there is none."""
    ref = SliceRef.of(ref)
    path = annotation_files(folder).get(ref)
    if path is None:
        raise ArtifactNotFound(f"no annotation for slice {ref.name} in {folder}")
    path.unlink()
