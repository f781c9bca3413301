"""How far a correction reaches: 1 near its painted voxels, 0 from the radius on, in physical units."""

from __future__ import annotations

import numpy as np

from ml4paleo.compute.reach import CorrectionReach


def test_the_weight_is_one_near_a_corrected_voxel_and_zero_from_the_radius_on():
    mask = np.zeros((20, 30), np.uint8)
    mask[10, 15] = 1
    reach = CorrectionReach([(0, 5, mask)], (1.0, 1.0, 1.0), radius=8.0)
    w = reach.weight((0, 0, 0), (12, 20, 30))
    assert w[5, 10, 15] == 1.0 and w[5, 10, 19] == 1.0  # within half the radius
    assert 0 < w[5, 10, 21] < 1 and w[5, 10, 23] == 0.0  # fading, then gone at the radius
    assert w[9, 10, 15] == 1.0 and w[11, 10, 15] == 0.5  # across the plane: height counts the same
    zz, yy, xx = np.indices(w.shape)
    d = np.sqrt((zz - 5) ** 2 + (yy - 10) ** 2 + (xx - 15) ** 2)
    assert np.allclose(w, np.clip((8 - d) / 4, 0, 1), atol=1e-6)  # the exact 3D distance
    assert np.array_equal(reach.weight((3, 4, 5), (9, 17, 25)), w[3:9, 4:17, 5:25])  # any region alike


def test_the_reach_is_physical_on_anisotropic_voxels_and_planes_across_the_stack():
    mask = np.zeros((10, 30), np.uint8)  # a y plane: rows z, columns x
    mask[5, 15] = 2
    reach = CorrectionReach([(1, 12, mask)], (3.0, 1.0, 1.0), radius=6.0)
    w = reach.weight((0, 0, 0), (10, 24, 30))
    assert w[5, 12, 15] == 1.0 and w[6, 12, 15] == 1.0 and w[7, 12, 15] == 0.0  # 3 units a slice
    assert np.isclose(w[5, 12, 19], 2 / 3) and w[5, 15, 15] == 1.0 and w[5, 18, 15] == 0.0
    assert not reach.weight((0, 0, 0), (10, 5, 30)).any()  # far from the plane
    assert not CorrectionReach([(0, 1, np.zeros((4, 4), np.uint8))], (1, 1, 1), 4.0)  # nothing painted
