"""The U-Net segmenter: sparse labels, tiled == whole-slice inference, texture, persistence.

Tiny volumes and short trainings (one torch thread each), so the whole file stays well under
a minute on a shared 2-core machine.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from unittest import mock

import numpy as np
import pytest
from scipy import ndimage as ndi

torch = pytest.importorskip("torch")

from ml4paleo.errors import InputError, VolumeNotFoundError  # noqa: E402
from ml4paleo.models import Segmenter, cached_model, load_model, save_model  # noqa: E402
from ml4paleo.models.unet import DEFAULTS, UNetSegmenter  # noqa: E402

QUICK = {"epochs": 1, "steps_per_epoch": 2, "batch_size": 2, "patch": 32}


def make(classes=("background", "fossil"), **params) -> UNetSegmenter:
    return UNetSegmenter(classes, n_jobs=1, **params)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * np.logical_and(a, b).sum() / max(int(a.sum()) + int(b.sum()), 1))


def texture_volume(rng: np.random.Generator, shape=(5, 96, 96)):
    """(uint16 volume, truth): an ellipse of coarse-grained noise in fine-grained noise, both
    with the same mean and standard deviation (so only the grain tells them apart)."""
    zz, yy, xx = np.indices(shape)
    truth = ((yy - 48 - 2 * zz) / 30.0) ** 2 + ((xx - 44) / 24.0) ** 2 <= 1
    fine = rng.normal(size=shape)
    coarse = ndi.gaussian_filter(rng.normal(size=shape), (0.5, 2.5, 2.5))
    coarse /= coarse.std()
    return (1000 + 120 * np.where(truth, coarse, fine)).astype(np.uint16), truth


@pytest.fixture(scope="module")
def tiny():
    """A barely trained model on a small random volume: inference properties hold for any weights."""
    rng = np.random.default_rng(1)
    vol = rng.integers(0, 4000, size=(6, 50, 70)).astype(np.uint16)
    ann = {2: np.where(vol[2] > 2000, 2, 1).astype(np.uint8)}
    return vol, make(**QUICK).fit(vol, ann, device="cpu")


def test_strokes_train_only_on_painted_voxels():
    """Bright disks on a dark matrix; strokes paint two disks fossil and some matrix, while four
    disks stay unpainted (0). Were 0 taken as a class (or as background), those disks would teach
    "bright is background"; ignored, every disk is found."""
    shape = (3, 64, 64)
    zz, yy, xx = np.indices(shape)
    centres = [(14, 14), (14, 50), (50, 14), (50, 50), (32, 32), (32, 8)]
    truth = np.zeros(shape, bool)
    for cy, cx in centres:
        truth |= (yy - cy) ** 2 + (xx - cx) ** 2 <= 36
    vol = (1000 + 800 * truth + np.random.default_rng(0).normal(0, 60, shape)).astype(np.uint16)
    ann = np.zeros(shape[1:], np.uint8)
    for cy, cx in centres[:2]:
        ann[cy - 2:cy + 3, cx - 2:cx + 3] = 2
    ann[30:34, 44:60] = 1
    ann[2:6, 26:40] = 1
    model = make(epochs=6, steps_per_epoch=8, batch_size=4, patch=32).fit(vol, {1: ann}, device="cpu")
    pred = model.predict_slice(vol, 1).astype(bool)
    unpainted = truth[1].copy()
    for cy, cx in centres[:2]:
        unpainted[cy - 8:cy + 9, cx - 8:cx + 9] = False
    far = ~ndi.binary_dilation(truth[1], iterations=3)
    assert pred[unpainted].mean() > 0.9 and pred[far].mean() < 0.05


@pytest.mark.parametrize("start, stop", [
    ((0, 0, 0), (6, 50, 70)),
    ((1, 3, 5), (4, 20, 33)),
    ((5, 43, 61), (6, 50, 70)),
    ((0, 17, 0), (2, 18, 70)),
])
def test_tiled_region_equals_whole_slice_inference(tiny, start, stop):
    vol, model = tiny
    whole = np.stack([model.predict_proba_slice(vol, z) for z in range(start[0], stop[0])])
    model.tile = 16  # many tiles, each cut off the others' voxels but for its margin
    try:
        region = model.predict_region(vol, start, stop)
    finally:
        model.tile = 512
    assert region.shape == (stop[0] - start[0], stop[1] - start[1], stop[2] - start[2], 2)
    assert region.dtype == np.float32
    np.testing.assert_allclose(region.sum(-1), 1, atol=1e-5)
    np.testing.assert_allclose(region, whole[:, start[1]:stop[1], start[2]:stop[2]], atol=1e-4)


@pytest.mark.parametrize("depth, context, dilation", [(3, 0, 1), (1, 2, 1), (2, 1, 3)])
def test_tiled_equals_whole_for_other_depths(depth, context, dilation):
    """The margin follows the receptive field of any depth and dilation; the z context is mirrored
    at the ends."""
    rng = np.random.default_rng(2)
    vol = rng.normal(1000, 200, size=(4, 40, 36)).astype(np.float32)
    model = make(depth=depth, context=context, dilation=dilation, **{**QUICK, "patch": 16}).fit(
        vol, {1: (vol[1] > 1000).astype(np.uint8) + 1})
    whole = np.stack([model.predict_proba_slice(vol, z) for z in range(4)])
    model.tile = 8
    np.testing.assert_allclose(model.predict_region(vol, (0, 5, 3), (4, 40, 29)), whole[:, 5:, 3:29], atol=1e-4)


def test_texture_only_structure_is_found(rng):
    """Same mean grey value and spread inside and out, only the grain differs: the network
    learns it from two painted slices and segments an unpainted slice between them."""
    vol, truth = texture_volume(rng)
    ann = {z: truth[z].astype(np.uint8) + 1 for z in (1, 3)}
    model = make(epochs=6, steps_per_epoch=8, batch_size=4, patch=64).fit(vol, ann, seed=0, device="cpu")
    for z in (2, 4):
        assert dice(model.predict_slice(vol, z).astype(bool), truth[z]) >= 0.85


def test_heldout_early_stopping_curve_and_time_budget(rng):
    vol, truth = texture_volume(rng, (4, 48, 48))
    ann = {0: truth[0].astype(np.uint8) + 1}
    held = {2: truth[2].astype(np.uint8) + 1}
    model = make(epochs=5, steps_per_epoch=2, batch_size=2, patch=32, patience=2).fit(vol, ann, heldout=held)
    assert [e["epoch"] for e in model.curve] == list(range(1, len(model.curve) + 1))
    assert all({"seconds", "train_loss", "heldout_dice", "heldout_loss"} <= set(e) for e in model.curve)
    best = max(round(e["heldout_dice"], 4) for e in model.curve)
    assert round(model.curve[model.best_epochs - 1]["heldout_dice"], 4) == best
    short = make(epochs=50, steps_per_epoch=50, batch_size=2, patch=32).fit(vol, ann, max_seconds=0.01)
    assert len(short.curve) == 1 and short.best_epochs == 1
    on_cpu = make(epochs=50, steps_per_epoch=50, batch_size=2, patch=32).fit(vol, ann, max_seconds=0.01, clock="cpu")
    assert len(on_cpu.curve) == 1  # the budget counted in this process's CPU seconds
    done = []
    make(**QUICK).fit(vol, ann, progress=lambda d, t, s="": done.append((d, t, s)))
    assert done[-1][0] == done[-1][1] and done[-1][2]


def test_deterministic_given_seed(rng):
    vol, truth = texture_volume(rng, (3, 40, 40))
    ann = {1: truth[1].astype(np.uint8) + 1}
    a, b, c = (make(**QUICK).fit(vol, ann, seed=s, device="cpu") for s in (3, 3, 4))
    sa, sb, sc = a.net.state_dict(), b.net.state_dict(), c.net.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert a.curve[0]["train_loss"] == b.curve[0]["train_loss"]


def test_save_load_and_pickle_round_trip(tiny, tmp_path):
    vol, model = tiny
    expected = model.predict_region(vol, (0, 0, 0), (3, 50, 70))
    save_model(model, tmp_path / "m", metadata={"voxel_size": [1, 2, 3]}, validation={"method": "x"})
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["metadata.json", "unet.json", "unet.pt", "validation.json"]
    assert json.loads((tmp_path / "m" / "metadata.json").read_text())["kind"] == "unet"
    loaded = load_model(tmp_path / "m")
    assert isinstance(loaded, UNetSegmenter) and isinstance(loaded, Segmenter) and loaded.classes == model.classes
    assert loaded.metadata["voxel_size"] == [1, 2, 3] and loaded.validation == {"method": "x"}
    assert loaded.norm == model.norm and loaded.curve == model.curve and loaded.params == model.params
    assert np.array_equal(loaded.predict_region(vol, (0, 0, 0), (3, 50, 70)), expected)
    assert cached_model(tmp_path / "m") is cached_model(tmp_path / "m")
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no partial folder left
    clone = pickle.loads(pickle.dumps(loaded))
    assert np.array_equal(clone.predict_region(vol, (0, 0, 0), (3, 50, 70)), expected)
    (tmp_path / "m" / "unet.pt").unlink()
    with pytest.raises(VolumeNotFoundError, match="incomplete"):
        load_model(tmp_path / "m")


def test_models_import_without_torch():
    code = "import sys, ml4paleo.models; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_bad_inputs(tiny):
    vol, _ = tiny
    ann = {1: np.where(vol[1] > 2000, 2, 1).astype(np.uint8)}
    with pytest.raises(InputError, match="no labeled voxel"):
        make().fit(vol, {1: np.ones(vol.shape[1:], np.uint8)})
    with pytest.raises(InputError, match="values 0"):
        make().fit(vol, {1: ann[1] + 1})
    with pytest.raises(InputError, match="both trained on and held out"):
        make().fit(vol, ann, heldout=ann)
    with pytest.raises(InputError, match="device"):
        make().fit(vol, ann, device="tpu")
    with pytest.raises(InputError, match="clock"):
        make().fit(vol, ann, clock="moon")
    with pytest.raises(InputError, match="unknown U-Net parameter"):
        make(widht=4)
    with pytest.raises(InputError, match="patch"):
        make(patch=30)
    with pytest.raises(InputError, match="not trained"):
        make().predict_slice(vol, 0)
    with pytest.raises(InputError, match="region"):
        tiny[1].predict_region(vol, (0, 0, 0), (7, 10, 10))


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present: 'cuda' is accepted")
def test_cuda_requested_without_gpu_is_a_clear_error(tiny):
    vol, _ = tiny
    with pytest.raises(InputError, match="no CUDA GPU"):
        make().fit(vol, {1: np.where(vol[1] > 2000, 2, 1).astype(np.uint8)}, device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available() is false)")
def test_cuda_training_and_inference_match_the_cpu(rng):
    vol, truth = texture_volume(rng)
    ann = {z: truth[z].astype(np.uint8) + 1 for z in (1, 3)}
    model = make(epochs=6, steps_per_epoch=8, batch_size=4, patch=64).fit(vol, ann, device="cuda")
    assert model.device.type == "cuda"
    on_gpu = model.predict_region(vol, (0, 0, 0), vol.shape)
    on_cpu = pickle.loads(pickle.dumps(model)).predict_region(vol, (0, 0, 0), vol.shape)
    np.testing.assert_allclose(on_gpu, on_cpu, atol=2e-3)
    assert dice(on_gpu[2].argmax(-1).astype(bool), truth[2]) >= 0.85


def test_plane_pieces_label_only_the_planes_line():
    """A painted XZ plane becomes bands of the z slices it crosses, labeled on its line alone."""
    from ml4paleo.models._unet_data import plane_pieces

    plane = np.full((6, 30), -1)  # (z, x) at y = 3 of a (6, 20, 30) volume
    plane[1, 4:9], plane[4, 10:12] = 0, 1
    pieces = plane_pieces(plane, 1, 3, (20, 30), half=8)
    assert [(z, window) for z, window, _ in pieces] == [(1, (0, 11, 0, 30)), (4, (0, 11, 0, 30))]
    band = pieces[1][2]
    assert (band[3] == plane[4]).all() and (np.delete(band, 3, axis=0) == -1).all()
    yz = plane_pieces(np.zeros((6, 20), int), 2, 25, (20, 30), half=8, max_slices=3)  # (z, y) at x = 25
    assert [z for z, _, _ in yz] == [0, 2, 5] and yz[0][1] == (0, 20, 17, 30)
    assert (yz[0][2][:, 8] == 0).all() and (yz[0][2][:, :8] == -1).all()


def _two_disks(shape: tuple[int, int, int]):
    """A stack of a bright disk and a brighter one (columns along z) in noise: the volume, the two
    disks' (z, y, x) masks and the voxel indices."""
    zz, yy, xx = np.indices(shape)
    bright = (yy - 12) ** 2 + (xx - 12) ** 2 <= 36
    brighter = (yy - 28) ** 2 + (xx - 28) ** 2 <= 36
    vol = (1000 + 1000 * bright + 2000 * brighter + np.random.default_rng(0).normal(0, 40, shape)).astype(np.uint16)
    return vol, bright, brighter, (zz, yy, xx)


