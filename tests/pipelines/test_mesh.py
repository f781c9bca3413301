"""mesh_labels over a real OME-Zarr label volume, and the ``mesh`` command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
from click.testing import CliRunner

from scipy.spatial import cKDTree

from ml4paleo.compute import mesh as meshing
from ml4paleo.compute.smooth_mesh import sinc_smooth
from ml4paleo.cli import main
from ml4paleo.errors import Cancelled, InputError, OutputExistsError
from ml4paleo.io.omezarr import OmeZarrWriter, read_info
from ml4paleo.pipelines.mesh import _grid, mesh_labels

VOXEL = (2.0, 0.5, 0.75)
RADIUS = 12.0


def ball_and_box() -> np.ndarray:
    """Label 1: a ball of RADIUS micrometres; label 2: a box touching it; label 0 elsewhere."""
    shape = tuple(int(np.ceil(2 * RADIUS / v)) + 6 for v in VOXEL)
    z, y, x = np.meshgrid(*[(np.arange(n) - (n - 1) / 2) * v for n, v in zip(shape, VOXEL)], indexing="ij")
    vol = (z**2 + y**2 + x**2 <= RADIUS**2).astype(np.uint8)
    vol[2:6, 2:12, : shape[2] // 2][vol[2:6, 2:12, : shape[2] // 2] == 0] = 2
    return vol


def write_labels(path, vol, voxel_size=VOXEL, chunks=16):
    with OmeZarrWriter(path, vol.shape, np.uint8, voxel_size=voxel_size, kind="labels", chunks=chunks,
                       pyramid_min_size=8) as w:
        w.write_slab(0, vol)
    return path


def in_sorted_vertex_order(vertices, faces):
    """The mesh with its vertices sorted (z, y, x) and its faces canonical, as ``weld`` gives
    them: streamed meshes number vertices in the order chunks first meet them."""
    order = np.lexsort(vertices.T[::-1])
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    return vertices[order], meshing.canonical_faces(rank[faces])


@pytest.fixture
def labels_path(tmp_path):
    return write_labels(tmp_path / "labels.ome.zarr", ball_and_box())


def test_meshes_files_and_measurements(labels_path, tmp_path):
    vol = ball_and_box()
    calls = []
    result = mesh_labels(labels_path, tmp_path / "meshes", formats=("stl", "ply"), chunk=10, scheduler="sync",
                         progress=lambda d, t, s="": calls.append(d / t))
    names = sorted(p.name for p in result.files)
    assert names == ["label_1_micrometer.ply", "label_1_micrometer.stl",
                     "label_2_micrometer.ply", "label_2_micrometer.stl"]
    assert calls[-1] == 1.0 and calls == sorted(calls)
    doc = json.loads((tmp_path / "meshes" / "meshes.json").read_text())
    assert doc["unit"] == "micrometer" and doc["voxel_size"] == list(VOXEL)
    ball = {m["label"]: m for m in doc["meshes"]}[1]["measurements"]
    assert ball["volume"] == pytest.approx(4 / 3 * np.pi * RADIUS**3, rel=0.02)
    assert ball["voxel_count"] == int((vol == 1).sum())
    assert ball["voxel_volume"] == pytest.approx(ball["voxel_count"] * np.prod(VOXEL))
    assert ball["components"] == 1 and ball["watertight"] and ball["volume_unit"] == "micrometer^3"
    for label in (1, 2):
        mesh = trimesh.load(tmp_path / "meshes" / f"label_{label}_micrometer.stl", force="mesh")
        assert mesh.is_watertight and mesh.volume > 0
        assert len(mesh.faces) == result.measurements[label]["triangles"]
    assert not list(tmp_path.glob("*.partial-*"))


def test_same_mesh_as_one_call_and_with_processes(labels_path, tmp_path):
    vol = ball_and_box()
    whole = meshing.mesh_array(vol, chunk=max(vol.shape), voxel_size=VOXEL)
    result = mesh_labels(labels_path, tmp_path / "m", formats=("ply",), chunk=8, scheduler="processes", smooth=0)
    for label in (1, 2):
        mesh = trimesh.load(tmp_path / "m" / f"label_{label}_micrometer.ply", process=False)
        verts, faces = in_sorted_vertex_order(mesh.vertices[:, ::-1], mesh.faces[:, ::-1])
        np.testing.assert_allclose(verts, whole[label][0], atol=1e-9)
        assert np.array_equal(faces, whole[label][1])
    assert result.measurements[1]["triangles"] == len(whole[1][1])


def test_smoothed_by_default_seamless_closed_and_volume_kept(labels_path, tmp_path):
    """The default mesh is smoothed chunk by chunk: read back from the STL file, it is the
    whole volume's surface smoothed in one piece (no seam at the 8-voxel chunk planes), closed,
    each edge between two faces, and its volume within 2 % of the voxels'."""
    vol = ball_and_box()
    whole = meshing.mesh_array(vol, chunk=max(vol.shape), voxel_size=VOXEL)
    result = mesh_labels(labels_path, tmp_path / "m", chunk=8, scheduler="processes")
    for label in (1, 2):
        mesh = trimesh.load(tmp_path / "m" / f"label_{label}_micrometer.stl", force="mesh")  # welds by position
        assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0
        edges = np.sort(mesh.edges, axis=1)
        assert (np.unique(edges, axis=0, return_counts=True)[1] == 2).all()  # edge-manifold
        reference = sinc_smooth(*whole[label])
        distance, _ = cKDTree(reference).query(mesh.vertices[:, ::-1])
        assert distance.max() < 1e-4  # STL stores float32
        assert len(mesh.faces) == len(whole[label][1]) == result.measurements[label]["triangles"]
        m = result.measurements[label]
        assert m["watertight"] and m["volume"] == pytest.approx(m["voxel_volume"], rel=0.02 if label == 1 else 0.1)
    ball = result.measurements[1]
    assert ball["volume"] == pytest.approx(4 / 3 * np.pi * RADIUS**3, rel=0.02)


