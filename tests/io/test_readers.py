"""Readers on real files written here with tifffile, Pillow, imagecodecs and pydicom."""

from __future__ import annotations

import zipfile
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import tifffile
from dicom_files import write_dicom_slice
from PIL import Image

from ml4paleo.errors import InputError, UnsafeArchiveError, UnsupportedFileError, VolumeNotFoundError
from ml4paleo.io.readers import natural_key, open_volume, sniff


def read_all(src, **kw) -> tuple[np.ndarray, object]:
    with open_volume(src, **kw) as vol:
        data = np.concatenate([vol.read(z, min(z + 3, vol.shape[0])) for z in range(0, vol.shape[0], 3)])
        assert data.shape == vol.shape and data.dtype == vol.dtype
        return data, vol


def tiff_stack(folder: Path, vol: np.ndarray, name="s{}.tif", **kw) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for z, img in enumerate(vol):
        tifffile.imwrite(folder / name.format(z), img, **kw)
    return folder


def test_natural_key_orders_numbers_by_value():
    names = ["s10.tif", "s2.tif", "s1.tif", "S3.tif", "a/s100.tif"]
    assert sorted(names, key=natural_key) == ["a/s100.tif", "s1.tif", "s2.tif", "S3.tif", "s10.tif"]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_tiff_stack_in_natural_order_keeps_dtype(tmp_path, rng, dtype):
    vol = (rng.random((12, 9, 11)) * 200).astype(dtype)
    folder = tiff_stack(tmp_path / "up", vol)  # s0..s11: lexical order would put s10 after s1
    data, reader = read_all(folder)
    np.testing.assert_array_equal(data, vol)
    assert reader.source_kind == "tiff-stack" and reader.n_files == 12


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_stack_8_and_16_bit(tmp_path, rng, dtype):
    vol = rng.integers(0, np.iinfo(dtype).max, (4, 10, 13), dtype=dtype)
    (tmp_path / "up").mkdir()
    for z, img in enumerate(vol):
        Image.fromarray(img).save(tmp_path / "up" / f"slice_{z}.png")
    data, reader = read_all(tmp_path / "up")
    np.testing.assert_array_equal(data, vol)
    assert reader.source_kind == "png-stack"


def test_jpeg_stack(tmp_path):
    vol = np.tile(np.linspace(0, 255, 16, dtype=np.uint8), (3, 16, 1))
    (tmp_path / "up").mkdir()
    for z, img in enumerate(vol):
        Image.fromarray(img).save(tmp_path / "up" / f"{z}.jpg", quality=95)
    data, reader = read_all(tmp_path / "up")
    assert reader.source_kind == "jpeg-stack" and data.dtype == np.uint8
    assert np.abs(data.astype(int) - vol).max() <= 8  # lossy


def test_type_comes_from_content_not_extension(tmp_path, rng):
    vol = rng.integers(0, 255, (3, 8, 8), dtype=np.uint8)
    (tmp_path / "up").mkdir()
    for z, img in enumerate(vol):
        Image.fromarray(img).save(tmp_path / "up" / f"s{z}.tif", format="PNG")  # PNG bytes, .tif name
    assert sniff(tmp_path / "up" / "s0.tif") == "png"
    data, reader = read_all(tmp_path / "up")
    assert reader.source_kind == "png-stack"
    np.testing.assert_array_equal(data, vol)


def test_rgb_becomes_luminance_with_warning(tmp_path, rng):
    rgb = rng.integers(0, 255, (2, 6, 5, 3), dtype=np.uint8)
    (tmp_path / "up").mkdir()
    for z, img in enumerate(rgb):
        Image.fromarray(img, "RGB").save(tmp_path / "up" / f"{z}.png")
    data, reader = read_all(tmp_path / "up")
    expected = np.stack([np.asarray(Image.fromarray(img, "RGB").convert("L")) for img in rgb])
    assert data.shape == (2, 6, 5) and np.abs(data.astype(int) - expected).max() <= 1
    assert any("luminance" in w for w in reader.warnings)


def test_gray_stored_as_rgb_stays_exact(tmp_path, rng):
    gray = rng.integers(0, 65535, (2, 6, 5), dtype=np.uint16)
    (tmp_path / "up").mkdir()
    for z, img in enumerate(gray):
        (tmp_path / "up" / f"{z}.png").write_bytes(imagecodecs.png_encode(np.stack([img] * 3, axis=-1)))
    data, _ = read_all(tmp_path / "up")
    np.testing.assert_array_equal(data, gray)


