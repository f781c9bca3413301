"""PNG in and out, in one place: slices for the pages and exports, annotation masks, scan slices.

Encoding goes through imagecodecs (libpng, releases the GIL, so slices encode in parallel
threads; Pillow did not), at the fastest deflate level. Masks and annotations are decoded with
Pillow, which reads the header first: a wrong size or a decompression bomb is refused before
any pixel is decoded, and a palette image gives its indices (label values), not colours.
Scan slices of an upload are decoded with imagecodecs (any bit depth, fastest).
"""

from __future__ import annotations

import io
from pathlib import Path

import imagecodecs
import numpy as np
from PIL import Image, UnidentifiedImageError

from ml4paleo.atomic import partial_path, replace_atomically
from ml4paleo.errors import InputError, UnsupportedFileError

__all__ = ["decode_png", "decode_scan_png", "encode_png", "png_pixels", "write_png"]


def encode_png(image: np.ndarray) -> bytes:
    """A 2D slice (rows = y, columns = x) as PNG: 8-bit stays 8-bit, 16-bit stays 16-bit; or a
    (y, x, 3) RGB uint8 image."""
    if image.ndim == 3 and image.shape[2] == 3:
        return bytes(imagecodecs.png_encode(np.ascontiguousarray(image, dtype=np.uint8), level=1))
    if image.ndim != 2:
        raise InputError(f"a PNG slice must be 2D (y, x); got shape {image.shape}")
    if image.dtype not in (np.uint8, np.uint16):
        raise InputError(f"PNG holds 8- or 16-bit unsigned voxels; this volume is {image.dtype} (export it as TIFF)")
    return bytes(imagecodecs.png_encode(np.ascontiguousarray(image), level=1))


def write_png(path: str | Path, image: np.ndarray) -> Path:
    """:func:`encode_png` of ``image`` written to ``path`` atomically (temporary name, renamed)."""
    path = Path(path)
    data = encode_png(image)
    tmp = partial_path(path)
    try:
        tmp.write_bytes(data)
        replace_atomically(tmp, path, overwrite=True)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def png_pixels(data: bytes, *, what: str = "image", shape: tuple[int, int] | None = None) -> tuple[np.ndarray, str]:
    """A PNG's pixels as stored (2D, or (y, x, channels)) and its Pillow mode; palette images
    give their indices. With ``shape`` (y, x), the size is checked from the header before any
    pixel is decoded. Anything else than a readable PNG is an :class:`UnsupportedFileError`
    naming ``what``."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format != "PNG":
                raise UnsupportedFileError(f"{what} must be a PNG; got {img.format}")
            if shape is not None and (img.height, img.width) != tuple(shape):
                raise InputError(f"{what} is {img.width}x{img.height} pixels; slices are {shape[1]}x{shape[0]}")
            return np.asarray(img), img.mode
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        if isinstance(exc, InputError):
            raise
        raise UnsupportedFileError(f"{what} is not a readable PNG: {exc}") from exc


def decode_png(data: bytes, *, what: str = "image", shape: tuple[int, int] | None = None) -> np.ndarray:
    """A PNG's pixels as a 2D array (the first channel of a colour image), or InputError; see
    :func:`png_pixels` for ``shape``."""
    array, _ = png_pixels(data, what=what, shape=shape)
    return array[..., 0] if array.ndim == 3 else array


def decode_scan_png(data: bytes, *, what: str = "image") -> np.ndarray:
    """One uploaded scan slice: every channel and bit depth as libpng gives them (a palette
    expanded to colours); :class:`UnsupportedFileError` naming ``what`` if it is not a PNG."""
    try:
        return imagecodecs.png_decode(data)
    except Exception as exc:
        raise UnsupportedFileError(f"{what}: corrupt or truncated PNG ({exc})") from exc