def test_empty_label_gets_a_message_not_a_file(labels_path, tmp_path):
    result = mesh_labels(labels_path, tmp_path / "m", labels=[2, 7], scheduler="sync", chunk=16)
    assert [p.name for p in result.files] == ["label_2_micrometer.stl"]
    assert result.messages == ["label 7 has no voxels in labels.ome.zarr; no mesh written"]
    doc = json.loads((tmp_path / "m" / "meshes.json").read_text())
    assert doc["messages"] == result.messages
    assert {m["label"]: m["files"] for m in doc["meshes"]} == {2: {"stl": "label_2_micrometer.stl"}, 7: {}}


def test_all_empty_volume(tmp_path):
    path = write_labels(tmp_path / "empty.ome.zarr", np.zeros((8, 9, 10), np.uint8))
    result = mesh_labels(path, tmp_path / "m", scheduler="sync")
    assert result.files == [] and result.measurements == {}
    assert json.loads((tmp_path / "m" / "meshes.json").read_text())["meshes"] == []


def test_downsample_reads_the_pyramid_and_scales_units(labels_path, tmp_path):
    vol = ball_and_box()
    info = read_info(labels_path)
    assert _grid(info, 2)[:2] == (1, 1)  # a stored level is read
    assert _grid(info, 3)[:2] == (0, 3)  # else every third voxel of level 0
    result = mesh_labels(labels_path, tmp_path / "m", labels=[1], downsample=2, formats=("ply",),
                         scheduler="sync", chunk=8)
    expected = meshing.mesh_array(vol[::2, ::2, ::2], voxel_size=tuple(2 * v for v in VOXEL))[1]
    assert result.measurements[1]["triangles"] == len(expected[1])
    assert result.voxel_size == tuple(2 * v for v in VOXEL)
    assert result.measurements[1]["volume"] == pytest.approx(4 / 3 * np.pi * RADIUS**3, rel=0.06)


