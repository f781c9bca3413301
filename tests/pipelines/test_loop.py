"""The correction loop: a stroke changes the result around it whatever the method, painted
voxels are law, the method stays unless another is clearly better, and each model says where
to paint next."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import ndimage as ndi
from segdata import FAST, FAST_RF, write_volume

from ml4paleo.cli import main
from ml4paleo.io.annotations import write_annotation

from ml4paleo.io.omezarr import open_level
from ml4paleo.pipelines.segment import segment_volume
from ml4paleo.pipelines.scoring import IMAGE_POOR, SWITCH, choose_method
from ml4paleo.models import load_model
from ml4paleo.pipelines import suggest
from ml4paleo.pipelines.suggest import SUGGESTIONS_FILE, suggest_planes
from ml4paleo.planes import SliceRef
from ml4paleo.pipelines.train import train_model
from ml4paleo.testing.phantoms import strokes, texture_only, touching_blobs

START = (14, 20, 26)


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    root = tmp_path_factory.mktemp("loop")
    vol, truth = touching_blobs(shape=(40, 64, 64), seed=1)
    write_volume(root / "vol.ome.zarr", vol, chunks=32, voxel_size=(1.0, 1.0, 1.0))
    return root / "vol.ome.zarr", truth


def run(path, ann, folder, method):
    result = train_model(path, ann, folder, method=method, features=FAST, params=FAST_RF)
    segment_volume(path, folder, folder.with_suffix(".ome.zarr"), scheduler="synchronous")
    return result, np.asarray(open_level(folder.with_suffix(".ome.zarr"), 0)[:])


def worst_false_positive(pred, truth, painted):
    """(z, dab) of a 3x3 background stroke at the most interior point of the largest false
    positive region of an unpainted z slice."""
    best = None
    for z in range(pred.shape[0]):
        if z in painted:
            continue
        wrong, n = ndi.label((pred[z] == 1) & (truth[z] == 0))
        if n:
            sizes = np.bincount(wrong.ravel())[1:]
            if best is None or sizes.max() > best[0]:
                best = (sizes.max(), z, wrong == np.argmax(sizes) + 1)
    assert best is not None, "the model made no false positive to correct"
    _, z, region = best
    depth = ndi.distance_transform_edt(region)
    u, v = np.unravel_index(int(np.argmax(depth)), region.shape)
    dab = np.zeros(region.shape, bool)
    dab[max(u - 1, 0):u + 2, max(v - 1, 0):v + 2] = True
    return z, dab & region


@pytest.mark.parametrize("method", ["forest", "context", "interpolation", "auto"])
def test_a_background_stroke_in_a_false_positive_changes_the_result_around_it(blobs, tmp_path, method):
    path, truth = blobs
    ann = {z: strokes(truth[z]) for z in START}
    _, before = run(path, ann, tmp_path / "before", method)
    z, dab = worst_false_positive(before, truth, ann)
    ann[z] = dab.astype(np.uint8)  # one stroke of the matrix on a slice never painted before
    result, after = run(path, ann, tmp_path / "after", method)
    assert not after[z][dab].any()  # painted voxels are law...
    for key, mask in ann.items():
        assert np.array_equal(after[key][mask > 0], mask[mask > 0] - 1), key  # ...on every painted voxel
    stroke = np.zeros(truth.shape, bool)
    stroke[z] = dab
    around = ndi.binary_dilation(stroke, iterations=5) & ~stroke
    changed = int(((after != before) & around).sum())
    assert changed > 0, f"{method}: the stroke changed nothing around it"
    assert z in json.loads((tmp_path / "after" / "metadata.json").read_text())["completed_slices"] or \
        result.method == "forest"  # the one-class slice entered the prior


def test_each_model_says_where_to_paint_next(blobs, tmp_path, monkeypatch):
    path, truth = blobs
    ann = {z: strokes(truth[z]) for z in START}
    result, pred = run(path, ann, tmp_path / "m", "auto")
    doc = json.loads((tmp_path / "m" / SUGGESTIONS_FILE).read_text())
    assert doc == result.suggestions and doc["suggestions"] and doc["planes_scored"] >= len(doc["suggestions"])
    scores = [s["score"] for s in doc["suggestions"]]
    assert scores == sorted(scores, reverse=True) and scores[0] == 1.0
    for s in doc["suggestions"]:
        axis = "zyx".index(s["axis"])
        sides = [n for a, n in enumerate(truth.shape) if a != axis]
        u0, v0, u1, v1 = s["bbox"]
        assert 0 <= u0 < u1 <= sides[0] and 0 <= v0 < v1 <= sides[1] and s["reason"]
        assert not (s["axis"] == "z" and s["index"] in ann)  # never a painted plane
    assert set(doc["estimated_dice"]) == {"background", "fossil"}
    assert 0 <= doc["estimated_mean_dice"] <= 1 and doc["calibration"]
    # the top suggestion points where the model is wrong more than a random plane is
    top = doc["suggestions"][0]
    axis = "zyx".index(top["axis"])
    wrong = np.take(pred != truth, top["index"], axis=axis)
    u0, v0, u1, v1 = top["bbox"]
    assert wrong[u0:u1, v0:v1].mean() > (pred != truth).mean()

    # a small volume is predicted once whole to rank its planes: the same ranking as plane by plane
    model = load_model(tmp_path / "m")  # with its painted planes
    array, refs = open_level(path, 0), [SliceRef("z", z) for z in START]
    args = (model, array, refs, (1.0, 1.0, 1.0), ["background", "fossil"])
    whole = suggest_planes(*args)
    monkeypatch.setattr(suggest, "WHOLE_VOXELS", 0)
    assert suggest_planes(*args) == whole
    monkeypatch.setattr(suggest, "PLANE_THREADS", 1)  # planes predicted one at a time: the same ranking
    assert suggest_planes(*args) == whole


def test_the_method_changes_only_when_another_is_clearly_better():
    def scored(**means):
        return {n: {"metrics": {"a": {"dice": m}, "b": {"dice": m}}} for n, m in means.items()}

    order = ("forest", "context")
    assert choose_method(scored(forest=0.80, context=0.81), order)[0] == "context"
    kept, why = choose_method(scored(forest=0.80, context=0.81), order, previous="forest")
    assert kept == "forest" and "kept" in why
    changed, why = choose_method(scored(forest=0.80, context=0.80 + SWITCH + 0.01), order, previous="forest")
    assert changed == "context" and "changed from forest" in why
    mixed = scored(forest=0.80, context=0.80 + SWITCH + 0.01)
    mixed["forest"]["fold_dice"], mixed["context"]["fold_dice"] = [0.9, 0.7], [0.8, 0.9]  # worse on one slice
    assert choose_method(mixed, order, previous="forest")[0] == "forest"
    mixed["context"]["fold_dice"] = [0.9, 0.8]
    assert choose_method(mixed, order, previous="forest")[0] == "context"
    assert choose_method(scored(forest=0.8, context=0.9), order, previous="unet")[0] == "context"  # not scored


def test_a_retrained_model_keeps_the_previous_one_s_method_and_features(blobs, tmp_path):
    path, truth = blobs
    ann = {z: strokes(truth[z]) for z in START}
    first = train_model(path, ann, tmp_path / "first", features=FAST, params=FAST_RF, select=8)
    ann[33] = np.zeros_like(ann[14])
    ann[33][30:33, 30:33] = 1
    again = train_model(path, ann, tmp_path / "again", features=FAST, params=FAST_RF, select=8,
                        previous_model=tmp_path / "first")
    assert again.features == first.features and again.features["selected"]  # no new draw of features
    meta = json.loads((tmp_path / "again" / "metadata.json").read_text())
    assert meta["previous_method"] == first.method and meta["previous_model"] == str(tmp_path / "first")
    fresh = train_model(path, ann, tmp_path / "fresh", features=FAST, params=FAST_RF, select=8,
                        previous_model=tmp_path / "missing")  # no model there: as without one
    assert fresh.features["selected"]


def test_a_held_out_slice_does_not_reach_its_fold_through_a_correction_beside_it(tmp_path):
    """A slice with strokes of one class enters the prior as the prior's answer there, computed
    from every painted slice: held out, a full slice next to such a correction would otherwise
    be predicted from its own outline (interpolation and context then score ~1.0 on it)."""
    yy, xx = np.ogrid[:48, :48]
    radius = np.linspace(6, 18, 24)
    truth = np.stack([((yy - 24) ** 2 + (xx - 24) ** 2 <= r * r) for r in radius]).astype(np.uint8)
    vol = (truth * 100 + np.random.default_rng(0).normal(0, 5, truth.shape)).astype(np.float32)
    path = write_volume(tmp_path / "vol.ome.zarr", vol, voxel_size=(1.0, 1.0, 1.0))
    ann = {z: truth[z] + 1 for z in (4, 18)}
    ann[19] = np.zeros_like(ann[4])
    ann[19][:2, :2] = 1  # background in a corner: a correction, its plane otherwise the prior's
    result = train_model(path, ann, tmp_path / "m", method="interpolation", features=FAST, params=FAST_RF,
                         validate="now")
    held_18 = result.validation["candidates"]["interpolation"]["fold_dice"][1]
    assert held_18 < 0.85, held_18  # from slice 4 only (radius 8 against 15): not slice 18's own outline via 19


def test_two_slices_on_which_the_image_fails_go_to_context():
    """With two slices of outlines no fold can score context; where every scored method leaves
    a class below IMAGE_POOR, the image cannot separate the classes and context is chosen."""
    def scored(forest, interpolation):
        out = {n: {"metrics": {"a": {"dice": 0.95}, "b": {"dice": d}}, "fold_dice": [d, d]}
               for n, d in (("forest", forest), ("interpolation", interpolation))}
        out["context"] = {"metrics": {}, "fold_dice": [None, None]}
        return out

    order = ("forest", "context", "interpolation")
    chosen, why = choose_method(scored(IMAGE_POOR - 0.05, 0.0), order, previous="forest")
    assert chosen == "context" and "third slice" in why
    assert choose_method(scored(IMAGE_POOR + 0.1, 0.0), order, previous="forest")[0] == "forest"  # the image separates


def test_two_slices_whose_outlines_the_image_misses_go_to_context():
    """Held-out strokes keep off the borders: the forest scores 0.92 on them while the band near the
    outlines says 0.85 / 0.71 (touching blobs, seed 1: true Dice 0.61, context 0.68). A mean band
    below BAND_POOR on every scored method makes the image poor too; above it (thin tubes: 0.94 /
    0.74, a mean of 0.84) or with no band at all, the strokes' figures decide."""
    def scored(strokes, band):
        out = {n: {"metrics": {"a": {"dice": 0.99}, "b": {"dice": d}}, "fold_dice": [d, d],
                   "band": {"a": {"dice": 0.85}, "b": {"dice": b}} if b is not None else {}}
               for n, d, b in (("forest", strokes, band), ("interpolation", 0.0, 0.0))}
        out["interpolation"]["band"]["a"]["dice"] = 0.72
        out["context"] = {"metrics": {}, "fold_dice": [None, None]}
        return out

    order = ("forest", "context", "interpolation")
    chosen, why = choose_method(scored(0.92, 0.71), order)  # mean band 0.78
    assert chosen == "context" and "near their outlines" in why
    assert choose_method(scored(0.92, 0.71), order, previous="forest")[0] == "context"
    assert choose_method(scored(0.97, 0.74), order)[0] == "context"  # mean 0.795: just below
    assert choose_method(scored(0.97, 0.76), order)[0] == "forest"  # mean 0.805: the image separates
    assert choose_method(scored(0.92, None), order)[0] == "forest"  # no band: no evidence of a gap


