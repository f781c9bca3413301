"""A stored volume's histogram, read in blocks smaller than the volume, equals numpy's."""

from __future__ import annotations

import numpy as np
import pytest

from ml4paleo.io import histogram as io_histogram
from ml4paleo.io.omezarr import OmeZarrWriter


def _write(path, vol):
    with OmeZarrWriter(path, vol.shape, vol.dtype, chunks=4, pyramid_min_size=8) as w:
        w.write_slab(0, vol)
    return path


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_streamed_histogram_equals_the_whole_volume(tmp_path, monkeypatch, dtype):
    rng = np.random.default_rng(2)
    vol = (rng.normal(1000, 50, (12, 24, 20))).astype(dtype)
    monkeypatch.setattr(io_histogram, "BLOCK_VOXELS", 4 * 8 * 20)  # many blocks, split along y too
    blocks = list(io_histogram._blocks(_Chunked(vol, (4, 8, 20))))
    assert len(blocks) > 3 and sum(b.size for b in blocks) == vol.size
    result = io_histogram.volume_histogram(_write(tmp_path / "v.ome.zarr", vol), bins=64)
    assert result.voxels == vol.size and sum(result.counts) == vol.size and len(result.counts) <= 64
    assert result.min == pytest.approx(float(vol.min())) and result.max == pytest.approx(float(vol.max()))
    if dtype == np.uint16:
        np.testing.assert_array_equal(result.counts, np.histogram(vol, bins=result.edges)[0])


class _Chunked(np.ndarray):
    """A numpy array with a zarr-like ``chunks`` attribute."""

    def __new__(cls, data, chunks):
        obj = np.asarray(data).view(cls)
        obj.chunks = chunks
        return obj
