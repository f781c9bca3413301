"""One contract suite for the segmenter protocol, inherited by every implementation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ml4paleo.errors import InputError, OutputExistsError, VolumeNotFoundError
from ml4paleo.compute.features import FeatureSettings
from ml4paleo.models import (
    HistGradientBoostingSegmenter,
    RandomForestSegmenter,
    Segmenter,
    cached_model,
    load_model,
    save_model,
)

SETTINGS = FeatureSettings(sigmas=(1.0,), filters=("gaussian", "ggm"))  # 3 features


def toy(rng, n=600, K=3):
    X = rng.normal(size=(n, 3)).astype(np.float32)
    y = np.digitize(X[:, 0] + 0.1 * X[:, 1], [-0.5, 0.5])[: n] % K
    return X, y


class SegmenterContract:
    """Every segmenter: fit/predict over class indices, probabilities, save/load, validation."""

    extra_files: tuple[str, ...] = ()

    cls: type
    params: dict = {}

    def make(self, K=3, **kw):
        return self.cls(tuple(f"c{i}" for i in range(K)), SETTINGS, **{**self.params, **kw})

    def test_protocol_and_fit_predict(self, rng):
        model = self.make()
        assert isinstance(model, Segmenter)
        X, y = toy(rng)
        model.fit(X, y)
        proba = model.predict_proba(X)
        assert proba.shape == (len(X), 3) and proba.dtype == np.float32
        np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-5)
        pred = model.predict(X)
        assert pred.dtype == np.uint8 and (pred == y).mean() > 0.9

    def test_deterministic_given_seed(self, rng):
        X, y = toy(rng)
        a = self.make(seed=3).fit(X, y).predict_proba(X)
        b = self.make(seed=3).fit(X, y).predict_proba(X)
        assert np.array_equal(a, b)

    def test_save_and_load_round_trip(self, rng, tmp_path):
        X, y = toy(rng)
        model = self.make().fit(X, y)
        save_model(model, tmp_path / "m", metadata={"voxel_size": [1, 2, 3]}, validation={"method": "x"})
        assert sorted(p.name for p in (tmp_path / "m").iterdir()) == sorted(
            ["estimator.joblib", "metadata.json", "validation.json", *self.extra_files])
        loaded = load_model(tmp_path / "m")
        assert loaded.classes == ("c0", "c1", "c2") and loaded.kind == self.cls.kind
        assert loaded.metadata["voxel_size"] == [1, 2, 3] and loaded.metadata["n_features"] == 3
        assert loaded.feature_settings == SETTINGS
        assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))
        with pytest.raises(OutputExistsError):
            save_model(model, tmp_path / "m")
        assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no partial folder left

    def test_bad_inputs(self, rng):
        X, y = toy(rng)
        with pytest.raises(InputError, match="expects 3 features"):
            self.make().fit(np.zeros((10, 5), np.float32), np.zeros(10, int))
        with pytest.raises(InputError, match="no labeled voxel"):
            self.make().fit(X, np.where(y == 2, 0, y))
        with pytest.raises(InputError, match="classes"):
            self.cls(("only",), SETTINGS)
        model = self.make().fit(X, y)
        with pytest.raises(InputError, match="expects 3 features"):
            model.predict(np.zeros((4, 7), np.float32))


class TestRandomForest(SegmenterContract):
    cls = RandomForestSegmenter
    extra_files = ("forest.npz",)  # the packed trees, which a segmentation loads without scikit-learn
    params = {"n_estimators": 8}


class TestHistGradientBoosting(SegmenterContract):
    cls = HistGradientBoostingSegmenter
    params = {"max_iter": 20}

    @pytest.fixture(autouse=True)
    def _one_openmp_thread(self):
        """Its OpenMP threads spin-wait: on a machine already busy with the suite's other worker
        and servers, 600 toy rows took 9-39 s per test with two threads (0.5 s with one)."""
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, user_api="openmp"):
            yield


def test_load_errors_and_feature_mismatch(rng, tmp_path):
    with pytest.raises(VolumeNotFoundError):
        load_model(tmp_path / "nothing")
    X, y = toy(rng)
    save_model(RandomForestSegmenter(("a", "b", "c"), SETTINGS, n_estimators=4).fit(X, y), tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "metadata.json").read_text())
    meta["features"]["filters"] = ["gaussian"]  # now the settings give 2 features, the forest wants 3
    (tmp_path / "m" / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="fitted on 3 features"):
        load_model(tmp_path / "m")


def test_cached_model_reloads_a_retrained_model(rng, tmp_path):
    X, y = toy(rng)
    save_model(RandomForestSegmenter(("a", "b", "c"), SETTINGS, n_estimators=4).fit(X, y), tmp_path / "m")
    first = cached_model(tmp_path / "m")
    assert cached_model(tmp_path / "m") is first
    save_model(RandomForestSegmenter(("x", "y", "z"), SETTINGS, n_estimators=4).fit(X, y), tmp_path / "m", overwrite=True)
    assert cached_model(tmp_path / "m").classes == ("x", "y", "z")
