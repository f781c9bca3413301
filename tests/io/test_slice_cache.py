"""Slices through the bounded cache of decoded chunk rows (io.slices), and from pyramid levels."""

from __future__ import annotations

import numpy as np
import pytest

from ml4paleo.compute.downsample import downsample_mean
from ml4paleo.io.omezarr import OmeZarrWriter
from ml4paleo.io.slices import SlabCache, read_region, read_slice, set_slice_cache_bytes, slice_cache


class Counting:
    """A numpy array that counts its reads."""

    def __init__(self, data: np.ndarray, chunks: tuple[int, int, int]) -> None:
        self.data, self.chunks, self.shape, self.dtype, self.reads = data, chunks, data.shape, data.dtype, 0

    def __getitem__(self, key):
        self.reads += 1
        return self.data[key]


@pytest.fixture
def array():
    data = np.random.default_rng(0).integers(0, 60000, (20, 24, 28)).astype(np.uint16)
    return Counting(data, (8, 8, 8))


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_planes_equal_the_array_and_a_row_of_chunks_is_read_once(array, axis):
    cache = SlabCache(1 << 20)
    for index in range(array.shape[axis]):
        assert np.array_equal(cache.plane(array, ("v",), axis, index), np.take(array.data, index, axis=axis))
    assert array.reads == -(-array.shape[axis] // 8)  # one read per row of chunks


def test_the_cache_never_holds_more_than_its_budget(array):
    row = 8 * 24 * 28 * 2  # one z row of chunks: 10752 bytes
    cache = SlabCache(2 * row + 100)
    for index in (0, 9, 17, 1, 10):
        cache.plane(array, ("v",), 0, index)
        assert cache.nbytes <= cache.max_bytes
    assert cache.nbytes == 2 * row and array.reads == 5  # rows 0, 1, 2, then 0 and 1 again (evicted)
    tiny = SlabCache(row - 1)  # a row over the budget is read through, never kept
    assert np.array_equal(tiny.plane(array, ("v",), 0, 3), array.data[3]) and tiny.nbytes == 0


def test_the_process_cache_follows_the_setting(tmp_path):
    try:
        set_slice_cache_bytes(1000)
        assert slice_cache().max_bytes == 1000 and slice_cache().nbytes <= 1000
    finally:
        set_slice_cache_bytes(256 << 20)


def test_a_slice_of_a_pyramid_level_is_the_downsampled_full_slices(tmp_path):
    data = np.random.default_rng(1).integers(0, 4000, (16, 80, 72)).astype(np.uint16)
    path = tmp_path / "vol.ome.zarr"
    with OmeZarrWriter(path, data.shape, data.dtype, chunks=16, pyramid_min_size=16) as w:
        w.write_slab(0, data)
    for z in (0, 5, 15):
        assert np.array_equal(read_slice(path, "z", z), data[z])
    for level, f in ((1, 2), (2, 4)):
        for z in (0, 7, 15):
            expect = downsample_mean(data[z // f * f:(z // f + 1) * f], (f, f, f))[0] if f == 2 else \
                downsample_mean(downsample_mean(data[z // f * f:(z // f + 1) * f], (2, 2, 2)), (2, 2, 2))[0]
            assert np.array_equal(read_slice(path, "z", z // f, level), expect), (level, z)
    assert np.array_equal(read_slice(path, "y", 10, 1), downsample_mean(data[:, 20:22], (2, 2, 2))[:, 0])


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_a_region_reads_the_chunks_it_crosses_once_and_equals_the_plane(array, axis):
    cache = SlabCache(1 << 20)
    rows, cols = (3, 13), (9, 15)  # within chunks 0-1 by 1
    for index in range(4):  # slices of one row of chunks: the block is read once
        plane = np.take(array.data, index, axis=axis)
        assert np.array_equal(cache.region(array, ("v",), axis, index, rows, cols), plane[3:13, 9:15])
    assert array.reads == 1
    other = (0, 8)  # a column of chunks the block lacks: a block of its own
    cache.region(array, ("v",), axis, 0, rows, other)
    assert array.reads == 2
    cache.plane(array, ("v",), axis, 1)  # the whole row of chunks, which then serves every region
    cache.region(array, ("v",), axis, 2, (0, 5), (20, 23))
    assert array.reads == 3


def test_a_region_of_a_block_over_the_budget_is_read_alone(array):
    cache = SlabCache(100)
    assert np.array_equal(cache.region(array, ("v",), 0, 5, (2, 6), (1, 4)), array.data[5, 2:6, 1:4])
    assert cache.nbytes == 0


def test_a_region_of_a_pyramid_level(tmp_path):
    data = np.random.default_rng(1).integers(0, 4000, (8, 64, 48)).astype(np.uint16)
    path = tmp_path / "v.ome.zarr"
    with OmeZarrWriter(path, data.shape, data.dtype, chunks=16, pyramid_min_size=16) as w:
        w.write_slab(0, data)
    level1 = read_slice(path, "z", 2, level=1)
    assert np.array_equal(read_region(path, "z", 2, 1, (5, 20), (3, 9)), level1[5:20, 3:9])
    assert np.array_equal(read_region(path, "y", 40, 0, (1, 7), (30, 48)), data[1:7, 40, 30:48])
