"""The method choice by held-out slices, on generated volumes whose truth is known:
only shape separates the structure (the prior must win), only appearance does (the forest
must stay), from full masks and from strokes; no prior leaks into its own training slice;
chunked prediction equals the whole volume for every new model."""

from __future__ import annotations

import numpy as np
import pytest
from segdata import dice, write_volume

import ml4paleo.pipelines.segment as segment_mod
from ml4paleo.compute.complete import complete_slice, completable
from ml4paleo.compute.prior import ShapePrior
from ml4paleo.io.omezarr import open_level
from ml4paleo.models import load_model
from ml4paleo.pipelines._candidates import context_rows
from ml4paleo.pipelines.preview import predict_slice
from ml4paleo.pipelines.segment import segment_volume
from ml4paleo.pipelines.train import train_model
from ml4paleo.testing.phantoms import strokes, thin_tubes, touching_blobs
from ml4paleo.planes import SliceRef

PAINTED = (4, 12, 20, 28, 36)


def painted(truth, mode):
    return {z: (truth[z] + 1 if mode == "full" else strokes(truth[z])) for z in PAINTED}


def unpainted_dice(path, truth):
    labels = np.asarray(open_level(path, 0)[:])
    others = [z for z in range(truth.shape[0]) if z not in PAINTED]
    return dice(labels[others] == 1, truth[others] == 1)


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    root = tmp_path_factory.mktemp("blobs")
    vol, truth = touching_blobs(shape=(40, 64, 64), seed=1)
    write_volume(root / "vol.ome.zarr", vol, chunks=32)
    return root, vol, truth


@pytest.mark.parametrize("mode", ["full", "strokes"])
def test_shape_only_volume_chooses_the_shape_prior(blobs, tmp_path, mode):
    root, vol, truth = blobs
    result = train_model(root / "vol.ome.zarr", painted(truth, mode), tmp_path / "auto")
    assert result.method in ("context", "interpolation"), result.candidates
    assert set(result.candidates) == {"forest", "context", "interpolation"}
    held_out = {name: metrics["fossil"]["dice"] for name, metrics in result.candidates.items()}
    assert held_out[result.method] > held_out["forest"] + 0.1, held_out  # the evidence behind the choice
    segment_volume(root / "vol.ome.zarr", tmp_path / "auto", tmp_path / "auto.ome.zarr", scheduler="synchronous")
    chosen = unpainted_dice(tmp_path / "auto.ome.zarr", truth)
    train_model(root / "vol.ome.zarr", painted(truth, mode), tmp_path / "forest", method="forest")
    segment_volume(root / "vol.ome.zarr", tmp_path / "forest", tmp_path / "forest.ome.zarr", scheduler="synchronous")
    forest = unpainted_dice(tmp_path / "forest.ome.zarr", truth)
    # the forest reads more shape as its bank grows (issue 21's orientation and grain-energy features, its
    # half-draw fits): with full masks 0.885 against the chosen 0.922, then 0.898 against 0.928. What this
    # test holds is that the choice is right, so the chosen method must still be ahead, not by a fixed gap
    assert chosen >= 0.9 and chosen > forest + 0.01, (chosen, forest)


@pytest.mark.parametrize("mode", ["full", "strokes"])
def test_appearance_only_volume_keeps_the_forest(tmp_path, mode):
    vol, truth = thin_tubes(shape=(40, 64, 64), seed=2, n_tubes=10)
    write_volume(tmp_path / "vol.ome.zarr", vol, chunks=32)
    result = train_model(tmp_path / "vol.ome.zarr", painted(truth, mode), tmp_path / "auto")
    assert result.method in ("forest", "context") and result.candidates["interpolation"]["fossil"]["dice"] < 0.5
    segment_volume(tmp_path / "vol.ome.zarr", tmp_path / "auto", tmp_path / "auto.ome.zarr", scheduler="synchronous")
    train_model(tmp_path / "vol.ome.zarr", painted(truth, mode), tmp_path / "forest", method="forest")
    segment_volume(tmp_path / "vol.ome.zarr", tmp_path / "forest", tmp_path / "forest.ome.zarr", scheduler="synchronous")
    chosen, forest = unpainted_dice(tmp_path / "auto.ome.zarr", truth), unpainted_dice(tmp_path / "forest.ome.zarr", truth)
    assert chosen >= forest - 0.02 and forest > 0.75


