"""The block-wise histogram equals numpy's on the whole array, whatever the blocks."""

from __future__ import annotations

import numpy as np
import pytest

from ml4paleo.compute.histogram import Histogram, value_range
from ml4paleo.errors import InputError


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16])
def test_integers_are_counted_exactly_in_whole_values_per_bin(dtype):
    rng = np.random.default_rng(0)
    info = np.iinfo(dtype)
    data = rng.integers(max(info.min, -3000), min(info.max, 3000), (6, 20, 20), endpoint=True).astype(dtype)
    counter = Histogram(np.dtype(dtype))
    for block in np.array_split(data, 4):
        counter.add(block)
    edges, counts = counter.result(bins=64)
    assert counts.sum() == data.size and len(edges) == len(counts) + 1 and len(counts) <= 64
    assert edges[0] == int(data.min()) and edges[-1] == int(data.max()) + 1
    assert np.all(np.diff(edges) >= 1) and np.all(edges == np.round(edges))
    expected, _ = np.histogram(data, bins=edges)
    np.testing.assert_array_equal(counts, expected)


def test_two_grey_values_a_few_apart_stay_in_different_bins():
    data = np.array([30000, 30000, 30040, 30040, 30040], np.uint16)
    counter = Histogram(np.dtype(np.uint16))
    counter.add(data)
    edges, counts = counter.result(bins=256)
    assert counts.sum() == 5 and counts[0] == 2 and counts[-1] == 3 and edges[0] == 30000 and edges[-1] == 30041


def test_floats_need_their_range_and_match_numpy():
    rng = np.random.default_rng(1)
    data = rng.normal(0.5, 0.2, (5, 16, 16)).astype(np.float32)
    data[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="range"):
        Histogram(np.dtype(np.float32))
    blocks = np.array_split(data, 3)
    lo, hi = value_range(blocks)
    finite = data[np.isfinite(data)]
    assert (lo, hi) == (float(finite.min()), float(finite.max()))
    counter = Histogram(np.dtype(np.float32), (lo, hi))
    for block in blocks:
        counter.add(block)
    edges, counts = counter.result(bins=100)
    assert counts.sum() == finite.size and len(counts) <= 100
    assert edges[0] == pytest.approx(lo) and edges[-1] == pytest.approx(hi)


def test_an_empty_histogram_and_bad_bins():
    counter = Histogram(np.dtype(np.uint8))
    edges, counts = counter.result()
    assert counts.sum() == 0 and len(edges) == 2
    with pytest.raises(InputError, match="bins"):
        counter.result(bins=0)
