"""Training: annotations on disk, the model folder, leave-one-slice-out, and bad inputs."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from PIL import Image
from segdata import FAST, FAST_RF, painted_world

from ml4paleo.errors import ArtifactNotFound, InputError, OutputExistsError
from ml4paleo.io.annotations import delete_annotation, read_annotations, write_annotation
from ml4paleo.models import load_model
from ml4paleo.compute.features import FeatureSettings, feature_names
from ml4paleo.pipelines import _candidates
from ml4paleo.pipelines._candidates import PaintedSlice, TrainingSet, outline_first
from ml4paleo.pipelines.train import WIDE_BELOW, _widened, sample_indices, train_model
from ml4paleo.planes import SliceRef

SLICES = (6, 16, 26)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return painted_world(tmp_path_factory.mktemp("train"), 1, SLICES)


# --- annotations on disk -------------------------------------------------------------------

def test_annotation_round_trip(tmp_path):
    mask = np.arange(12, dtype=np.uint8).reshape(3, 4) % 3
    path = write_annotation(tmp_path / "ann", 12, mask)
    assert path == tmp_path / "ann" / "12.png"
    with Image.open(path) as img:
        assert img.mode == "L"
    assert list(read_annotations(tmp_path / "ann")) == [SliceRef("z", 12)]
    assert np.array_equal(read_annotations(tmp_path / "ann")[SliceRef("z", 12)], mask)
    assert [p.name for p in (tmp_path / "ann").iterdir()] == ["12.png"]  # no temporary left
    delete_annotation(tmp_path / "ann", 12)
    assert read_annotations(tmp_path / "ann") == {}
    with pytest.raises(ArtifactNotFound):
        delete_annotation(tmp_path / "ann", 12)
    assert read_annotations(tmp_path / "missing") == {}


def test_slice_index_is_the_last_integer_and_replaced_on_write(tmp_path):
    Image.fromarray(np.ones((3, 3), np.uint8)).save(tmp_path / "scan2_slice_0007.png")
    Image.fromarray(np.full((3, 3), 2, np.uint8)).save(tmp_path / "8.PNG")
    assert sorted(read_annotations(tmp_path)) == [SliceRef("z", 7), SliceRef("z", 8)]
    write_annotation(tmp_path, 7, np.zeros((3, 3), np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["7.png", "8.PNG"]


def test_bad_annotation_files(tmp_path):
    Image.fromarray(np.zeros((3, 3, 3), np.uint8) + np.array([0, 1, 2], np.uint8)).save(tmp_path / "1.png")
    with pytest.raises(InputError, match="grayscale"):
        read_annotations(tmp_path)
    (tmp_path / "1.png").unlink()
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(tmp_path / "a_3.png")
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(tmp_path / "b_3.png")
    with pytest.raises(InputError, match="both name slice 3"):
        read_annotations(tmp_path)
    with pytest.raises(InputError, match="z must be"):
        write_annotation(tmp_path, -1, np.zeros((3, 3), np.uint8))
    with pytest.raises(InputError, match="2D"):
        write_annotation(tmp_path, 1, np.zeros((3,), np.uint8))


# --- sampling ------------------------------------------------------------------------------

def test_sampling_strategies_are_seeded_and_keep_rare_classes():
    y = np.repeat([0, 1, 2], [90_000, 9_000, 1_000])
    prop = sample_indices(y, "proportional", max_voxels=10_000, min_per_class=500)
    counts = np.bincount(y[prop])
    assert counts[0] == 9_000 and counts[1] == 900 and counts[2] == 500  # priors kept, rare floor
    assert np.array_equal(prop, sample_indices(y, "proportional", max_voxels=10_000, min_per_class=500))
    assert np.bincount(y[sample_indices(y, "balanced", max_voxels=10_000)]).tolist() == [1_000] * 3
    assert len(sample_indices(y, "all")) == len(y)
    with pytest.raises(InputError, match="sampling"):
        sample_indices(y, "stratified")


def test_a_densely_painted_final_forest_takes_its_rows_near_the_outlines_first(monkeypatch):
    """Full slices beyond the default cap: ``OUTLINE_ROWS`` rows, every row within ``OUTLINE_WIDTH``
    of an outline (up to half of them; here fewer lie there), the rest from the others, both
    classes kept; rows under the cap, a draft's cap and ``sampling="all"`` draw as before (None)."""
    monkeypatch.setattr(_candidates, "OUTLINE_ROWS", 20_000)
    yy, xx = np.mgrid[:200, :250]
    mask = np.where((yy - 100) ** 2 + (xx - 125) ** 2 < 70 ** 2, 2, 1).astype(np.uint8)
    refs = [SliceRef("z", 3), SliceRef("z", 6), SliceRef("z", 9)]
    sel = np.nonzero(mask)
    slices = [PaintedSlice(ref, np.zeros((mask.size, 1), np.float32), mask[sel] - 1, sel) for ref in refs]
    ts = TrainingSet(slices, ("background", "fossil"), FeatureSettings(), (12, 200, 250),
                     masks=dict.fromkeys(refs, mask))
    y = np.concatenate([s.targets for s in slices])
    keep = outline_first(y, ts)
    near = np.tile(_candidates.near_outline(mask, _candidates.OUTLINE_WIDTH)[sel], 3)
    assert keep.size == 20_000 and np.all(np.diff(keep) > 0)
    assert near.mean() < 0.1 and near[keep].sum() == near.sum()  # 5 % of the rows, a third of the kept
    assert np.bincount(y[keep]).min() > 2_000
    assert outline_first(y[:_candidates.MAX_TRAIN_VOXELS], ts) is None  # under the default cap: as before
    assert outline_first(y, dataclasses.replace(ts, max_voxels=20_000)) is None  # a draft's cap
    assert outline_first(y, dataclasses.replace(ts, sampling="all")) is None


