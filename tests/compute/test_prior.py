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


def bulging_rod(shape=(40, 48, 48)):
    """A body along z whose radius bulges in the middle (7 at z 8 and 28, 12 at z 18) and that
    ends at z 3 and z 33: interpolating the z slices 8 and 28 alone misses both."""
    zz, yy, xx = np.indices(shape)
    radius = 12 - 5 * np.abs(zz - 18) / 10
    return (((yy - 24) ** 2 + (xx - 24) ** 2 <= radius**2) & (zz >= 3) & (zz <= 33)).astype(np.uint8)


def test_a_plane_across_the_stack_is_exact_and_bounds_the_interpolation():
    truth = bulging_rod()
    zs = (8, 28)
    xy = np.stack([truth[z] for z in zs])
    alone = ShapePrior(zs, xy, 2).labels((0, 0, 0), truth.shape)
    prior = ShapePrior(zs, xy, 2, planes={("y", 24): truth[:, 24, :]})
    labels = prior.labels((0, 0, 0), truth.shape)
    assert np.array_equal(labels[:, 24, :], truth[:, 24, :]) and all(np.array_equal(labels[z], truth[z]) for z in zs)
    # the bulge between the z slices, which the z slices alone cannot know, follows the plane...
    assert alone[18].sum() < 0.5 * truth[18].sum() < labels[18].sum() <= 1.1 * truth[18].sum()
    # ...and so does the extent along z past the last z slice (the cone alone runs to z 35)
    assert alone[34:37, 24].any() and not labels[34:, 20:29].any() and labels[33, 24].any()
    others = [z for z in range(truth.shape[0]) if z not in zs]
    def dice(a):
        return 2 * (a[others] & truth[others].astype(bool)).sum() / (a[others].sum() + truth[others].sum())
    assert dice(labels == 1) > dice(alone == 1) + 0.05


def test_planes_only_give_a_prior_and_regions_equal_the_whole():
    truth = bulging_rod()
    planes = {("y", 24): truth[:, 24, :], ("x", 20): truth[:, :, 20], ("x", 28): truth[:, :, 28]}
    prior = ShapePrior((), np.zeros((0, 48, 48), np.uint8), 2, (2.0, 1.0, 1.0), planes)
    labels = prior.labels((0, 0, 0), truth.shape)
    for (axis, index), mask in planes.items():
        assert np.array_equal(np.take(labels, index, axis=1 if axis == "y" else 2), mask)
    inside = labels.astype(bool)
    assert 2 * (inside & truth.astype(bool)).sum() / (inside.sum() + truth.sum()) > 0.8
    mixed = ShapePrior((8, 28), np.stack([truth[8], truth[28]]), 2, (2.0, 1.0, 1.0), planes)
    whole = mixed.features((0, 0, 0), truth.shape, exclude={("x", 20)})
    assert np.array_equal(mixed.features((5, 3, 17), (31, 40, 30), exclude={("x", 20)}), whole[5:31, 3:40, 17:30])
    without = ShapePrior((8, 28), np.stack([truth[8], truth[28]]), 2, (2.0, 1.0, 1.0),
                         {k: v for k, v in planes.items() if k != ("x", 20)})
    assert np.array_equal(whole, without.features((0, 0, 0), truth.shape))  # an excluded plane is not seen at all
    assert (whole[:, :, 28, -1] == 0).all() and whole[:, 30, 20, -1].max() == 6  # distance to the nearest plane (y 24)


def test_planes_that_do_not_fit_are_refused():
    with pytest.raises(InputError, match="plane y3"):
        ShapePrior((1,), np.zeros((1, 8, 8), np.uint8), 2, planes={("y", 3): np.zeros((4, 9), np.uint8)})
    with pytest.raises(InputError, match="outside"):
        ShapePrior((1,), np.zeros((1, 8, 8), np.uint8), 2, planes={("x", 8): np.zeros((4, 8), np.uint8)})


def test_guessed_planes_shape_the_prior_but_are_not_kept_as_painted(tmp_path):
    """A correction's mask is the prior's own guess: it interpolates like any painted slice, but
    a model keeps only what was drawn, and the guess survives the model folder."""
    from ml4paleo.models._context import load_prior, save_prior
    from ml4paleo.planes import SliceRef

    a, b = disc((32, 32), 16, 16, 6), disc((32, 32), 16, 16, 9)
    plane = np.zeros((20, 32), np.uint8)
    plane[5:15, 10:20] = 1
    prior = ShapePrior((4, 12), np.stack([a, b]), 2, planes={SliceRef("y", 16): plane},
                       guessed=frozenset({SliceRef("z", 12), SliceRef("y", 16)}))
    kept = prior.painted()
    assert [(axis, index) for axis, index, _ in kept] == [(0, 4)]
    assert np.array_equal(prior.labels((12, 0, 0), (13, 32, 32))[0], b)  # still exact where it was set
    save_prior(prior, tmp_path)
    assert load_prior(tmp_path).guessed == prior.guessed
    with pytest.raises(InputError, match="guessed"):
        ShapePrior((4,), a[None], 2, guessed=frozenset({SliceRef("z", 5)}))
