"""NIfTI and 3D Slicer exports, read back with the libraries' own readers (nibabel, pynrrd):
the voxels, the voxel size and, for Slicer, every segment's name, colour, label and extent."""

from __future__ import annotations

import nibabel as nib
import nrrd
import numpy as np
import pytest
from click.testing import CliRunner

from ml4paleo.cli import main
from ml4paleo.errors import InputError
from ml4paleo.io.exports_medical import nifti_spacing
from ml4paleo.io.omezarr import OmeZarrWriter
from ml4paleo.pipelines.export import export_volume

VOXEL = (3.0, 0.5, 0.25)  # z, y, x: unequal, so an axis swap shows
CLASSES = [{"value": 1, "name": "matrix", "color": "#000000"}, {"value": 2, "name": "shell", "color": "#ff8000"},
           {"value": 3, "name": "infill", "color": "#00ff40"}, {"value": 4, "name": "pyrite", "color": "#0000ff"}]


def _labels() -> np.ndarray:
    """Labels 1 and 2 in boxes of known extent, label 3 (a class) absent, label 5 (no class) one voxel."""
    labels = np.zeros((11, 10, 12), np.uint8)
    labels[1:9, 2:8, 3:10] = 1
    labels[2:4, 3:5, 4:6] = 2
    labels[10, 0, 11] = 5
    return labels


def _write(path, data, kind="labels", unit="micrometer", attrs=None):
    with OmeZarrWriter(path, data.shape, data.dtype, kind=kind, voxel_size=VOXEL, unit=unit, chunks=4,
                       attrs=attrs or {}) as w:
        for z0 in range(0, len(data), 4):  # several slabs: the streaming joins them
            w.write_slab(z0, data[z0 : z0 + 4])
    return path


def test_seg_nrrd_round_trip_labels_names_colours_extents_spacing(tmp_path):
    labels = _labels()
    src = _write(tmp_path / "seg.ome.zarr", labels, attrs={"classes": ["matrix", "shell", "infill", "pyrite"]})
    out = export_volume(src, tmp_path / "seg.seg.nrrd", format="seg-nrrd", classes=CLASSES)
    data, header = nrrd.read(str(out), index_order="C")
    assert data.dtype == np.uint8 and np.array_equal(data, labels)
    assert header["space"] == "left-posterior-superior" and list(header["space units"]) == ["mm", "mm", "mm"]
    np.testing.assert_allclose(header["space directions"], np.diag([0.25e-3, 0.5e-3, 3e-3]))  # x, y, z in mm
    segments = {}
    i = 0
    while f"Segment{i}_ID" in header:
        segments[int(header[f"Segment{i}_LabelValue"])] = {k: header[f"Segment{i}_{k}"]
                                                           for k in ("Name", "Color", "Extent", "Layer")}
        i += 1
    assert sorted(segments) == [1, 2, 3, 5]  # every structure class, and the stray label; not the background
    assert segments[1]["Name"] == "shell" and segments[2]["Name"] == "infill" and segments[5]["Name"] == "label 5"
    np.testing.assert_allclose([float(v) for v in segments[1]["Color"].split()], [1.0, 128 / 255, 0.0])
    assert segments[1]["Extent"] == "3 9 2 7 1 8" and segments[2]["Extent"] == "4 5 3 4 2 3"  # x0 x1 y0 y1 z0 z1
    assert segments[3]["Extent"] == "0 -1 0 -1 0 -1"  # absent: Slicer's empty extent
    assert segments[5]["Extent"] == "11 11 0 0 10 10"
    assert {s["Layer"] for s in segments.values()} == {"0"}
    assert header["Segmentation_MasterRepresentation"] == "Binary labelmap"


def test_seg_nrrd_without_job_classes_uses_the_segmentation_names(tmp_path):
    labels = _labels()
    src = _write(tmp_path / "seg.ome.zarr", labels, attrs={"classes": ["background", "fossil"]})
    _, header = nrrd.read(str(export_volume(src, tmp_path / "s.seg.nrrd", format="seg-nrrd")))
    assert header["Segment0_Name"] == "fossil" and header["Segment0_LabelValue"] == "1"
    np.testing.assert_allclose([float(v) * 255 for v in header["Segment0_Color"].split()], [0xF5, 0x9E, 0x0B])


