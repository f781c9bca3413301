"""Slices for the pages: PNG bytes in and out, and reads of one slice or one small pyramid
level of a stored volume, never the whole full-resolution volume. The arithmetic on those
slices is :mod:`ml4paleo.compute.display`."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ml4paleo.compute.display import AXES, robust_window
from ml4paleo.errors import ArtifactNotFound, InputError

WINDOW_SAMPLE_VOXELS = 1 << 24
"""Percentiles of the display window are taken on a pyramid level of at most this many voxels."""


def encode_png(image: np.ndarray) -> bytes:
    """A 2D gray (``ml4paleo.io.exports.encode_png``) or (y, x, 3) RGB uint8 image as PNG."""
    if image.ndim == 2:
        from ml4paleo.io.exports import encode_png as encode_gray

        return encode_gray(image)
    import imagecodecs

    return bytes(imagecodecs.png_encode(np.ascontiguousarray(image, dtype=np.uint8), level=1))


def decode_png(data: bytes, *, what: str = "image", shape: tuple[int, int] | None = None) -> np.ndarray:
    """A PNG's pixels as a 2D array (first channel of a colour image), or InputError. With
    ``shape`` (y, x), the size is checked from the header before any pixel is decoded, so a
    huge image (a decompression bomb) is refused cheaply."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format != "PNG":
                raise InputError(f"{what} must be a PNG; got {img.format}")
            if shape is not None and (img.height, img.width) != tuple(shape):
                raise InputError(f"{what} is {img.width}x{img.height} pixels; slices are {shape[1]}x{shape[0]}")
            array = np.asarray(img)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{what} is not a readable PNG: {exc}") from exc
    return array[..., 0] if array.ndim == 3 else array


# -- stored volumes -------------------------------------------------------------------------

def volume_window(volume: Path) -> list[float]:
    """Display window of a converted volume, from its finest pyramid level that is small enough."""
    from ml4paleo.io.omezarr import open_level, read_info

    info = read_info(volume)
    level = next((i for i, s in enumerate(info.level_shapes) if int(np.prod(s)) <= WINDOW_SAMPLE_VOXELS),
                 len(info.level_shapes) - 1)
    arr = open_level(volume, level)
    step = max(1, int(np.ceil(np.prod(arr.shape) / WINDOW_SAMPLE_VOXELS)))
    return list(robust_window(arr[::step]))


def read_slice(volume: Path, axis: str, index: int, level: int = 0, step: int = 1) -> np.ndarray:
    """One 2D slice along ``axis`` (z, y or x) of pyramid ``level``, every ``step``-th pixel;
    ArtifactNotFound if out of range."""
    from ml4paleo.io.omezarr import open_level

    if axis not in AXES:
        raise ArtifactNotFound(f"axis must be z, y or x; got {axis!r}")
    try:
        arr = open_level(volume, level)
    except FileNotFoundError as exc:
        raise ArtifactNotFound(str(exc)) from exc
    n = arr.shape[AXES[axis]]
    if not 0 <= index < n:
        raise ArtifactNotFound(f"slice {index} is outside 0..{n - 1} along {axis}")
    key: list[object] = [slice(None, None, max(1, int(step)))] * 3
    key[AXES[axis]] = index
    return np.asarray(arr[tuple(key)])
