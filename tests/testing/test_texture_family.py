"""The generated texture family: classes told apart by grain alone, in a shape that is no slab."""

import numpy as np
import pytest

from ml4paleo.testing.phantoms import TEXTURE_KINDS, texture_family


@pytest.fixture(scope="module", params=TEXTURE_KINDS)
def family(request):
    return request.param, *texture_family(request.param, shape=(32, 48, 48), seed=1)


def test_classes_share_mean_and_spread(family):
    kind, vol, truth = family
    a, b = vol[truth == 1].astype(float), vol[truth == 0].astype(float)
    assert abs(a.mean() - b.mean()) < 2.0, kind
    assert abs(a.std() - b.std()) / b.std() < 0.02, kind
    assert 0.3 < truth.mean() < 0.5


def test_truth_is_no_slab(family):
    """The best quadric of the coordinates (least squares on z, y, x and their products: it
    holds any slab or ellipsoid; 0.88 on ``texture_only``'s slab) misses much of the body, and
    every z slice cuts both classes."""
    _, _, truth = family
    c = np.indices(truth.shape).reshape(3, -1).T.astype(float)
    c = (c - c.mean(axis=0)) / c.std(axis=0)
    design = np.c_[np.ones(len(c)), c, *(c[:, i] * c[:, j] for i in range(3) for j in range(i, 3))]
    fit, *_ = np.linalg.lstsq(design, truth.ravel().astype(float), rcond=None)
    quadric = (design @ fit > 0.5).reshape(truth.shape)
    body = truth.astype(bool)
    assert 2 * (quadric & body).sum() / (quadric.sum() + body.sum()) < 0.7
    per_slice = truth.reshape(truth.shape[0], -1).mean(axis=1)
    assert (per_slice > 0.05).all() and (per_slice < 0.95).all()


def test_seeded_and_checked():
    a = texture_family("length", shape=(8, 16, 16), seed=3)
    b = texture_family("length", shape=(8, 16, 16), seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert a[0].dtype == np.uint16 and a[1].dtype == np.uint8
    with pytest.raises(ValueError, match="kind"):
        texture_family("spots")
