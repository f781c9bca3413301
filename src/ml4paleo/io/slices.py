"""Slices for the pages: reads of one slice or one small pyramid level of a stored volume,
never the whole full-resolution volume, and one slice rendered for display. The arithmetic on
those slices is :mod:`ml4paleo.compute.display`; PNG coding is :mod:`ml4paleo.io.png`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ml4paleo.compute import display
from ml4paleo.compute.display import AXES, robust_window
from ml4paleo.errors import ArtifactNotFound, InputError
from ml4paleo.io.omezarr import open_level, read_info

WINDOW_SAMPLE_VOXELS = 1 << 24
"""Percentiles of the display window are taken on a pyramid level of at most this many voxels."""


# -- stored volumes -------------------------------------------------------------------------

def volume_window(volume: Path) -> list[float]:
    """Display window of a converted volume, from its finest pyramid level that is small enough."""
    info = read_info(volume)
    level = next((i for i, s in enumerate(info.level_shapes) if int(np.prod(s)) <= WINDOW_SAMPLE_VOXELS),
                 len(info.level_shapes) - 1)
    arr = open_level(volume, level)
    step = max(1, int(np.ceil(np.prod(arr.shape) / WINDOW_SAMPLE_VOXELS)))
    return list(robust_window(arr[::step]))


def read_slice(volume: Path, axis: str, index: int, level: int = 0, step: int = 1) -> np.ndarray:
    """One 2D slice along ``axis`` (z, y or x) of pyramid ``level``, every ``step``-th pixel;
    ArtifactNotFound if out of range."""
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


def read_voxel(volume: Path, z: int, y: int, x: int) -> tuple[float | int, str]:
    """The raw value of one voxel (one chunk read: cheap enough for a cursor readout) and the kind
    of files the volume was converted from (``dicom-series``: rescaled values, Hounsfield units for CT);
    InputError outside the volume."""
    try:
        arr = open_level(volume, 0)
    except FileNotFoundError as exc:
        raise ArtifactNotFound(str(exc)) from exc
    for name, i, n in zip("zyx", (z, y, x), arr.shape):
        if not 0 <= i < n:
            raise InputError(f"{name} must be from 0 to {n - 1}; got {i}")
    value = np.asarray(arr[z, y, x]).item()
    return value, str(read_info(volume).attrs.get("source_kind") or "")


def render_slice(volume: Path, axis: str, index: int, window: list[float] | tuple[float, float], *, level: int = 0,
                 step: int = 1, labels: Path | None = None, colors: dict[int, tuple[int, int, int]] | None = None,
                 opacity: float = 0.5) -> np.ndarray:
    """One slice of ``volume`` for display: 8-bit gray through ``window`` (lo, hi), and with
    ``labels`` (a label volume on the same grid) its classes blended on top in ``colors``
    (class index -> RGB; a (y, x, 3) uint8 image then). See :func:`read_slice` for the rest."""
    image = display.to_uint8(read_slice(volume, axis, index, level, step), window)
    if labels is None:
        return image
    return display.overlay(image, read_slice(labels, axis, index, level, step), colors or {}, opacity)