def test_xz_plane_strokes_train_the_network_and_change_its_answer():
    """A z slice paints a bright disk fossil and leaves a brighter one unpainted; a network
    trained on it alone calls most of the brighter disk background. An XZ plane across the
    brighter disk, painted fossil there, teaches it otherwise, off the plane's line too (the
    loss sees that line only)."""
    vol, bright, brighter, (zz, yy, xx) = _two_disks((8, 40, 40))
    z_slice = np.where(bright[2], 2, np.where(brighter[2], 0, 1)).astype(np.uint8)
    plane = np.where(brighter[:, 28], 2, 1).astype(np.uint8)  # (z, x) at y = 28
    params = {"epochs": 6, "steps_per_epoch": 8, "batch_size": 4, "patch": 32, "augment": ("flip", "rot90")}
    alone = make(**params).fit(vol, {2: z_slice}, device="cpu")
    both = make(**params).fit(vol, {2: z_slice, ("y", 28): plane}, device="cpu")
    off_line = brighter[5] & (np.abs(yy[5] - 28) >= 2)
    assert alone.predict_slice(vol, 5)[off_line].mean() < 0.5
    with_plane = both.predict_slice(vol, 5)
    assert with_plane[off_line].mean() > 0.9 and with_plane[bright[5]].mean() > 0.9
    assert with_plane[~ndi.binary_dilation(bright[5] | brighter[5], iterations=2)].mean() < 0.05


