"""The plane cache is the volume, read once: any region equals the array's, planes are read
again only when evicted, the budget holds, and a region larger than the budget reads through."""

from __future__ import annotations

import numpy as np
import pytest

from ml4paleo.io import planes
from ml4paleo.io.omezarr import OmeZarrWriter, open_level
from ml4paleo.io.planes import PlaneCache, cached_planes, clear_planes


class CountingArray:
    """A numpy volume that counts the z planes read from it."""

    def __init__(self, data: np.ndarray) -> None:
        self.data, self.shape, self.dtype, self.read = data, data.shape, data.dtype, 0

    def __getitem__(self, key):
        out = self.data[key]
        self.read += out.shape[0]
        return out


@pytest.fixture(autouse=True)
def _empty():
    clear_planes()
    yield
    clear_planes()


def test_regions_equal_the_array_and_planes_are_read_once():
    data = np.random.default_rng(0).integers(0, 4000, (20, 9, 11)).astype(np.uint16)
    source = CountingArray(data)
    view = PlaneCache(source, ("vol", 1))
    for key in [np.s_[3:9, 2:7, 0:11], np.s_[5:12, 0:9, 4:5], np.s_[0:20, 1:2, 3:10], np.s_[7:7, 0:9, 0:11]]:
        got = view[key]
        assert got.dtype == data.dtype and np.array_equal(got, data[key])
    assert source.read == 20  # every plane once, whatever the regions asked
    with pytest.raises(TypeError):
        view[3]


def test_budget_evicts_least_recent_planes_and_big_regions_read_through():
    data = np.arange(10 * 4 * 4, dtype=np.uint16).reshape(10, 4, 4)
    source = CountingArray(data)
    view = PlaneCache(source, ("vol", 1), max_bytes=4 * data[0].nbytes)
    assert np.array_equal(view[0:3, 0:4, 0:4], data[0:3])
    assert np.array_equal(view[2:5, 0:4, 0:4], data[2:5])  # reads 3 and 4, evicts plane 0
    assert source.read == 5 and len(planes._planes) == 4 and planes._bytes[0] == 4 * data[0].nbytes
    assert np.array_equal(view[0:1, 0:4, 0:4], data[0:1]) and source.read == 6
    assert np.array_equal(view[0:8, 0:4, 0:4], data[0:8])  # more than the budget: straight from the array
    assert source.read == 14 and len(planes._planes) == 4


def test_a_rewritten_volume_is_read_anew(tmp_path):
    path = tmp_path / "v.ome.zarr"
    for value, stamp in ((1, 10), (2, 11)):
        with OmeZarrWriter(path, (4, 8, 8), np.uint16, chunks=4, overwrite=True) as w:
            w.write_slab(0, np.full((4, 8, 8), value, np.uint16))
        assert (cached_planes(path, stamp)[0:4, 0:8, 0:8] == value).all()


def test_a_pyramid_level_is_cached_apart_from_full_resolution(tmp_path):
    path = tmp_path / "v.ome.zarr"
    data = np.arange(16 * 32 * 32, dtype=np.uint16).reshape(16, 32, 32)
    with OmeZarrWriter(path, data.shape, data.dtype, chunks=8, pyramid_min_size=8) as w:
        w.write_slab(0, data)
    full, coarse = cached_planes(path, 1), cached_planes(path, 1, level=1)
    assert coarse.shape == (8, 16, 16)
    np.testing.assert_array_equal(full[0:4, 0:32, 0:32], data[0:4])
    np.testing.assert_array_equal(coarse[0:4, 0:16, 0:16], np.asarray(open_level(path, 1)[0:4]))
