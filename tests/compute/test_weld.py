"""Welding piece by piece gives the mesh (and the measurements) of welding all pieces at once."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from scipy import ndimage as ndi

from ml4paleo.compute import mesh as meshing
from ml4paleo.compute.weld import StreamWeld, shared_planes
from ml4paleo.io.exports import MeshStreamWriter, write_mesh

VOXEL = (1.0, 0.5, 0.75)


def blobs(seed=0, shape=(30, 34, 38)) -> np.ndarray:
    """Two labels of smooth random blobs, touching each other and the volume's faces, with
    handles and cavities."""
    rng = np.random.default_rng(seed)
    vol = (ndi.gaussian_filter(rng.random(shape), 2) > 0.5).astype(np.uint8)
    vol[vol == 1] = rng.integers(1, 3, int((vol == 1).sum()))
    vol = ndi.median_filter(vol, 3)
    vol[10:20, 10:20, 10:20] = 1
    vol[13:17, 13:17, 13:17] = 0  # a cavity
    return vol


def streamed(vol, chunk, label):
    welder = StreamWeld(shared_planes(vol.shape, chunk), VOXEL)
    parts, pieces = [], []
    for w, block in meshing.iter_blocks(vol, meshing.chunk_windows(vol.shape, chunk)):
        piece = meshing.mesh_block(block, w.start, [label]).get(label)
        if piece is not None:
            pieces.append(piece)
            parts.append(welder.add(piece, w.start[0]))
    return welder, parts, pieces


def sorted_mesh(vertices, faces):
    order = np.lexsort(vertices.T[::-1])
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    return vertices[order], meshing.canonical_faces(rank[faces])


@pytest.mark.parametrize("chunk", [5, 8, (7, 11, 13), 64])
def test_streamed_weld_equals_whole_weld(chunk):
    vol = blobs()
    for label in (1, 2):
        welder, parts, pieces = streamed(vol, chunk, label)
        verts = np.concatenate([p.vertices[p.new] for p in parts])
        faces = np.concatenate([p.global_faces for p in parts])
        coords, ref_faces = meshing.weld(pieces, canonical=True)
        ref_verts = meshing.to_physical(coords / 2.0, VOXEL)
        v, f = sorted_mesh(verts, faces)
        assert np.array_equal(v, ref_verts) and np.array_equal(f, ref_faces)
        got, ref = welder.measurements(), meshing.measure_mesh(ref_verts, ref_faces)
        assert got.pop("volume") == pytest.approx(ref.pop("volume"), rel=1e-9)
        assert got.pop("surface_area") == pytest.approx(ref.pop("surface_area"), rel=1e-9)
        assert got == ref and got["watertight"]
    one = meshing.mesh_array(vol, chunk=max(vol.shape), voxel_size=VOXEL)  # the one-call mesh
    assert welder.measurements()["triangles"] == len(one[2][1])


def test_open_or_doubled_surfaces_are_not_watertight():
    vol = blobs(1)
    welder, parts, _ = streamed(vol, 8, 1)
    assert welder.measurements()["watertight"]
    broken = StreamWeld(shared_planes(vol.shape, 8), VOXEL)
    for i, (w, block) in enumerate(meshing.iter_blocks(vol, meshing.chunk_windows(vol.shape, 8))):
        piece = meshing.mesh_block(block, w.start, [1]).get(1)
        if piece is not None and i != 5:  # one chunk's triangles missing: open seams
            broken.add(piece, w.start[0])
    assert not broken.measurements()["watertight"]


@pytest.mark.parametrize("fmt", ["stl", "obj", "ply"])
def test_stream_writer_writes_what_write_mesh_writes(tmp_path, fmt):
    vol = blobs()
    welder, parts, pieces = streamed(vol, 9, 1)
    writer = MeshStreamWriter(tmp_path / f"s.{fmt}")
    for p in parts:
        writer.add(p.vertices, p.faces, p.ids, p.new)
    writer.close()
    coords, faces = meshing.weld(pieces)
    write_mesh(tmp_path / f"w.{fmt}", meshing.to_physical(coords / 2.0, VOXEL), faces)
    if fmt == "stl":  # a triangle soup in the same order: the same bytes
        assert (tmp_path / "s.stl").read_bytes() == (tmp_path / "w.stl").read_bytes()
    a = trimesh.load(tmp_path / f"s.{fmt}", force="mesh")
    b = trimesh.load(tmp_path / f"w.{fmt}", force="mesh")
    assert a.is_watertight and len(a.faces) == len(b.faces) == welder.measurements()["triangles"]
    assert a.volume == pytest.approx(b.volume, rel=1e-9) and a.volume > 0
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_stream_writer_abort_leaves_nothing(tmp_path):
    writer = MeshStreamWriter(tmp_path / "x.ply")
    writer.add(np.zeros((3, 3)), np.array([[0, 1, 2]]), np.arange(3), np.ones(3, bool))
    writer.abort()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(Exception, match="format"):
        MeshStreamWriter(tmp_path / "x.glb")
