"""Chunked meshing: closed, seam-free, in physical units, independent of the chunk size."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from ml4paleo.compute import mesh as meshing
from ml4paleo.compute.mesh import closed_and_oriented

VOXEL = (1.0, 0.5, 0.75)  # anisotropic (z, y, x) micrometres: proves vertices are physical


def grid(extent: float, voxel=VOXEL):
    """Voxel-centre coordinates (z, y, x) of a cube of ``extent`` micrometres, centred on 0."""
    shape = [int(np.ceil(extent / v)) + 4 for v in voxel]
    axes = [(np.arange(n) - (n - 1) / 2) * v for n, v in zip(shape, voxel)]
    return np.meshgrid(*axes, indexing="ij"), [(n - 1) / 2 * v for n, v in zip(shape, voxel)]


def sphere(radius=14.0):
    (z, y, x), centre = grid(2 * radius)
    return (z**2 + y**2 + x**2 <= radius**2).astype(np.uint8), centre


def torus(big=13.0, small=5.5):
    (z, y, x), centre = grid(2 * (big + small))
    return (((np.hypot(y, x) - big) ** 2 + z**2) <= small**2).astype(np.uint8), centre


def euler(vertices, faces) -> int:
    edges = np.unique(np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1), axis=0)
    return len(np.unique(faces)) - len(edges) + len(faces)


@pytest.mark.parametrize(
    "shape_fn, analytic, chi",
    [
        (sphere, 4 / 3 * np.pi * 14.0**3, 2),
        (torus, 2 * np.pi**2 * 13.0 * 5.5**2, 0),
    ],
    ids=["sphere", "torus"],
)
def test_closed_solid_in_physical_units_independent_of_chunks(shape_fn, analytic, chi):
    vol, centre = shape_fn()
    chunk = 12
    windows = meshing.chunk_windows(vol.shape, chunk)
    assert len(windows) >= 8
    verts, faces = meshing.mesh_array(vol, chunk=chunk, voxel_size=VOXEL)[1]

    assert closed_and_oriented(faces)
    mesh = trimesh.Trimesh(verts, faces, process=False)
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert len(np.unique(verts, axis=0)) == len(verts)  # no duplicate vertex at chunk borders
    assert euler(verts, faces) == chi
    m = meshing.measure_mesh(verts, faces)
    assert m["volume"] > 0  # outward normals
    assert m["volume"] == pytest.approx(analytic, rel=0.02)
    assert m["components"] == 1 and m["cavities"] == 0 and m["watertight"]
    # centred where it was drawn, in micrometres
    mid = (np.array(m["bounding_box"]["min"]) + np.array(m["bounding_box"]["max"])) / 2
    np.testing.assert_allclose(mid, centre, atol=0.5)

    for other in [(7, 9, 13), 5, max(vol.shape)]:
        v2, f2 = meshing.mesh_array(vol, chunk=other, voxel_size=VOXEL)[1]
        assert np.array_equal(v2, verts) and np.array_equal(f2, faces)


def test_two_touching_labels_are_each_closed():
    vol, _ = sphere(10.0)
    labels = vol.copy()
    labels[:, :, labels.shape[2] // 2 :] *= 2  # right half of the ball is label 2, touching label 1
    out = meshing.mesh_array(labels, chunk=8, voxel_size=VOXEL)
    assert sorted(out) == [1, 2]
    whole = meshing.measure_mesh(*meshing.mesh_array(vol, chunk=8, voxel_size=VOXEL)[1])
    total = 0.0
    for label in (1, 2):
        v, f = out[label]
        assert closed_and_oriented(f)
        assert euler(v, f) == 2
        total += meshing.measure_mesh(v, f)["volume"]
    # the two halves share their interface: volumes add up to the ball's within a voxel layer
    assert total == pytest.approx(whole["volume"], rel=0.03)


def test_object_touching_the_volume_faces_is_closed():
    vol = np.ones((9, 10, 11), np.uint8)
    v, f = meshing.mesh_array(vol, chunk=4, voxel_size=(2.0, 1.0, 1.0))[1]
    assert closed_and_oriented(f) and euler(v, f) == 2
    m = meshing.measure_mesh(v, f)
    np.testing.assert_allclose(m["bounding_box"]["min"], [-1.0, -0.5, -0.5])
    np.testing.assert_allclose(m["bounding_box"]["max"], [17.0, 9.5, 10.5])


def test_label_filter_and_empty_blocks():
    vol = np.zeros((20, 20, 20), np.uint8)
    vol[2:6, 2:6, 2:6] = 3
    vol[12:18, 12:18, 12:18] = 5
    assert sorted(meshing.mesh_array(vol, chunk=8)) == [3, 5]
    assert sorted(meshing.mesh_array(vol, chunk=8, labels=[5])) == [5]
    assert meshing.mesh_array(vol, chunk=8, labels=[7]) == {}
    assert meshing.mesh_block(np.zeros((5, 5, 5), np.uint8), (0, 0, 0)) == {}


def test_hollow_and_separate_parts_are_counted():
    vol = np.zeros((24, 24, 40), np.uint8)
    vol[2:22, 2:22, 2:22] = 1
    vol[7:17, 7:17, 7:17] = 0  # a closed cavity
    vol[5:15, 5:15, 28:38] = 1  # a second, separate part
    m = meshing.measure_mesh(*meshing.mesh_array(vol, chunk=10)[1])
    assert m["components"] == 2 and m["cavities"] == 1 and m["watertight"]


def test_simplification_keeps_the_surface_closed():
    vol, _ = torus()
    coords_verts, faces = meshing.mesh_array(vol, chunk=16)[1]  # unit voxels: lattice positions
    before = meshing.measure_mesh(coords_verts, faces)
    v, f = meshing.simplify_mesh(coords_verts, faces, ratio=0.1)
    assert len(f) <= 0.15 * len(faces)
    assert closed_and_oriented(f) and euler(v, f) == 0
    assert meshing.measure_mesh(v, f)["volume"] == pytest.approx(before["volume"], rel=0.03)
    v2, f2 = meshing.simplify_mesh(coords_verts, faces, max_error=1.0)
    assert len(f2) < len(faces) and closed_and_oriented(f2) and euler(v2, f2) == 0
    # every simplified vertex stays within the error bound of the original surface's vertices
    from scipy.spatial import cKDTree

    dist, _ = cKDTree(coords_verts).query(v2)
    assert dist.max() <= 1.0 + 0.5
    with pytest.raises(ValueError, match="ratio"):
        meshing.simplify_mesh(coords_verts, faces, ratio=1.5)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="chunk"):
        meshing.chunk_windows((4, 4, 4), 0)
    with pytest.raises(ValueError, match="shape"):
        meshing.chunk_windows((4, 4), 2)
    with pytest.raises(ValueError, match="integer"):
        meshing.mesh_block(np.zeros((3, 3, 3), np.float32), (0, 0, 0))


def test_simplified_pieces_keep_their_border_and_weld_closed():
    """zmesh's simplifier leaves an open mesh's border as it is: each chunk's piece simplified
    on its own still meets its neighbours vertex for vertex, so the welded mesh is closed."""
    from ml4paleo.compute.weld import StreamWeld, shared_planes

    vol, _ = torus()
    vol[2:9, 3:30, 5:12] = 1  # a block crossing chunk planes, apart from the torus
    windows = meshing.chunk_windows(vol.shape, 12)
    full = meshing.measure_mesh(*meshing.mesh_array(vol, chunk=12)[1])
    welder = StreamWeld(shared_planes(vol.shape, 12), (1.0, 1.0, 1.0))
    faces, n = [], 0
    for window, block in meshing.iter_blocks(vol, windows):
        piece = meshing.mesh_block(block, window.start).get(1)
        if piece is None:
            continue
        small = meshing.simplify_piece(piece, 0.5)
        e = np.sort(np.concatenate([piece.faces[:, [0, 1]], piece.faces[:, [1, 2]], piece.faces[:, [2, 0]]]), axis=1)
        u, c = np.unique(e, axis=0, return_counts=True)
        border = {tuple(v) for v in piece.coords[np.unique(u[c == 1])]}
        exact = {tuple(v) for v in small.coords[np.all(small.positions == small.coords, axis=1)]}
        assert border <= exact  # every border vertex still there, exactly
        part = welder.add(small, window.start[0])
        faces.append(part.global_faces)
        n += len(small.faces)
    got = welder.measurements()
    assert got["watertight"] and got["components"] == full["components"] == 2
    assert closed_and_oriented(np.concatenate(faces))
    assert got["triangles"] == n < 0.6 * full["triangles"]
    assert got["volume"] == pytest.approx(full["volume"], rel=0.03)
