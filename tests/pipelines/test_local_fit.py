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


def test_a_networks_background_dab_acts_where_painted_on_a_plane_that_began_as_a_correction(monkeypatch):
    """The sequential user dabs z0 again and again: a structure dab, then a background dab beside
    it, and the two bracket an outline, so z0 is no correction to ``TrainingSet.corrections`` any
    more. It began as one (``began``), so the U-Net's background dab there still acts where painted
    (thin tubes from one slice: the dab thinned every tube, Dice .684 -> .539, as a plain network).
    Bracketing an outline, it says where that outline lies: beyond its reach the network that never
    learned it answers alone (``OUTLINE_DAB_ALONE``; half of the other one still thinned every tube,
    .611); a dab alone on its plane still teaches by ``FAR_SHARE`` beyond."""
    outlined = np.ones((16, 16), np.uint8)
    outlined[:, :8] = 2
    z0 = np.zeros((16, 16), np.uint8)
    z0[8, 4:6], z0[8, 9:11] = 2, 1  # dabs of two classes 4 voxels apart: an outline between them
    bg_dab = np.where(z0 == 1, 1, 0).astype(np.uint8)
    top = SliceRef("z", 0)
    made = []

    class Candidate:  # the fits are the network's; here only which model the rule builds matters
        name = "unet"

        def fit(self, ts):
            made.append(ts)
            return "near"

    monkeypatch.setattr("ml4paleo.models.LocalNetwork", lambda far, near, planes, *rest: (far, near, planes, rest[-1]))
    ts = TrainingSet([], ("background", "fossil"), None, (8, 16, 16), masks={OUTLINED: outlined, top: z0},
                     warm="previous", focus={top: bg_dab}, began=frozenset({top}))
    assert top not in ts.corrections
    far, near, planes, share = _local_fit._fit_network(Candidate(), ts)
    assert (far, near) == ("previous", "near") and [(a, i, int(m.sum())) for a, i, m in planes] == [(0, 0, 2)]
    # the dab brackets an outline: beyond its reach the network that never learned it answers alone
    assert share == 1.0
    alone = dataclasses.replace(ts, masks={OUTLINED: outlined, top: bg_dab})  # a dab of one class: a correction
    assert top in alone.corrections and _local_fit._fit_network(Candidate(), alone)[3] == _local_fit.FAR_SHARE
    monkeypatch.setattr(_local_fit, "OUTLINE_DAB_ALONE", False)
    assert _local_fit._fit_network(Candidate(), ts)[3] == _local_fit.FAR_SHARE
    monkeypatch.setattr(_local_fit, "BEGAN_LOCAL", False)
    assert _local_fit._fit_network(Candidate(), ts) == "near"  # the rule before: a plain network
