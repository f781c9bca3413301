"""Label bounds gathered slab by slab equal those of the whole volume."""

from __future__ import annotations

import numpy as np

from ml4paleo.compute.extents import label_bounds, merge_bounds


def _brute(labels: np.ndarray) -> dict:
    out = {}
    for v in np.unique(labels):
        if v == 0:
            continue
        z, y, x = np.nonzero(labels == v)
        out[int(v)] = (x.min(), x.max(), y.min(), y.max(), z.min(), z.max())
    return out


def test_slabs_merge_to_the_whole_volume_bounds(rng):
    labels = np.where(rng.random((13, 9, 11)) < 0.02, rng.integers(1, 6, (13, 9, 11)), 0).astype(np.uint8)
    merged: dict = {}
    for z0 in range(0, 13, 4):
        merge_bounds(merged, label_bounds(labels[z0 : z0 + 4], z0))
    assert merged == _brute(labels) == label_bounds(labels)
    assert label_bounds(np.zeros((2, 3, 4), np.uint16)) == {}
