"""A large region is predicted piece by piece: the same probabilities, memory bounded by a piece.

Why: the suggestions predicted whole planes with the filters' 119-plane halo, two at a time, and a
large scan's training then held a whole plane's features at once (docs/benchmarks.md). The bound is
tested with a tiny piece on a small volume: no featurised region is larger than the piece.
"""

from __future__ import annotations

import numpy as np
import pytest

import ml4paleo.models._base as base
from ml4paleo.compute.features import FeatureSettings
from ml4paleo.compute.regions import features_of_region, region_tiles
from ml4paleo.models import HistGradientBoostingSegmenter, RandomForestSegmenter

SETTINGS = FeatureSettings(sigmas=(1.0, 2.0), filters=("gaussian", "ggm"))


def test_region_tiles_cover_the_region_once():
    parts = region_tiles((3, 5, 0), (4, 40, 33), 16)
    seen = np.zeros((1, 35, 33), int)
    for a, b in parts:
        assert all(j - i <= 16 for i, j in zip(a, b))
        seen[a[0] - 3:b[0] - 3, a[1] - 5:b[1] - 5, a[2]:b[2]] += 1
    assert (seen == 1).all() and len(parts) == 3 * 3


@pytest.mark.parametrize("cls", [RandomForestSegmenter, HistGradientBoostingSegmenter])
def test_pieces_give_the_whole_regions_probabilities(cls, rng, monkeypatch, pieces_of_16):
    vol = rng.normal(size=(24, 40, 36)).astype(np.float32)
    vol[:, 10:25, 8:30] += 2.0
    labels = np.zeros(vol.shape, np.intp)
    labels[:, 10:25, 8:30] = 1
    feats = features_of_region(vol, (0, 0, 0), vol.shape, SETTINGS)
    kw = {"n_estimators": 8} if cls is RandomForestSegmenter else {"max_iter": 3}
    model = cls(("matrix", "grain"), SETTINGS, **kw).fit(feats.reshape(-1, SETTINGS.n_features)[::7],
                                                         labels.reshape(-1)[::7])
    regions = [((5, 0, 0), (6, 40, 36)), ((0, 17, 0), (24, 18, 36)), ((2, 3, 4), (22, 39, 35))]
    whole = [model.predict_region(vol, a, b) for a, b in regions]

    featurised = pieces_of_16  # from here on: pieces of 16 voxels
    for (a, b), expected in zip(regions, whole):
        got = model.predict_region(vol, a, b)
        assert got.dtype == np.float32 and np.array_equal(got, expected)
    assert featurised and max(max(s) for s in featurised) <= 16
    featurised.clear()  # a region whose block with its halo is within the budget stays whole
    monkeypatch.setattr(base, "PREDICT_VOXELS", 10 ** 9)
    assert np.array_equal(model.predict_region(vol, *regions[2]), whole[2]) and featurised == [[20, 36, 31]]
