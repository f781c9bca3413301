"""Post-processing block by block equals post-processing the whole volume, for any blocks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from ml4paleo.compute import components as cc
from ml4paleo.compute.postprocess import postprocess

BLOCKS = [2, 3, (4, 5, 7), (16, 1, 9), 64]
OPTIONS = [dict(min_size=20), dict(fill=True), dict(largest=True), dict(min_size=6, fill=True, largest=True)]


def spiral(shape=(24, 26, 26)) -> np.ndarray:
    """A 3D helix (one component winding through every block) plus short pieces of it."""
    out = np.zeros(shape, np.uint8)
    for t in np.linspace(0, 6 * np.pi, 2000):
        z = int(round(2 + t / (6 * np.pi) * (shape[0] - 5)))
        y = int(round(shape[1] / 2 + 9 * np.sin(t)))
        x = int(round(shape[2] / 2 + 9 * np.cos(t)))
        out[z : z + 2, y : y + 2, x : x + 2] = 1
    out[0:3, 0:3, 0:3] = 1  # small pieces: removed by min_size, or by keep_largest
    out[20:22, 0:2, 20:23] = 1
    return out


def corners_and_edges() -> np.ndarray:
    """Cubes that touch only at a corner or along an edge (not connected with face
    connectivity), placed so that the contact sits on block faces (at 4, 8, 12)."""
    out = np.zeros((16, 16, 16), np.uint8)
    out[0:4, 0:4, 0:4] = 1
    out[4:8, 4:8, 4:8] = 1  # corner contact with the first at (4, 4, 4)
    out[8:12, 8:12, 4:8] = 1  # edge contact with the second along x
    out[4:8, 8:12, 8:12] = 2  # corner contact with a class-1 cube: other class, never joined
    out[12:16, 12:16, 12:16] = 1
    return out


def shells() -> np.ndarray:
    """Holes that cross block faces: a hollow class-1 box holding a class-2 ball and background,
    a hollow box open to the border by a one-voxel channel (no hole), nested shells of two
    classes, and a class-2 shell inside a class-1 shell."""
    out = np.zeros((30, 30, 30), np.uint8)
    out[1:15, 1:15, 1:15] = 1
    out[3:13, 3:13, 3:13] = 0  # cavity crossing blocks ...
    out[6:9, 6:9, 6:9] = 2  # ... holding another class
    out[16:29, 1:14, 1:14] = 1
    out[18:27, 3:12, 3:12] = 0
    out[22, 7, 0:3] = 0  # channel to the border: not a hole
    out[1:14, 16:29, 16:29] = 2
    out[3:12, 18:27, 18:27] = 0
    out[5:10, 20:25, 20:25] = 1  # class-1 shell inside a class-2 cavity
    out[6:9, 21:24, 21:24] = 0
    return out


def noisy(seed: int, shape=(18, 20, 22), classes=3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = np.where(rng.random(shape) < 0.55, rng.integers(1, classes + 1, shape), 0).astype(np.uint8)
    return ndi.median_filter(labels, 3)


@pytest.mark.parametrize("volume", [spiral, corners_and_edges, shells, lambda: noisy(1), lambda: noisy(2, classes=2)],
                         ids=["spiral", "corners", "shells", "noisy3", "noisy2"])
@pytest.mark.parametrize("options", OPTIONS, ids=["small", "fill", "largest", "all"])
def test_blocks_equal_whole_volume(volume, options):
    labels = volume()
    expected = postprocess(labels, **options)
    for block in BLOCKS:
        assert np.array_equal(cc.postprocess_chunked(labels, block, **options), expected), block


def test_the_volumes_exercise_what_they_claim():
    s = spiral()
    comps, n = ndi.label(s == 1)
    assert n == 3 and np.bincount(comps.ravel())[1:].max() > 500
    assert len({tuple(idx // 4) for idx in np.argwhere(comps == np.argmax(np.bincount(comps.ravel())[1:]) + 1)}) > 30
    c = corners_and_edges()
    assert ndi.label(c == 1)[1] == 4  # the corner and edge contacts do not connect
    assert ndi.label(c == 1, structure=np.ones((3, 3, 3)))[1] == 2  # they would with 26-connectivity
    filled = postprocess(shells(), fill=True)
    assert (filled[3:13, 3:13, 3:13] != 0).all() and (filled[18:27, 3:12, 3:12] == 0).any()
    assert (filled[6:9, 21:24, 21:24] == 1).all() and (filled[3:12, 18:27, 18:27] != 0).all()


def test_keep_largest_ties_go_to_the_first_in_raster_order():
    labels = np.zeros((8, 8, 8), np.uint8)
    labels[5:7, 5:7, 5:7] = 1
    labels[0:2, 0:2, 6:8] = 1  # same size, first in raster order
    expected = postprocess(labels, largest=True)
    assert expected[0, 0, 6] == 1 and expected[5, 5, 5] == 0
    for block in (1, 2, 3, 5):
        assert np.array_equal(cc.postprocess_chunked(labels, block, largest=True), expected)


def test_union_find_and_face_pairs():
    roots = cc.union_find(6, np.array([[0, 1], [1, 2], [4, 5]]))
    assert roots[0] == roots[1] == roots[2] and roots[4] == roots[5] and len(set(roots.tolist())) == 3
    before = np.array([[[0, 1], [2, 2]]])
    after = np.array([[[3, 1], [0, 1]]])
    assert cc.face_pairs(before, after, 10, 20).tolist() == [[10, 20], [11, 20]]


def test_refuses_what_postprocess_refuses():
    with pytest.raises(Exception, match="min_size"):
        cc.postprocess_chunked(np.zeros((4, 4, 4), np.uint8), 2, min_size=-1)
    with pytest.raises(Exception, match="integer"):
        cc.postprocess_chunked(np.zeros((4, 4, 4), np.float32), 2)
