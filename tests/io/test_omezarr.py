"""OME-Zarr writer/reader: exact round trip, pyramid, NGFF metadata read by ``ome_zarr``,
and atomic publication (a failure leaves neither the volume nor a partial folder)."""

from __future__ import annotations

import numpy as np
import pytest

from ml4paleo.compute.downsample import downsample_labels, downsample_mean
from ml4paleo.errors import InputError, OutputExistsError, VolumeNotFoundError
from ml4paleo.io.omezarr import OmeZarrWriter, open_level, pyramid_shapes, read_info, to_dask


def write(path, vol, chunks=8, **kw):
    with OmeZarrWriter(path, vol.shape, vol.dtype, chunks=chunks, pyramid_min_size=8, **kw) as w:
        for z0 in range(0, vol.shape[0], chunks):
            w.write_slab(z0, vol[z0 : z0 + chunks])
    return path


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name or ".old-" in p.name)


@pytest.mark.parametrize("codec", ["zstd", "blosc-lz4", "none"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32])
def test_round_trip_exact(tmp_path, rng, codec, dtype):
    vol = (rng.random((19, 21, 17)) * 1000 - (500 if dtype in (np.int16, np.float32) else 0)).astype(dtype)
    out = write(tmp_path / "v.ome.zarr", vol, voxel_size=(2.0, 0.5, 0.5), unit="millimeter", codec=codec)
    np.testing.assert_array_equal(open_level(out)[:], vol)
    np.testing.assert_array_equal(to_dask(out).compute(), vol)
    info = read_info(out)
    assert info.shape == vol.shape and info.dtype == vol.dtype and info.chunks == (8, 8, 8)
    assert info.voxel_size == (2.0, 0.5, 0.5) and info.unit == "millimeter"


def test_pyramid_levels_are_2x_means(tmp_path, rng):
    vol = rng.integers(0, 4000, (20, 40, 36), dtype=np.uint16)
    out = write(tmp_path / "v.ome.zarr", vol, voxel_size=(1.0, 1.0, 1.0))
    info = read_info(out)
    assert info.level_shapes == tuple(pyramid_shapes(vol.shape, 8))
    assert info.level_shapes[-1][1] <= 8 and len(info.level_shapes) == 4
    expected = vol
    for level in range(1, len(info.level_shapes)):
        expected = downsample_mean(expected, (2, 2, 2) if expected.shape[0] > 1 else (1, 2, 2))
        np.testing.assert_array_equal(open_level(out, level)[:], expected)


def test_labels_pyramid_keeps_label_values(tmp_path, rng):
    labels = rng.integers(0, 3, (16, 32, 32), dtype=np.uint8)
    out = write(tmp_path / "l.ome.zarr", labels, kind="labels")
    np.testing.assert_array_equal(open_level(out, 1)[:], downsample_labels(labels, (2, 2, 2)))
    assert read_info(out).kind == "labels"


def test_metadata_read_back_through_ome_zarr_package(tmp_path, rng):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    vol = rng.integers(0, 255, (16, 24, 20), dtype=np.uint8)
    out = write(tmp_path / "v.ome.zarr", vol, voxel_size=(3.0, 1.5, 1.5), unit="micrometer", attrs={"source_kind": "tiff-stack"})
    nodes = list(Reader(parse_url(str(out)))())
    image = nodes[0]
    assert [tuple(d.shape) for d in image.data] == list(read_info(out).level_shapes)
    np.testing.assert_array_equal(np.asarray(image.data[0]), vol)
    assert [a["name"] for a in image.metadata["axes"]] == ["z", "y", "x"]
    assert all(a["unit"] == "micrometer" for a in image.metadata["axes"])
    scales = [t[0]["scale"] for t in image.metadata["coordinateTransformations"]]
    assert scales[0] == [3.0, 1.5, 1.5] and scales[1] == [6.0, 3.0, 3.0]
    assert read_info(out).attrs["source_kind"] == "tiff-stack"


def test_failure_inside_writer_leaves_nothing(tmp_path, rng):
    vol = rng.integers(0, 255, (16, 16, 16), dtype=np.uint8)
    with pytest.raises(RuntimeError):
        with OmeZarrWriter(tmp_path / "v.ome.zarr", vol.shape, vol.dtype, chunks=8) as w:
            w.write_slab(0, vol[:8])
            assert leftovers(tmp_path)  # the partial folder exists while writing ...
            raise RuntimeError("scanner unplugged")
    assert list(tmp_path.iterdir()) == []  # ... and is gone after the failure


def test_unfinished_output_is_not_a_volume(tmp_path, rng):
    w = OmeZarrWriter(tmp_path / "v.ome.zarr", (8, 8, 8), np.uint8, chunks=8)
    w.write_slab(0, np.ones((8, 8, 8), np.uint8))
    with pytest.raises(VolumeNotFoundError):
        read_info(tmp_path / "v.ome.zarr")
    w.abort()
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_overwrite(tmp_path, rng):
    old = write(tmp_path / "v.ome.zarr", np.zeros((8, 8, 8), np.uint8))
    with pytest.raises(OutputExistsError):
        OmeZarrWriter(old, (8, 8, 8), np.uint8)
    new = rng.integers(1, 255, (8, 8, 8), dtype=np.uint8)
    write(old, new, overwrite=True)
    np.testing.assert_array_equal(open_level(old)[:], new)
    assert leftovers(tmp_path) == []


