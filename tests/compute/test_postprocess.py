"""Post-processing of label volumes: each option on a volume whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from ml4paleo.errors import InputError
from ml4paleo.compute.postprocess import fill_holes, keep_largest, postprocess, remove_small_components


def scene() -> np.ndarray:
    labels = np.zeros((20, 20, 20), np.uint8)
    labels[2:12, 2:12, 2:12] = 1           # a big cube of class 1 ...
    labels[6:8, 6:8, 6:8] = 0              # ... with an enclosed hole
    labels[15:17, 15:17, 15:17] = 1        # a small speck of class 1 (8 voxels)
    labels[14:19, 2:7, 2:7] = 2            # class 2: one block (125 voxels) ...
    labels[2, 17, 17] = 2                  # ... and one stray voxel
    return labels


def test_remove_small_components_per_class():
    labels = scene()
    out = remove_small_components(labels, 10)
    assert out[15:17, 15:17, 15:17].max() == 0 and out[2, 17, 17] == 0
    assert (out == 1).sum() == (labels == 1).sum() - 8
    assert (out == 2).sum() == 125
    assert np.array_equal(remove_small_components(labels, 0), labels)
    assert labels[2, 17, 17] == 2  # input untouched


def test_fill_holes_fills_only_enclosed_background():
    labels = scene()
    out = fill_holes(labels)
    assert (out[6:8, 6:8, 6:8] == 1).all()
    assert (out == 1).sum() == (labels == 1).sum() + 8
    assert np.array_equal(out[labels != 0], labels[labels != 0])


def test_keep_largest_per_class():
    out = keep_largest(scene())
    assert out[15:17, 15:17, 15:17].max() == 0 and out[2, 17, 17] == 0
    assert (out[2:12, 2:12, 2:12] == 1).sum() == 1000 - 8
    assert (out == 2).sum() == 125


def test_postprocess_combines_in_order_and_validates():
    out = postprocess(scene(), min_size=10, fill=True)
    assert (out[2:12, 2:12, 2:12] == 1).all() and (out == 2).sum() == 125
    with pytest.raises(InputError, match="min_size"):
        postprocess(scene(), min_size=-1)
    with pytest.raises(InputError, match="integer"):
        fill_holes(np.zeros((3, 3, 3), np.float32))
