"""The shape prior: exact on painted slices, interpolation between them, decay past the ends,
physical units, classes missing from some slices."""

from __future__ import annotations

import numpy as np
import pytest

from ml4paleo.compute.prior import ShapePrior, signed_distance
from ml4paleo.errors import InputError


def disc(shape, cy, cx, r):
    yy, xx = np.indices(shape)
    return ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r).astype(np.uint8)


def test_signed_distance_sign_and_units():
    mask = disc((41, 41), 20, 20, 8).astype(bool)
    d = signed_distance(mask, (1.0, 1.0))
    assert (d[mask] < 0).all() and (d[~mask] > 0).all()
    assert d[20, 20] == pytest.approx(-7.5, abs=0.6)
    d2 = signed_distance(mask, (2.0, 2.0))  # same voxels, twice the voxel size
    np.testing.assert_allclose(d2[~mask], 2 * d[~mask], rtol=1e-5)
    assert np.isinf(signed_distance(np.zeros((4, 4), bool))).all()
    assert (signed_distance(np.ones((4, 4), bool)) < 0).all()


def test_exact_on_painted_slices_and_between():
    a, b = disc((48, 48), 24, 24, 6), disc((48, 48), 24, 24, 14)
    prior = ShapePrior((10, 20), np.stack([a, b]), 2)
    labels = prior.labels((0, 0, 0), (30, 48, 48))
    assert np.array_equal(labels[10], a) and np.array_equal(labels[20], b)
    radii = [np.sqrt(labels[z].sum() / np.pi) for z in range(10, 21)]
    assert radii == sorted(radii) and 9 < radii[5] < 11  # the outline grows steadily from one to the other


def test_monotone_decay_beyond_the_ends_in_physical_units():
    a = disc((48, 48), 24, 24, 10)
    fine = ShapePrior((20,), a[None], 2, spacing=(1.0, 1.0, 1.0)).labels((0, 0, 0), (40, 48, 48))
    coarse = ShapePrior((20,), a[None], 2, spacing=(4.0, 1.0, 1.0)).labels((0, 0, 0), (40, 48, 48))
    area = fine.sum(axis=(1, 2))
    assert list(area[20:]) == sorted(area[20:], reverse=True) and list(area[:21]) == sorted(area[:21])
    assert area[20] == a.sum() and area[31] == 0  # a structure does not continue forever
    # a slice 3 voxels away is 12 units away when z voxels are 4 units long
    assert coarse[23].sum() == fine[32].sum() and coarse[23].sum() < fine[23].sum()


def test_class_absent_on_one_slice_vanishes_there():
    a = disc((48, 48), 24, 24, 12)
    prior = ShapePrior((0, 10), np.stack([a, np.zeros_like(a)]), 2)
    area = prior.labels((0, 0, 0), (11, 48, 48)).sum(axis=(1, 2))
    assert area[0] == a.sum() and area[10] == 0 and list(area) == sorted(area, reverse=True) and area[5] > 0


def test_several_components_and_three_classes():
    m = np.zeros((40, 40), np.uint8)
    m[5:15, 5:15] = 1
    m[25:35, 25:35] = 2
    m2 = np.zeros_like(m)
    m2[7:17, 7:17] = 1
    m2[23:33, 23:33] = 2
    prior = ShapePrior((0, 8), np.stack([m, m2]), 3)
    mid = prior.labels((4, 0, 0), (5, 40, 40))[0]
    assert set(np.unique(mid)) == {0, 1, 2} and (mid == 1).sum() > 60 and (mid == 2).sum() > 60
    f = prior.features((4, 0, 0), (5, 40, 40))
    assert f.shape == (1, 40, 40, 4) and np.all(f[..., 3] == 4.0)
    p = prior.proba((0, 0, 0), (9, 40, 40))
    np.testing.assert_allclose(p.sum(axis=-1), 1, atol=1e-5)
    assert np.array_equal(np.argmax(p, axis=-1), prior.labels((0, 0, 0), (9, 40, 40)))


def test_exclude_leaves_slices_out_and_regions_equal_the_whole():
    a, b, c = disc((32, 32), 16, 16, 5), disc((32, 32), 16, 16, 9), disc((32, 32), 16, 16, 12)
    prior = ShapePrior((0, 5, 10), np.stack([a, b, c]), 2)
    without = ShapePrior((0, 10), np.stack([a, c]), 2)
    assert np.array_equal(prior.distances((5, 0, 0), (6, 32, 32), exclude={5}), without.distances((5, 0, 0), (6, 32, 32)))
    whole = prior.features((0, 0, 0), (12, 32, 32))
    assert np.array_equal(prior.features((3, 4, 7), (9, 20, 30)), whole[3:9, 4:20, 7:30])
    assert np.isinf(prior.distances((0, 0, 0), (1, 4, 4), exclude={0, 5, 10})).all()


def test_bad_input():
    with pytest.raises(InputError):
        ShapePrior((5, 2), np.zeros((2, 4, 4), np.uint8), 2)
    with pytest.raises(InputError):
        ShapePrior((1,), np.zeros((2, 4, 4), np.uint8), 2)