def test_model_folder_records_every_candidate_and_the_choice(blobs, tmp_path):
    import json

    root, vol, truth = blobs
    train_model(root / "vol.ome.zarr", painted(truth, "strokes"), tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "metadata.json").read_text())
    validation = json.loads((tmp_path / "m" / "validation.json").read_text())
    assert meta["method"] == validation["chosen"] and "Dice" in meta["method_reason"]
    assert set(meta["candidates"]) == {"forest", "context", "interpolation"}
    assert meta["completed_slices"] == list(PAINTED) and meta["prior_slices"] == list(PAINTED)
    for scored in validation["candidates"].values():
        assert {"metrics", "interior", "extrapolated", "confusion", "seconds"} <= set(scored)
        assert scored["extrapolated"] and scored["interior"]  # first/last painted slices reported apart


def test_no_training_row_sees_the_prior_of_its_own_slice(blobs):
    """Leakage guard: the prior channels of a training slice (or plane across the stack) come
    from the other slices and planes only."""
    from ml4paleo.compute.features import FeatureSettings
    from ml4paleo.pipelines._candidates import PaintedSlice, TrainingSet

    root, vol, truth = blobs
    masks = np.stack([truth[z] for z in PAINTED])
    plane = SliceRef("y", 30)
    prior = ShapePrior(PAINTED, masks, 2, (2.0, 1.0, 1.0), {plane: truth[:, 30, :]})
    ys, xs = np.nonzero(np.ones(truth.shape[1:], bool))
    slices = [PaintedSlice(SliceRef("z", z), np.zeros((ys.size, 1), np.float32), truth[z][ys, xs].astype(np.intp),
                           (ys, xs)) for z in PAINTED]
    zs, xs2 = np.nonzero(np.ones(truth[:, 30, :].shape, bool))
    slices.append(PaintedSlice(plane, np.zeros((zs.size, 1), np.float32), truth[:, 30, :][zs, xs2].astype(np.intp),
                               (zs, xs2)))
    ts = TrainingSet(slices, ("background", "fossil"), FeatureSettings(), truth.shape, prior)
    for s in slices:
        rows, _ = context_rows(ts, s, exclude=())
        crossing = np.isin(s.coords[0], PAINTED) if s.ref == plane else s.coords[0] == 30
        assert (rows[~crossing, -1] > 0).all() and (rows[crossing, -1] == 0).all()  # zero only where another crosses
        if s.ref == plane:
            without = ShapePrior(PAINTED, masks, 2, (2.0, 1.0, 1.0))
            expected = without.features((0, 30, 0), (truth.shape[0], 31, truth.shape[2]))[:, 0][s.coords]
        else:
            z = s.ref.index
            without = ShapePrior(tuple(p for p in PAINTED if p != z), masks[[p != z for p in PAINTED]], 2,
                                 (2.0, 1.0, 1.0), {plane: truth[:, 30, :]})
            expected = without.features((z, 0, 0), (z + 1, *truth.shape[1:]))[0][s.coords]
        assert np.array_equal(rows[:, 1:], expected)
    held_rows, _ = context_rows(ts, slices[2], exclude={SliceRef("z", PAINTED[1]), plane})
    assert (held_rows[:, -1] == 2.0 * (PAINTED[3] - PAINTED[2])).all()  # nearest remaining slice, in physical units