def test_saved_format_is_versioned(tiny, tmp_path):
    """A model saved before the format was versioned loads; one from a later format is refused clearly."""
    vol, model = tiny
    save_model(model, tmp_path / "m")
    config = json.loads((tmp_path / "m" / "unet.json").read_text())
    assert config["format"] == 2
    (tmp_path / "m" / "unet.json").write_text(json.dumps({k: v for k, v in config.items() if k != "format"}))
    assert load_model(tmp_path / "m").params == model.params
    (tmp_path / "m" / "unet.json").write_text(json.dumps({**config, "format": 99}))
    with pytest.raises(InputError, match="format 99.*update ml4paleo or retrain"):
        load_model(tmp_path / "m")
    # saved before the dilation existed: the undilated network it was, whatever the default now
    params = {k: v for k, v in config["params"].items() if k != "dilation"}
    (tmp_path / "m" / "unet.json").write_text(json.dumps({**config, "params": params}))
    with mock.patch.dict(DEFAULTS, {"dilation": 3}):
        loaded = load_model(tmp_path / "m")
    assert loaded.params["dilation"] == 1
    assert {m.dilation for m in loaded.net.modules() if isinstance(m, torch.nn.Conv2d)} == {(1, 1)}


def test_a_warm_start_learns_the_newest_dab_and_keeps_what_it_knew():
    """The correction loop's warm start: a network that calls the brighter disk background is
    fine-tuned from its weights after one fossil dab of 13 voxels on that disk (the newest
    stroke, weighed up); a few batches later the disk around the dab is fossil, the painted
    disk still is, the matrix still is not. A start from weights of another network is refused."""
    vol, bright, brighter, (zz, yy, xx) = _two_disks((6, 40, 40))
    painted = np.where(bright[2], 2, np.where(brighter[2], 0, 1)).astype(np.uint8)
    params = {"epochs": 6, "steps_per_epoch": 8, "batch_size": 4, "patch": 32}
    before = make(**params).fit(vol, {2: painted}, device="cpu")
    near = brighter[2] & ((yy[2] - 28) ** 2 + (xx[2] - 28) ** 2 <= 25) & ((yy[2] - 28) ** 2 + (xx[2] - 28) ** 2 > 4)
    assert before.predict_slice(vol, 2)[near].mean() < 0.5
    dab = np.where((yy[2] - 28) ** 2 + (xx[2] - 28) ** 2 <= 4, 2, 0).astype(np.uint8)
    grown = np.where(dab > 0, dab, painted)
    after = make(**{**params, "epochs": 2}).fit(vol, {2: grown}, device="cpu", init=before, focus={2: dab})
    assert after.norm == before.norm
    labels = after.predict_slice(vol, 2)
    assert labels[near].mean() > 0.9  # around the dab, not only on it
    assert labels[bright[2]].mean() > 0.9 and labels[~ndi.binary_dilation(bright[2] | brighter[2], iterations=2)].mean() < 0.05
    with pytest.raises(InputError, match="to start from its weights"):
        make(**{**params, "width": 4}).fit(vol, {2: grown}, init=before)
    with pytest.raises(InputError, match="focus: slice 3 is not a trained plane"):
        make(**params).fit(vol, {2: grown}, init=before, focus={3: dab})


