"""objects_from_labels over real OME-Zarr volumes, the corrections, and the ``objects`` command."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner

from ml4paleo.cli import main
from ml4paleo.compute.objects import objects_whole
from ml4paleo.errors import InputError, NotALabelMap, OutputExistsError
from ml4paleo.io.annotations import write_annotation
from ml4paleo.io.omezarr import OmeZarrWriter, open_level, read_info
from ml4paleo.pipelines.objects import objects_from_labels
from ml4paleo.testing.shapes import ellipsoid, plate, touching_pair

VOXEL = (2.0, 1.0, 1.0)


def grains() -> np.ndarray:
    """Class 1 "grain": a touching pair and a lone ball; class 2 "plate": a plate."""
    labels = np.zeros((24, 40, 80), np.uint8)
    touching_pair(labels, (24.0, 20.0, 24.0), 9.0, 10.0, 0.3, VOXEL)
    ellipsoid(labels, (24.0, 20.0, 62.0), (8.0, 8.0, 8.0), VOXEL)
    plate(labels, (2.0, 2.0, 2.0), (4.0, 10.0, 70.0), VOXEL, value=2)
    return labels


def write(path, vol, kind="labels", chunks=8, attrs=None):
    with OmeZarrWriter(path, vol.shape, vol.dtype, voxel_size=VOXEL, unit="millimeter", kind=kind, chunks=chunks,
                       attrs=attrs or {}, pyramid_min_size=8) as w:
        w.write_slab(0, vol)
    return path


@pytest.fixture
def world(tmp_path):
    labels = grains()
    scan = (labels.astype(np.uint16) * 1000 + 100).astype(np.uint16)
    scan_path = write(tmp_path / "scan.ome.zarr", scan, kind="image")
    attrs = {"classes": ["background", "grain", "plate"], "source": str(scan_path)}
    return write(tmp_path / "labels.ome.zarr", labels, attrs=attrs), labels


def test_objects_volume_table_and_grey(world, tmp_path):
    labels_path, labels = world
    out = tmp_path / "objs" / "objects.ome.zarr"
    result = objects_from_labels(labels_path, out, classes=["grain"])
    ids = np.asarray(open_level(out, 0))
    whole, _ = objects_whole(labels, [1], VOXEL)
    np.testing.assert_array_equal(ids, whole)  # slabs of 8 slices give the whole volume's objects
    info = read_info(out)
    assert info.dtype == np.uint32 and info.kind == "labels" and info.voxel_size == VOXEL and len(info.level_shapes) > 1
    assert [o["id"] for o in result.objects] == [1, 2, 3]
    assert {o["class_name"] for o in result.objects} == {"grain"}
    assert all(o["grey_mean"] == pytest.approx(1100.0) for o in result.objects)
    rows = list(csv.DictReader(open(tmp_path / "objs" / "objects.csv")))
    assert len(rows) == 3 and float(rows[2]["volume (millimeter^3)"]) == pytest.approx(result.objects[2]["volume"], rel=1e-5)
    doc = json.loads((tmp_path / "objs" / "objects.json").read_text())
    assert doc["unit"] == "millimeter" and doc["parameters"]["split"] == "auto" and len(doc["objects"]) == 3
    assert doc["objects"] == json.loads(json.dumps(result.objects))  # the rows as returned, one per line
    assert len((tmp_path / "objs" / "objects.json").read_text().splitlines()) > 3
    with pytest.raises(OutputExistsError):
        objects_from_labels(labels_path, out)


def test_split_none_every_class_and_min_size(world, tmp_path):
    labels_path, _ = world
    result = objects_from_labels(labels_path, tmp_path / "o.ome.zarr", split="none", min_size=10)
    assert result.csv_path == tmp_path / "o.csv" and result.json_path.exists()  # named after OUT: runs never clash
    assert sorted(o["class_name"] for o in result.objects) == ["grain", "grain", "plate"]


def test_merge_then_seeds_update_the_table(world, tmp_path):
    labels_path, _ = world
    out = tmp_path / "o.ome.zarr"
    first = objects_from_labels(labels_path, out, classes=[1])
    volumes = {o["id"]: o["voxel_count"] for o in first.objects}
    seeds = np.zeros((40, 80), np.uint8)
    seeds[20, 56] = 1  # two strokes on the lone ball (object 3) on slice 12
    seeds[20, 68] = 2
    result = objects_from_labels(labels_path, out, classes=[1], merge=[(1, 2)], seeds=[(12, seeds)], overwrite=True)
    by_id = {o["id"]: o for o in result.objects}
    assert sorted(by_id) == [1, 3, 4]
    assert by_id[1]["voxel_count"] == volumes[1] + volumes[2]
    assert by_id[3]["voxel_count"] + by_id[4]["voxel_count"] == volumes[3]
    ids = np.asarray(open_level(out, 0))
    assert ids[12, 20, 56] == 3 and ids[12, 20, 68] == 4 and not (ids == 2).any()
    assert len(result.messages) == 2
    assert np.asarray(open_level(out, 1)).max() == 4  # the pyramid follows the corrections


def test_bad_input_is_refused_clearly(world, tmp_path):
    labels_path, labels = world
    with pytest.raises(InputError, match="class 'bone'.*grain \\(1\\)"):
        objects_from_labels(labels_path, tmp_path / "a.ome.zarr", classes=["bone"])
    with pytest.raises(InputError, match="no object 9"):
        objects_from_labels(labels_path, tmp_path / "b.ome.zarr", classes=[1], merge=[(1, 9)])
    seeds = np.zeros((40, 80), np.uint8)
    seeds[20, 10], seeds[20, 62] = 1, 2  # on two objects
    with pytest.raises(InputError, match="one object"):
        objects_from_labels(labels_path, tmp_path / "c.ome.zarr", classes=[1], seeds=[(12, seeds)])
    with pytest.raises(InputError, match="split must be"):
        objects_from_labels(labels_path, tmp_path / "d.ome.zarr", split="yes")
    scan = write(tmp_path / "scan2.ome.zarr", labels.astype(np.uint16), kind="image")
    with pytest.raises(NotALabelMap):
        objects_from_labels(scan, tmp_path / "e.ome.zarr")
    assert not list(tmp_path.glob("*.partial-*")) and not (tmp_path / "objects.csv").exists()


def test_objects_command(world, tmp_path):
    labels_path, _ = world
    seeds_dir = tmp_path / "strokes"
    seeds = np.zeros((40, 80), np.uint8)
    seeds[20, 56], seeds[20, 68] = 1, 2
    seeds_png = write_annotation(seeds_dir, 12, seeds)
    out = tmp_path / "cli" / "objects.ome.zarr"
    res = CliRunner().invoke(main, ["objects", str(labels_path), str(out), "--class", "grain", "--merge", "1,2",
                                    "--seeds", str(seeds_png)])
    assert res.exit_code == 0, res.output
    assert "merged objects 1, 2 into 1" in res.output and "split object 3 into 3, 4" in res.output
    assert "wrote 3 object(s)" in res.output
    assert (tmp_path / "cli" / "objects.csv").exists()
    # one object's mesh, from the CLI: the object volume is a label map `mesh` takes
    meshed = CliRunner().invoke(main, ["mesh", str(out), str(tmp_path / "meshes"), "--labels", "4"])
    assert meshed.exit_code == 0, meshed.output
    doc = json.loads((tmp_path / "meshes" / "meshes.json").read_text())
    assert [m["label"] for m in doc["meshes"]] == [4] and doc["meshes"][0]["name"] == "label 4"
    bad = CliRunner().invoke(main, ["objects", str(labels_path), str(tmp_path / "x.ome.zarr"), "--merge", "1,a"])
    assert bad.exit_code == 2 and "12,15" in bad.output
    bad = CliRunner().invoke(main, ["objects", str(labels_path), str(out), "--class", "grain"])
    assert bad.exit_code == 2 and "already exists" in bad.output


def test_slabs_thinner_than_a_chunk_give_the_same_objects(world, tmp_path, monkeypatch):
    from ml4paleo.pipelines import objects as pipeline

    labels_path, labels = world
    assert pipeline.slab_depth((24, 40, 80), 8, target=3 * 40 * 80) == 2  # a divisor of the chunk depth
    assert pipeline.slab_depth((24, 40, 80), 8, target=10**9) == 8 * (10**9 // (8 * 40 * 80))
    monkeypatch.setattr(pipeline, "SLAB_VOXELS", 3 * 40 * 80)  # slabs of 2 slices, chunks of 8
    objects_from_labels(labels_path, tmp_path / "thin.ome.zarr", classes=[1])
    whole, _ = objects_whole(labels, [1], VOXEL)
    np.testing.assert_array_equal(np.asarray(open_level(tmp_path / "thin.ome.zarr", 0)), whole)
