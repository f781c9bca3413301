"""Mesh files, slice encoders and the streamed zip."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import tifffile
import trimesh
from PIL import Image

from ml4paleo.compute import mesh as meshing
from ml4paleo.errors import InputError, OutputExistsError
from ml4paleo.io import exports, png


@pytest.fixture
def box_mesh():
    vol = np.zeros((12, 14, 20), np.uint8)
    vol[2:9, 3:11, 4:17] = 1
    vol[4:7, 5:9, 6:9] = 0  # a cavity, so the file holds two shells
    return meshing.mesh_array(vol, chunk=6, voxel_size=(2.0, 1.0, 0.5))[1]


@pytest.mark.parametrize("fmt", exports.MESH_FORMATS)
def test_every_format_reopens_with_the_same_triangles(tmp_path, box_mesh, fmt):
    verts, faces = box_mesh
    path = exports.write_mesh(tmp_path / f"label_1_micrometer.{fmt}", verts, faces)
    assert path.exists() and not list(tmp_path.glob("*.partial-*"))
    mesh = trimesh.load(path, force="mesh")  # merges STL's per-face vertices
    assert len(mesh.faces) == len(faces)
    assert mesh.is_watertight and mesh.is_winding_consistent
    # files hold (x, y, z) with outward normals
    assert mesh.volume == pytest.approx(meshing.measure_mesh(verts, faces)["volume"], rel=1e-5)
    np.testing.assert_allclose(mesh.bounds[0], verts.min(axis=0)[::-1], atol=1e-5)
    np.testing.assert_allclose(mesh.bounds[1], verts.max(axis=0)[::-1], atol=1e-5)
    if fmt in ("obj", "ply", "glb"):  # shared vertices
        assert len(mesh.vertices) == len(verts)


def test_stl_is_binary(tmp_path, box_mesh):
    path = exports.write_mesh(tmp_path / "m.stl", *box_mesh)
    assert path.stat().st_size == 84 + 50 * len(box_mesh[1])


def test_unknown_mesh_format(tmp_path, box_mesh):
    with pytest.raises(InputError, match="mesh format"):
        exports.write_mesh(tmp_path / "m.fbx", *box_mesh)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_keeps_bit_depth(rng, dtype):
    img = rng.integers(0, np.iinfo(dtype).max, size=(17, 23), dtype=dtype)
    back = np.array(Image.open(io.BytesIO(png.encode_png(img))))
    assert back.dtype == dtype and np.array_equal(back, img)


def test_png_refuses_float():
    with pytest.raises(InputError, match="float32"):
        png.encode_png(np.zeros((4, 4), np.float32))


@pytest.mark.parametrize("compress", [False, True])
def test_tiff_slice_has_voxel_size(rng, compress):
    img = rng.integers(0, 4000, size=(9, 11), dtype=np.uint16)
    data = exports.encode_tiff(img, (3.0, 0.5, 0.25), "micrometer", compress=compress)
    with tifffile.TiffFile(io.BytesIO(data)) as tf:
        assert tf.pages[0].compression == (8 if compress else 1)  # ADOBE_DEFLATE or none
        assert np.array_equal(tf.asarray(), img)
        x, y = tf.pages[0].tags["XResolution"].value, tf.pages[0].tags["YResolution"].value
        assert x[1] / x[0] == pytest.approx(0.25) and y[1] / y[0] == pytest.approx(0.5)
        assert tf.imagej_metadata["spacing"] == 3.0 and tf.imagej_metadata["unit"] == "micron"


def test_iter_zip_streams_entry_by_entry(tmp_path, rng):
    big = tmp_path / "big.bin"
    big.write_bytes(rng.bytes(3 * 2**20 + 123))
    text = tmp_path / "meshes.json"
    text.write_text('{"a": 1}' * 50_000)
    pieces = list(exports.iter_zip([("x/big.bin", big), ("x/meshes.json", text)]))
    assert len(pieces) >= 4 and max(len(p) for p in pieces) < 2**20 + 4096  # ~1 MiB at a time
    with zipfile.ZipFile(io.BytesIO(b"".join(pieces))) as zf:
        assert zf.testzip() is None
        assert zf.read("x/big.bin") == big.read_bytes()
        assert zf.read("x/meshes.json") == text.read_bytes()
        assert zf.getinfo("x/meshes.json").compress_type == zipfile.ZIP_DEFLATED
        assert zf.getinfo("x/big.bin").compress_type == zipfile.ZIP_STORED


def test_write_zip_of_a_folder_is_atomic(tmp_path):
    folder = tmp_path / "vol.ome.zarr"
    (folder / "0" / "c").mkdir(parents=True)
    (folder / "zarr.json").write_text("{}")
    (folder / "0" / "c" / "0").write_bytes(b"\x00" * 10)
    entries = exports.folder_entries(folder)
    assert [n for n, _ in entries] == ["vol.ome.zarr/0/c/0", "vol.ome.zarr/zarr.json"]
    out = exports.write_zip(entries, tmp_path / "vol.zip")
    with zipfile.ZipFile(out) as zf:
        assert zf.namelist() == ["vol.ome.zarr/0/c/0", "vol.ome.zarr/zarr.json"]
    with pytest.raises(OutputExistsError):
        exports.write_zip(entries, out, overwrite=False)
    with pytest.raises(InputError, match="not a file"):
        exports.write_zip([("missing", tmp_path / "missing")], tmp_path / "bad.zip")
    assert not (tmp_path / "bad.zip").exists() and not list(tmp_path.glob("*.partial-*"))
