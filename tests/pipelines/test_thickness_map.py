"""The objects' local-thickness map (a real OME-Zarr), cavities and the per-class summary."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from ml4paleo.cli import main
from ml4paleo.compute.measure import local_thickness
from ml4paleo.compute.objects_chunked import slab_edges
from ml4paleo.compute.thickness_map import cavity_voxels, thickness_by_slabs
from ml4paleo.io.omezarr import open_level, read_info
from ml4paleo.pipelines.objects import objects_from_labels, thickness_path
from ml4paleo.testing.shapes import ellipsoid
from tests.pipelines.test_objects_pipeline import VOXEL, grains, write


def hollow_ball() -> np.ndarray:
    """Class 1: a ball shell (a closed cavity inside) and a solid ball; class 2: a slab 4 voxels thick."""
    labels = np.zeros((20, 40, 70), np.uint8)
    ellipsoid(labels, (20.0, 20.0, 20.0), (14.0, 14.0, 14.0), VOXEL)
    inner = np.zeros_like(labels)
    ellipsoid(inner, (20.0, 20.0, 20.0), (8.0, 8.0, 8.0), VOXEL)
    labels[inner > 0] = 0
    ellipsoid(labels, (20.0, 20.0, 52.0), (9.0, 9.0, 9.0), VOXEL)
    labels[2:6, 2:38, 40:68][labels[2:6, 2:38, 40:68] == 0] = 2
    return labels


def test_thickness_map_is_written_in_physical_units_with_cavities_and_classes(tmp_path):
    labels = hollow_ball()
    attrs = {"classes": ["background", "shell", "slab"]}
    labels_path = write(tmp_path / "labels.ome.zarr", labels, attrs=attrs)
    result = objects_from_labels(labels_path, tmp_path / "out" / "grains.ome.zarr", split="none")
    path = thickness_path(tmp_path / "out" / "grains.ome.zarr")
    assert result.thickness_path == path and path.name == "grains_thickness.ome.zarr"
    info = read_info(path)
    assert info.dtype == np.float32 and tuple(info.voxel_size) == VOXEL and info.unit == "millimeter"
    assert len(info.level_shapes) > 1  # a pyramid, for the viewer's overlay
    thickness = open_level(path, 0)[:]
    ids = open_level(result.path, 0)[:]
    assert ((thickness > 0) == (ids > 0)).all()
    for row in result.objects:
        mask = ids == row["id"]
        expected = local_thickness(mask, VOXEL)[mask]
        np.testing.assert_array_equal(thickness[mask], expected)  # each object's own thickness, in mm
        assert row["thickness_mean"] == pytest.approx(float(expected.mean()), rel=1e-6)
    slab = next(r for r in result.objects if r["class_name"] == "slab")
    assert slab["thickness_median"] == pytest.approx(4 * VOXEL[0] - VOXEL[0], abs=0.3)  # 4 slices of 2 mm: 6-8 mm
    shell, solid = sorted((r for r in result.objects if r["class"] == 1), key=lambda r: r["bbox_start"][2])
    cavity = cavity_voxels(ids == shell["id"])
    assert cavity > 100 and shell["cavity_volume"] == pytest.approx(cavity * np.prod(VOXEL))
    assert solid["cavity_volume"] == 0
    doc = json.loads(result.json_path.read_text())
    assert doc["thickness_map"] == "grains_thickness.ome.zarr"
    classes = {c["class_name"]: c for c in doc["classes"]}
    n_shell = int(((ids == shell["id"]) | (ids == solid["id"])).sum())
    assert classes["shell"]["porosity"] == pytest.approx(cavity / (n_shell + cavity))
    assert classes["slab"]["porosity"] == 0
    for name, value in (("shell", 1), ("slab", 2)):
        hist = classes[name]["thickness_histogram"]
        assert hist["bin_width"] == min(VOXEL) and sum(hist["counts"]) == int((labels == value).sum())
    assert "cavity_volume (millimeter^3)" in result.csv_path.read_text().splitlines()[0]


@pytest.mark.parametrize("depth", [1, 3, 7])
def test_map_is_the_same_whatever_the_slabs(depth):
    labels = grains()
    ids = np.zeros(labels.shape, np.uint32)
    ids[labels == 2] = 3
    ids[labels == 1] = 1
    ids[:, :, 42:][labels[:, :, 42:] == 1] = 2
    rows = []
    for i in (1, 2, 3):
        nz = np.nonzero(ids == i)
        rows.append({"id": i, "class": 1 if i < 3 else 2, "bbox_start": [int(a.min()) for a in nz],
                     "bbox_stop": [int(a.max()) + 1 for a in nz]})
    out = np.full(ids.shape, -1.0, np.float32)

    def write_slab(z0, slab):
        out[z0:z0 + len(slab)] = slab

    thickness_by_slabs(ids, rows, slab_edges(ids.shape[0], depth), VOXEL, write_slab)
    whole = np.zeros(ids.shape, np.float32)
    for i in (1, 2, 3):
        whole += local_thickness(ids == i, VOXEL)
    np.testing.assert_array_equal(out, whole)


def test_cli_prints_the_thickness_map_and_classes(tmp_path):
    labels_path = write(tmp_path / "labels.ome.zarr", hollow_ball(), attrs={"classes": ["background", "shell", "slab"]})
    res = CliRunner().invoke(main, ["objects", str(labels_path), str(tmp_path / "o" / "objects.ome.zarr"),
                                    "--split", "none"])
    assert res.exit_code == 0, res.output
    assert "objects_thickness.ome.zarr" in res.output and "porosity" in res.output


def test_worker_processes_give_the_same_objects_map_and_table(tmp_path):
    """Pieces split and measured, and thicknesses computed, on worker processes: the same ids,
    map and rows as in this process."""
    labels_path = write(tmp_path / "labels.ome.zarr", hollow_ball(), attrs={"classes": ["background", "shell", "slab"]})
    serial = objects_from_labels(labels_path, tmp_path / "a" / "objects.ome.zarr", scheduler="synchronous")
    pooled = objects_from_labels(labels_path, tmp_path / "b" / "objects.ome.zarr", scheduler="processes")
    assert (open_level(serial.path, 0)[:] == open_level(pooled.path, 0)[:]).all()
    assert (open_level(serial.thickness_path, 0)[:] == open_level(pooled.thickness_path, 0)[:]).all()
    assert serial.objects == pooled.objects and serial.classes == pooled.classes
