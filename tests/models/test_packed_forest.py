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


def float32_argmax(proba: np.ndarray) -> np.ndarray:
    """The segmenter's labels: np.argmax of its float32 probabilities (the first class on ties)."""
    return np.argmax(proba.astype(np.float32), axis=1)


def test_leaf_values_are_class_fractions(trained):
    """The early exit's bound: a tree adds each class a value in [0, 1] (scikit-learn's leaf
    class fractions), so the trees left cannot add a class more than their number."""
    model, _ = trained
    for est in model.estimator.estimators_:
        value = est.tree_.value[:, 0, :]
        assert value.min() >= 0 and value.max() <= 1 and np.allclose(value.sum(axis=1), 1)
    packed = pack_forest(model.estimator)
    assert packed.value.min() >= 0 and packed.value.max() <= 1


def test_early_exit_labels_equal_scikit_learn(trained):
    model, X = trained
    packed = pack_forest(model.estimator)
    expected = float32_argmax(model.estimator.predict_proba(X))
    n_trees = len(packed.root)
    decided_at = np.zeros(n_trees + 1, np.int64)
    assert np.array_equal(packed.predict_labels(X, decided_at=decided_at), expected)  # row-major rows
    assert decided_at.sum() == len(X)
    assert decided_at[: n_trees // 2 + 1].sum() == 0  # no row can be decided before half the trees
    assert decided_at[:n_trees].sum() > len(X) // 2  # most rows stop early on this volume
    columns = np.ascontiguousarray(X.T).T
    for group in (1, 3, 5):
        assert np.array_equal(packed.predict_labels(columns, group=group), expected)
    assert np.array_equal(packed.predict_labels(columns, first=1), expected)  # checks from the first tree on
    assert np.array_equal(packed.predict_labels(columns, n_jobs=3), expected)
    for n in (3001, 7):  # the tile's and the lanes' remainders
        assert np.array_equal(packed.predict_labels(columns[:n]), expected[:n])
    holed = np.ascontiguousarray(X.T)
    holed[3, 2999] = np.nan
    assert packed.predict_labels(holed.T) is None  # left to scikit-learn's rule for NaN


def test_early_exit_labels_on_ties_and_near_ties(trained):
    """Leaf values drawn so that many rows tie exactly, or differ by less than float32 can
    tell apart (the segmenter's probabilities are float32: the first class wins there), or
    lead by about the trees left when checked: the labels stay np.argmax's."""
    import dataclasses

    model, X = trained
    packed = pack_forest(model.estimator)
    rng = np.random.default_rng(5)
    d = 1e-12  # below float32's resolution of the probabilities
    two = [(1, 0), (0, 1), (0.5, 0.5), (0.5 + d, 0.5 - d), (0.5 - d, 0.5 + d)]
    three = [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1 / 3, 1 / 3, 1 / 3), (0.5, 0.5, 0), (0, 0.5, 0.5), (0.5, 0, 0.5)]
    for leaves in (two, three):
        value = np.asarray(leaves, np.float64)[rng.integers(0, len(leaves), len(packed.value))]
        tied = dataclasses.replace(packed, value=np.ascontiguousarray(value))
        proba = tied.predict_proba(X)
        expected = float32_argmax(proba)
        ranked = np.sort(proba.astype(np.float32), axis=1)
        assert np.mean(ranked[:, -1] == ranked[:, -2]) > 0.005  # exact ties in float32 occur
        decided_at = np.zeros(len(packed.root) + 1, np.int64)
        assert np.array_equal(tied.predict_labels(X, decided_at=decided_at), expected)
        assert np.array_equal(tied.predict_labels(X, group=1, first=1), expected)
        assert decided_at[:-1].sum() > 0  # and some rows were decided early
    outside = dataclasses.replace(packed, value=packed.value * 2.0)  # no bound: every tree is walked
    decided_at = np.zeros(len(packed.root) + 1, np.int64)
    assert np.array_equal(outside.predict_labels(X, decided_at=decided_at), float32_argmax(outside.predict_proba(X)))
    assert decided_at[-1] == len(X)


def test_segmenter_labels_equal_argmax_of_its_probabilities(trained, monkeypatch):
    import ml4paleo.models._forest as forest
    from ml4paleo.models._base import labels_from_proba, region_labels

    model, X = trained
    monkeypatch.setattr(forest, "PACKED_MIN_ROWS", 1000)
    assert np.array_equal(model.predict(X), labels_from_proba(model.estimator.predict_proba(X).astype(np.float32)))
    volume, _ = touching_blobs(shape=(24, 64, 64), seed=3)
    start, stop = (3, 5, 0), (20, 60, 64)
    got = region_labels(model, volume, start, stop)  # the forest's own labels path, feature-major rows
    assert got.dtype == np.uint8 and got.shape == (17, 55, 64)
    assert np.array_equal(got, labels_from_proba(model.predict_region(volume, start, stop)))

    class Flipped(RandomForestSegmenter):  # probabilities that are not the forest's own
        def proba_from_features(self, features, start):
            return super().proba_from_features(features, start)[..., ::-1]

    flipped = Flipped(model.classes, model.feature_settings)
    flipped.estimator = model.estimator
    flipped_labels = region_labels(flipped, volume, start, stop)
    assert np.array_equal(flipped_labels, labels_from_proba(flipped.predict_region(volume, start, stop)))
    assert np.mean(flipped_labels == 1 - got) > 0.99


