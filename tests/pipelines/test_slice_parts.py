"""``auto`` with one slice of outlines scores the image's methods on alternate stripes of the slice
(:mod:`ml4paleo.pipelines.slice_parts`) instead of choosing blind; two slices keep leave-one-slice-out."""

from __future__ import annotations

import json

import numpy as np
from segdata import FAST, FAST_RF, write_volume

from ml4paleo.pipelines.slice_parts import STRIPE, parts_of
from ml4paleo.pipelines.train import train_model
from ml4paleo.planes import SliceRef
from ml4paleo.testing.phantoms import strokes, texture_only


def test_one_slice_of_strokes_is_scored_on_its_stripes_and_two_slices_are_not(tmp_path):
    vol, truth = texture_only(shape=(8, 48, 48), seed=0, grain="orientation")
    write_volume(tmp_path / "vol.ome.zarr", vol, chunks=48)
    one = train_model(tmp_path / "vol.ome.zarr", {4: strokes(truth[4])}, tmp_path / "one", features=FAST,
                      params=FAST_RF, validate="later")
    assert one.method == "forest" and "stripes of slice 4," in json.loads(
        (tmp_path / "one" / "metadata.json").read_text())["method_reason"]
    meta = json.loads((tmp_path / "one" / "metadata.json").read_text())["candidates"]
    assert meta["forest"]["metrics"] and meta["forest"]["band"] and len(meta["forest"]["fold_dice"]) == 2
    assert not meta["context"]["metrics"] and not meta["interpolation"]["metrics"]  # the prior's: unscored
    two = train_model(tmp_path / "vol.ome.zarr", {2: strokes(truth[2]), 6: strokes(truth[6])}, tmp_path / "two",
                      features=FAST, params=FAST_RF, validate="later")
    assert "stripes" not in json.loads((tmp_path / "two" / "metadata.json").read_text())["method_reason"]


def test_no_parts_where_a_part_would_lack_a_class():
    ref = SliceRef("z", 0)
    mask = np.zeros((2 * STRIPE, 2 * STRIPE), np.uint8)
    mask[2, 2], mask[STRIPE + 2, STRIPE + 2] = 1, 2  # each class in one stripe of either axis only
    assert parts_of({ref: mask}, [], [ref], 2) is None
    mask[:, 1::3], mask[:, 2::3] = 1, 2  # both classes on every row
    found = parts_of({ref: mask}, [], [ref], 2)
    assert found is not None and (found.parts[0] ^ found.parts[1]).all() and found.folds == [[ref], [ref]]
    assert parts_of({ref: mask}, [[ref]], [ref], 2) is None  # folds exist: leave-one-slice-out