# --- training ------------------------------------------------------------------------------

def test_train_writes_a_described_model(world, tmp_path):
    root, vol, truth, ann = world
    for z, mask in ann.items():
        write_annotation(tmp_path / "ann", z, mask)
    seen = []
    result = train_model(root / "vol.ome.zarr", tmp_path / "ann", tmp_path / "model", features=FAST,
                         params=FAST_RF, progress=lambda d, t, s="": seen.append(d / t))
    assert result.n_slices == 3 and result.classes == ("background", "fossil")
    assert result.voxels_per_class == {"background": int((np.stack(list(ann.values())) == 1).sum()),
                                       "fossil": int((np.stack(list(ann.values())) == 2).sum())}
    assert set(result.metrics) == {"background", "fossil"}
    assert result.metrics["fossil"]["dice"] > 0.9 and 0 < result.metrics["fossil"]["iou"] <= 1
    assert seen == sorted(seen) and seen[-1] == 1.0
    meta = json.loads((tmp_path / "model" / "metadata.json").read_text())
    for key in ("classes", "features", "voxel_size", "voxels_per_class", "ml4paleo_version", "created_at", "kind"):
        assert key in meta
    assert meta["voxel_size"] == [2.0, 1.0, 1.0] and meta["features"]["sigmas"] == [1.0, 3.5]
    assert len(meta["features"]["selected"]) == 16 == meta["n_features"]  # feature selection by default
    assert meta["network"].startswith("not scored: ") and "at least 0.9" in meta["network"]  # the forest does well
    validation = json.loads((tmp_path / "model" / "validation.json").read_text())
    assert validation["method"] == "leave-one-slice-out" and len(validation["folds"]) == 3
    assert load_model(tmp_path / "model").classes == ("background", "fossil")
    with pytest.raises(OutputExistsError):
        train_model(root / "vol.ome.zarr", tmp_path / "ann", tmp_path / "model", features=FAST)


