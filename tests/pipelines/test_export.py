"""export_volume: every format round-trips to the exact voxels and orientation of the input."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner
from PIL import Image

from ml4paleo.cli import main
from ml4paleo.errors import InputError, OutputExistsError
from ml4paleo.io.omezarr import OmeZarrWriter, open_level, read_info
from ml4paleo.pipelines.export import export_volume

VOXEL = (3.0, 0.5, 0.25)


@pytest.fixture
def stack(tmp_path, rng):
    """A 16-bit stack written as TIFF slices (as a lab uploads it), and its OME-Zarr."""
    vol = rng.integers(0, 65535, size=(21, 30, 44), dtype=np.uint16)
    vol[:, 0, :] = 65535  # first row bright, last column dark: a flip or transpose would show
    vol[:, :, -1] = 0
    upload = tmp_path / "upload"
    upload.mkdir()
    for z, img in enumerate(vol):
        tifffile.imwrite(upload / f"s{z:03d}.tif", img)
    uploaded = np.stack([tifffile.imread(p) for p in sorted(upload.glob("*.tif"))])
    path = tmp_path / "scan.ome.zarr"
    with OmeZarrWriter(path, uploaded.shape, np.uint16, voxel_size=VOXEL, chunks=8) as w:
        for z0 in range(0, len(uploaded), 8):
            w.write_slab(z0, uploaded[z0 : z0 + 8])
    return path, uploaded


def read_zip_stack(path, suffix):
    with zipfile.ZipFile(path) as zf:
        names = sorted(n for n in zf.namelist() if n.endswith(suffix))
        if suffix == ".png":
            return names, np.stack([np.array(Image.open(io.BytesIO(zf.read(n)))) for n in names])
        return names, np.stack([tifffile.imread(io.BytesIO(zf.read(n))) for n in names])


def test_png_zip_round_trips_16_bit(stack, tmp_path):
    src, vol = stack
    calls = []
    out = export_volume(src, tmp_path / "scan_png.zip", format="png-zip", progress=lambda d, t, s="": calls.append(d / t))
    names, back = read_zip_stack(out, ".png")
    assert names[0] == "scan/scan_0000.png" and len(names) == vol.shape[0]
    assert back.dtype == np.uint16 and np.array_equal(back, vol)
    assert calls[-1] == 1.0
    with zipfile.ZipFile(out) as zf:
        assert "voxel size (z, y, x): 3.0 0.5 0.25 micrometer" in zf.read("scan/README.txt").decode()


def test_tiff_zip_and_multipage_tiff_round_trip_with_voxel_size(stack, tmp_path):
    src, vol = stack
    _, back = read_zip_stack(export_volume(src, tmp_path / "t.zip", format="tiff-zip"), ".tif")
    assert back.dtype == np.uint16 and np.array_equal(back, vol)
    out = export_volume(src, tmp_path / "scan.tif", format="tiff")
    with tifffile.TiffFile(out) as tf:
        assert len(tf.pages) == vol.shape[0] and np.array_equal(tf.asarray(), vol)
        x, y = tf.pages[0].tags["XResolution"].value, tf.pages[0].tags["YResolution"].value
        assert (x[1] / x[0], y[1] / y[0]) == pytest.approx((0.25, 0.5))
        meta = tf.imagej_metadata
        assert meta["spacing"] == 3.0 and meta["unit"] == "micron" and meta["slices"] == vol.shape[0]


def test_zarr_zip_extracts_to_the_same_volume(stack, tmp_path):
    src, vol = stack
    out = export_volume(src, tmp_path / "scan_zarr.zip", format="zarr-zip")
    with zipfile.ZipFile(out) as zf:
        zf.extractall(tmp_path / "x")
    info = read_info(tmp_path / "x" / "scan.ome.zarr")
    assert info.voxel_size == VOXEL and np.array_equal(open_level(info.path)[:], vol)


def test_labels_go_out_as_8_bit(tmp_path):
    labels = np.zeros((6, 10, 12), np.uint16)
    labels[1:5, 2:8, 3:9] = 2
    labels[2:4, 3:5, 4:6] = 1
    path = tmp_path / "seg.ome.zarr"
    with OmeZarrWriter(path, labels.shape, np.uint16, kind="labels", chunks=4) as w:
        w.write_slab(0, labels)
    for fmt, suffix in (("png-zip", ".png"), ("tiff-zip", ".tif")):
        _, back = read_zip_stack(export_volume(path, tmp_path / f"{fmt}.zip", format=fmt), suffix)
        assert back.dtype == np.uint8 and np.array_equal(back, labels)
    with tifffile.TiffFile(export_volume(path, tmp_path / "seg.tif", format="tiff")) as tf:
        assert tf.asarray().dtype == np.uint8 and np.array_equal(tf.asarray(), labels)


@pytest.mark.parametrize("compression, code", [("lzw", 5), ("deflate", 8), ("none", 1)])
def test_a_multipage_tiff_is_compressed_without_predictor(tmp_path, compression, code):
    """LZW (5) or deflate (8), no horizontal predictor (older ImageJ misreads one with deflate): the
    readers a lab uses open it; a label map shrinks far below its voxel count."""
    labels = np.zeros((16, 64, 64), np.uint8)
    labels[2:14, 8:56, 10:50] = 1
    labels[4:8, 20:30, 20:30] = 2
    path = tmp_path / "seg.ome.zarr"
    with OmeZarrWriter(path, labels.shape, np.uint8, kind="labels", voxel_size=(2, 1, 1)) as w:
        w.write_slab(0, labels)
    out = export_volume(path, tmp_path / f"{compression}.tif", format="tiff", compression=compression)
    with tifffile.TiffFile(out) as tf:
        assert all(p.compression == code and p.predictor == 1 for p in tf.pages)
        assert tf.is_imagej and np.array_equal(tf.asarray(), labels)
    if compression != "none":
        assert out.stat().st_size < labels.size / 10
    with pytest.raises(InputError, match="compression"):
        export_volume(path, tmp_path / "z.tif", format="tiff", compression="zstd")


def test_float_volume_tiff_yes_png_no(tmp_path, rng):
    vol = rng.random((5, 7, 9), dtype=np.float32)
    path = tmp_path / "f.ome.zarr"
    with OmeZarrWriter(path, vol.shape, np.float32) as w:
        w.write_slab(0, vol)
    with pytest.raises(InputError, match="PNG"):
        export_volume(path, tmp_path / "f.zip", format="png-zip")
    assert not list(tmp_path.glob("f.zip*"))
    with tifffile.TiffFile(export_volume(path, tmp_path / "f.tif", format="tiff")) as tf:
        assert np.array_equal(tf.asarray(), vol)


def test_bad_format_and_existing_output(stack, tmp_path):
    src, _ = stack
    with pytest.raises(InputError, match="format"):
        export_volume(src, tmp_path / "x.zip", format="nrrd")
    out = export_volume(src, tmp_path / "x.zip", format="zarr-zip")
    with pytest.raises(OutputExistsError):
        export_volume(src, out, format="zarr-zip")
    export_volume(src, out, format="png-zip", overwrite=True)
    with pytest.raises(InputError, match="inside"):
        export_volume(src, src / "x.zip", format="zarr-zip")


def test_cli_export(stack, tmp_path):
    src, vol = stack
    res = CliRunner().invoke(main, ["export", str(src), str(tmp_path / "c.tif"), "--format", "tiff"])
    assert res.exit_code == 0, res.output
    assert np.array_equal(tifffile.imread(tmp_path / "c.tif"), vol)


def test_real_scan_upload_convert_export_slice_for_slice(snow_volume, tmp_path):
    """The snow micro-CT scan uploaded as PNG slices, converted, exported: file k is slice k."""
    from ml4paleo.pipelines.convert import convert_volume

    upload = tmp_path / "upload"
    upload.mkdir()
    for z, img in enumerate(snow_volume):
        Image.fromarray(img).save(upload / f"snow_{z:04d}.png")
    converted = convert_volume(upload, tmp_path / "snow.ome.zarr", voxel_size=(15.0, 15.0, 15.0))
    for fmt, suffix in (("png-zip", ".png"), ("tiff-zip", ".tif")):
        names, back = read_zip_stack(export_volume(converted.path, tmp_path / f"snow_{fmt}.zip", format=fmt), suffix)
        assert len(names) == len(snow_volume)
        assert back.dtype == snow_volume.dtype and np.array_equal(back, snow_volume)
    with tifffile.TiffFile(export_volume(converted.path, tmp_path / "snow.tif", format="tiff")) as tf:
        assert np.array_equal(tf.asarray(), snow_volume) and tf.imagej_metadata["spacing"] == 15.0


def test_int32_volume_tiff_keeps_voxel_size_outside_imagej(tmp_path):
    vol = np.arange(5 * 6 * 7, dtype=np.int32).reshape(5, 6, 7) - 100
    path = tmp_path / "i.ome.zarr"
    with OmeZarrWriter(path, vol.shape, np.int32, voxel_size=(3.0, 2.0, 1.0)) as w:
        w.write_slab(0, vol)
    with tifffile.TiffFile(export_volume(path, tmp_path / "i.tif", format="tiff")) as tf:
        assert np.array_equal(tf.asarray(), vol)
        assert tf.shaped_metadata[0]["spacing"] == 3.0
        x = tf.pages[0].tags["XResolution"].value
        assert x[1] / x[0] == pytest.approx(1.0)
