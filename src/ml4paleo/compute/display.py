"""Display arithmetic for one slice: robust window, 8-bit mapping, label overlay, the next slice
to annotate, thumbnail strides. Pure numpy; the slice reads live in :mod:`ml4paleo.io.slices`."""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from ml4paleo.errors import InputError
from ml4paleo.planes import AXES

WINDOW_PERCENTILES = (0.5, 99.5)


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


def id_colors(ids: np.ndarray) -> np.ndarray:
    """A colour per object id (uint8 RGB, shape ``ids.shape + (3,)``): hues a golden-ratio turn
    apart, so neighbouring ids never look alike and an id keeps its colour in every view."""
    hue = (ids.astype(np.float64) * 0.6180339887) % 1.0
    k = (np.array([5.0, 3.0, 1.0]) + hue[..., None] * 6.0) % 6.0
    rgb = 0.95 - 0.95 * 0.7 * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)  # HSV, s 0.7, v 0.95
    return np.rint(rgb * 255).astype(np.uint8)


def overlay_ids(gray: np.ndarray, ids: np.ndarray, opacity: float = 0.5, selected: int | None = None) -> np.ndarray:
    """Blend each object's colour (:func:`id_colors`) over an 8-bit gray image; id 0 stays gray,
    the ``selected`` object is drawn opaque."""
    rgb = np.repeat(gray[..., None], 3, axis=2).astype(np.float32)
    inside = ids > 0
    alpha = np.where(ids == selected, 1.0, float(min(max(opacity, 0.0), 1.0)))[inside][:, None] if selected \
        else float(min(max(opacity, 0.0), 1.0))
    rgb[inside] = (1 - alpha) * rgb[inside] + alpha * id_colors(ids[inside]).astype(np.float32)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


THICKNESS_COLORS = ("#440154", "#3b528b", "#21918c", "#5ec962", "#fde725")
"""Colour scale of the thickness overlay, thin to thick (viridis' stops: ordered in lightness and
readable with the common colour-vision deficiencies); the page's colour bar uses the same stops."""


def overlay_values(gray: np.ndarray, values: np.ndarray, top: float, opacity: float = 0.7,
                   colors: Sequence[str] = THICKNESS_COLORS) -> np.ndarray:
    """Blend a colour scale over an 8-bit gray image where ``values > 0``: 0 .. ``top`` maps
    linearly onto ``colors`` (evenly spaced stops), values above ``top`` take the last colour."""
    rgb = np.repeat(gray[..., None], 3, axis=2).astype(np.float32)
    inside = values > 0
    stops = np.array([hex_to_rgb(c) for c in colors], np.float32)
    pos = np.clip(values[inside] / max(float(top), 1e-12), 0.0, 1.0) * (len(stops) - 1)
    lo = np.minimum(np.floor(pos).astype(np.int64), len(stops) - 2)
    frac = (pos - lo)[:, None]
    colour = (1 - frac) * stops[lo] + frac * stops[lo + 1]
    alpha = float(min(max(opacity, 0.0), 1.0))
    rgb[inside] = (1 - alpha) * rgb[inside] + alpha * colour
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


def thumbnail_step(shape: Sequence[int], axis: str, longest: int) -> int:
    """The stride that brings a slice along ``axis`` of a (z, y, x) ``shape`` to at most
    ``longest`` pixels on its longer side (nearest neighbour: class values stay exact)."""
    if longest < 1:
        raise InputError(f"max must be a positive number of pixels; got {longest}")
    sides = [n for i, n in enumerate(shape) if i != AXES.index(axis)]
    return max(1, -(-max(sides) // longest))
