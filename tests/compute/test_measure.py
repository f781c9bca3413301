"""Measurements of one object in physical units, against shapes of known size."""

from __future__ import annotations

import numpy as np
import pytest

from ml4paleo.compute.measure import local_thickness, measure_object
from ml4paleo.testing.shapes import ellipsoid, plate, rod


@pytest.mark.parametrize("voxel_size", [(1.0, 1.0, 1.0), (3.0, 1.0, 1.0)])
def test_sphere_volume_area_sphericity_axes(voxel_size):
    r = 12.0
    mask = np.zeros((int(30 / voxel_size[0]), 30, 30), bool)
    ellipsoid(mask, (15.0, 15.0, 15.0), (r, r, r), voxel_size)
    grey = np.where(mask, 1000.0, 0.0) + np.indices(mask.shape)[2]
    m = measure_object(mask, voxel_size, origin=(2, 3, 4), grey=grey)
    assert m["volume"] == pytest.approx(4 / 3 * np.pi * r**3, rel=0.03)
    # 3:1: the sphere is 8 slices deep and the blur of one voxel (3 units along z) rounds it off
    assert m["surface_area"] == pytest.approx(4 * np.pi * r**2, rel=0.03 if voxel_size[0] == 1 else 0.06)
    assert m["voxel_face_area"] > 1.3 * m["surface_area"]  # the Lego surface overestimates
    assert m["sphericity"] >= 0.95
    assert m["axis_lengths"] == pytest.approx([2 * r] * 3, rel=0.05)
    assert m["centroid"] == pytest.approx([15.0 + 2 * voxel_size[0], 18.0, 19.0], abs=0.6)
    assert m["bbox_start"][1:] == [3 + 3, 4 + 3]
    assert m["grey_mean"] == pytest.approx(1000.0 + 15.0, abs=1.0)
    assert m["thickness_max"] == pytest.approx(2 * r, abs=2 * max(voxel_size))


def test_ellipsoid_axes_and_orientation():
    mask = np.zeros((30, 40, 70), bool)
    ellipsoid(mask, (15.0, 20.0, 35.0), (6.0, 10.0, 30.0), (1.0, 1.0, 1.0))
    m = measure_object(mask, (1.0, 1.0, 1.0), thickness=False)
    assert m["axis_lengths"] == pytest.approx([60.0, 20.0, 12.0], rel=0.05)
    assert np.abs(m["axes"][0]) == pytest.approx([0, 0, 1], abs=1e-6)
    assert "thickness_mean" not in m and "grey_mean" not in m


@pytest.mark.parametrize("voxel_size", [(1.0, 1.0, 1.0), (3.0, 1.0, 1.0)])
@pytest.mark.parametrize("thick", [9.0, 15.0])
def test_plate_thickness_within_a_voxel(voxel_size, thick):
    mask = np.zeros((int(60 / voxel_size[0]), 60, 60), bool)
    plate(mask, (3.0, 3.0, 20.0), (54.0, 54.0, thick), voxel_size)  # a plate across x
    t = local_thickness(mask, voxel_size)
    assert not t[~mask].any()
    assert np.median(t[mask]) == pytest.approx(thick, abs=1.0)
    plate_z = np.zeros_like(mask)
    plate(plate_z, (15.0, 3.0, 3.0), (thick * voxel_size[0], 54.0, 54.0), voxel_size)  # across z
    t = local_thickness(plate_z, voxel_size)
    assert np.median(t[plate_z]) == pytest.approx(thick * voxel_size[0], abs=voxel_size[0])


def test_rod_thickness_is_its_diameter():
    mask = np.zeros((30, 40, 40), bool)
    rod(mask, (20.0, 20.0), 8.0, (0.0, 30.0), (1.0, 1.0, 1.0))
    t = local_thickness(mask, (1.0, 1.0, 1.0))
    assert np.median(t[mask]) == pytest.approx(16.0, abs=1.0)
