"""Objects: connected pieces, split at necks by the distance-map watershed, and seeded splits."""

from __future__ import annotations

import numpy as np
import pytest

from ml4paleo.compute import objects as ob
from ml4paleo.errors import InputError
from ml4paleo.testing.shapes import ellipsoid, touching_pair


@pytest.mark.parametrize("voxel_size", [(1.0, 1.0, 1.0), (3.0, 1.0, 1.0)])
@pytest.mark.parametrize("neck", [0.2, 0.5])
def test_two_touching_spheres_become_two_objects(voxel_size, neck):
    shape = (int(40 / voxel_size[0]), 40, 56)
    mask = np.zeros(shape, bool)
    touching_pair(mask, (20.0, 20.0, 28.0), 10.0, 12.0, neck, voxel_size)
    parts = ob.split_object(mask, voxel_size)
    assert parts.max() == 2
    assert set(np.unique(parts[mask])) == {1, 2}
    assert not parts[~mask].any()
    # the cut runs at the neck: each part is mostly one sphere
    sizes = np.sort(np.bincount(parts.ravel())[1:]) * np.prod(voxel_size)
    truth = np.array([4 / 3 * np.pi * 10**3, 4 / 3 * np.pi * 12**3])
    assert np.all(np.abs(sizes - truth) / truth < 0.1)


@pytest.mark.parametrize("voxel_size", [(1.0, 1.0, 1.0), (3.0, 1.0, 1.0)])
def test_one_sphere_or_ellipsoid_is_never_split(voxel_size):
    mask = np.zeros((int(48 / voxel_size[0]), 40, 60), bool)
    ellipsoid(mask, (24.0, 20.0, 30.0), (12.0, 8.0, 25.0), voxel_size)
    assert ob.split_object(mask, voxel_size).max() == 1
    mask[:] = False
    ellipsoid(mask, (24.0, 20.0, 30.0), (11.0, 11.0, 11.0), voxel_size)
    assert ob.split_object(mask, voxel_size).max() == 1


def test_h_is_the_neck_depth_in_physical_units():
    mask = np.zeros((40, 40, 56), bool)
    touching_pair(mask, (20.0, 20.0, 28.0), 10.0, 10.0, 0.6, (1.0, 1.0, 1.0))  # depth ~ 10 - 6 = 4
    assert ob.split_object(mask, (1.0, 1.0, 1.0), h=2.0).max() == 2
    assert ob.split_object(mask, (1.0, 1.0, 1.0), h=6.0).max() == 1
    # the same shape in millimetres with 0.1 mm voxels: h scales with the unit
    assert ob.split_object(mask, (0.1, 0.1, 0.1), h=0.2).max() == 2


def test_label_pieces_min_size_classes_and_order():
    labels = np.zeros((10, 10, 10), np.uint8)
    labels[5:8, 5:8, 5:8] = 1  # 27 voxels, first voxel later in raster order
    labels[0:2, 0:2, 0:2] = 2  # 8 voxels
    labels[0, 9, 9] = 1  # 1 voxel
    ids, kinds = ob.label_pieces(labels, [1, 2], min_size=2)
    assert ids.dtype == np.uint32 and ids.max() == 2
    assert ids[0, 0, 0] == 1 and ids[6, 6, 6] == 2 and ids[0, 9, 9] == 0
    assert list(kinds) == [2, 1]
    ids, kinds = ob.label_pieces(labels, [1])
    assert ids.max() == 2 and list(kinds) == [1, 1]


def test_objects_whole_numbers_parts_after_their_piece():
    labels = np.zeros((40, 40, 100), np.uint8)
    touching_pair(labels, (20.0, 20.0, 26.0), 10.0, 10.0, 0.3, (1.0, 1.0, 1.0))
    ellipsoid(labels, (20.0, 20.0, 80.0), (8.0, 8.0, 8.0), (1.0, 1.0, 1.0), value=2)
    out, kinds = ob.objects_whole(labels, [1, 2], (1.0, 1.0, 1.0))
    assert out.max() == 3 and list(kinds) == [1, 1, 2]
    none, kinds = ob.objects_whole(labels, [1, 2], (1.0, 1.0, 1.0), split="none")
    assert none.max() == 2
    with pytest.raises(InputError, match="split"):
        ob.objects_whole(labels, [1], (1.0, 1.0, 1.0), split="watershed")


def test_seeded_split_stays_inside_the_object():
    mask = np.zeros((20, 20, 40), bool)
    mask[5:15, 5:15, 5:35] = True  # one bar, no neck: only the user's strokes split it
    seeds = np.zeros(mask.shape, np.uint8)
    seeds[10, 10, 8] = 3
    seeds[10, 10, 30] = 7
    seeds[0, 0, 0] = 9  # outside the object: ignored
    parts = ob.seeded_split(mask, seeds, (1.0, 1.0, 1.0))
    assert set(np.unique(parts)) == {0, 1, 2}
    assert parts[10, 10, 6] == 1 and parts[10, 10, 33] == 2 and not parts[~mask].any()
    with pytest.raises(InputError, match="two parts"):
        ob.seeded_split(mask, np.where(seeds == 3, 3, 0), (1.0, 1.0, 1.0))


@pytest.mark.parametrize("voxel_size", [(1.0, 1.0, 1.0), (3.0, 1.0, 1.0)])
def test_seeds_near_the_surface_still_cut_at_the_neck(voxel_size):
    """Clicks near the far edges of two touching balls: each part is its ball, not a sliver."""
    mask = np.zeros((int(40 / voxel_size[0]), 40, 64), bool)
    touching_pair(mask, (20.0, 20.0, 32.0), 9.0, 10.0, 0.3, voxel_size)
    z = int(20 / voxel_size[0])
    cols = np.flatnonzero(mask[z, 20])
    seeds = np.zeros(mask.shape, np.uint8)
    seeds[z, 20, cols.min() + 1] = 1
    seeds[z, 20, cols.max() - 1] = 2
    parts = ob.seeded_split(mask, seeds, voxel_size)
    auto = ob.split_object(mask, voxel_size)
    left = auto == auto[z, 20, cols.min() + 1]
    assert ((parts == 1) == left)[mask].mean() > 0.99  # the same cut as the automatic split
    assert ((parts == 2) == ~left)[mask].mean() > 0.99


def test_bad_input_names_the_parameter():
    with pytest.raises(InputError, match="voxel_size"):
        ob.split_object(np.ones((3, 3, 3), bool), (1.0, 0.0, 1.0))
    with pytest.raises(InputError, match="h must"):
        ob.split_object(np.ones((3, 3, 3), bool), (1.0, 1.0, 1.0), h=-1)
    with pytest.raises(InputError, match="3D"):
        ob.split_object(np.ones((3, 3), bool), (1.0, 1.0, 1.0))
