"""Features of a region equal the same voxels of whole-volume features, on any plane."""

from __future__ import annotations

import numpy as np
import pytest

from ml4paleo.compute.features import FeatureSettings, compute_features
from ml4paleo.compute.regions import labeled_features, plane_region, slice_features

SETTINGS = FeatureSettings(sigmas=(1.0, 2.0), filters=("gaussian", "ggm", "hessian"))


@pytest.mark.parametrize("axis, index, tile, shape", [(0, 5, 7, (12, 18, 22)), (1, 0, 7, (12, 18, 22)),
                                                      (1, 13, 7, (12, 18, 22)), (2, 20, 7, (12, 18, 22)),
                                                      (0, 5, 9, (12, 30, 9)), (2, 20, 40, (12, 18, 22))],
                         ids=["z", "y0", "y", "x", "one-column", "one-tile"])
def test_labeled_features_of_any_plane_equal_the_whole_volume(rng, axis, index, tile, shape):
    """In the plane's row-major order, whatever the tiles (a grid, one column of them, one)."""
    vol = rng.normal(1000, 100, shape).astype(np.float32)
    whole = np.take(compute_features(vol, SETTINGS), index, axis=axis)
    mask = rng.random(whole.shape[:2]) < 0.3
    rows = labeled_features(vol, index, mask, SETTINGS, tile=tile, axis=axis)
    np.testing.assert_allclose(rows, whole[mask], rtol=1e-5, atol=1e-3)


def test_labeled_features_compiled_equal_scipys_bit_for_bit(rng):
    """Training's rows take numba's passes: the values segmentation's blocks compute."""
    vol = rng.normal(1000, 100, (12, 40, 36)).astype(np.uint16)
    settings = FeatureSettings(sigmas=(0.7, 1.6, 3.5))
    mask = rng.random((40, 36)) < 0.4
    got = labeled_features(vol, 6, mask, settings, tile=16, compiled=True)
    np.testing.assert_array_equal(got, labeled_features(vol, 6, mask, settings, tile=16))


def test_plane_region():
    assert plane_region(0, 4, (1, 3), (2, 5)) == ((4, 1, 2), (5, 3, 5))
    assert plane_region(1, 4, (1, 3), (2, 5)) == ((1, 4, 2), (3, 5, 5))
    assert plane_region(2, 4, (1, 3), (2, 5)) == ((1, 2, 4), (3, 5, 5))


@pytest.mark.parametrize("settings", [FeatureSettings(sigmas=(0.7, 1.6, 3.5, 10.0)),
                                      FeatureSettings(sigmas=(1.0, 5.0), filters=("dog", "st"), two_d=True)])
def test_slice_features_equal_the_whole_volume_bit_for_bit(rng, settings):
    """One-slice blocks (the preview's and the draft's) crop the coarse scales to the planes the
    interpolation reads and take second derivatives on the slice only: the values do not change."""
    vol = rng.normal(1000, 100, (26, 30, 34)).astype(np.uint16)
    whole = compute_features(vol, settings)
    for z in (0, 7, 25):
        assert np.array_equal(slice_features(vol, z, settings, tile=16, workers=2), whole[z])


@pytest.mark.parametrize("shape, width", [
    ((3, 4, 5), ((0, 0), (2, 5), (0, 1))),
    ((20, 9, 7), ((12, 0), (9, 9), (15, 4))),  # pads wider than the axis: mirrored again (period 2n)
    ((1, 6, 1), ((3, 3), (0, 2), (2, 0))),  # a one-voxel axis: many runs, np.pad's path
])
def test_mirror_pad_equals_numpys_symmetric_pad(rng, shape, width):
    from ml4paleo.compute.regions import mirror_pad

    data = rng.integers(0, 60000, shape).astype(np.uint16)
    out = mirror_pad(data, width)
    assert out.dtype == data.dtype
    np.testing.assert_array_equal(out, np.pad(data, width, mode="symmetric"))
