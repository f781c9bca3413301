"""Tiny synthetic volumes with known answers, and scribbles, for the train/segment tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from ml4paleo.io.omezarr import OmeZarrWriter

FAST = {"sigmas": [1.0, 3.5], "filters": ["gaussian", "log", "ggm", "dog", "st", "hessian"]}
"""A reduced bank (2 scales, 21 features, halo 21) that keeps tests quick."""
FAST_RF = {"n_estimators": 12}


def write_volume(path: Path, volume: np.ndarray, chunks=16, voxel_size=(2.0, 1.0, 1.0)) -> Path:
    with OmeZarrWriter(path, volume.shape, volume.dtype, chunks=chunks, voxel_size=voxel_size) as w:
        w.write_slab(0, volume)
    return path


def phantom(rng: np.random.Generator, shape=(32, 48, 48), three_classes=False):
    """(uint16 volume, truth class indices): bright blobs (1), optionally a dark, textured
    plate 5 voxels thick (2), in a noisy matrix with an intensity drift."""
    truth = np.zeros(shape, np.uint8)
    zz, yy, xx = np.indices(shape)
    for _ in range(max(3, int(np.prod(shape) / 6000))):
        c = rng.uniform(0.1, 0.9, 3) * shape
        r = rng.uniform(3.5, 7)
        truth[((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2) <= r * r] = 1
    vol = 1000 + 8 * xx + 600.0 * (truth == 1)
    if three_classes:
        plate = np.abs((yy - shape[1] * 0.3) + 0.3 * (zz - shape[0] / 2)) <= 2.5
        truth[plate] = 2
        vol = np.where(plate, 400 + 150 * ((xx // 3) % 2), vol)
    vol = vol + rng.normal(0, 90, shape)
    return np.clip(vol, 0, 65535).astype(np.uint16), truth


def scribbles(truth_slice: np.ndarray, step: int = 5, erode: int = 1) -> np.ndarray:
    """Brush-like strokes: every ``step``-th row of each class, kept away from class borders;
    values are annotation values (class index + 1), 0 elsewhere."""
    out = np.zeros(truth_slice.shape, np.uint8)
    for c in np.unique(truth_slice):
        inside = ndi.binary_erosion(truth_slice == c, iterations=erode) if erode else truth_slice == c
        if not inside.any():
            inside = truth_slice == c
        rows = np.zeros_like(inside)
        rows[::step] = True
        rows[:, ::step] |= True
        out[inside & rows] = c + 1
    return out


def painted_world(root: Path, seed: int, slices=(6, 16, 26)):
    """A phantom written as OME-Zarr under ``root`` with scribbles on ``slices``: the module
    fixture of the training and draft tests, ``(root, volume, truth, annotations)``."""
    vol, truth = phantom(np.random.default_rng(seed))
    write_volume(root / "vol.ome.zarr", vol)
    return root, vol, truth, {z: scribbles(truth[z]) for z in slices}


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * np.logical_and(a, b).sum() / max(int(a.sum()) + int(b.sum()), 1))