def test_the_estimate_trusts_the_outlines_as_far_as_their_held_out_record_goes():
    from ml4paleo.compute.uncertainty import soft_dice_terms
    from ml4paleo.pipelines.scoring import outline_trust

    assert outline_trust(None) == 0.5 and outline_trust({"metrics": {}}) == 0.5  # no evidence: even odds
    assert outline_trust({"against_outlines": {"disagree": 30, "outlines_right": 0}}) < 0.15
    assert outline_trust({"against_outlines": {"disagree": 300, "outlines_right": 290}}) > 0.9
    proba = np.zeros((4, 2), np.float32)
    proba[:, 1] = 1.0  # the model says structure on all four voxels
    prior = np.array([1, 1, 0, 0])  # the outlines say background on two of them
    def estimate(trust):
        tp, pred, true = soft_dice_terms(proba, prior, trust)[1]
        return 2 * tp / (pred + true)
    assert estimate(0.0) == 1.0 and estimate(0.5) < estimate(0.1) < 1.0


def test_without_a_held_out_record_of_the_outlines_the_estimate_is_a_range_that_says_so(capsys):
    from ml4paleo.cli import _echo_suggestions
    from ml4paleo.compute.uncertainty import soft_dice_terms
    from ml4paleo.pipelines.scoring import MEASURED_DISAGREEMENTS, outlines_measured

    assert not outlines_measured(None)  # one slice of outlines: its stripes cannot score the outlines
    assert not outlines_measured({"against_outlines": {"disagree": MEASURED_DISAGREEMENTS - 1, "outlines_right": 0}})
    assert outlines_measured({"against_outlines": {"disagree": MEASURED_DISAGREEMENTS, "outlines_right": 0}})
    proba = np.zeros((4, 2), np.float32)
    proba[:, 1] = 1.0
    prior = np.array([1, 1, 0, 0])
    classes = ("background", "fossil")
    terms = [soft_dice_terms(proba, prior, *end) for end in suggest.UNMEASURED_ENDS]
    doc = suggest.estimate(terms, classes, measured=False)
    lo, hi = doc["estimated_dice_range"]["fossil"]
    assert doc["estimated_dice"] == {} and doc["estimated_mean_dice"] is None  # no number it cannot stand by
    assert lo < hi == 1.0 and doc["calibration"].startswith("not enough painted")
    assert doc["estimated_mean_dice_range"][0] <= doc["estimated_mean_dice_range"][1]
    measured = suggest.estimate(terms[:1], classes, measured=True)
    assert measured["estimated_dice"]["fossil"] == lo and measured["estimated_mean_dice_range"] is None
    _echo_suggestions({**doc, "suggestions": []})
    assert f"fossil {lo:.2f}-{hi:.2f}" in capsys.readouterr().out
    # where model and outlines agree on nearly every voxel the odds barely matter: one number, the range beside it
    proba = np.zeros((1000, 2), np.float32)
    proba[:500, 1] = proba[500:, 0] = 1.0
    prior = (np.arange(1000) < 501).astype(int)  # the outlines differ on one voxel
    narrow = suggest.estimate([soft_dice_terms(proba, prior, *end) for end in suggest.UNMEASURED_ENDS], classes, False)
    lo, hi = narrow["estimated_dice_range"]["fossil"]
    assert lo < narrow["estimated_dice"]["fossil"] < hi <= lo + suggest.NARROW and narrow["estimated_mean_dice"]


