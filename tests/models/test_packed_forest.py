"""The packed forest gives scikit-learn's probabilities bit for bit, so labels are identical."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from ml4paleo.compute.features import FeatureSettings, compute_features
from ml4paleo.models import RandomForestSegmenter
from ml4paleo.models._packed import pack_forest
from ml4paleo.testing.phantoms import strokes, touching_blobs


@pytest.fixture(scope="module")
def trained():
    """A default forest trained as the app trains it: default bank, strokes on two slices of a
    generated volume; and the features of the whole volume to predict."""
    volume, truth = touching_blobs(shape=(24, 64, 64), seed=3)
    settings = FeatureSettings()
    features = compute_features(volume, settings)
    rows, targets = [], []
    for z in (6, 17):
        painted = strokes(truth[z] > 0)
        rows.append(features[z][painted > 0])
        targets.append(painted[painted > 0] - 1)
    model = RandomForestSegmenter(("background", "fossil"), settings).fit(np.concatenate(rows), np.concatenate(targets))
    return model, features.reshape(-1, features.shape[-1])


def test_same_probabilities_as_scikit_learn(trained):
    model, X = trained
    expected = model.estimator.predict_proba(X)
    packed = pack_forest(model.estimator)
    assert np.array_equal(packed.predict_proba(X), expected)
    assert np.array_equal(packed.predict_proba(X, n_jobs=2), expected)
    assert np.array_equal(model.predict_proba(X), expected.astype(np.float32))  # the segmenter's path


def test_feature_major_input_needs_no_transposing_copy(trained, monkeypatch):
    """A block's features as the filter bank fills them, (n_features, voxels), read in place."""
    import ml4paleo.models._forest as forest

    monkeypatch.setattr(forest, "PACKED_MIN_ROWS", 1000)
    model, X = trained
    expected = model.estimator.predict_proba(X)
    columns = np.ascontiguousarray(X.T).T  # (voxels, n_features) view of feature-major memory
    packed = pack_forest(model.estimator)
    for n in (len(X), 3001, 7):  # the tile loop's remainders
        assert np.array_equal(packed.predict_proba(columns[:n]), expected[:n])
    assert np.array_equal(packed.predict_proba(columns, n_jobs=3), expected)
    holed = np.ascontiguousarray(X.T)
    holed[3, 2999] = np.nan
    assert packed.predict_proba(holed.T) is None  # left to scikit-learn's rule for NaN
    assert np.array_equal(model.predict_proba(holed.T), model.estimator.predict_proba(holed.T).astype(np.float32))


def test_segmenter_regions_through_the_packed_forest_equal_scikit_learn(trained, monkeypatch):
    import ml4paleo.models._forest as forest

    model, X = trained
    monkeypatch.setattr(forest, "PACKED_MIN_ROWS", 1000)
    volume, _ = touching_blobs(shape=(24, 64, 64), seed=3)
    got = model.predict_region(volume, (3, 5, 0), (20, 60, 64))  # feature-major features, packed
    rows = X.reshape(24, 64, 64, -1)[3:20, 5:60, :64].reshape(-1, X.shape[1])
    assert np.array_equal(got.reshape(-1, got.shape[-1]), model.estimator.predict_proba(rows).astype(np.float32))


def test_thresholds_exact_for_values_next_to_them(trained):
    """float32 inputs one step either side of, and equal to, every split threshold (rounded to
    float32 both ways) go down the tree as in scikit-learn."""
    model, X = trained
    tree = model.estimator.estimators_[0].tree_
    inner = tree.children_left >= 0
    rows = []
    for f, t in zip(tree.feature[inner], tree.threshold[inner]):
        t32 = np.float32(t)
        for v in (np.nextafter(t32, np.float32(-np.inf)), t32, np.nextafter(t32, np.float32(np.inf))):
            row = X[len(rows) % len(X)].copy()
            row[f] = v
            rows.append(row)
    rows = np.asarray(rows, dtype=np.float32)
    assert np.array_equal(pack_forest(model.estimator).predict_proba(rows), model.estimator.predict_proba(rows))


def test_the_segmenter_uses_the_packed_forest_on_large_inputs(trained, monkeypatch):
    import ml4paleo.models._forest as forest

    model, X = trained
    monkeypatch.setattr(forest, "PACKED_MIN_ROWS", 1000)
    calls = []
    monkeypatch.setattr(model.estimator, "predict_proba", lambda rows: calls.append(len(rows)))
    model.predict_proba(X[:2000])  # packed: scikit-learn not called
    assert calls == []


def test_three_classes_and_nan_rows(monkeypatch):
    import ml4paleo.models._forest as forest

    monkeypatch.setattr(forest, "PACKED_MIN_ROWS", 1)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 5)).astype(np.float32)
    y = np.digitize(X[:, 0] + 0.3 * X[:, 1] * X[:, 2], [-0.4, 0.6])
    model = RandomForestSegmenter(("a", "b", "c"), FeatureSettings(sigmas=(1.0,), filters=("gaussian", "log")))
    model.fit(X[:, :3], y)
    test = rng.normal(size=(3001, 3)).astype(np.float32)  # not a multiple of the lanes
    assert np.array_equal(pack_forest(model.estimator).predict_proba(test), model.estimator.predict_proba(test))
    test[5, 1] = np.nan  # scikit-learn's own rule for missing values: the segmenter defers to it
    assert np.array_equal(model.predict_proba(test), model.estimator.predict_proba(test).astype(np.float32))


def test_refit_repacks(monkeypatch):
    import ml4paleo.models._forest as forest

    monkeypatch.setattr(forest, "PACKED_MIN_ROWS", 1)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(500, 3)).astype(np.float32)
    model = RandomForestSegmenter(("a", "b"), FeatureSettings(sigmas=(1.0,), filters=("gaussian", "log")))
    model.fit(X, (X[:, 0] > 0).astype(int))
    first = model.predict_proba(X)
    model.fit(X, (X[:, 1] > 0).astype(int))
    assert np.array_equal(model.predict_proba(X), model.estimator.predict_proba(X).astype(np.float32))
    assert not np.array_equal(first, model.predict_proba(X))


def test_extra_trees_pack_too():
    from sklearn.ensemble import ExtraTreesClassifier

    rng = np.random.default_rng(2)
    X = rng.normal(size=(800, 4)).astype(np.float32)
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    for forest in (RandomForestClassifier(n_estimators=5, random_state=0),
                   ExtraTreesClassifier(n_estimators=5, random_state=0)):
        forest.fit(X, y)
        assert np.array_equal(pack_forest(forest).predict_proba(X), forest.predict_proba(X))