def test_a_correction_s_rows_see_the_prior_it_carved():
    """A correction (strokes of one class) enters the prior as the prior's answer there, carved by
    its strokes; its training rows read that prior, as its voxels do at segmentation time (issue 22).
    Without its own plane they read "the prior says structure" under a background dab and teach
    the forest to turn structure into background wherever prior and image agree on it."""
    from ml4paleo.compute.features import FeatureSettings
    from ml4paleo.pipelines._candidates import PaintedSlice, TrainingSet

    yy, xx = np.ogrid[:32, :32]
    truth = np.stack([(yy - 16) ** 2 + (xx - 16) ** 2 <= 64] * 12).astype(np.uint8)
    dab = np.zeros((32, 32), np.uint8)
    dab[15:18, 15:18] = 1  # background inside the disk: the prior's answer there is structure
    carved = np.where(dab > 0, 0, truth[6])
    prior = ShapePrior((2, 6, 9), np.stack([truth[2], carved, truth[9]]), 2, (1.0, 1.0, 1.0))
    masks = {SliceRef("z", 2): truth[2] + 1, SliceRef("z", 6): dab, SliceRef("z", 9): truth[9] + 1}
    slices = []
    for ref, mask in masks.items():
        ys, xs = np.nonzero(mask)
        slices.append(PaintedSlice(ref, np.zeros((ys.size, 1), np.float32), mask[ys, xs].astype(np.intp) - 1, (ys, xs)))
    ts = TrainingSet(slices, ("background", "fossil"), FeatureSettings(), truth.shape, prior, masks=masks)
    assert ts.corrections == {SliceRef("z", 6)}
    rows, _ = context_rows(ts, slices[1], exclude=())
    assert np.array_equal(rows[:, 1:], prior.features((6, 0, 0), (7, 32, 32))[0][slices[1].coords])
    assert (rows[:, 1] < rows[:, 2]).all()  # nearer background than structure: the carve, not the disk
    held, _ = context_rows(ts, slices[1], exclude={SliceRef("z", 6)})  # a fold leaving it out: as before
    assert (held[:, 1] > held[:, 2]).all()


@pytest.mark.parametrize("method", ["context", "interpolation"])
def test_chunked_segmentation_and_preview_equal_the_whole_volume(blobs, tmp_path, monkeypatch, method):
    root, vol, truth = blobs
    train_model(root / "vol.ome.zarr", painted(truth, "strokes"), tmp_path / "m", method=method, select=8)
    model = load_model(tmp_path / "m")
    whole = np.argmax(model.predict_region(vol, (0, 0, 0), vol.shape), axis=-1)
    monkeypatch.setattr(segment_mod, "BLOCK_VOXELS", 16 * 32 * 32)
    result = segment_volume(root / "vol.ome.zarr", tmp_path / "m", tmp_path / "s.ome.zarr", scheduler="threads")
    assert result.n_blocks > 4
    assert np.array_equal(np.asarray(open_level(tmp_path / "s.ome.zarr", 0)[:]), whole)
    for z in (0, PAINTED[1], 17):
        assert np.array_equal(predict_slice(root / "vol.ome.zarr", tmp_path / "m", z), whole[z])
    completed = model.prior.masks[1]
    assert np.array_equal(whole[PAINTED[1]], completed)  # painted slices keep their (completed) labels


def test_strokes_complete_into_a_full_slice(blobs):
    root, vol, truth = blobs
    z = PAINTED[2]
    marks = strokes(truth[z])
    full = complete_slice(vol[z], marks)
    assert full.min() >= 1 and np.array_equal(full[marks > 0], marks[marks > 0])
    assert dice(full == 2, truth[z] == 1) > 0.95
    one_class = np.where(marks == 2, 0, marks)
    assert completable(marks) and not completable(one_class) and completable(truth[z] + 1)


def test_poor_classes_are_reported_with_what_would_help(tmp_path):
    rng = np.random.default_rng(0)
    vol = rng.normal(1000, 50, (24, 32, 32)).astype(np.uint16)
    write_volume(tmp_path / "vol.ome.zarr", vol, chunks=32)
    ann = {z: (rng.random((32, 32)) < 0.2).astype(np.uint8) + 1 for z in (4, 12, 20)}  # labels unrelated to anything
    result = train_model(tmp_path / "vol.ome.zarr", ann, tmp_path / "m", method="forest", select=None,
                         features={"sigmas": [1.0], "filters": ["gaussian"]})
    assert any("'fossil'" in w and "Paint more slices" in w for w in result.warnings)
    assert load_model(tmp_path / "m").metadata["warnings"] == list(result.warnings)


