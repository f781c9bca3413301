"""The filter bank's settings on a pyramid level, and the level's factors."""

import numpy as np
import pytest

from ml4paleo.compute.coarse import coarse_settings, coarsest_level, level_factors
from ml4paleo.compute.features import FeatureSettings, feature_names
from ml4paleo.compute.painted import keep_painted, keep_painted_on_grid


def test_coarse_settings_divide_the_sigmas_and_keep_the_selected_columns():
    full = FeatureSettings(sigmas=(1.0, 4.0), selected=("raw", "ggm_s4", "st_e2_s1"))
    coarse = coarse_settings(full, 4)
    assert coarse.sigmas == (0.25, 1.0)
    assert feature_names(coarse) == ["raw", "st_e2_s0.25", "ggm_s1"]
    assert feature_names(full) == ["raw", "st_e2_s1", "ggm_s4"]  # the same columns, in the same order
    assert coarse_settings(full, 1) is full
    with pytest.raises(ValueError):
        coarse_settings(full, 0)


def test_orient_follows_the_scales_of_a_coarser_grid():
    """``orient`` is computed at the scales from 1.5 to 6 at full resolution; on a level its
    scales are divided by the level's factor like every other filter's (sigma 1.6 -> 0.8), so
    every level can stand in for a model reading orient_*_s1.6, columns renamed by scale."""
    full = FeatureSettings(sigmas=(1.0, 1.6, 4.0, 10.0))
    coarse = coarse_settings(full, 2)
    assert coarse.orient_scales == (0.8, 2.0)
    names = feature_names(full)
    assert feature_names(coarse) == [n.replace("s1.6", "s0.8").replace("s10", "s5").replace("s4", "s2")
                                     .replace("s1", "s0.5") if n != "raw" else n for n in names]
    assert coarsest_level(full, [(8, 400, 400), (4, 200, 200), (2, 100, 100)], 2) == 2
    assert "orient_scales" not in full.to_dict() and coarse.to_dict()["orient_scales"] == [0.8, 2.0]
    assert FeatureSettings.from_value(coarse.to_dict()) == coarse
    picked = FeatureSettings(sigmas=(1.0, 1.6, 4.0), selected=("raw", "gaussian_s1.6", "hessian_e1_s4"))
    assert feature_names(coarse_settings(picked, 2)) == ["raw", "gaussian_s0.8", "hessian_e1_s2"]


def test_level_factors_follow_the_pyramid():
    shapes = [(5, 1000, 600), (3, 500, 300), (2, 250, 150), (1, 125, 75)]
    assert level_factors(shapes, 0) == (1, 1, 1)
    assert level_factors(shapes, 2) == (4, 4, 4)
    assert level_factors(shapes, 3) == (8, 8, 8)
    assert level_factors([(1, 512, 512), (1, 256, 256)], 1) == (1, 2, 2)
    with pytest.raises(ValueError):
        level_factors(shapes, 4)


def test_painted_on_a_full_grid_equals_keep_painted():
    rng = np.random.default_rng(0)
    shape = (6, 9, 11)
    planes = [(0, 2, rng.integers(0, 3, (9, 11)).astype(np.uint8)),
              (1, 4, rng.integers(0, 3, (6, 11)).astype(np.uint8)),
              (2, 7, rng.integers(0, 3, (6, 9)).astype(np.uint8))]
    for axis, index in ((0, 2), (1, 4), (2, 7), (1, 3), (2, 1), (0, 5)):
        other = [n for a, n in enumerate(shape) if a != axis]
        values = rng.integers(0, 2, other).astype(np.intp)
        start, stop = [0, 0, 0], list(shape)
        start[axis], stop[axis] = index, index + 1
        expect = np.take(keep_painted(np.expand_dims(values.copy(), axis), planes, start, stop), 0, axis=axis)
        got = keep_painted_on_grid(values.copy(), planes, axis, index, np.arange(other[0]), np.arange(other[1]))
        assert np.array_equal(got, expect), (axis, index)


def test_painted_on_a_sampled_grid_keeps_the_sampled_voxels():
    mask = np.zeros((8, 8), np.uint8)
    mask[2, 4], mask[3, 3] = 2, 1
    proba = np.full((4, 4, 2), 0.5, np.float32)
    keep_painted_on_grid(proba, [(0, 1, mask)], 0, 1, np.arange(4) * 2, np.arange(4) * 2)
    assert proba[1, 2].tolist() == [0.0, 1.0]  # voxel (2, 4) is on the grid
    assert (proba[proba != 0.5].size == 2)  # voxel (3, 3) is not
