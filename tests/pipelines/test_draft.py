"""Draft models: the forest the full training fits, from cached rows of the painted slices."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from segdata import FAST, FAST_RF, painted_world, scribbles

from ml4paleo.errors import InputError
from ml4paleo.io.omezarr import open_level
from ml4paleo.models import load_model
from ml4paleo.pipelines.draft import DRAFT_FEATURES, DRAFT_MAX_VOXELS, prune_drafts, ranked_features, train_draft
from ml4paleo.pipelines.preview import clear_cache, predict_slice
from ml4paleo.pipelines.train import FIT_SAMPLES, train_model
from ml4paleo.planes import SliceRef

SLICES = (6, 16, 26)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return painted_world(tmp_path_factory.mktemp("draft"), 3, SLICES)


def _classes(model_dir, volume) -> np.ndarray:
    model = load_model(model_dir)
    return np.argmax(model.predict_region(open_level(volume, 0), (0, 0, 0), open_level(volume, 0).shape), axis=-1)


def test_draft_predicts_what_the_full_forest_predicts(world):
    """The draft is the model ``train_model`` fits last with method forest and no ranking: the
    same rows, sampling and seeded forest, so the same classes everywhere in the volume."""
    root, _, _, ann = world
    volume = root / "vol.ome.zarr"
    full = train_model(volume, ann, root / "full", method="forest", select=None, features=FAST, params=FAST_RF,
                       max_voxels=DRAFT_MAX_VOXELS)
    draft = train_draft(volume, ann, root / "draft", features=FAST, params=FAST_RF, cache_dir=root / "cache")
    assert draft.n_slices == len(SLICES) and set(draft.featurised) == {SliceRef("z", z) for z in SLICES}
    assert full.method == "forest"
    assert np.array_equal(_classes(root / "draft", volume), _classes(root / "full", volume))
    meta = json.loads((root / "draft" / "metadata.json").read_text())
    assert meta["draft"] is True and meta["method"] == "forest"
    assert json.loads((root / "draft" / "validation.json").read_text()) == {}  # no validation in its path


def test_after_a_full_model_drafts_reuse_its_ranking_and_still_match_its_forest(world, tmp_path):
    root, _, _, ann = world
    volume, models = root / "vol.ome.zarr", tmp_path / "models"
    assert ranked_features(models) is None  # no full model yet: the draft uses the bank less orientation
    first = train_draft(volume, ann, tmp_path / "first", params=FAST_RF)
    meta = json.loads((first.model_dir / "metadata.json").read_text())
    assert meta["features"]["filters"] == list(DRAFT_FEATURES.filters) and not {"orient", "energy"} & set(meta["features"]["filters"])
    train_model(volume, ann, models / "aaa", features=FAST, params=FAST_RF)  # auto: validated, 16 ranked features
    (models / "broken").mkdir()
    (models / "broken" / "metadata.json").write_text("{not json")
    ranked = ranked_features(models)
    assert ranked is not None and ranked.selected is not None and ranked.n_features == 16
    train_draft(volume, ann, tmp_path / "draft", features=ranked, params=FAST_RF)
    train_model(volume, ann, tmp_path / "forest", method="forest", features=ranked, params=FAST_RF,
                max_voxels=DRAFT_MAX_VOXELS)
    assert np.array_equal(_classes(tmp_path / "draft", volume), _classes(tmp_path / "forest", volume))


def test_the_draft_trains_on_at_most_its_row_cap(world, tmp_path):
    """The documented difference from a default full training: fewer rows when the painting is dense."""
    root, _, truth, _ = world
    dense = {z: (truth[z] + 1).astype(np.uint8) for z in SLICES}  # every voxel painted
    capped = train_draft(root / "vol.ome.zarr", dense, tmp_path / "d", features=FAST, params=FAST_RF, max_voxels=500)
    uncapped = train_draft(root / "vol.ome.zarr", dense, tmp_path / "e", features=FAST, params=FAST_RF,
                           max_voxels=100_000)

    def rows(model_dir) -> float:  # distinct rows each tree's bootstrap drew, on average
        trees = load_model(model_dir).estimator.estimators_
        return sum(t.tree_.n_node_samples[0] for t in trees) / len(trees)

    assert load_model(capped.model_dir).metadata["max_voxels"] == 500
    # proportional sampling keeps a floor of MIN_PER_CLASS (2000) rows per class: 4000 of 6912 here;
    # a tree's draw of FIT_SAMPLES x n rows holds n (1 - exp(-FIT_SAMPLES)) distinct ones on average
    distinct = 1 - math.exp(-FIT_SAMPLES)
    assert rows(capped.model_dir) < 1.2 * distinct * 4000 < rows(uncapped.model_dir)


def test_cached_rows_are_reused_and_invalidated_when_a_slice_is_repainted(world, tmp_path):
    root, _, truth, ann = world
    volume, cache = root / "vol.ome.zarr", tmp_path / "cache"
    first = train_draft(volume, ann, tmp_path / "a", features=FAST, params=FAST_RF, cache_dir=cache)
    assert set(first.featurised) == {SliceRef("z", z) for z in SLICES} and len(list(cache.glob("*.npz"))) == len(SLICES)
    again = train_draft(volume, ann, tmp_path / "b", features=FAST, params=FAST_RF, cache_dir=cache)
    assert again.featurised == ()  # nothing changed: every slice's rows come from the cache
    repainted = {**ann, 16: scribbles(truth[16], step=3)}
    clear_cache()  # the repainted slice's rows must come from its new mask, not from memory
    third = train_draft(volume, repainted, tmp_path / "c", features=FAST, params=FAST_RF, cache_dir=cache)
    assert third.featurised == (SliceRef("z", 16),)
    names = sorted(p.name for p in cache.glob("*.npz"))
    assert len(names) == len(SLICES) and sum(n.startswith("16-") for n in names) == 1  # the old rows are gone
    # the cached rows of the repainted slice are those of its new mask: same model as without a cache
    train_draft(volume, repainted, tmp_path / "d", features=FAST, params=FAST_RF)
    assert np.array_equal(_classes(tmp_path / "c", volume), _classes(tmp_path / "d", volume))
    del repainted[26]  # a deleted slice's rows go too
    fourth = train_draft(volume, repainted, tmp_path / "e", features=FAST, params=FAST_RF, cache_dir=cache)
    assert fourth.featurised == () and not any(p.name.startswith("26-") for p in cache.glob("*.npz"))


def test_a_half_written_cache_file_is_featurised_again(world, tmp_path):
    root, _, _, ann = world
    cache = tmp_path / "cache"
    train_draft(root / "vol.ome.zarr", ann, tmp_path / "a", features=FAST, params=FAST_RF, cache_dir=cache)
    victim = next(cache.glob("6-*.npz"))
    victim.write_bytes(victim.read_bytes()[:100])
    result = train_draft(root / "vol.ome.zarr", ann, tmp_path / "b", features=FAST, params=FAST_RF, cache_dir=cache)
    assert result.featurised == (SliceRef("z", 6),)


def test_draft_overlay_equals_the_draft_on_the_whole_volume(world):
    root, _, _, ann = world
    volume = root / "vol.ome.zarr"
    train_draft(volume, ann, root / "overlay", features=FAST, params=FAST_RF)
    assert np.array_equal(predict_slice(volume, root / "overlay", 16), _classes(root / "overlay", volume)[16])


def test_bad_annotations_are_refused_before_anything_is_written(world, tmp_path):
    root, _, truth, _ = world
    only_background = {6: np.where(scribbles(truth[6]) > 0, 1, 0).astype(np.uint8)}
    with pytest.raises(InputError, match="no labeled voxel for class"):
        train_draft(root / "vol.ome.zarr", only_background, tmp_path / "m", features=FAST, cache_dir=tmp_path / "c")
    assert not (tmp_path / "m").exists()


def test_prune_keeps_the_newest_drafts(tmp_path):
    for n in (3, 12, 7, 100):
        (tmp_path / str(n)).mkdir()
    (tmp_path / "features").mkdir()
    prune_drafts(tmp_path, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["100", "12", "features"]


def test_a_draft_says_where_to_paint_next_within_its_budget(world, tmp_path):
    """A draft ranks a few unpainted planes of every axis by its doubt; boxes lie in the plane
    in full-resolution coordinates, best first; with no time to spare it still scores one plane."""
    from ml4paleo.pipelines.draft_suggest import draft_suggestions

    root, _, _, ann = world
    volume = root / "vol.ome.zarr"
    train_draft(volume, ann, tmp_path / "d", features=FAST, params=FAST_RF)
    refs = [SliceRef.of(k) for k in ann]
    doc = draft_suggestions(volume, tmp_path / "d", refs, seconds=60.0)
    assert doc["draft"] is True and doc["estimated_dice"] == {} and doc["suggestions"]
    shape = open_level(volume, 0).shape
    assert {s["axis"] for s in doc["suggestions"]} <= {"z", "y", "x"} and doc["planes_scored"] >= 3
    scores = [s["score"] for s in doc["suggestions"]]
    assert scores == sorted(scores, reverse=True) and scores[0] == 1.0
    for s in doc["suggestions"]:
        axis = "zyx".index(s["axis"])
        sides = [n for a, n in enumerate(shape) if a != axis]
        u0, v0, u1, v1 = s["bbox"]
        assert 0 <= u0 < u1 <= sides[0] and 0 <= v0 < v1 <= sides[1] and "draft" in s["reason"]
        assert SliceRef(s["axis"], s["index"]) not in refs
    assert draft_suggestions(volume, tmp_path / "d", refs, seconds=0.0)["planes_scored"] == 1
