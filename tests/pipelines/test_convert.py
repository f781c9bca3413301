"""convert_volume end to end on real files, including the real snow micro-CT scan."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import tifffile

from ml4paleo.errors import Cancelled, InputError, OutputExistsError, UnsafeArchiveError, UnsupportedFileError
from ml4paleo.io.omezarr import open_level, read_info
from ml4paleo.pipelines.convert import ConvertResult, convert_volume


def slices(folder, vol, pattern="snow_{}.tif"):
    folder.mkdir(parents=True, exist_ok=True)
    for z, img in enumerate(vol):
        tifffile.imwrite(folder / pattern.format(z), img)
    return folder


def test_snow_scan_as_slices_round_trips_exactly(tmp_path, snow_volume):
    up = slices(tmp_path / "upload" / "snow", snow_volume)
    calls = []
    result = convert_volume(tmp_path / "upload", tmp_path / "snow.ome.zarr", voxel_size=(5.0, 5.0, 5.0), chunk=32,
                            progress=lambda d, t, s="": calls.append(d / t))
    assert isinstance(result, ConvertResult)
    assert result.shape == (100, 100, 100) and result.dtype == "uint16" and result.n_files == 100
    assert result.source_kind == "tiff-stack" and result.voxel_size == (5.0, 5.0, 5.0) and result.unit == "micrometer"
    np.testing.assert_array_equal(open_level(result.path)[:], snow_volume)
    info = read_info(result.path)
    assert info.voxel_size == (5.0, 5.0, 5.0) and info.chunks == (32, 32, 32)
    assert info.attrs["source_kind"] == "tiff-stack" and info.attrs["n_files"] == 100
    assert info.attrs["voxel_size_source"] == "user"
    assert calls == sorted(calls) and calls[-1] == 1.0
    assert list(up.iterdir())  # the source is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snow.ome.zarr", "upload"]


def test_snow_multipage_tiff_in_a_zip(tmp_path, snow_tif, snow_volume):
    with zipfile.ZipFile(tmp_path / "snow.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(snow_tif, "data/snow.tif")
        zf.writestr("__MACOSX/data/._snow.tif", b"junk")
    result = convert_volume(tmp_path / "snow.zip", tmp_path / "out" / "snow.ome.zarr")
    np.testing.assert_array_equal(open_level(result.path)[:], snow_volume)
    assert result.source_kind == "zip:tiff-volume" and result.n_files == 1
    assert read_info(result.path).level_shapes == ((100, 100, 100),)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["snow.ome.zarr"]  # scratch removed


def test_default_voxel_size_is_recorded_and_warned(tmp_path, rng):
    up = slices(tmp_path / "up", rng.integers(0, 255, (3, 8, 8), dtype=np.uint8))
    (up / "Thumbs.db").write_bytes(b"\x00" * 10)
    result = convert_volume(up, tmp_path / "v.ome.zarr")
    assert result.voxel_size == (1.0, 1.0, 1.0) and result.unit == "micrometer"
    assert any("no voxel size" in w for w in result.warnings) and any("Thumbs.db" in w for w in result.warnings)
    attrs = read_info(result.path).attrs
    assert attrs["voxel_size_source"] == "default" and attrs["warnings"] == result.warnings


def test_voxel_size_from_the_files(tmp_path, dicom_like_tiff):
    result = convert_volume(dicom_like_tiff, tmp_path / "v.ome.zarr")
    assert result.voxel_size == pytest.approx((3.0, 0.25, 0.5)) and result.unit == "micrometer"
    assert read_info(result.path).attrs["voxel_size_source"] == "tiff"
    overridden = convert_volume(dicom_like_tiff, tmp_path / "w.ome.zarr", voxel_size=(1, 2, 3), unit="mm")
    assert overridden.voxel_size == (1.0, 2.0, 3.0) and overridden.unit == "millimeter"


@pytest.fixture
def dicom_like_tiff(tmp_path):
    path = tmp_path / "ij.tif"
    tifffile.imwrite(path, np.arange(3 * 8 * 9, dtype=np.uint16).reshape(3, 8, 9), imagej=True,
                     resolution=(2.0, 4.0), metadata={"spacing": 3.0, "unit": "um", "axes": "ZYX"})
    return path


def test_bad_slice_midway_leaves_no_output(tmp_path, rng):
    up = slices(tmp_path / "up", rng.integers(0, 255, (20, 16, 16), dtype=np.uint8), pattern="s{}.tif")
    tifffile.imwrite(up / "s13.tif", np.zeros((16, 15), np.uint8))
    with pytest.raises(InputError, match=r"s13\.tif"):
        convert_volume(up, tmp_path / "v.ome.zarr", chunk=8)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["up"]


def test_cancel_from_progress_leaves_no_output(tmp_path, rng):
    up = slices(tmp_path / "up", rng.integers(0, 255, (24, 8, 8), dtype=np.uint8))

    def cancel(done, total, stage=""):
        if done / total > 0.3:
            raise Cancelled("stopped by user")

    with pytest.raises(Cancelled):
        convert_volume(up, tmp_path / "v.ome.zarr", chunk=8, progress=cancel)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["up"]


def test_existing_output_and_overwrite(tmp_path, rng):
    up = slices(tmp_path / "up", rng.integers(0, 255, (2, 8, 8), dtype=np.uint8))
    convert_volume(up, tmp_path / "v.ome.zarr")
    with pytest.raises(OutputExistsError):
        convert_volume(up, tmp_path / "v.ome.zarr")
    assert convert_volume(up, tmp_path / "v.ome.zarr", overwrite=True).shape == (2, 8, 8)


@pytest.mark.parametrize(
    "kwargs, word",
    [({"voxel_size": (1, 0, 1)}, "voxel_size"), ({"voxel_size": (1, 1)}, "voxel_size"), ({"unit": "parsec"}, "unit"),
     ({"chunk": 3}, "chunk"), ({"chunk": 2.5}, "chunk"), ({"codec": "gzip"}, "codec")],
)
def test_bad_options_are_named_before_any_work(tmp_path, kwargs, word):
    with pytest.raises(InputError, match=word):
        convert_volume(tmp_path / "does-not-matter", tmp_path / "v.ome.zarr", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_zip_traversal_and_corrupt_file_leave_nothing(tmp_path):
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as zf:
        zf.writestr("../../etc/s1.tif", b"II*\x00")
    with pytest.raises(UnsafeArchiveError):
        convert_volume(tmp_path / "evil.zip", tmp_path / "v.ome.zarr")
    (tmp_path / "broken.tif").write_bytes(b"II*\x00" + b"\xff" * 20)
    with pytest.raises(UnsupportedFileError, match=r"broken\.tif"):
        convert_volume(tmp_path / "broken.tif", tmp_path / "v.ome.zarr")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.tif", "evil.zip"]


def test_dicom_series_with_rescale(tmp_path, rng):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    raw = rng.integers(0, 3000, (4, 6, 5), dtype=np.uint16)
    (tmp_path / "up").mkdir()
    for k, z in enumerate([2, 0, 3, 1]):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, ds.file_meta.MediaStorageSOPInstanceUID
        ds.SeriesInstanceUID = "1.2.3"
        ds.Rows, ds.Columns = raw.shape[1:]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, 0.7 * z], [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing, ds.RescaleSlope, ds.RescaleIntercept = [0.4, 0.3], 1, -1024
        ds.PixelData = raw[z].tobytes()
        ds.save_as(tmp_path / "up" / f"{k}", enforce_file_format=True, little_endian=True, implicit_vr=False)
    result = convert_volume(tmp_path / "up", tmp_path / "ct.ome.zarr")
    assert result.dtype == "int16" and result.unit == "millimeter"
    assert result.voxel_size == pytest.approx((0.7, 0.4, 0.3)) and result.source_kind == "dicom-series"
    np.testing.assert_array_equal(open_level(result.path)[:], raw.astype(np.int16) - 1024)
    assert read_info(result.path).attrs["voxel_size_source"] == "dicom"
    in_um = convert_volume(tmp_path / "up", tmp_path / "um.ome.zarr", unit="micrometer")  # the web's default unit
    assert in_um.voxel_size == pytest.approx((700.0, 400.0, 300.0)) and in_um.unit == "micrometer"