class _SpikeAtTheEnd(torch.optim.AdamW):
    """AdamW whose ``last``-th step throws the output layer to background: the loss spike that
    ended the final fit of blobs from two slices (issue 22), where the budget stopped the fit."""

    last = 0

    def step(self, closure=None):
        out = super().step(closure)
        self.steps = getattr(self, "steps", 0) + 1
        if self.steps == self.last:
            with torch.no_grad():
                self.param_groups[0]["params"][-1][0] += 40.0  # the head's bias: background everywhere
        return out


def test_a_fit_that_ends_in_a_spike_keeps_the_calm_epoch_that_predicts_structure(monkeypatch):
    """Without held-out slices the last epoch's weights were kept whatever they predicted; now the
    painted voxels choose between them and the calmest epoch's (issue 22), and ``fit_check`` says so."""
    from ml4paleo.models import unet as unet_module

    zz, yy, xx = np.indices((5, 48, 48))
    truth = ((yy - 20 - zz) ** 2 + (xx - 24) ** 2) <= 64
    vol = (1000 + 800 * truth + np.random.default_rng(0).normal(0, 40, truth.shape)).astype(np.uint16)
    params = {"epochs": 4, "steps_per_epoch": 4, "batch_size": 4, "patch": 32}
    monkeypatch.setattr(_SpikeAtTheEnd, "last", params["epochs"] * params["steps_per_epoch"])
    monkeypatch.setattr(unet_module.torch.optim, "AdamW", _SpikeAtTheEnd)
    model = make(**params).fit(vol, {1: truth[1].astype(np.uint8) + 1}, device="cpu")
    check = model.fit_check
    assert check["last_epoch"] == 4 and check["last_dice"] < 0.6  # the spike: no structure on its own strokes
    assert check["epoch"] < 4 and check["painted_dice"] > 0.9 and model.best_epochs == check["epoch"]
    assert dice(model.predict_slice(vol, 3) == 1, truth[3]) > 0.9  # structure where it was never painted
    monkeypatch.setattr(_SpikeAtTheEnd, "last", -1)  # no spike: the last epoch stays
    calm = make(**params).fit(vol, {1: truth[1].astype(np.uint8) + 1}, device="cpu")
    assert calm.fit_check["epoch"] == calm.fit_check["last_epoch"] == 4 and calm.best_epochs == 4
