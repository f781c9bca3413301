"""Segmentation quality on a real micro-CT scan and on a generated 3-class volume.

Default feature bank and default forest: these are the product's real settings."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from segdata import dice, phantom, scribbles, write_volume

from ml4paleo.io.omezarr import open_level
from ml4paleo.pipelines.segment import segment_volume
from ml4paleo.pipelines.train import train_model


def test_snow_scan_from_scribbles_on_three_slices(snow_volume, tmp_path):
    from skimage.filters import threshold_otsu

    truth = ndi.binary_opening(snow_volume > threshold_otsu(snow_volume)).astype(np.uint8)
    write_volume(tmp_path / "snow.ome.zarr", snow_volume, chunks=64, voxel_size=(1.0, 1.0, 1.0))
    annotated = (20, 50, 80)
    result = train_model(tmp_path / "snow.ome.zarr", {z: scribbles(truth[z], step=4) for z in annotated}, tmp_path / "model")
    assert result.metrics["fossil"]["dice"] >= 0.95
    segment_volume(tmp_path / "snow.ome.zarr", tmp_path / "model", tmp_path / "labels.ome.zarr", scheduler="synchronous")
    labels = np.asarray(open_level(tmp_path / "labels.ome.zarr")[:])
    others = [z for z in range(snow_volume.shape[0]) if z not in annotated]
    assert dice(labels[others] == 1, truth[others] == 1) >= 0.95


def test_generated_three_class_volume(tmp_path):
    vol, truth = phantom(np.random.default_rng(5), shape=(40, 64, 64), three_classes=True)
    write_volume(tmp_path / "vol.ome.zarr", vol, chunks=32)
    annotated = (8, 20, 32)
    result = train_model(tmp_path / "vol.ome.zarr", {z: scribbles(truth[z], step=4) for z in annotated},
                         tmp_path / "model", classes=("matrix", "bone", "plate"))
    segment_volume(tmp_path / "vol.ome.zarr", tmp_path / "model", tmp_path / "labels.ome.zarr", scheduler="synchronous")
    labels = np.asarray(open_level(tmp_path / "labels.ome.zarr")[:])
    others = [z for z in range(vol.shape[0]) if z not in annotated]
    scores = {c: dice(labels[others] == c, truth[others] == c) for c in range(3)}
    assert min(scores.values()) >= 0.9, (scores, result.metrics)
