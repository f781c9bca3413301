"""Cheap display helpers for the web layer: one slice as an 8-bit PNG, a label overlay, the
display window of a volume, and the choice of the next slice to annotate.

The pure functions (numpy in, numpy out) come first; the few that touch a stored volume read
one slice or one small pyramid level, never the whole full-resolution volume.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ml4paleo.errors import ArtifactNotFound, InputError

WINDOW_PERCENTILES = (0.5, 99.5)
WINDOW_SAMPLE_VOXELS = 1 << 24
"""Percentiles of the display window are taken on a pyramid level of at most this many voxels."""
AXES = {"z": 0, "y": 1, "x": 2}


def robust_window(sample: np.ndarray, percentiles: tuple[float, float] = WINDOW_PERCENTILES) -> tuple[float, float]:
    """Display window ``(lo, hi)`` from robust percentiles: a few hot or dead voxels (metal
    inclusions, ring artefacts) do not wash out the contrast of the fossil."""
    values = np.asarray(sample).ravel()
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(values, percentiles))
    if not hi > lo:
        hi = lo + 1.0
    return lo, hi


def to_uint8(image: np.ndarray, window: Sequence[float]) -> np.ndarray:
    """Map ``[lo, hi]`` linearly onto 0..255 (clipped)."""
    lo, hi = float(window[0]), float(window[1])
    if not hi > lo:
        raise InputError(f"window must be two numbers lo < hi; got {list(window)!r}")
    scaled = (image.astype(np.float32) - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    text = color.lstrip("#")
    if len(text) == 3:
        text = "".join(ch * 2 for ch in text)
    try:
        return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)
    except (ValueError, IndexError):
        return 255, 0, 255


def overlay(gray: np.ndarray, labels: np.ndarray, colors: dict[int, tuple[int, int, int]],
            opacity: float = 0.5) -> np.ndarray:
    """Blend class colours over an 8-bit gray image; label 0 (background) stays uncoloured."""
    rgb = np.repeat(gray[..., None], 3, axis=2).astype(np.float32)
    alpha = float(min(max(opacity, 0.0), 1.0))
    for value, color in colors.items():
        mask = labels == value
        if value == 0 or not mask.any():
            continue
        rgb[mask] = (1 - alpha) * rgb[mask] + alpha * np.asarray(color, np.float32)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def pick_next_slice(depth: int, annotated: Iterable[int], rng: np.random.Generator) -> int:
    """A random slice index, favouring slices far from those already annotated (weight grows
    with the squared distance to the nearest annotated slice; annotated slices get none)."""
    if depth < 1:
        raise InputError(f"depth must be positive; got {depth}")
    done = np.array(sorted({z for z in annotated if 0 <= z < depth}), dtype=np.int64)
    if done.size == 0 or done.size >= depth:
        return int(rng.integers(depth))
    zs = np.arange(depth)
    distance = np.min(np.abs(zs[:, None] - done[None, :]), axis=1).astype(np.float64)
    weights = distance**2
    return int(rng.choice(depth, p=weights / weights.sum()))


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


def thumbnail_step(shape: Sequence[int], axis: str, longest: int) -> int:
    """The stride that brings a slice along ``axis`` of a (z, y, x) ``shape`` to at most
    ``longest`` pixels on its longer side (nearest neighbour: class values stay exact)."""
    if longest < 1:
        raise InputError(f"max must be a positive number of pixels; got {longest}")
    sides = [n for i, n in enumerate(shape) if i != AXES[axis]]
    return max(1, -(-max(sides) // longest))


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
