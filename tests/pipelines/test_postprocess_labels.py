"""Post-processing a zarr label array in place, block by block: equal to the whole volume."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from scipy import ndimage as ndi

from ml4paleo.compute.postprocess import postprocess
from ml4paleo.pipelines.postprocess import postprocess_labels


def labels_volume(seed=3, shape=(40, 36, 44)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = np.where(rng.random(shape) < 0.55, rng.integers(1, 3, shape), 0).astype(np.uint8)
    labels = ndi.median_filter(labels, 3)
    labels[2:30, 2:30, 2:30] = 1  # a hollow box whose cavity crosses many blocks
    labels[5:27, 5:27, 5:27] = 0
    labels[10:14, 10:14, 10:14] = 2
    return labels


def write(tmp_path, labels, chunks=(8, 8, 8)) -> str:
    store = str(tmp_path / "labels.zarr")
    arr = zarr.create_array(store=store, shape=labels.shape, chunks=chunks, dtype=labels.dtype, fill_value=0)
    arr[:] = labels
    return store


@pytest.mark.parametrize("scheduler, block", [("synchronous", (8, 16, 24)), ("processes", (16, 24, 24)),
                                              ("threads", None)])
def test_in_place_equals_whole_volume(tmp_path, scheduler, block):
    labels = labels_volume()
    store = write(tmp_path, labels)
    seen = []
    counts = postprocess_labels(store, [1, 2], min_size=10, fill=True, largest=True, scheduler=scheduler,
                                block=block, scratch_dir=tmp_path, progress=lambda d, t, s="": seen.append(d / t))
    expected = postprocess(labels, min_size=10, fill=True, largest=True)
    assert np.array_equal(np.asarray(zarr.open_array(store=store, mode="r")[:]), expected)
    assert counts.tolist() == np.bincount(expected.ravel(), minlength=3).tolist()
    assert seen == sorted(seen) and seen[-1] == 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.zarr"]  # the scratch folder is gone


def test_no_change_leaves_the_array(tmp_path):
    labels = np.zeros((16, 16, 16), np.uint8)
    labels[4:12, 4:12, 4:12] = 1
    store = write(tmp_path, labels)
    counts = postprocess_labels(store, [1], min_size=5, fill=True, largest=True, block=(8, 8, 8),
                                scheduler="synchronous")
    assert counts.tolist() == [16**3 - 512, 512]
    assert np.array_equal(np.asarray(zarr.open_array(store=store, mode="r")[:]), labels)
