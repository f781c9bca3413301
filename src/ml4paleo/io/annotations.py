"""Annotations on disk: one 8-bit grayscale PNG per annotated slice.

Values: 0 unlabeled (ignored in training), 1 background/matrix, 2..K structures. The slice
index of a file is the last integer in its name (``12.png``, ``slice_0012.png``), so folders
exported by other tools can be used as they are; :func:`write_annotation` writes ``<z>.png``.
Slices across the stack are named by their plane: ``y_0120.png`` is the plane y = 120 (rows
z, columns x), ``x_0080.png`` the plane x = 80 (rows z, columns y); their key is
``("y", 120)``, while a z slice's key stays its index.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ml4paleo.errors import ArtifactNotFound, InputError
from ml4paleo.io.png import png_pixels, write_png

__all__ = ["SliceKey", "annotation_files", "slice_of_name", "axis_index", "delete_annotation", "file_name", "key_json", "key_name", "make_key",
           "plane_of", "read_annotation", "read_annotations", "write_annotation"]

_LAST_INT = re.compile(r"(\d+)(?!.*\d)")
_PLANE = re.compile(r"^([xy])_?(\d+)$", re.IGNORECASE)
AXES = ("z", "y", "x")

SliceKey = int | tuple[str, int]
"""A z slice's index, or ``(axis, index)`` of a plane across the stack (axis ``y`` or ``x``)."""


def plane_of(key: SliceKey) -> tuple[int, int]:
    """(array axis 0/1/2, index) of an annotation key."""
    if isinstance(key, tuple):
        return AXES.index(key[0]), int(key[1])
    return 0, int(key)


def make_key(axis: str, index: int) -> SliceKey:
    """The key of the slice at ``index`` across ``axis`` (z, y or x): a bare index for z, so
    that every z-only caller keeps working with plain integers."""
    if axis not in AXES:
        raise InputError(f"axis must be z, y or x; got {str(axis)[:10]!r}")
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
        raise InputError(f"{axis} must be a slice index >= 0; got {index!r}")
    return int(index) if axis == "z" else (axis, int(index))


def axis_index(key: SliceKey) -> tuple[str, int]:
    """``(axis letter, index)`` of a key: the inverse of :func:`make_key`."""
    axis, index = plane_of(key)
    return AXES[axis], index


def file_name(key: SliceKey) -> str:
    """The PNG a key is written to: ``12.png`` for a z slice, ``y_0120.png`` for a plane."""
    return f"{key[0]}_{int(key[1]):04d}.png" if isinstance(key, tuple) else f"{int(key)}.png"


def key_name(key: SliceKey) -> str:
    """How a key is written for people: ``12`` for a z slice, ``y120`` for a plane."""
    return f"{key[0]}{key[1]}" if isinstance(key, tuple) else str(int(key))


def key_json(key: SliceKey) -> int | str:
    """How a key is written in JSON documents (a model's folds and slices): a z slice as its
    index, a plane across the stack as ``"y120"``."""
    return key_name(key) if isinstance(key, tuple) else int(key)


def _slice_index(path: Path) -> SliceKey | None:
    plane = _PLANE.match(path.stem)
    if plane:
        return plane.group(1).lower(), int(plane.group(2))
    match = _LAST_INT.search(path.stem)
    return int(match.group(1)) if match else None


def slice_of_name(path: str | Path) -> SliceKey | None:
    """The slice a PNG's name gives, by the rule of annotation files (``12.png``,
    ``y_0120.png``); None when the name has no number."""
    return _slice_index(Path(path))


def annotation_files(folder: str | Path) -> dict[SliceKey, Path]:
    """Slice key -> PNG file in ``folder`` (a missing folder has none).

    Raises :class:`InputError` when two files name the same slice or a PNG has no number."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    files: dict[int, Path] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix.lower() != ".png" or path.name.startswith("."):
            continue
        z = _slice_index(path)
        if z is None:
            raise InputError(f"annotation {path} has no slice index in its name (expected e.g. 12.png)")
        if z in files:
            raise InputError(f"annotations {files[z].name} and {path.name} in {folder} both name slice {key_name(z)}")
        files[z] = path
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


def read_annotations(folder: str | Path) -> dict[SliceKey, np.ndarray]:
    """Every annotation of ``folder`` as slice key -> 2D uint8 label image (z slices first,
    by index, then the other planes).

    A folder that does not exist has no annotations (``{}``); training refuses an empty set."""
    files = annotation_files(folder)
    return {key: read_annotation(files[key]) for key in sorted(files, key=lambda k: (plane_of(k), ))}


def write_annotation(folder: str | Path, key: SliceKey, mask: np.ndarray) -> Path:
    """Write ``mask`` (2D, values 0..255) as the slice's file (:func:`file_name`) atomically;
    returns the path. ``key``: a z index or ``(axis, index)``.

    Any other file naming the same slice (``slice_0012.png``) is replaced too, so a slice never
    has two annotations."""
    key = _checked(key)
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.size == 0:
        raise InputError(f"an annotation mask must be a non-empty 2D image; got shape {mask.shape}")
    if mask.dtype.kind not in "iub" or (mask.size and (mask.min() < 0 or mask.max() > 255)):
        raise InputError(f"annotation values must be integers 0..255; got dtype {mask.dtype}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    dst = write_png(folder / file_name(key), mask.astype(np.uint8))
    for other in folder.glob("*.png"):
        if other != dst and _slice_index(other) == key:
            other.unlink(missing_ok=True)
    return dst


def delete_annotation(folder: str | Path, key: SliceKey) -> None:
    """Delete the annotation of slice ``key``; :class:`ArtifactNotFound` if there is none."""
    key = _checked(key)
    path = annotation_files(folder).get(key)
    if path is None:
        raise ArtifactNotFound(f"no annotation for slice {key_name(key)} in {folder}")
    path.unlink()


def _checked(key: SliceKey) -> SliceKey:
    if isinstance(key, tuple) and len(key) == 2:
        return make_key(key[0], key[1])
    return make_key("z", key)  # type: ignore[arg-type]