def test_a_forest_that_falls_short_keeps_every_feature():
    """auto's final forest trains on the whole bank when its worst class is below WIDE_BELOW held
    out (the texture family's grain kinds); at or above it, on the ranked selection."""
    bank = FeatureSettings.from_value({"sigmas": [1.0], "filters": ["gaussian", "log"]})
    whole = np.arange(4 * bank.n_features, dtype=np.float32).reshape(4, bank.n_features)
    painted = PaintedSlice(SliceRef("z", 3), whole[:, :1], np.array([0, 0, 1, 1], np.uint8),
                           (np.arange(4), np.arange(4)))
    ts = TrainingSet([painted], ("background", "fossil"),
                     dataclasses.replace(bank, selected=feature_names(bank)[:1]), (8, 4, 4))
    low = {"background": {"dice": 0.97, "iou": 0.94}, "fossil": {"dice": WIDE_BELOW - 0.01, "iou": 0.8}}
    wide, why = _widened(ts, low, (bank, [(whole, None)]), "best mean")
    assert wide.settings == bank and wide.slices[0].rows is whole and wide.slices[0].targets is painted.targets
    assert why.startswith("best mean; the final forest keeps all") and ts.slices[0].rows.shape[1] == 1
    high = {"background": {"dice": 0.97, "iou": 0.94}, "fossil": {"dice": WIDE_BELOW, "iou": 0.82}}
    assert _widened(ts, high, (bank, [(whole, None)]), "best mean") == (ts, "best mean")


def test_a_small_volume_read_once_into_memory_trains_the_same_model(world, tmp_path, monkeypatch):
    """Training reads a small volume into memory once (its slices' halos and the suggestions'
    planes then read no chunk again): the same model and suggestions as through zarr."""
    from ml4paleo.pipelines import train as train_module

    root, vol, truth, ann = world
    options = dict(features=FAST, params=FAST_RF, method="forest", validate="later")
    in_memory = train_model(root / "vol.ome.zarr", ann, tmp_path / "mem", **options)
    monkeypatch.setattr(train_module, "IN_MEMORY_BYTES", 0)
    through_zarr = train_model(root / "vol.ome.zarr", ann, tmp_path / "zarr", **options)
    assert in_memory.features == through_zarr.features and in_memory.suggestions == through_zarr.suggestions
    a, b = (load_model(tmp_path / m).predict_region(vol, (10, 0, 0), (12, *vol.shape[1:])) for m in ("mem", "zarr"))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("method", ["forest", "context"])
def test_the_suggestions_planes_featurised_ahead_give_the_same_suggestions(world, tmp_path, monkeypatch, method):
    """The suggestions' planes are featurised beside the folds and the final fit once the features
    are ranked (planes_ahead.py): the same suggestions as when the suggestions featurise them."""
    from ml4paleo.pipelines import planes_ahead, suggest

    monkeypatch.setattr(suggest, "WHOLE_VOXELS", 0)  # plane by plane, as on a small scan
    taken, labelled = [], []
    take, labels = planes_ahead.PlanesAhead.take, planes_ahead.PlanesAhead.labels

    def counted(self, axis, index, settings):
        out = take(self, axis, index, settings)
        taken.append(out is not None)
        return out

    def counted_labels(self, axis, index, prior):
        out = labels(self, axis, index, prior)
        labelled.append(out is not None)
        return out

    monkeypatch.setattr(planes_ahead.PlanesAhead, "take", counted)
    monkeypatch.setattr(planes_ahead.PlanesAhead, "labels", counted_labels)
    stop = planes_ahead.PlanesAhead.stop

    def finished(self):  # every plane featurised ahead before the suggestions (else those not begun are theirs)
        for future in [*self._futures.values(), *self._labels.values()]:
            future.result()
        stop(self)

    monkeypatch.setattr(planes_ahead.PlanesAhead, "stop", finished)
    root, vol, truth, ann = world
    options = dict(features=FAST, params=FAST_RF, method=method, validate="later")
    ahead = train_model(root / "vol.ome.zarr", ann, tmp_path / "ahead", **options)
    assert taken and all(taken) and labelled == taken  # every plane scored was featurised (and labelled) ahead
    monkeypatch.setattr(planes_ahead, "AHEAD_BYTES", 0)  # too little memory: none ahead
    taken.clear()
    labelled.clear()
    plain = train_model(root / "vol.ome.zarr", ann, tmp_path / "plain", **options)
    assert not any(taken) and not any(labelled) and ahead.suggestions["planes_scored"] == len(taken)
    assert ahead.suggestions == plain.suggestions