def test_multipage_bigtiff_and_3d_tiff(tmp_path, rng):
    vol = rng.integers(0, 60000, (7, 20, 24), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "pages.tif", vol)
    tifffile.imwrite(tmp_path / "big.tif", vol, bigtiff=True, compression="zlib")
    tifffile.imwrite(tmp_path / "tiled3d.tif", vol, volumetric=True, tile=(16, 16))
    for name in ("pages.tif", "big.tif", "tiled3d.tif"):
        data, reader = read_all(tmp_path / name)
        np.testing.assert_array_equal(data, vol)
        assert reader.source_kind == "tiff-volume" and reader.n_files == 1


def test_voxel_size_from_imagej_ome_and_resolution_tags(tmp_path):
    vol = np.zeros((3, 8, 9), np.uint16)
    tifffile.imwrite(tmp_path / "ij.tif", vol, imagej=True, resolution=(2.0, 4.0), metadata={"spacing": 3.0, "unit": "um", "axes": "ZYX"})
    tifffile.imwrite(tmp_path / "ome.tif", vol, ome=True, metadata={"axes": "ZYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5, "PhysicalSizeZ": 2.0})
    tifffile.imwrite(tmp_path / "cm.tif", vol, resolution=(1000.0, 1000.0), resolutionunit="CENTIMETER", photometric="minisblack")
    tifffile.imwrite(tmp_path / "dpi.tif", vol, resolution=(72.0, 72.0), resolutionunit="INCH", photometric="minisblack")
    expected = {"ij.tif": (3.0, 0.25, 0.5), "ome.tif": (2.0, 0.5, 0.5), "cm.tif": (10.0, 10.0, 10.0), "dpi.tif": None}
    for name, size in expected.items():
        with open_volume(tmp_path / name) as vol_reader:
            assert vol_reader.voxel_size == (pytest.approx(size) if size else None), name
            assert vol_reader.voxel_size_source == ("tiff" if size else None)
            if size:
                assert vol_reader.unit == "micrometer"
    with open_volume(tmp_path / "cm.tif") as r:
        assert any("z spacing set equal to x" in w for w in r.warnings)


def test_zip_with_folder_skips_macos_and_dot_files(tmp_path, rng):
    vol = rng.integers(0, 65535, (11, 8, 6), dtype=np.uint16)
    folder = tiff_stack(tmp_path / "stack", vol)
    with zipfile.ZipFile(tmp_path / "up.zip", "w") as zf:
        for z in range(11):
            zf.write(folder / f"s{z}.tif", f"scan/s{z}.tif")
        zf.writestr("__MACOSX/scan/._s1.tif", b"\x00\x05\x16\x07junk")
        zf.writestr("scan/.DS_Store", b"junk")
        zf.writestr("scan/readme.txt", b"scanned 2024")
    up = tmp_path / "upload"
    up.mkdir()
    (tmp_path / "up.zip").rename(up / "scan.zip")
    data, reader = read_all(up)
    np.testing.assert_array_equal(data, vol)
    assert reader.source_kind == "zip:tiff-stack" and reader.n_files == 11
    assert any("readme.txt" in w for w in reader.warnings)
    assert any("system file" in w for w in reader.warnings)


def test_zip_holding_one_multipage_tiff_uses_and_removes_scratch(tmp_path, rng):
    vol = rng.integers(0, 255, (5, 9, 9), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "vol.tif", vol)
    with zipfile.ZipFile(tmp_path / "vol.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(tmp_path / "vol.tif", "vol.tif")
    scratch = tmp_path / "scratch"
    data, reader = read_all(tmp_path / "vol.zip", scratch_dir=scratch)
    np.testing.assert_array_equal(data, vol)
    assert reader.source_kind == "zip:tiff-volume"
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize("member", ["../evil.tif", "/abs/evil.tif", "a/../../evil.tif"])
def test_zip_path_traversal_is_rejected(tmp_path, member):
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as zf:
        zf.writestr("ok.tif", b"II*\x00")
        zf.writestr(member, b"II*\x00")
    with pytest.raises(UnsafeArchiveError, match="path traversal"):
        open_volume(tmp_path / "bad.zip")


def test_dicom_series_ordered_by_position_with_voxel_size(tmp_path, dicom_series):
    folder, vol = dicom_series(tmp_path / "up", n=6, dz=1.5)
    data, reader = read_all(folder)
    np.testing.assert_array_equal(data, vol)
    assert reader.source_kind == "dicom-series" and reader.n_files == 6
    assert reader.voxel_size == pytest.approx((1.5, 0.5, 0.25)) and reader.unit == "millimeter"
    assert reader.voxel_size_source == "dicom"


def test_dicom_position_along_oblique_normal(tmp_path, rng):
    """Positions project onto the normal of the row/column cosines, not onto patient z."""
    folder = tmp_path / "up"
    folder.mkdir()
    vol = rng.integers(0, 1000, (4, 5, 5), dtype=np.uint16)
    normal = np.array([1.0, 0.0, 0.0])  # sagittal slices: rows along y, columns along z
    for k, z in enumerate([2, 0, 3, 1]):
        pos = tuple(float(v) for v in normal * (2.0 * z) + np.array([0.0, 5.0, -3.0]))
        write_dicom_slice(folder / f"f{k}.dcm", vol[z], position=pos, instance=10 - z, orientation=(0, 1, 0, 0, 0, 1))
    data, reader = read_all(folder)
    np.testing.assert_array_equal(data, vol)
    assert reader.voxel_size[0] == pytest.approx(2.0)


def test_dicom_instance_number_fallback_and_no_preamble(tmp_path, rng):
    folder = tmp_path / "up"
    folder.mkdir()
    vol = rng.integers(0, 1000, (4, 5, 6), dtype=np.uint16)
    for k, z in enumerate([3, 1, 0, 2]):
        write_dicom_slice(folder / f"x{k}", vol[z], position=None, instance=z + 1, preamble=False)
    data, reader = read_all(folder)
    np.testing.assert_array_equal(data, vol)
    assert any("InstanceNumber" in w for w in reader.warnings)


def test_dicom_rescale_to_int16_or_float32(tmp_path, rng):
    raw = rng.integers(0, 4000, (3, 4, 4), dtype=np.uint16)
    for name, slope, intercept, dtype in [("hu", 1.0, -1024.0, np.int16), ("frac", 0.5, 0.25, np.float32)]:
        folder = tmp_path / name
        folder.mkdir()
        for z in range(3):
            write_dicom_slice(folder / f"{z}.dcm", raw[z], position=(0, 0, z), instance=z + 1, slope=slope, intercept=intercept)
        data, _ = read_all(folder)
        assert data.dtype == dtype
        np.testing.assert_array_equal(data, (raw * slope + intercept).astype(dtype))


def test_dicom_rescale_beyond_int16_becomes_float32(tmp_path):
    raw = np.array([[[0, 60000]], [[5, 7]]], dtype=np.uint16)
    for z in range(2):
        write_dicom_slice(tmp_path / f"{z}.dcm", raw[z], position=(0, 0, z), instance=z + 1, slope=1.0, intercept=-1024.0)
    data, _ = read_all(tmp_path)
    assert data.dtype == np.float32
    np.testing.assert_array_equal(data, raw.astype(np.float32) - 1024)


def test_several_dicom_series_largest_taken_or_tie_named(tmp_path, dicom_series):
    folder, vol = dicom_series(tmp_path / "up" / "a", n=4, series_uid="1.2.3.4")
    dicom_series(tmp_path / "up" / "b", n=2, series_uid="1.2.3.5")
    data, reader = read_all(tmp_path / "up")
    np.testing.assert_array_equal(data, vol)
    assert any("1.2.3.5" in w and "largest" in w for w in reader.warnings)
    dicom_series(tmp_path / "tie" / "a", n=3, series_uid="1.2.3.6")
    dicom_series(tmp_path / "tie" / "b", n=3, series_uid="1.2.3.7")
    with pytest.raises(InputError, match=r"1\.2\.3\.6.*1\.2\.3\.7|1\.2\.3\.7.*1\.2\.3\.6"):
        open_volume(tmp_path / "tie")


def test_dicom_same_position_twice_is_an_error(tmp_path, rng):
    folder = tmp_path / "up"
    folder.mkdir()
    for k in range(3):
        write_dicom_slice(folder / f"{k}.dcm", np.zeros((4, 4), np.uint16), position=(0, 0, min(k, 1)), instance=k + 1)
    with pytest.raises(InputError, match="same slice position"):
        open_volume(folder)


# --- bad input: each error names the file and the reason ---------------------------------


def test_missing_and_empty_sources(tmp_path):
    with pytest.raises(VolumeNotFoundError):
        open_volume(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty"):
        open_volume(tmp_path / "empty")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("no images here")
    with pytest.raises(InputError, match="no image files.*notes.txt"):
        open_volume(tmp_path / "junk")


def test_truncated_tiff_in_stack_names_the_file(tmp_path, rng):
    folder = tiff_stack(tmp_path / "up", rng.integers(0, 255, (4, 64, 64), dtype=np.uint8))
    data = (folder / "s2.tif").read_bytes()
    (folder / "s2.tif").write_bytes(data[: len(data) // 3])
    with pytest.raises(UnsupportedFileError, match=r"s2\.tif"):
        read_all(folder)


def test_truncated_png_names_the_file(tmp_path, rng):
    (tmp_path / "up").mkdir()
    for z in range(3):
        Image.fromarray(rng.integers(0, 255, (32, 32), dtype=np.uint8)).save(tmp_path / "up" / f"{z}.png")
    data = (tmp_path / "up" / "1.png").read_bytes()
    (tmp_path / "up" / "1.png").write_bytes(data[:60])
    with pytest.raises(UnsupportedFileError, match=r"1\.png.*PNG"):
        read_all(tmp_path / "up")


def test_file_named_as_image_with_other_content_is_an_error(tmp_path, rng):
    folder = tiff_stack(tmp_path / "up", rng.integers(0, 255, (3, 8, 8), dtype=np.uint8))
    (folder / "s3.tif").write_bytes(b"this is not a tiff at all")
    with pytest.raises(UnsupportedFileError, match=r"s3\.tif.*not a readable image"):
        open_volume(folder)
    (folder / "s3.tif").write_bytes(b"")
    with pytest.raises(UnsupportedFileError, match=r"s3\.tif.*empty"):
        open_volume(folder)


def test_slices_of_different_size_name_the_first_that_differs(tmp_path, rng):
    folder = tiff_stack(tmp_path / "up", rng.integers(0, 255, (5, 8, 8), dtype=np.uint8))
    tifffile.imwrite(folder / "s3.tif", np.zeros((8, 9), np.uint8))
    tifffile.imwrite(folder / "s4.tif", np.zeros((7, 8), np.uint8))
    with pytest.raises(InputError, match=r"s3\.tif.*8x9.*s0\.tif"):
        read_all(folder)


def test_slices_of_different_bit_depth(tmp_path, rng):
    folder = tiff_stack(tmp_path / "up", rng.integers(0, 255, (3, 8, 8), dtype=np.uint8))
    tifffile.imwrite(folder / "s1.tif", np.zeros((8, 8), np.uint16))
    with pytest.raises(InputError, match=r"s1\.tif.*uint16"):
        read_all(folder)


def test_mixed_dicom_and_png_is_an_error(tmp_path, dicom_series):
    folder, _ = dicom_series(tmp_path / "up", n=3)
    Image.fromarray(np.zeros((6, 7), np.uint8)).save(folder / "preview.png")
    with pytest.raises(InputError, match="mixes file types.*DICOM.*PNG.*preview.png"):
        open_volume(folder)


def test_unsupported_image_format_is_named(tmp_path):
    (tmp_path / "up").mkdir()
    Image.fromarray(np.zeros((6, 7), np.uint8)).save(tmp_path / "up" / "a.gif")
    with pytest.raises(UnsupportedFileError, match=r"a\.gif: GIF"):
        open_volume(tmp_path / "up")


def test_multipage_file_inside_a_stack_is_an_error(tmp_path, rng):
    folder = tiff_stack(tmp_path / "up", rng.integers(0, 255, (3, 8, 8), dtype=np.uint8))
    tifffile.imwrite(folder / "s1.tif", np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(UnsupportedFileError, match=r"s1\.tif: holds 2 slices"):
        read_all(folder)


def test_zip_beside_other_images_or_nested_zip(tmp_path, rng):
    folder = tiff_stack(tmp_path / "up", rng.integers(0, 255, (2, 8, 8), dtype=np.uint8))
    with zipfile.ZipFile(folder / "more.zip", "w") as zf:
        zf.write(folder / "s0.tif", "s0.tif")
    with pytest.raises(InputError, match="either one .zip or the files"):
        open_volume(folder)
    with zipfile.ZipFile(tmp_path / "outer.zip", "w") as zf:
        zf.write(folder / "more.zip", "inner/more.zip")
    with pytest.raises(UnsafeArchiveError, match="zip inside the zip"):
        open_volume(tmp_path / "outer.zip")


def test_corrupt_zip_is_named(tmp_path):
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    with pytest.raises(UnsupportedFileError, match=r"bad\.zip"):
        open_volume(tmp_path / "bad.zip")


def test_4d_tiff_is_refused(tmp_path):
    tifffile.imwrite(tmp_path / "t.tif", np.zeros((2, 3, 8, 8), np.uint8), imagej=True, metadata={"axes": "TZYX"})
    with pytest.raises(UnsupportedFileError, match=r"t\.tif.*4D"):
        open_volume(tmp_path / "t.tif")


def test_truncated_jpeg_is_caught_although_libjpeg_would_pad_it(tmp_path, rng):
    (tmp_path / "up").mkdir()
    for z in range(3):
        (tmp_path / "up" / f"{z}.jpg").write_bytes(imagecodecs.jpeg8_encode(rng.integers(0, 255, (32, 32), dtype=np.uint8)))
    data = (tmp_path / "up" / "2.jpg").read_bytes()
    (tmp_path / "up" / "2.jpg").write_bytes(data[: len(data) * 3 // 4])
    with pytest.raises(UnsupportedFileError, match=r"2\.jpg: truncated JPEG"):
        read_all(tmp_path / "up")


@pytest.mark.parametrize("keep, reason", [(0.7, "truncated DICOM"), (0.1, "no image size"), (0.02, "not a readable DICOM")])
def test_truncated_dicom_fails_before_conversion(tmp_path, dicom_series, keep, reason):
    folder, _ = dicom_series(tmp_path / "up", n=3, shape=(32, 32))
    victim = sorted(folder.iterdir())[1]
    data = victim.read_bytes()
    victim.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(UnsupportedFileError, match=rf"{victim.name}.*{reason}"):
        open_volume(folder)


def test_non_image_dicom_is_skipped_with_warning(tmp_path, dicom_series):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import BasicTextSRStorage, ExplicitVRLittleEndian, generate_uid

    folder, vol = dicom_series(tmp_path / "up", n=3)
    report = Dataset()
    report.file_meta = FileMetaDataset()
    report.file_meta.MediaStorageSOPClassUID = BasicTextSRStorage
    report.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    report.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    report.SOPClassUID = BasicTextSRStorage
    report.save_as(folder / "REPORT", enforce_file_format=True)
    data, reader = read_all(folder)
    np.testing.assert_array_equal(data, vol)
    assert any("without an image" in w and "REPORT" in w for w in reader.warnings)


def test_single_multiframe_dicom(tmp_path, rng):
    import pydicom

    vol = rng.integers(0, 4000, (4, 6, 7), dtype=np.uint16)
    path = write_dicom_slice(tmp_path / "enhanced.dcm", vol[0], position=None, instance=1)
    ds = pydicom.dcmread(path)
    ds.NumberOfFrames = 4
    ds.SpacingBetweenSlices = 2.5
    ds.PixelData = vol.tobytes()
    ds.save_as(path, enforce_file_format=True)
    data, reader = read_all(path)
    np.testing.assert_array_equal(data, vol)
    assert reader.source_kind == "dicom-series" and reader.voxel_size == pytest.approx((2.5, 0.5, 0.25))


def test_dicom_series_inside_a_zip(tmp_path, dicom_series):
    folder, vol = dicom_series(tmp_path / "series", n=4)
    with zipfile.ZipFile(tmp_path / "ct.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        for f in folder.iterdir():
            zf.write(f, f"patient/ct/{f.name}")
    data, reader = read_all(tmp_path / "ct.zip")
    np.testing.assert_array_equal(data, vol)
    assert reader.source_kind == "zip:dicom-series" and reader.voxel_size == pytest.approx((1.5, 0.5, 0.25))