def test_simplify_and_smooth_keep_meshes_closed(labels_path, tmp_path):
    full = mesh_labels(labels_path, tmp_path / "a", labels=[1], scheduler="sync")
    result = mesh_labels(labels_path, tmp_path / "b", labels=[1], simplify=0.2, formats=("obj",),
                         scheduler="sync")
    m = result.measurements[1]
    assert m["watertight"] and m["triangles"] <= 0.3 * full.measurements[1]["triangles"]
    assert m["volume"] == pytest.approx(full.measurements[1]["volume"], rel=0.03)
    bounded = mesh_labels(labels_path, tmp_path / "c", labels=[1], max_error=1.0, scheduler="sync", smooth=0)
    assert bounded.measurements[1]["watertight"]
    assert bounded.measurements[1]["triangles"] < full.measurements[1]["triangles"]


def test_bad_parameters_and_existing_output(labels_path, tmp_path):
    out = tmp_path / "m"
    for kwargs, match in [({"labels": [0, 1]}, "label 0"), ({"downsample": 0}, "downsample"),
                          ({"simplify": 2.0}, "simplify"), ({"formats": ("fbx",)}, "formats"),
                          ({"smooth": -1}, "smooth"), ({"smooth": 1.5}, "smooth"), ({"max_error": -1.0}, "max_error")]:
        with pytest.raises(InputError, match=match):
            mesh_labels(labels_path, out, **kwargs)
    image = tmp_path / "image.ome.zarr"
    with OmeZarrWriter(image, (4, 4, 4), np.float32) as w:
        w.write_slab(0, np.zeros((4, 4, 4), np.float32))
    with pytest.raises(InputError, match="integer"):
        mesh_labels(image, out)
    scan = tmp_path / "scan.ome.zarr"
    with OmeZarrWriter(scan, (4, 4, 4), np.uint16) as w:
        w.write_slab(0, np.full((4, 4, 4), 7, np.uint16))
    with pytest.raises(InputError, match="image volume"):
        mesh_labels(scan, out)
    assert mesh_labels(scan, tmp_path / "scan_meshes", labels=[7]).measurements[7]["watertight"]
    mesh_labels(labels_path, out, labels=[2], scheduler="sync")
    with pytest.raises(OutputExistsError):
        mesh_labels(labels_path, out, labels=[2], scheduler="sync")
    mesh_labels(labels_path, out, labels=[1], scheduler="sync", overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["label_1_micrometer.stl", "meshes.json"]


def test_cancel_leaves_nothing(labels_path, tmp_path):
    def cancel(done, total, stage=""):
        if done / total > 0.7:
            raise Cancelled("stop")

    with pytest.raises(Cancelled):
        mesh_labels(labels_path, tmp_path / "m", scheduler="sync", chunk=8, progress=cancel)
    assert list(tmp_path.iterdir()) == [labels_path]


def test_cli_mesh(labels_path, tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli"
    res = runner.invoke(main, ["mesh", str(labels_path), str(out), "--labels", "1,9", "--format", "stl,glb",
                               "--chunk", "16", "--scheduler", "synchronous"])
    assert res.exit_code == 0, res.output
    assert "label 1: volume" in res.output and "label 9 has no voxels" in res.output
    assert sorted(p.name for p in out.iterdir()) == ["label_1_micrometer.glb", "label_1_micrometer.stl",
                                                     "meshes.json"]
    res = runner.invoke(main, ["mesh", str(labels_path), str(out)])
    assert res.exit_code != 0 and "already exists" in res.output


def test_real_scan_segmentation_meshes_closed(snow_volume, tmp_path):
    """Snow grains of the real micro-CT scan (threshold): many touching, holed parts; the
    welded mesh is still closed and its volume matches the voxels."""
    from skimage.filters import threshold_otsu

    labels = (snow_volume > threshold_otsu(snow_volume)).astype(np.uint8)
    path = write_labels(tmp_path / "snow_labels.ome.zarr", labels, voxel_size=(15.0, 15.0, 15.0), chunks=32)
    result = mesh_labels(path, tmp_path / "m", chunk=40, scheduler="sync")
    m = result.measurements[1]
    assert m["watertight"] and m["components"] >= 1
    assert m["volume"] == pytest.approx(labels.sum() * 15.0**3, rel=0.02)  # smoothed: thin grains lose 1.2 %
    assert m["voxel_count"] == int(labels.sum())


def test_preview_is_a_closed_light_copy_of_the_same_mesh(labels_path, tmp_path):
    full = mesh_labels(labels_path, tmp_path / "meshes", labels=[1], scheduler="sync")
    triangles = full.measurements[1]["triangles"]
    budget = triangles // 4
    mesh_labels(labels_path, tmp_path / "with_preview", labels=[1], scheduler="sync", preview_triangles=budget)
    doc = json.loads((tmp_path / "with_preview" / "meshes.json").read_text())
    entry = doc["meshes"][0]
    assert entry["preview"] == "preview/label_1_micrometer.ply"
    assert entry["measurements"]["triangles"] == triangles  # downloads keep full resolution
    preview = trimesh.load(tmp_path / "with_preview" / entry["preview"], force="mesh")
    assert len(preview.faces) <= budget * 1.2 and preview.is_watertight
    assert preview.volume == pytest.approx(full.measurements[1]["volume"], rel=0.05)
    small = mesh_labels(labels_path, tmp_path / "no_preview", labels=[1], scheduler="sync",
                        preview_triangles=triangles)
    assert "preview" not in json.loads((small.out_dir / "meshes.json").read_text())["meshes"][0]


def test_streamed_meshes_are_the_one_call_meshes(labels_path, tmp_path):
    """Without simplification the meshes are welded and written piece by piece (never whole):
    still closed, with the one-call mesh's triangles, volume and measurements, in every format."""
    vol = ball_and_box()
    whole = meshing.mesh_array(vol, chunk=max(vol.shape), voxel_size=VOXEL)
    result = mesh_labels(labels_path, tmp_path / "m", formats=("stl", "obj", "ply"), chunk=6, scheduler="sync",
                         smooth=0)
    for label in (1, 2):
        ref = meshing.measure_mesh(*whole[label])
        got = dict(result.measurements[label])
        assert got["triangles"] == ref["triangles"] == len(whole[label][1]) and got["watertight"]
        assert got["volume"] == pytest.approx(ref["volume"], rel=1e-9)
        assert {k: got[k] for k in ("components", "cavities", "vertices", "bounding_box")} == \
            {k: ref[k] for k in ("components", "cavities", "vertices", "bounding_box")}
        for fmt in ("stl", "obj", "ply"):
            mesh = trimesh.load(tmp_path / "m" / f"label_{label}_micrometer.{fmt}", force="mesh")
            assert mesh.is_watertight and len(mesh.faces) == ref["triangles"]
            assert mesh.volume == pytest.approx(ref["volume"], rel=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.ome.zarr", "m"]  # no scratch left


def test_preview_of_a_label_too_big_to_weld_comes_from_a_coarser_grid(labels_path, tmp_path, monkeypatch):
    import ml4paleo.pipelines.mesh as mesh_mod

    full = mesh_labels(labels_path, tmp_path / "a", labels=[1], scheduler="sync")
    triangles = full.measurements[1]["triangles"]
    monkeypatch.setattr(mesh_mod, "PREVIEW_WELD_MAX_TRIANGLES", triangles // 3)
    result = mesh_labels(labels_path, tmp_path / "b", labels=[1], scheduler="sync", chunk=8,
                         preview_triangles=triangles // 8)
    got, ref = dict(result.measurements[1]), dict(full.measurements[1])
    assert got.pop("surface_area") == pytest.approx(ref.pop("surface_area"), rel=1e-12)
    assert got.pop("volume") == pytest.approx(ref.pop("volume"), rel=1e-12)
    assert got == ref  # the download is the full mesh (chunk 8 vs 256: sums in another order)
    entry = json.loads((tmp_path / "b" / "meshes.json").read_text())["meshes"][0]
    preview = trimesh.load(tmp_path / "b" / entry["preview"], force="mesh")
    assert preview.is_watertight and len(preview.faces) <= triangles // 8 * 1.2
    assert preview.volume == pytest.approx(full.measurements[1]["volume"], rel=0.15)


def test_max_error_alone_streams_simplified_pieces_closed_and_manifold(labels_path, tmp_path):
    """max_error without a ratio simplifies each chunk's piece with its border kept: the label
    still streams, and the welded mesh is closed, manifold and oriented, within the error of
    the full-resolution surface; the whole-mesh path (GLB) gives the same mesh."""
    from scipy.spatial import cKDTree

    full = mesh_labels(labels_path, tmp_path / "full", labels=[1], scheduler="sync", chunk=6, formats=("ply",),
                       smooth=0)
    half = 0.5 * max(VOXEL)
    streamed = mesh_labels(labels_path, tmp_path / "s", labels=[1], max_error=half, scheduler="sync", chunk=6,
                           formats=("ply", "stl"), smooth=0)
    whole = mesh_labels(labels_path, tmp_path / "w", labels=[1], max_error=half, scheduler="sync", chunk=6,
                        formats=("ply", "glb"), smooth=0)
    ref, got = full.measurements[1], streamed.measurements[1]
    assert got["watertight"] and got["components"] == ref["components"] and got["cavities"] == ref["cavities"]
    assert got["triangles"] < 0.6 * ref["triangles"]
    assert got["volume"] == pytest.approx(ref["volume"], rel=0.02)
    assert whole.measurements[1]["triangles"] == got["triangles"]
    assert whole.measurements[1]["volume"] == pytest.approx(got["volume"], rel=1e-9)
    original = trimesh.load(tmp_path / "full" / "label_1_micrometer.ply", force="mesh")
    for path in (tmp_path / "s" / "label_1_micrometer.ply", tmp_path / "s" / "label_1_micrometer.stl",
                 tmp_path / "w" / "label_1_micrometer.ply"):
        mesh = trimesh.load(path, force="mesh")
        assert mesh.is_watertight and mesh.is_winding_consistent and mesh.euler_number == original.euler_number
        assert len(mesh.faces) == got["triangles"]
        assert meshing.closed_and_oriented(np.asarray(mesh.faces))  # each edge in exactly two faces, once each way
        # vertices stay within the bound of the original surface (its vertices, plus their spacing)
        dist, _ = cKDTree(original.vertices).query(mesh.vertices)
        assert dist.max() <= half + 0.5 * max(VOXEL) + 1e-6


def test_cli_mesh_no_smooth_is_simplified_within_half_a_voxel(labels_path, tmp_path):
    runner = CliRunner()
    common = ["--labels", "1", "--chunk", "8", "--scheduler", "synchronous", "--no-smooth"]
    res = runner.invoke(main, ["mesh", str(labels_path), str(tmp_path / "d"), *common])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["mesh", str(labels_path), str(tmp_path / "f"), "--full-resolution", *common])
    assert res.exit_code == 0, res.output
    default = json.loads((tmp_path / "d" / "meshes.json").read_text())
    full = json.loads((tmp_path / "f" / "meshes.json").read_text())
    assert default["parameters"]["max_error"] == 0.5 * max(VOXEL) and full["parameters"]["max_error"] is None
    d, f = default["meshes"][0]["measurements"], full["meshes"][0]["measurements"]
    assert d["watertight"] and f["watertight"] and d["triangles"] < f["triangles"]
    whole = meshing.mesh_array(ball_and_box(), chunk=64, voxel_size=VOXEL)[1]
    assert f["triangles"] == len(whole[1])  # full resolution: every marching-cubes triangle
    res = runner.invoke(main, ["mesh", str(labels_path), str(tmp_path / "x"), "--full-resolution",
                               "--max-error", "1", "--no-smooth"])
    assert res.exit_code == 2 and "--full-resolution" in res.output and not (tmp_path / "x").exists()
    res = runner.invoke(main, ["mesh", str(labels_path), str(tmp_path / "x"), "--max-error", "1"])
    assert res.exit_code == 2 and "--no-smooth" in res.output and not (tmp_path / "x").exists()
    res = runner.invoke(main, ["mesh", str(labels_path), str(tmp_path / "s"), "--labels", "1", "--chunk", "8",
                               "--scheduler", "synchronous"])
    smoothed = json.loads((tmp_path / "s" / "meshes.json").read_text())
    assert res.exit_code == 0 and smoothed["parameters"]["smooth"] == 20 and smoothed["parameters"]["max_error"] is None
    s = smoothed["meshes"][0]["measurements"]
    assert s["watertight"] and s["triangles"] == f["triangles"]  # the same surface, vertices moved