@pytest.mark.parametrize("unit, zooms, nifti_unit", [
    ("micrometer", (0.25, 0.5, 3.0), "micron"),
    ("millimeter", (0.25, 0.5, 3.0), "mm"),
    ("nanometer", (0.25e-3, 0.5e-3, 3e-3), "micron"),  # NIfTI has no nanometre: the nearest unit it has
])
def test_nifti_round_trip_volume_voxels_and_voxel_size(tmp_path, rng, unit, zooms, nifti_unit):
    vol = rng.integers(0, 65535, size=(9, 7, 5), dtype=np.uint16)
    src = _write(tmp_path / "vol.ome.zarr", vol, kind="image", unit=unit)
    img = nib.load(export_volume(src, tmp_path / "vol.nii.gz", format="nifti"))
    back = np.asarray(img.dataobj)
    assert back.dtype == np.uint16 and back.shape == (5, 7, 9)  # i = x, j = y, k = z (the scan axis)
    assert np.array_equal(back.transpose(2, 1, 0), vol)
    np.testing.assert_allclose(img.header.get_zooms(), zooms, rtol=1e-6)
    assert img.header.get_xyzt_units()[0] == nifti_unit
    assert nib.aff2axcodes(img.affine) == ("L", "P", "S")  # the same world as the .seg.nrrd
    assert int(img.header["sform_code"]) == int(img.header["qform_code"]) == 1
    assert img.header.get_intent()[0] == "none"  # a scan, not labels


def test_nifti_of_labels_is_8_bit(tmp_path):
    labels = _labels().astype(np.uint16)
    src = _write(tmp_path / "seg.ome.zarr", labels)
    img = nib.load(export_volume(src, tmp_path / "seg.nii.gz", format="nifti"))
    assert img.get_data_dtype() == np.uint8 and img.header.get_intent()[0] == "label"
    assert np.array_equal(np.asarray(img.dataobj).transpose(2, 1, 0), labels)


def test_seg_nrrd_of_an_image_is_refused_and_leaves_nothing(tmp_path, rng):
    src = _write(tmp_path / "vol.ome.zarr", rng.integers(0, 9, (4, 5, 6), dtype=np.uint8), kind="image")
    with pytest.raises(InputError, match="not a segmentation"):
        export_volume(src, tmp_path / "v.seg.nrrd", format="seg-nrrd")
    assert not list(tmp_path.glob("v.seg.nrrd*"))
    res = CliRunner().invoke(main, ["export", str(src), str(tmp_path / "v.seg.nrrd"), "--format", "seg-nrrd"])
    assert res.exit_code != 0 and "Error:" in res.output and "not a segmentation" in res.output


def test_cli_exports_seg_nrrd_and_nifti(tmp_path):
    labels = _labels()
    src = _write(tmp_path / "seg.ome.zarr", labels, attrs={"classes": ["background", "fossil"]})
    for fmt, name in (("seg-nrrd", "l.seg.nrrd"), ("nifti", "l.nii.gz")):
        res = CliRunner().invoke(main, ["export", str(src), str(tmp_path / name), "--format", fmt])
        assert res.exit_code == 0, res.output
    assert np.array_equal(nrrd.read(str(tmp_path / "l.seg.nrrd"), index_order="C")[0], labels)
    assert np.array_equal(np.asarray(nib.load(tmp_path / "l.nii.gz").dataobj).transpose(2, 1, 0), labels)


def test_nifti_spacing_units():
    assert nifti_spacing((3.0, 2.0, 1.0), "centimeter") == ((10.0, 20.0, 30.0), "mm")
    assert nifti_spacing((1.0, 1.0, 10.0), "angstrom") == ((pytest.approx(1e-3), pytest.approx(1e-4),
                                                           pytest.approx(1e-4)), "micron")