def test_failed_overwrite_keeps_the_old_volume(tmp_path, rng):
    old = write(tmp_path / "v.ome.zarr", np.full((8, 8, 8), 7, np.uint8))
    with pytest.raises(RuntimeError):
        with OmeZarrWriter(old, (8, 8, 8), np.uint8, chunks=8, overwrite=True) as w:
            w.write_slab(0, np.zeros((8, 8, 8), np.uint8))
            raise RuntimeError("boom")
    assert (open_level(old)[:] == 7).all() and leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "kwargs",
    [dict(shape=(0, 4, 4)), dict(voxel_size=(1.0, -1.0, 1.0)), dict(kind="mask"), dict(codec="gzip"), dict(chunks=(4, 4))],
)
def test_bad_parameters_are_named(tmp_path, kwargs):
    args = dict(shape=(4, 4, 4), dtype=np.uint8) | kwargs
    shape, dtype = args.pop("shape"), args.pop("dtype")
    with pytest.raises(InputError, match=next(iter(kwargs)).rstrip("s")):
        OmeZarrWriter(tmp_path / "v.ome.zarr", shape, dtype, **args)
    assert leftovers(tmp_path) == []


def test_slab_that_does_not_fit_is_refused(tmp_path):
    with OmeZarrWriter(tmp_path / "v.ome.zarr", (8, 8, 8), np.uint8, chunks=8) as w:
        with pytest.raises(InputError, match="does not fit"):
            w.write_slab(4, np.zeros((8, 8, 8), np.uint8))
        w.write_slab(0, np.zeros((8, 8, 8), np.uint8))


@pytest.mark.parametrize("shape, chunks", [((21, 37, 35), 4), ((9, 40, 30), 6), ((5, 33, 17), 8), ((1, 20, 20), 4)])
def test_pyramid_built_while_writing_equals_built_at_finish(tmp_path, rng, shape, chunks):
    """Slabs in order build the pyramid on the fly; out of order, finish() builds it from
    level 0. Both must equal the pyramid of the whole volume (odd edges included)."""
    vol = rng.integers(0, 60000, shape, dtype=np.uint16)
    in_order = write(tmp_path / "a.ome.zarr", vol, chunks=chunks)
    with OmeZarrWriter(tmp_path / "b.ome.zarr", shape, vol.dtype, chunks=chunks, pyramid_min_size=8) as w:
        for z0 in reversed(range(0, shape[0], chunks)):
            w.write_slab(z0, vol[z0 : z0 + chunks])
    expected = vol
    levels = read_info(in_order).level_shapes
    assert len(levels) > 1
    for level in range(1, len(levels)):
        expected = downsample_mean(expected, tuple(2 if n > 1 else 1 for n in expected.shape))
        np.testing.assert_array_equal(open_level(in_order, level)[:], expected)
        np.testing.assert_array_equal(open_level(tmp_path / "b.ome.zarr", level)[:], expected)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16])
@pytest.mark.parametrize("factors", [(2, 2, 2), (1, 2, 2), (2, 1, 2)])
def test_integer_fast_mean_rounds_like_float_mean(rng, dtype, factors):
    """The pyramid's integer pairwise path = float mean rounded half to even, ties included."""
    info = np.iinfo(dtype)
    for high in (info.max, 3):  # full range, and tiny values where ties (x.5) are frequent
        block = rng.integers(info.min if high == info.max else 0, high, (7, 9, 11), endpoint=True).astype(dtype)
        padded = np.pad(block, [(0, (-n) % f) for n, f in zip(block.shape, factors)], mode="edge")
        shape = [m for n, f in zip(padded.shape, factors) for m in (n // f, f)]
        expected = np.rint(padded.reshape(shape).mean(axis=(1, 3, 5), dtype=np.float64)).astype(dtype)
        np.testing.assert_array_equal(downsample_mean(block, factors), expected)


@pytest.mark.parametrize("codec", ["zstd", "blosc-lz4", "none"])
def test_chunk_files_written_directly_match_zarrs_own_writes(tmp_path, rng, codec):
    """Aligned image slabs bypass zarr's store path; misaligned ones go through zarr. Both
    must read back identically through zarr (edge chunks included)."""
    vol = rng.integers(0, 60000, (13, 19, 23), dtype=np.uint16)
    direct = write(tmp_path / "d.ome.zarr", vol, chunks=4, codec=codec)
    with OmeZarrWriter(tmp_path / "z.ome.zarr", vol.shape, vol.dtype, chunks=4, codec=codec, pyramid_min_size=8) as w:
        for z0 in range(0, 13, 3):  # not aligned to the chunk depth: zarr's own path
            w.write_slab(z0, vol[z0 : z0 + 3])
    for level in range(len(read_info(direct).level_shapes)):
        np.testing.assert_array_equal(open_level(direct, level)[:], open_level(tmp_path / "z.ome.zarr", level)[:])
    np.testing.assert_array_equal(open_level(direct)[:], vol)
    n_chunks = sum(1 for p in (direct / "0").rglob("*") if p.is_file() and p.name != "zarr.json")
    assert n_chunks == 4 * 5 * 6  # every chunk stored, edge chunks whole