def test_three_classes_labels_and_classes_unseen_in_fit(monkeypatch):
    import ml4paleo.models._forest as forest

    monkeypatch.setattr(forest, "PACKED_MIN_ROWS", 1)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 3)).astype(np.float32)
    y = np.digitize(X[:, 0] + 0.3 * X[:, 1] * X[:, 2], [-0.4, 0.6])
    settings = FeatureSettings(sigmas=(1.0,), filters=("gaussian", "log"))
    model = RandomForestSegmenter(("a", "b", "c"), settings).fit(X, y)
    test = rng.normal(size=(3001, 3)).astype(np.float32)
    expected = float32_argmax(model.estimator.predict_proba(test))
    decided_at = np.zeros(len(model.estimator.estimators_) + 1, np.int64)
    assert np.array_equal(pack_forest(model.estimator).predict_labels(test, decided_at=decided_at), expected)
    assert 0 < decided_at[:-1].sum() < len(test)  # some rows decided early, some walk every tree
    assert np.array_equal(model.predict(test), expected)
    packed = pack_forest(model.estimator)
    assert np.array_equal(packed.predict_labels_lattice(test, (3001, 1, 1), sure=2.0), expected)  # all walked
    assert np.mean(packed.predict_labels_lattice(test, (3001, 1, 1)) == expected) > 0.9  # rows, not a smooth volume
    test[5, 1] = np.nan  # scikit-learn's own rule for missing values
    assert np.array_equal(model.predict(test), float32_argmax(model.estimator.predict_proba(test)))
    four = RandomForestSegmenter(("a", "b", "c", "d"), settings)
    four.estimator.fit(X, np.array([0, 1, 3])[y])  # a forest that never saw class "c" (a loaded model may)
    assert np.array_equal(four.predict(test[6:]), np.argmax(four.predict_proba(test[6:]), axis=1))


def test_lattice_labels_walk_what_is_not_sure_and_keep_thin_structures():
    """Coarse-to-fine labels: with no lattice voxel sure every voxel walks the forest (the exact
    labels); by default, on a volume of one-voxel plates at odd and even z, one-voxel rods and
    single voxels (thinner than the lattice's spacing), no voxel of them is lost and at most a
    few voxels in a thousand differ from the exact labels."""
    rng = np.random.default_rng(4)
    truth = np.zeros((24, 40, 40), np.uint8)
    truth[7, 4:36, 4:20] = truth[12, 4:20, 22:38] = 1  # plates one voxel thick, between and on the lattice
    truth[3:21, 27, 9] = truth[15, 5:35, 31] = 1  # rods one voxel wide, at odd coordinates
    truth[19, 21, 21] = truth[3, 33, 5] = truth[17, 9, 35] = 1  # single voxels
    volume = (1000.0 + 600.0 * truth + rng.normal(0, 40, truth.shape)).astype(np.uint16)
    settings = FeatureSettings(sigmas=(0.7, 1.6, 3.5))
    features = compute_features(volume, settings)
    X = features.reshape(-1, features.shape[-1])
    model = RandomForestSegmenter(("background", "fossil"), settings).fit(X[::3], truth.ravel()[::3])
    packed = pack_forest(model.estimator)
    columns = np.ascontiguousarray(X.T).T  # a block's feature-major rows
    exact = packed.predict_labels(columns)
    assert exact.reshape(truth.shape)[truth == 1].mean() > 0.95  # the forest sees them
    n_trees = len(packed.root)
    for origin in ((0, 0, 0), (1, 0, 3)):  # the lattice's parity follows the block's global origin
        decided_at = np.zeros(n_trees + 1, np.int64)
        assert np.array_equal(packed.predict_labels_lattice(columns, truth.shape, origin, sure=2.0,
                                                            decided_at=decided_at), exact)
        assert decided_at[0] == 0 and decided_at.sum() == truth.size  # nothing copied: every voxel walked
        decided_at[:] = 0
        near = packed.predict_labels_lattice(columns, truth.shape, origin, decided_at=decided_at)
        assert decided_at.sum() == truth.size and decided_at[0] > truth.size // 2  # most voxels copied
        kept = (exact == 1) & (truth.ravel() == 1)
        assert np.array_equal(near[kept], exact[kept])  # no voxel of the thin structures lost
        assert np.mean(near != exact) < 2e-3
        unprobed = packed.predict_labels_lattice(columns, truth.shape, origin, probe=0)
        assert np.mean(unprobed[kept] != 1) > 0.05  # without the probe a plate between lattice planes is lost
    holed = np.ascontiguousarray(X.T)
    holed[2, 77] = np.nan
    assert packed.predict_labels_lattice(holed.T, truth.shape) is None  # left to scikit-learn's rule for NaN
