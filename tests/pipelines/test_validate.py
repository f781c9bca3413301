"""Validation after the model is saved: the same figures as before the fit, written into the
model when done; ``auto``'s quicker choice on the volumes that decide a method; the CLI's
background validation as a real detached process."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest
from click.testing import CliRunner
from segdata import FAST, FAST_RF, phantom, scribbles, write_volume

from ml4paleo.cli import main as cli
from ml4paleo.errors import InputError
from ml4paleo.io.annotations import write_annotation
from ml4paleo.models import load_model
from ml4paleo.pipelines.train import train_model
from ml4paleo.pipelines.validate import PENDING_FILE, validate_model, validation_status
from ml4paleo.testing.phantoms import strokes, thin_tubes, touching_blobs

SLICES = (6, 16, 26)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("validate")
    vol, truth = phantom(np.random.default_rng(1))
    write_volume(root / "vol.ome.zarr", vol)
    return root, vol, truth, {z: scribbles(truth[z]) for z in SLICES}


def _json(path):
    return json.loads(path.read_text())


def test_later_validation_writes_the_figures_that_now_gives(world, tmp_path):
    root, vol, truth, ann = world
    options = dict(features=FAST, params=FAST_RF, method="forest")
    now = train_model(root / "vol.ome.zarr", ann, tmp_path / "now", **options)
    later = train_model(root / "vol.ome.zarr", ann, tmp_path / "later", validate="later", **options)
    assert later.metrics == {} and later.validation["status"] == "pending"
    assert validation_status(tmp_path / "later") == "pending" and (tmp_path / "later" / PENDING_FILE).is_file()
    rows = np.random.default_rng(0).normal(size=(500, load_model(tmp_path / "now").n_features)).astype(np.float32)
    assert np.array_equal(load_model(tmp_path / "now").predict(rows), load_model(tmp_path / "later").predict(rows))

    report = validate_model(tmp_path / "later")
    assert report["status"] == "done" and report["metrics"] == now.metrics and now.metrics
    assert _json(tmp_path / "later" / "validation.json")["metrics"] == now.metrics
    assert _json(tmp_path / "later" / "metadata.json")["candidates"]["forest"]["metrics"] == now.metrics
    assert validation_status(tmp_path / "later") == "done" and not (tmp_path / "later" / PENDING_FILE).exists()
    assert load_model(tmp_path / "later").validation["metrics"] == now.metrics
    assert validate_model(tmp_path / "later") == report  # done: nothing to run again


def test_a_model_trained_again_keeps_its_own_validation(world, tmp_path):
    root, vol, truth, ann = world
    options = dict(features=FAST, params=FAST_RF, method="forest", validate="later")
    train_model(root / "vol.ome.zarr", ann, tmp_path / "m", **options)
    shutil.copy(tmp_path / "m" / PENDING_FILE, tmp_path / "old.pkl")
    train_model(root / "vol.ome.zarr", {z: ann[z] for z in SLICES[:2]}, tmp_path / "m", overwrite=True, **options)
    shutil.copy(tmp_path / "old.pkl", tmp_path / "m" / PENDING_FILE)  # a validation of the replaced model ends late
    assert validate_model(tmp_path / "m")["status"] == "pending"
    assert validation_status(tmp_path / "m") == "pending"

    (tmp_path / "m" / PENDING_FILE).unlink()
    with pytest.raises(InputError, match="train the model again"):
        validate_model(tmp_path / "m")


@pytest.mark.parametrize("make, expected", [(touching_blobs, ("context", "interpolation")), (thin_tubes, ("forest",))])
def test_the_quick_choice_is_the_full_validation_s(tmp_path, make, expected):
    vol, truth = make(shape=(40, 64, 64), seed=1)
    write_volume(tmp_path / "vol.ome.zarr", vol, chunks=32)
    ann = {z: strokes(truth[z]) for z in (4, 12, 20, 28, 36)}
    result = train_model(tmp_path / "vol.ome.zarr", ann, tmp_path / "auto", validate="later")
    assert result.method in expected and "quick folds" in result.validation["reason"], result.candidates
    report = validate_model(tmp_path / "auto")
    assert report["chosen"] == result.method and not [w for w in report["warnings"] if "prefers" in w], report
    assert set(report["candidates"]) == {"forest", "context", "interpolation"}


def test_cli_train_validates_in_a_background_process(world, tmp_path):
    root, vol, truth, ann = world
    for z, mask in ann.items():
        write_annotation(tmp_path / "ann", z, mask)
    r = CliRunner().invoke(cli, ["train", str(root / "vol.ome.zarr"), str(tmp_path / "ann"), str(tmp_path / "m"),
                                 "--sigmas", "1,3.5", "--method", "forest"])
    assert r.exit_code == 0, r.output
    assert "validating in the background" in r.output
    deadline = time.monotonic() + 300
    while validation_status(tmp_path / "m") == "pending" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert validation_status(tmp_path / "m") == "done", (tmp_path / "m" / "validation.log").read_text()
    assert _json(tmp_path / "m" / "validation.json")["metrics"]["fossil"]["dice"] > 0.5