def test_planes_across_the_stack_train_every_method(blobs, tmp_path):
    """``y_0032.png`` in a label folder is the plane y = 32 (rows z, columns x): its voxels train
    the classifiers and it is held out like any slice; the prior uses its outline beside the z slices."""
    import json

    from ml4paleo.io.annotations import read_annotations, write_annotation

    root, vol, truth = blobs
    folder = tmp_path / "labels"
    for z in (8, 20, 32):
        write_annotation(folder, z, strokes(truth[z]))
    plane = strokes(truth[:, 32, :])
    from PIL import Image

    Image.fromarray(plane).save(folder / "y_0032.png")
    ann = read_annotations(folder)
    assert list(ann) == [SliceRef("z", 8), SliceRef("z", 20), SliceRef("z", 32), SliceRef("y", 32)]
    assert ann[SliceRef("y", 32)].shape == (40, 64)
    result = train_model(root / "vol.ome.zarr", folder, tmp_path / "m", select=8)
    assert result.voxels_per_class["fossil"] == sum(int((m == 2).sum()) for m in ann.values())
    meta = json.loads((tmp_path / "m" / "metadata.json").read_text())
    assert meta["annotated_slices"] == [8, 20, 32, "y32"] and meta["prior_slices"] == [8, 20, 32, "y32"]
    assert ["y32"] in json.loads((tmp_path / "m" / "validation.json").read_text())["folds"]
    for method in ("forest", "context", "interpolation"):
        assert result.candidates[method]["fossil"]["dice"] is not None
    with pytest.raises(Exception, match="outside the volume"):
        train_model(root / "vol.ome.zarr", {("x", 64): np.ones((40, 64), np.uint8)}, tmp_path / "bad")
    with pytest.raises(Exception, match="has shape"):
        train_model(root / "vol.ome.zarr", {("x", 3): np.ones((64, 64), np.uint8)}, tmp_path / "bad")


def test_a_prior_with_planes_keeps_them_saved_painted_and_chunked(blobs, tmp_path):
    """A plane across the stack travels in the model folder, stays as painted in the
    prediction, and blocks of the prediction equal the whole volume."""
    from ml4paleo.models._context import InterpolationSegmenter, load_prior, save_prior

    root, vol, truth = blobs
    plane = SliceRef("y", 30)
    prior = ShapePrior((8, 32), np.stack([truth[8], truth[32]]), 2, (2.0, 1.0, 1.0), {plane: truth[:, 30, :]})
    save_prior(prior, tmp_path)
    loaded = load_prior(tmp_path)
    assert loaded.planes.keys() == prior.planes.keys() and np.array_equal(loaded.planes[plane], truth[:, 30, :])
    model = InterpolationSegmenter(("background", "fossil"), loaded)
    whole = model.predict_region(vol, (0, 0, 0), vol.shape)
    assert np.array_equal(np.argmax(whole[:, 30, :], axis=-1), truth[:, 30, :])
    blocks = np.concatenate([
        np.concatenate([model.predict_region(vol, (z, y, 0), (min(z + 16, 40), min(y + 24, 64), 64))
                        for y in range(0, 64, 24)], axis=1)
        for z in range(0, 40, 16)])
    assert np.array_equal(blocks, whole)


def test_a_class_painted_on_a_few_voxels_is_reported():
    """A class with fewer than FEW_PAINTED painted voxels over every plane gets a warning that says
    what to paint; one painted enough gets none."""
    from ml4paleo.pipelines.scoring import FEW_PAINTED, scarce_class_warnings

    first, second = np.zeros((32, 32), np.uint8), np.zeros((32, 32), np.uint8)
    first[:20, :20] = 1
    first[25, 25:27] = 2
    second[30, 0:2] = 2  # 4 voxels of fossil in all
    def counts() -> dict[str, int]:
        return {"background": int((first == 1).sum() + (second == 1).sum()),
                "fossil": int((first == 2).sum() + (second == 2).sum())}

    warnings = scarce_class_warnings(counts())
    assert len(warnings) == 1 and "'fossil' has only 4 painted voxels" in warnings[0] and "inside it" in warnings[0]
    second[:FEW_PAINTED // 32 + 1, :] = 2
    assert scarce_class_warnings(counts()) == []
