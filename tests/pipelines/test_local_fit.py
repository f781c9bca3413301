"""Which corrections of a forest act where they were painted (``pipelines/_local_fit.py``)."""

from __future__ import annotations

import dataclasses

import numpy as np

from ml4paleo.compute.features import FeatureSettings, feature_names
from ml4paleo.pipelines import _local_fit
from ml4paleo.pipelines._candidates import PaintedSlice, TrainingSet, make_candidate
from ml4paleo.planes import SliceRef

OUTLINED, DAB = SliceRef("z", 2), SliceRef("z", 5)


def _training(structure_columns: int) -> TrainingSet:
    """A slice painted in full (structure on its first ``structure_columns`` columns of 16) and a
    structure dab of 5 voxels on a plane never painted before (a correction); rows: the voxel's
    class plus noise, one feature."""
    outlined = np.ones((16, 16), np.uint8)
    outlined[:, :structure_columns] = 2
    dab = np.zeros((16, 16), np.uint8)
    dab[8, 6:11] = 2
    rng = np.random.default_rng(0)
    slices = []
    for ref, mask in ((OUTLINED, outlined), (DAB, dab)):
        coords = np.nonzero(mask)
        targets = (mask[coords] - 1).astype(np.uint8)
        rows = (targets[:, None] + rng.normal(0, 0.1, (targets.size, 1))).astype(np.float32)
        slices.append(PaintedSlice(ref, rows, targets, coords))
    bank = FeatureSettings.from_value({"sigmas": [1.0], "filters": ["gaussian"]})
    settings = dataclasses.replace(bank, selected=feature_names(bank)[:1])
    return TrainingSet(slices, ("background", "fossil"), settings, (8, 16, 16),
                       masks={OUTLINED: outlined, DAB: dab}, params={"n_estimators": 4})


def test_a_structure_dab_acts_where_painted_unless_its_class_is_scarce():
    """A correct structure dab on a rim taught the forest "rims are structure" and grew every rim of
    texture from one slice by a voxel (-0.012 Dice): a class painted on ``FEW_PAINTED`` voxels
    outside the corrections has its corrections act where painted, as background's do; a class
    painted less outside them learns from its dabs everywhere (thin tubes: 2 voxels)."""
    known = _training(8)  # 128 structure voxels on the slice of outlines
    assert known.corrections == {DAB} and _local_fit.forest_local_classes(known) == (0, 1)
    model = _local_fit.fit_final(make_candidate("forest"), known)
    assert type(model).__name__ == "LocalCorrections"
    assert [(a, i, int((m == 2).sum())) for a, i, m in model.planes] == [(0, 5, 5)]
    scarce = _training(2)  # 32 structure voxels outside the dab
    assert _local_fit.forest_local_classes(scarce) == (0,)
    assert type(_local_fit.fit_final(make_candidate("forest"), scarce)).__name__ != "LocalCorrections"


def test_background_corrections_act_where_painted_even_when_background_is_scarce():
    """A walk in the browser from single-pixel dabs (92 background voxels outside the corrections):
    a correct background dab beside a thin tube, taught everywhere, took its Dice from 0.961 to
    0.888 (every tube's rim became background); kept local, 0.949."""
    scarce = _training(14)  # 32 background voxels on the slice of outlines, under FEW_PAINTED
    dab = np.zeros((16, 16), np.uint8)
    dab[8, 6:11] = 1  # a background correction
    ts = dataclasses.replace(scarce, masks={OUTLINED: scarce.masks[OUTLINED], DAB: dab},
                             slices=[scarce.slices[0], dataclasses.replace(scarce.slices[1], targets=np.zeros(5, np.uint8))])
    assert ts.corrections == {DAB} and _local_fit.forest_local_classes(ts) == (0, 1)
    model = _local_fit.fit_final(make_candidate("forest"), ts)
    assert type(model).__name__ == "LocalCorrections"
    assert [(a, i, int((m == 1).sum())) for a, i, m in model.planes] == [(0, 5, 5)]
