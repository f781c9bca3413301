"""Smoothed surfaces streamed chunk by chunk: the same as smoothing the whole mesh, welded
without a crack, volume kept, the terraces of thick slices gone."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from ml4paleo.compute import mesh as meshing
from ml4paleo.compute.smooth_mesh import (carry_smoothing, grown_window, halo_voxels, sinc_coefficients, sinc_smooth,
                                          smooth_pieces)
from ml4paleo.compute.weld import StreamWeld, shared_planes
from tests.compute.test_weld import blobs


def ball(radius: float, voxel) -> np.ndarray:
    """A ball of ``radius`` (physical units) on a grid of ``voxel`` sizes, centred."""
    shape = [int(np.ceil(radius / v)) * 2 + 5 for v in voxel]
    z, y, x = np.meshgrid(*[(np.arange(n) - n // 2) * v for n, v in zip(shape, voxel)], indexing="ij")
    return (z**2 + y**2 + x**2 <= radius**2).astype(np.uint8)


def streamed(vol, chunk, voxel, iterations=20):
    """Each label's smoothed pieces welded as the mesh pipeline welds them: (vertices, faces, measurements)."""
    welders, verts, faces = {}, {}, {}
    for w, block in meshing.iter_blocks(vol, meshing.chunk_windows(vol.shape, chunk)):
        grown = grown_window(w, halo_voxels(iterations), vol.shape)
        (_, context), = meshing.iter_blocks(vol, [grown])
        pieces = smooth_pieces(meshing.mesh_block(block, w.start), context, grown.start, iterations=iterations)
        for label, piece in pieces.items():
            welder = welders.setdefault(label, StreamWeld(shared_planes(vol.shape, chunk), voxel))
            part = welder.add(piece, w.start[0])
            verts.setdefault(label, []).append(part.vertices[part.new])
            faces.setdefault(label, []).append(part.global_faces)
    return {label: (np.concatenate(verts[label]), np.concatenate(faces[label]), welders[label].measurements())
            for label in welders}


def edge_manifold(faces) -> bool:
    """Every undirected edge borders exactly two faces."""
    e = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    _, counts = np.unique(e, axis=0, return_counts=True)
    return bool((counts == 2).all())


def test_filter_passes_constants_and_is_local():
    assert sinc_coefficients(20, 0.1).sum() == pytest.approx(1.0)
    vol = ball(8.0, (1.0, 1.0, 1.0))
    v, f = meshing.mesh_array(vol)[1]
    moved = sinc_smooth(v + 5.0, f) - sinc_smooth(v, f)
    np.testing.assert_allclose(moved, 5.0, atol=1e-9)  # a translation passes untouched
    assert halo_voxels(20) == 30 and halo_voxels(0) == 1
    with pytest.raises(ValueError, match="iterations"):
        sinc_smooth(v, f, -1)


@pytest.mark.parametrize("chunk", [7, 13])
def test_streamed_equals_whole_and_welds_closed(chunk):
    vol = blobs()
    voxel = (1.0, 1.0, 1.0)
    whole = meshing.mesh_array(vol, chunk=1000)
    out = streamed(vol, chunk, voxel)
    assert sorted(out) == [1, 2]
    for label, (verts, faces, m) in out.items():
        v_whole, f_whole = whole[label]
        reference = sinc_smooth(v_whole, f_whole)
        assert len(verts) == len(reference) and len(faces) == len(f_whole)
        distance, _ = cKDTree(reference).query(verts)
        assert distance.max() < 1e-9  # every vertex where smoothing the whole mesh puts it: no seam
        assert m["watertight"] and meshing.closed_and_oriented(faces) and edge_manifold(faces)
        assert m["volume"] == pytest.approx(meshing.measure_mesh(reference, f_whole)["volume"], rel=1e-9)


def test_carried_smoothing_moves_kept_vertices_exactly():
    v, f = meshing.mesh_array(ball(8.0, (1.0, 1.0, 1.0)))[1]
    smooth = sinc_smooth(v, f)
    simple, sf = meshing.simplify_mesh(v, f, ratio=0.25)
    moved = carry_smoothing(simple, v, smooth)
    kept = (simple[:, None, :] == v[None, :, :]).all(axis=2)
    i, j = np.nonzero(kept)
    np.testing.assert_array_equal(moved[i], smooth[j])
    assert meshing.measure_mesh(moved, sf)["watertight"]
    assert meshing.measure_mesh(moved, sf)["volume"] == pytest.approx(meshing.measure_mesh(smooth, f)["volume"], rel=0.05)


@pytest.mark.parametrize("voxel", [(1.0, 1.0, 1.0), (3.0, 0.98, 0.98)])
def test_sphere_keeps_volume_and_loses_its_terraces(voxel):
    """Terraces are flat treads: faces facing along z. A round sphere has 1.5 % of its area
    within 10 degrees of the z axis; the voxel surface of 3:1 voxels has several times that."""
    radius = 15.0
    vol = ball(radius, voxel)
    voxel_volume = vol.sum() * np.prod(voxel)
    (verts, faces, m), = streamed(vol, 16, voxel).values()
    raw_v, raw_f = meshing.mesh_array(vol, voxel_size=voxel)[1]

    def flat_area(v, f):
        n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
        area = np.linalg.norm(n, axis=1)
        return float(area[np.abs(n[:, 0]) > np.cos(np.radians(10)) * area].sum() / area.sum())

    assert m["watertight"] and edge_manifold(faces)
    assert m["volume"] == pytest.approx(voxel_volume, rel=0.02)
    assert m["surface_area"] == pytest.approx(4 * np.pi * radius**2, rel=0.03)
    if voxel[0] > voxel[1]:
        assert flat_area(raw_v, raw_f) > 0.2  # the voxel surface is terraced
        assert flat_area(verts, faces) < 0.08