def test_planes_featurised_ahead_serve_only_their_own_bank(world, monkeypatch):
    from ml4paleo.pipelines import suggest
    from ml4paleo.pipelines.planes_ahead import PlanesAhead

    monkeypatch.setattr(suggest, "WHOLE_VOXELS", 0)
    root, vol, truth, ann = world
    bank = FeatureSettings.from_value(FAST)
    ranked = dataclasses.replace(bank, selected=tuple(feature_names(bank)[:2]))
    ahead = PlanesAhead(np.asarray(vol[:]), [SliceRef("z", z) for z in ann], ranked).start()
    (axis, index), *rest = ahead.planes
    assert ahead.take(axis, index, bank) is None  # another bank (the whole one: a widened forest)
    features = ahead.take(axis, index, ranked)
    assert features.shape[axis] == 1 and features.shape[-1] == 2
    assert ahead.take(axis, index, ranked) is None  # given once
    ahead.close()


def test_single_slice_trains_without_validation(world, tmp_path):
    root, vol, truth, ann = world
    result = train_model(root / "vol.ome.zarr", {16: ann[16]}, tmp_path / "m", features=FAST, params=FAST_RF,
                         two_d=True, select=None)
    assert result.metrics == {} and result.validation["method"] == "none"
    settings = load_model(tmp_path / "m").feature_settings
    assert settings.two_d and settings.selected is None and settings.n_features == 1 + 2 * (4 + 2 + 2)


def bad_cases(ann, shape):
    wrong_size = np.ones((shape[1] - 1, shape[2]), np.uint8)
    only_bg = {z: np.where(m == 2, 1, m) for z, m in ann.items()}
    too_many = {16: np.where(ann[16] == 2, 3, ann[16])}
    return [
        ({40: ann[16]}, "outside the volume"),
        ({-1: ann[16]}, "z must be a slice index >= 0"),  # refused where the plane enters
        ({16: wrong_size}, "has shape"),
        (only_bg, "no labeled voxel for class 'fossil'"),
        (too_many, "uses value 3 but only 2 classes"),
        ({}, "empty"),
    ]


@pytest.mark.parametrize("case", range(6))
def test_bad_inputs_are_clear_errors_and_write_nothing(world, tmp_path, case):
    root, vol, truth, ann = world
    annotations, message = bad_cases(ann, vol.shape)[case]
    with pytest.raises(InputError, match=message):
        train_model(root / "vol.ome.zarr", annotations, tmp_path / "model", features=FAST)
    assert list(tmp_path.iterdir()) == []


def test_empty_or_missing_folder_and_bad_options(world, tmp_path):
    root, vol, truth, ann = world
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no annotation PNG"):
        train_model(root / "vol.ome.zarr", tmp_path / "empty", tmp_path / "m")
    with pytest.raises(InputError, match="does not exist"):
        train_model(root / "vol.ome.zarr", tmp_path / "nope", tmp_path / "m")
    with pytest.raises(InputError, match="method must be"):
        train_model(root / "vol.ome.zarr", ann, tmp_path / "m", method="svm")
    with pytest.raises(InputError, match="classes"):
        train_model(root / "vol.ome.zarr", ann, tmp_path / "m", classes=("fossil",))
    with pytest.raises(InputError, match="select"):
        train_model(root / "vol.ome.zarr", ann, tmp_path / "m", select=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_cancel_during_training_writes_nothing(world, tmp_path):
    from ml4paleo.errors import Cancelled

    root, vol, truth, ann = world

    def cancel(done, total, stage=""):
        if done / total > 0.3:
            raise Cancelled("stop")

    with pytest.raises(Cancelled):
        train_model(root / "vol.ome.zarr", ann, tmp_path / "model", features=FAST, params=FAST_RF, progress=cancel)
    assert list(tmp_path.iterdir()) == []