def test_a_small_volume_s_final_forest_draws_more_trees():
    """Each retrain re-draws the forest: where walking more trees is cheap (a small volume) the
    final forest has CHEAP_TREES unless the caller named the trees, each grown on a draw of FIT_SAMPLES of the
    rows unless the caller named the draw or turned it off; other methods are left alone."""
    from ml4paleo.pipelines.train import CHEAP_TREES, CHEAP_VOXELS, FIT_SAMPLES, _final_params

    assert _final_params("forest", {}, (60, 96, 96))["n_estimators"] == CHEAP_TREES
    assert _final_params("context", {"max_depth": 9}, (60, 96, 96)) == {"max_depth": 9, "n_estimators": CHEAP_TREES,
                                                                       "max_samples": FIT_SAMPLES}
    assert _final_params("forest", {"n_estimators": 12}, (60, 96, 96)) == {"n_estimators": 12, "max_samples": FIT_SAMPLES}
    assert _final_params("forest", {}, (CHEAP_VOXELS // 4096 + 1, 64, 64)) == {"max_samples": FIT_SAMPLES}
    assert _final_params("forest", {"bootstrap": False}, (CHEAP_VOXELS // 4096 + 1, 64, 64)) == {"bootstrap": False}
    assert _final_params("forest", {"max_samples": 0.8}, (CHEAP_VOXELS // 4096 + 1, 64, 64)) == {"max_samples": 0.8}
    assert _final_params("boosting", {}, (8, 8, 8)) == {} and _final_params("interpolation", {}, (8, 8, 8)) == {}


def test_a_background_stroke_acts_fully_within_its_reach_and_by_half_beyond(blobs, tmp_path):
    """A "not here" dab teaches the forest its neighbourhood: within REACH_VOXELS the model is the
    forest that learned it, beyond it one forest of half of its trees and half of the trees fitted
    on the same rows as before the stroke (the forest before it, tree for tree)."""
    from ml4paleo.compute.painted import keep_painted
    from ml4paleo.models import labels_from_proba
    from ml4paleo.pipelines._local_fit import REACH_VOXELS

    path, truth = blobs
    ann = {z: strokes(truth[z]) for z in START}
    _, before = run_forest(path, ann, tmp_path / "before", None)
    z, dab = worst_false_positive(before, truth, ann)
    _, after = run_forest(path, {**ann, z: dab.astype(np.uint8)}, tmp_path / "bg", tmp_path / "before")
    model = load_model(tmp_path / "bg")
    assert model.kind == "local-corrections" and model.far_share == 0.5
    vol = np.asarray(open_level(path, 0)[:])
    painted = [(0, k, m) for k, m in ann.items()]  # painted voxels are law in both segmentations
    # beyond the reach one forest: half of the near forest's trees and the far forest's, which are
    # the first half of the forest before the stroke (the same rows and seed)
    trees = model.near.estimator.estimators_
    far_trees, old_trees = model.far.estimator.estimators_, load_model(tmp_path / "before").estimator.estimators_
    assert len(far_trees) == len(trees) // 2 and same_trees(model.mix.estimator.estimators_,
                                                            trees[len(trees) // 2:] + far_trees)
    assert same_trees(far_trees, old_trees[:len(far_trees)])
    both = keep_painted(labels_from_proba(model.mix.predict_region(vol, (0, 0, 0), vol.shape)), painted,
                        (0, 0, 0), vol.shape)
    stroke = np.zeros(truth.shape, bool)
    stroke[z] = dab
    beyond = ndi.distance_transform_edt(~stroke) >= REACH_VOXELS
    assert np.array_equal(after[beyond], both[beyond])
    assert (after != before)[~beyond & ~stroke].any()  # and the stroke changed its neighbourhood


def same_trees(a, b) -> bool:
    return len(a) == len(b) and all(np.array_equal(x.tree_.threshold, y.tree_.threshold) and
                                    np.array_equal(x.tree_.value, y.tree_.value) for x, y in zip(a, b))


def run_forest(path, ann, folder, previous):
    result = train_model(path, ann, folder, method="forest", features=FAST, params=FAST_RF, select=8,
                         previous_model=previous)
    segment_volume(path, folder, folder.with_suffix(".ome.zarr"), scheduler="synchronous")
    return result, np.asarray(open_level(folder.with_suffix(".ome.zarr"), 0)[:])


def _round(forest: float, context: float | None, folds: int = 2) -> dict:
    """One retrain's scored candidates: the structure's held-out Dice of forest and context (None:
    context could not be scored, two slices of outlines), background 0.95, the same per fold."""
    def one(d):
        if d is None:
            return {"metrics": {}, "fold_dice": [None] * folds}
        return {"metrics": {"a": {"dice": 0.95}, "b": {"dice": d}}, "fold_dice": [round((0.95 + d) / 2, 4)] * folds}
    return {"forest": one(forest), "context": one(context), "interpolation": one(0.0)}


def test_a_method_the_folds_cannot_score_is_kept_not_flipped_back_and_forth():
    """Two slices of outlines: context cannot be scored, and the forest's worst class hovers
    around IMAGE_POOR from stroke to stroke (blobs from 2 slices: context 0.957 -> forest 0.680 ->
    context 0.954 before this rule). Context is entered once and kept."""
    order = ("forest", "context", "interpolation")
    chosen, methods = None, []
    for step in (-0.05, 0.05, -0.02, 0.12, -0.07, 0.2):
        chosen, why = choose_method(_round(IMAGE_POOR + step, None), order, previous=chosen)
        methods.append(chosen)
    assert methods == ["context"] * 6
    assert "kept the previous model's method context" in why and "could score it" in why and "forest 0.9" in why
    # from the forest: it stays while its own evidence holds, and goes to context once, when it fails
    chosen, methods = None, []
    for step in (0.12, 0.05, -0.02, 0.12, 0.2):
        chosen, _ = choose_method(_round(IMAGE_POOR + step, None), order, previous=chosen)
        methods.append(chosen)
    assert methods == ["forest", "forest", "context", "context", "context"]


def test_noisy_scores_never_switch_and_a_switch_needs_two_folds():
    """Scores that move by less than the margin from stroke to stroke keep the method; a switch
    back needs the same margin the other way (hysteresis); one fold is one slice's luck."""
    order = ("forest", "context", "interpolation")
    rng = np.random.default_rng(0)
    chosen, switches = "forest", 0
    for _ in range(30):
        base = 0.8 + rng.normal(0, 0.01)
        now, _ = choose_method(_round(base + rng.uniform(-0.04, 0.04), base + rng.uniform(-0.04, 0.04)), order,
                               previous=chosen)
        switches += now != chosen
        chosen = now
    assert switches == 0
    assert choose_method(_round(0.6, 0.8), order, previous="forest")[0] == "context"  # clearly better: changes
    assert choose_method(_round(0.7, 0.6), order, previous="context")[0] == "context"  # not back on a small lead
    kept, why = choose_method(_round(0.6, 0.8, folds=1), order, previous="forest")
    assert kept == "forest" and "only 1 held-out slice" in why


def test_a_carried_score_is_never_weighed_against_fresh_ones():
    """The U-Net's scores carried from an earlier model stay fixed while the forest is drawn anew
    on every stroke (blobs from one slice: forest 0.735 -> 0.838 on the same stripes after a
    5-voxel dab, U-Net carried at 0.742, true Dice 0.935 -> 0.481). A carried previous method is
    kept whatever the fresh scores; a carried other method is not switched to either."""
    order = ("forest", "context", "interpolation", "unet")

    def scores(forest: float, unet: float) -> dict:
        both = {n: {"metrics": {"a": {"dice": m}, "b": {"dice": m}}, "fold_dice": [m, m]}
                for n, m in (("forest", forest), ("unet", unet))}
        both["unet"]["carried"] = True
        return {**both, "context": {"metrics": {}}, "interpolation": {"metrics": {}}}

    kept, why = choose_method(scores(0.838, 0.742), order, previous="unet")
    assert kept == "unet" and "carried" in why and "forest 0.838" in why
    assert choose_method(scores(0.80, 0.95), order, previous="forest")[0] == "forest"
    fresh = scores(0.838, 0.742)
    del fresh["unet"]["carried"]  # scored afresh on the same strokes: the switch rule decides
    assert choose_method(fresh, order, previous="unet")[0] == "forest"


def test_a_switch_across_the_stack_needs_the_new_method_right_on_every_correction_plane():
    """Scored with the correction planes held out (``across``), the old method's score there is low by
    construction (each plane lies where the model of its time was wrong): the switch rule's margin
    alone would take a method right on some of them; it must reach ``ACROSS_RIGHT`` on every one."""
    from ml4paleo.pipelines.scoring import ACROSS_RIGHT

    order = ("forest", "context", "interpolation", "unet")

    def across(forest: list[float], unet: list[float]) -> dict:
        return {**{n: {"metrics": {"a": {"dice": float(np.mean(f))}, "b": {"dice": float(np.mean(f))}},
                       "fold_dice": f, "across": True} for n, f in (("forest", forest), ("unet", unet))},
                "context": {"metrics": {}}, "interpolation": {"metrics": {}}}

    kept, why = choose_method(across([1.0, 1.0, 0.0], [0.0, 0.333, 0.0]), order, previous="unet")  # blobs seed 2
    assert kept == "unet" and f"below {ACROSS_RIGHT}" in why
    assert choose_method(across([0.0, 0.094, 0.065], [1.0, 1.0, 1.0]), order, previous="forest")[0] == "unet"
    fresh = across([1.0, 1.0, 0.0], [0.0, 0.333, 0.0])
    for n in ("forest", "unet"):
        del fresh[n]["across"]  # the same scores on slices of outlines: the switch rule alone decides
    assert choose_method(fresh, ("forest", "interpolation", "unet"), previous="unet")[0] == "forest"


def test_the_bar_across_the_stack_reads_each_fold_on_the_classes_painted_there():
    """A correction plane often holds one class: a fold's mean over every class then gives the absent
    class 0 for a voxel or two wrong (blobs seed 6's U-Net: 0.480 on a structure dab it had ~27 of
    29 right). ``ACROSS_RIGHT`` reads ``fold_present``, the mean over the classes held out there, so
    such a fold no longer keeps a forest that is wrong; a fold wrong on its own class still does."""
    order = ("forest", "context", "interpolation", "unet")

    def across(unet_present: list[float]) -> dict:
        return {"forest": {"metrics": {"a": {"dice": 0.45}, "b": {"dice": 0.45}}, "fold_dice": [0.3, 0.4, 0.45],
                           "fold_present": [0.5, 0.8, 0.9], "across": True},
                "unet": {"metrics": {"a": {"dice": 0.8}, "b": {"dice": 0.8}}, "fold_dice": [0.48, 1.0, 1.0],
                         "fold_present": unet_present, "across": True},
                "context": {"metrics": {}}, "interpolation": {"metrics": {}}}

    assert choose_method(across([0.93, 1.0, 1.0]), order, previous="forest")[0] == "unet"
    assert choose_method(across([0.6, 1.0, 1.0]), order, previous="forest")[0] == "forest"


def test_a_unet_no_quick_method_can_replace_across_the_stack_needs_no_score_of_its_own():
    """A switch across the stack needs the new method at ``ACROSS_RIGHT`` on every held-out fold, a
    bar on its own scores: when no quick method clears it, no score of the U-Net's could switch, so
    its folds need not be trained (blobs seed 0 from 3 slices: the forest 1.000 0.000 0.286)."""
    from ml4paleo.pipelines.scoring import cannot_leave

    def across(forest: list[float]) -> dict:
        return {"forest": {"metrics": {"a": {"dice": 0.5}}, "fold_dice": forest, "across": True},
                "context": {"metrics": {}}, "interpolation": {"metrics": {"a": {"dice": 0.2}}, "fold_dice": [0.2, None],
                                                              "across": True}}

    why = cannot_leave(across([1.0, 0.0, 0.286]), "unet")
    assert why is not None and "forest 0.000" in why and "interpolation 0.200" in why
    assert cannot_leave(across([1.0, 0.95, None]), "unet") is None  # the forest might replace it: score the U-Net
    not_across = across([1.0, 0.0])
    del not_across["forest"]["across"]  # scored on slices of outlines only: the bar does not apply
    assert cannot_leave(not_across, "unet") is None


def test_the_unet_is_scored_afresh_when_one_class_grows_by_half():
    """Carried evidence stands while neither the painted voxels nor those of any one class grow
    by ``RESCORE_GROWTH``: a dab that doubles a class painted on a handful of voxels reopens it."""
    from ml4paleo.pipelines.network import _grown, painted_per_class

    bg = np.zeros((20, 20), np.uint8)
    bg[:10] = 1
    bg[15, 15] = 2
    masks = {SliceRef("z", 3): bg}
    evidence = {"painted": 201, "painted_classes": painted_per_class(masks)}
    assert evidence["painted_classes"] == [200, 1]
    assert not _grown(evidence, masks)
    dab = np.zeros((20, 20), np.uint8)
    dab[0, 0] = 1
    assert not _grown(evidence, {**masks, SliceRef("x", 4): dab})  # background +0.5 %
    dab[0, 0] = 2
    assert _grown(evidence, {**masks, SliceRef("x", 4): dab})  # structure 1 -> 2
    assert not _grown({"painted": 201}, {**masks, SliceRef("x", 4): dab})  # older evidence: the total decides


def test_a_retrain_on_the_command_line_says_why_it_kept_the_method(tmp_path):
    """``ml4paleo train --overwrite`` retrains in place of a model: with two slices of outlines no
    fold can score context, so a context model is kept, and the output says so and why."""
    vol, truth = texture_only(shape=(6, 24, 24), seed=0)
    write_volume(tmp_path / "vol.ome.zarr", vol, chunks=24)
    for z in (1, 4):
        write_annotation(tmp_path / "ann", z, truth[z] + 1)
    args = ["train", str(tmp_path / "vol.ome.zarr"), str(tmp_path / "ann"), str(tmp_path / "model"), "--sigmas", "1,3.5",
            "--validate", "now"]
    first = CliRunner().invoke(main, [*args, "--method", "context"])
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(main, [*args, "--overwrite"])
    assert again.exit_code == 0, again.output
    assert "method: context (kept the previous model's method context: no held-out slice could score it" in again.output


def test_a_plane_that_began_as_a_correction_is_never_held_out(tmp_path):
    """A plane painted since the model before, not a slice of outlines then, is a correction: dabs
    of two classes gathered on it since bracket an outline in the end, yet it stays out of the
    folds, for every later model too (the model lists it). A plane a model was trained on does not
    become one later: a first model's background-only plane outlined since is a slice of outlines."""
    from ml4paleo.pipelines.corrections import CORRECTIONS_KEY, correction_planes

    outline = np.zeros((32, 32), np.uint8)
    outline[4:28:4, :] = 1
    outline[4:28:4, 16:] = 2  # strokes of two classes meeting: a slice of outlines
    dab = np.zeros((32, 32), np.uint8)
    dab[10:13, 10:13] = 1  # one class: a correction where it is new
    both = dab.copy()
    both[14:16, 10:13] = 2  # a second dab, of the other class, beside the first: it now brackets an outline
    first = tmp_path / "m1"  # a first model: z3 outlined, z9 background only, as the user chose
    first.mkdir()
    np.savez_compressed(first / "painted.npz", z3=outline, z9=dab)
    (first / "metadata.json").write_text(json.dumps({"previous_model": None, CORRECTIONS_KEY: []}))
    masks = {SliceRef("z", 3): outline, SliceRef("z", 9): outline, SliceRef("y", 5): dab, SliceRef("z", 20): outline}
    assert correction_planes(masks, first) == {SliceRef("y", 5)}  # new and one class; z20 new outlines
    later = tmp_path / "m2"  # the model after: y5 listed; its dabs bracket an outline since
    later.mkdir()
    np.savez_compressed(later / "painted.npz", z3=outline, z9=outline, y5=dab, z20=outline)
    (later / "metadata.json").write_text(json.dumps({"previous_model": str(first), CORRECTIONS_KEY: ["y5"]}))
    masks = {**masks, SliceRef("y", 5): both}
    assert correction_planes(masks, later) == {SliceRef("y", 5)}
    unlisted = tmp_path / "m0"  # saved before the list: its planes not of outlines count, if it had a model before
    unlisted.mkdir()
    np.savez_compressed(unlisted / "painted.npz", z3=outline, y5=dab)
    (unlisted / "metadata.json").write_text(json.dumps({"previous_model": "m-1"}))
    assert correction_planes(masks, unlisted) == {SliceRef("y", 5)}
    (unlisted / "metadata.json").write_text(json.dumps({"previous_model": None}))
    assert correction_planes(masks, unlisted) == set()
    assert correction_planes(masks, None) == set()


def test_a_reason_gives_its_distance_in_the_scans_unit_on_anisotropic_voxels():
    from ml4paleo.pipelines.suggest import distance_text

    assert distance_text(14.0, (2.0, 2.0, 2.0), "micrometer") == "7 voxels"
    assert distance_text(2.0, (2.0, 2.0, 2.0), "micrometer") == "1 voxel"  # not "1 voxels"
    # slices 3 mm thick under 1 mm pixels: 7 "voxels" would not say 7 what
    assert distance_text(7.0, (3.0, 1.0, 1.0), "millimeter") == "7 mm"
    assert distance_text(7.5, (3.0, 0.977, 0.977), None) == "7.5 µm"
