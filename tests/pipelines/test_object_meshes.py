"""One smoothed STL per object in a zip (``objects --per-object``), read back from the file."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import trimesh
from click.testing import CliRunner

from ml4paleo.cli import main
from ml4paleo.errors import InputError, OutputExistsError
from ml4paleo.pipelines.object_meshes import meshes_zip_path, write_object_meshes
from ml4paleo.pipelines.objects import objects_from_labels
from tests.pipelines.test_objects_pipeline import VOXEL, grains, write


def test_cli_per_object_zip_holds_one_closed_mesh_per_object_in_place(tmp_path):
    labels_path = write(tmp_path / "labels.ome.zarr", grains(), attrs={"classes": ["background", "grain", "plate"]})
    out = tmp_path / "o" / "grains.ome.zarr"
    res = CliRunner().invoke(main, ["objects", str(labels_path), str(out), "--per-object"])
    assert res.exit_code == 0, res.output
    zipped = meshes_zip_path(out)
    assert zipped.name == "grains_meshes.zip" and str(zipped) in res.output
    rows = objects_from_labels(labels_path, tmp_path / "again.ome.zarr").objects
    with zipfile.ZipFile(zipped) as zf:
        assert sorted(zf.namelist()) == sorted(f"object_{r['id']}.stl" for r in rows)
        for r in rows:
            mesh = trimesh.load(io.BytesIO(zf.read(f"object_{r['id']}.stl")), file_type="stl")
            assert mesh.is_watertight and mesh.is_winding_consistent
            edges = np.sort(mesh.edges, axis=1)
            assert (np.unique(edges, axis=0, return_counts=True)[1] == 2).all()
            assert mesh.volume == pytest.approx(r["volume"], rel=0.05 if r["class"] == 1 else 0.25)
            centre = mesh.center_mass[::-1]  # files are (x, y, z)
            np.testing.assert_allclose(centre, r["centroid"], atol=max(VOXEL))  # in place, physical units
    assert not list(zipped.parent.glob("*.partial-*"))


def test_refusals_write_nothing(tmp_path):
    labels_path = write(tmp_path / "labels.ome.zarr", grains())
    result = objects_from_labels(labels_path, tmp_path / "objects.ome.zarr")
    target = tmp_path / "objects_meshes.zip"
    with pytest.raises(InputError, match="ml4paleo mesh"):
        write_object_meshes(result.path, result.objects, target, max_box_voxels=10)
    assert not target.exists()
    write_object_meshes(result.path, result.objects[:1], target)
    with pytest.raises(OutputExistsError):
        write_object_meshes(result.path, result.objects, target)
    assert sorted(p.name for p in tmp_path.iterdir() if "partial" in p.name) == []
