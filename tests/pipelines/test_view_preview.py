"""Previews of a plane's region on a pyramid level, tile by tile (pipelines.view_preview)."""

from __future__ import annotations

import numpy as np
import pytest
from segdata import FAST, FAST_RF, phantom, scribbles

from ml4paleo.errors import InputError
from ml4paleo.io.omezarr import OmeZarrWriter
from ml4paleo.pipelines.preview import clear_cache, plane_proba
from ml4paleo.pipelines.train import train_model
from ml4paleo.compute.features import compiled_pass_loaded, load_compiled_pass
from ml4paleo.pipelines import view_preview
from ml4paleo.pipelines.view_preview import preview_plane

SLICES = (8, 20)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A 32 x 96 x 96 phantom with a pyramid down to 12 px (levels 0..3) and a forest trained on
    scribbles of two z slices and one y plane."""
    root = tmp_path_factory.mktemp("view_preview")
    vol, truth = phantom(np.random.default_rng(4), shape=(32, 96, 96))
    volume = root / "vol.ome.zarr"
    with OmeZarrWriter(volume, vol.shape, vol.dtype, chunks=16, pyramid_min_size=16) as w:
        w.write_slab(0, vol)
    ann = {z: scribbles(truth[z]) for z in SLICES}
    ann[("y", 40)] = scribbles(truth[:, 40, :])
    train_model(volume, ann, root / "model", method="forest", select=None, features=FAST, params=FAST_RF)
    return volume, root / "model", truth, ann


@pytest.mark.parametrize("axis,index", [("z", 8), ("z", 13), ("y", 40), ("x", 50)])
def test_level_0_tiles_equal_the_whole_plane(world, axis, index):
    volume, model, _, _ = world
    clear_cache()
    preview = preview_plane(volume, model, axis, index, tile=40)
    assert preview.level == 0 and preview.factors == (1, 1)
    np.testing.assert_allclose(preview.proba, plane_proba(volume, model, axis, index), atol=1e-6)


@pytest.mark.parametrize("level", [1, 2])
@pytest.mark.parametrize("axis,index", [("z", 13), ("y", 61)])
def test_a_coarse_level_mostly_agrees_with_full_resolution(world, axis, index, level):
    """The bank on a level (its sigmas scaled) is a first look: on blobs a few
    level voxels wide it gives the full-resolution classes on most of the level's grid."""
    volume, model, _, _ = world
    preview = preview_plane(volume, model, axis, index, level=level, tile=16)
    f = 2 ** level
    full = np.argmax(plane_proba(volume, model, axis, index), axis=-1)
    rows, cols = preview.proba.shape[:2]
    assert preview.factors == (f, f) and (rows, cols) == (-(-full.shape[0] // f), -(-full.shape[1] // f))
    agree = np.mean(np.argmax(preview.proba, axis=-1) == full[::f, ::f])
    assert agree > 0.9, agree


def test_painted_voxels_keep_their_class_on_every_level(world):
    volume, model, _, ann = world
    for level in (0, 1, 2):
        f = 2 ** level
        preview = preview_plane(volume, model, "z", 8, level=level)
        painted = ann[8][::f, ::f]
        labels = np.argmax(preview.proba, axis=-1)
        assert np.array_equal(labels[painted > 0], painted[painted > 0] - 1)
        # the y plane painted across the stack crosses slice 8 on row 40: kept where sampled
        if 40 % f == 0:
            line = ann[("y", 40)][8, ::f]
            assert np.array_equal(labels[40 // f][line > 0], line[line > 0] - 1)


@pytest.mark.parametrize("level", [0, 1])
def test_a_region_is_that_part_of_the_whole_plane(world, level):
    volume, model, _, _ = world
    whole = preview_plane(volume, model, "y", 30, level=level)
    part = preview_plane(volume, model, "y", 30, level=level, region=[5, 21, 19, 70])
    f = 2 ** level
    r0, c0, r1, c1 = part.region
    assert r0 <= 5 and c0 <= 21 and r1 >= 19 and c1 >= 70 and r0 % f == 0 and c0 % f == 0
    np.testing.assert_allclose(part.proba, whole.proba[r0 // f:-(-r1 // f), c0 // f:-(-c1 // f)], atol=1e-6)


def test_bad_requests_say_what_is_wrong(world):
    volume, model, _, _ = world
    with pytest.raises(InputError, match="level"):
        preview_plane(volume, model, "z", 3, level=9)
    with pytest.raises(InputError, match="region"):
        preview_plane(volume, model, "z", 3, region=[50, 50, 50, 60])
    with pytest.raises(InputError, match="z must be"):
        preview_plane(volume, model, "z", 32)


def test_check_stops_between_tiles(world):
    volume, model, _, _ = world
    calls = []

    def check():
        calls.append(1)
        if len(calls) > 2:
            raise RuntimeError("superseded")

    with pytest.raises(RuntimeError, match="superseded"):
        preview_plane(volume, model, "z", 3, tile=16, check=check, workers=1)
    assert len(calls) == 3


@pytest.mark.parametrize("level", [0, 1])
def test_the_compiled_gaussian_pass_gives_the_same_preview(world, monkeypatch, level):
    """A runner loads the compiled pass at start (``load_compiled_pass``); its previews then
    take it, with scipy's values bit for bit."""
    volume, model, _, _ = world
    monkeypatch.setattr(view_preview, "compiled_pass_loaded", lambda: False)
    view_preview.clear_tiles()
    scipy_pass = preview_plane(volume, model, "y", 44, level=level, tile=40)
    load_compiled_pass()
    monkeypatch.setattr(view_preview, "compiled_pass_loaded", compiled_pass_loaded)
    view_preview.clear_tiles()
    assert compiled_pass_loaded()
    np.testing.assert_array_equal(preview_plane(volume, model, "y", 44, level=level, tile=40).proba, scipy_pass.proba)


def test_a_model_whose_bank_has_orient_previews_a_coarse_level(world, tmp_path):
    """A draft's bank holds ``orient`` at sigma 1.6: its level-1 preview computes orient at
    sigma 0.8 there (before, the level's bank lacked those columns and the preview failed)."""
    volume, _, truth, ann = world
    bank = {"sigmas": [1.0, 1.6], "filters": ["gaussian", "orient"]}
    train_model(volume, ann, tmp_path / "m", method="forest", select=None, features=bank, params=FAST_RF)
    coarse = preview_plane(volume, tmp_path / "m", "z", 13, level=1, tile=40)
    assert coarse.factors == (2, 2) and coarse.proba.shape[:2] == (48, 48)
    assert np.mean(np.argmax(coarse.proba, axis=-1) == truth[13, ::2, ::2]) > 0.8
