"""A model whose corrections act where they were painted: the near forest within reach, the far one beyond."""

from __future__ import annotations

import numpy as np

from ml4paleo.compute.features import FeatureSettings
from ml4paleo.compute.regions import features_of_region
from ml4paleo.models import LocalCorrections, RandomForestSegmenter, load_model, region_labels, save_model

SETTINGS = FeatureSettings(sigmas=(1.0,), filters=("gaussian", "ggm"))


def _two_forests(seed: int, shape: tuple[int, int, int], near_seed: int = 0):
    """A noise volume and two forests that answer it oppositely (far: bright is fossil; near: the reverse)."""
    vol = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
    X = features_of_region(vol, (0, 0, 0), vol.shape, SETTINGS).reshape(-1, SETTINGS.n_features)
    y = (X[:, 0] > 0).astype(np.intp)
    far = RandomForestSegmenter(("background", "fossil"), SETTINGS, n_estimators=4).fit(X, y)
    near = RandomForestSegmenter(("background", "fossil"), SETTINGS, n_estimators=4, seed=near_seed).fit(X, 1 - y)
    return vol, far, near


def test_near_within_reach_far_beyond_and_the_same_after_saving(tmp_path):
    vol, far, near = _two_forests(0, (16, 24, 24))
    mask = np.zeros((24, 24), np.uint8)
    mask[12, 12] = 1
    model = LocalCorrections(far, near, [(0, 8, mask)], (1.0, 1.0, 1.0), radius=6.0)
    p = model.predict_region(vol, (0, 0, 0), vol.shape)
    p_far, p_near = far.predict_region(vol, (0, 0, 0), vol.shape), near.predict_region(vol, (0, 0, 0), vol.shape)
    assert np.allclose(p[8, 10:15, 10:15], p_near[8, 10:15, 10:15])  # within half the reach: the near forest
    assert np.array_equal(p[:2], p_far[:2]) and np.array_equal(p[8, :, :5], p_far[8, :, :5])  # beyond: the far
    assert np.allclose(model.predict_region(vol, (6, 8, 9), (12, 20, 16)), p[6:12, 8:20, 9:16], atol=1e-6)
    labels = region_labels(model, vol, (0, 0, 0), (4, 24, 24))  # out of reach: the far forest's fast labels
    assert np.array_equal(labels, np.argmax(p_far[:4], -1))

    save_model(model, tmp_path / "m", metadata={"method": "forest"})
    loaded = load_model(tmp_path / "m")
    assert loaded.kind == "local-corrections" and loaded.classes == model.classes
    assert np.allclose(loaded.predict_region(vol, (0, 0, 0), vol.shape), p, atol=1e-6)


def test_beyond_the_reach_a_share_of_each_forest(tmp_path):
    vol, far, near = _two_forests(1, (12, 20, 20), near_seed=3)
    mask = np.zeros((20, 20), np.uint8)
    mask[10, 10] = 1
    model = LocalCorrections(far, near, [(0, 6, mask)], (1.0, 1.0, 1.0), radius=4.0, far_share=0.5)
    p = model.predict_region(vol, (0, 0, 0), vol.shape)
    p_far, p_near = far.predict_region(vol, (0, 0, 0), vol.shape), near.predict_region(vol, (0, 0, 0), vol.shape)
    assert np.allclose(p[6, 9:12, 9:12], p_near[6, 9:12, 9:12])  # within half the reach: the near forest
    assert np.allclose(p[:2], (p_far[:2] + p_near[:2]) / 2)  # beyond: the mean
    labels = region_labels(model, vol, (0, 0, 0), vol.shape)
    assert np.array_equal(labels, np.argmax(p, -1))
    save_model(model, tmp_path / "m", metadata={"method": "forest"})
    assert np.allclose(load_model(tmp_path / "m").predict_region(vol, (0, 0, 0), vol.shape), p, atol=1e-6)


def test_beyond_the_reach_one_forest_of_half_of_each(tmp_path):
    """The mix estimates the mean of the two forests with one forest walk: its trees are the far
    forest's and as many of the near forest's last ones; within reach the near forest answers."""
    from ml4paleo.models._local import mixed_forest

    vol, far, near = _two_forests(2, (12, 20, 20), near_seed=3)
    mix = mixed_forest(near, far, 0.5)
    assert mix.estimator.estimators_ == near.estimator.estimators_[-4:] + far.estimator.estimators_
    mask = np.zeros((20, 20), np.uint8)
    mask[10, 10] = 1
    model = LocalCorrections(far, near, [(0, 6, mask)], (1.0, 1.0, 1.0), radius=4.0, far_share=0.5, mix=mix)
    p = model.predict_region(vol, (0, 0, 0), vol.shape)
    p_far, p_near = far.predict_region(vol, (0, 0, 0), vol.shape), near.predict_region(vol, (0, 0, 0), vol.shape)
    assert np.allclose(p[6, 9:12, 9:12], p_near[6, 9:12, 9:12])  # within half the reach: the near forest
    assert np.allclose(p[:2], (p_far[:2] + p_near[:2]) / 2, atol=1e-6)  # beyond: the mean, here exactly
    assert np.array_equal(region_labels(model, vol, (0, 0, 0), (3, 20, 20)), np.argmax(p[:3], -1))
    assert model.coarse() is mix
    save_model(model, tmp_path / "m", metadata={"method": "forest"})
    loaded = load_model(tmp_path / "m")
    assert loaded.mix is not None and np.allclose(loaded.predict_region(vol, (0, 0, 0), vol.shape), p, atol=1e-6)


def test_a_large_region_is_predicted_in_pieces_with_the_same_probabilities(request):
    """Both forests featurise a large region piece by piece, as a lone forest does (the suggestions of
    a large scan with a background correction otherwise held one whole plane's features at once)."""
    vol, far, near = _two_forests(2, (16, 40, 36))
    mask = np.zeros((40, 36), np.uint8)
    mask[20, 18] = 1
    model = LocalCorrections(far, near, [(0, 8, mask)], (1.0, 1.0, 1.0), radius=6.0)
    whole = model.predict_region(vol, (0, 0, 0), vol.shape)
    featurised = request.getfixturevalue("pieces_of_16")  # from here on: pieces of 16 voxels
    assert np.allclose(model.predict_region(vol, (0, 0, 0), vol.shape), whole, atol=1e-6)
    assert featurised and max(max(s) for s in featurised) <= 16
