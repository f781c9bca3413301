"""Where a model doubts: probability margin and disagreement with the outlines; the worst region
of a plane; the soft Dice estimate."""

from __future__ import annotations

import numpy as np

from ml4paleo.compute.uncertainty import doubt_map, plane_doubt, soft_dice_terms


def test_doubt_grows_with_hesitation_and_disagreement():
    proba = np.zeros((10, 10, 2), np.float32)
    proba[..., 0] = 1.0
    proba[2:4, 2:4] = (0.55, 0.45)  # hesitant
    prior = np.zeros((10, 10), np.uint8)
    prior[6:9, 6:9] = 1  # the outlines say structure, the model matrix
    doubt = doubt_map(proba, prior)
    assert doubt[0, 0] == 0 and doubt[2, 2] > 0.8 and doubt[7, 7] == 1
    worst = plane_doubt(doubt)
    assert worst.bbox == (6, 6, 9, 9) and worst.doubt == 9.0  # the largest doubt, not the first
    assert plane_doubt(np.zeros((4, 4))) is None


def test_soft_dice_is_exact_for_certain_agreeing_planes_and_lower_where_they_disagree():
    truth = np.zeros((8, 8), np.intp)
    truth[2:6, 2:6] = 1
    proba = np.eye(2, dtype=np.float32)[truth]
    tp, pred, true = soft_dice_terms(proba)[1]
    assert 2 * tp / (pred + true) == 1.0
    prior = truth.copy()
    prior[2:6, 2:4] = 0
    tp, pred, true = soft_dice_terms(proba, prior)[1]
    assert 2 * tp / (pred + true) < 0.9
    unsure = np.where(proba > 0.5, 0.7, 0.3).astype(np.float32)  # right everywhere, the votes spread
    dice = [2 * tp / (pred + true) for tp, pred, true in (soft_dice_terms(unsure, power=p)[1] for p in (1.0, 2.0))]
    assert dice[0] < dice[1] < 1.0  # read surer (squared), the same labels


def test_the_chance_of_being_wrong_weighs_the_outlines_by_their_record():
    from ml4paleo.compute.uncertainty import wrong_chance

    proba = np.zeros((6, 6, 2), np.float32)
    proba[..., 0] = 1.0
    proba[0, 0] = (0.7, 0.3)  # hesitant: 0.3
    prior = np.zeros((6, 6), np.uint8)
    prior[3:, 3:] = 1  # the outlines disagree with a sure model
    assert wrong_chance(proba)[0, 0] == np.float32(0.3) and wrong_chance(proba)[4, 4] == 0
    assert wrong_chance(proba, prior, 0.15)[4, 4] == np.float32(0.15)  # outlines mostly wrong there
    assert wrong_chance(proba, prior, 0.9)[4, 4] == np.float32(0.9)


def test_a_plane_s_worst_region_holds_the_most_expected_wrong_voxels():
    from ml4paleo.compute.uncertainty import plane_worst

    proba = np.zeros((12, 12, 2), np.float32)
    proba[..., 0] = 1.0
    prior = np.zeros((12, 12), np.uint8)
    prior[0:4, 0:4] = 1  # 16 voxels where the outlines disagree
    proba[8:11, 8:11] = (0.5, 0.5)  # 9 voxels where the model hesitates: 0.5 each
    assert plane_worst(proba, prior, 0.9).bbox == (0, 0, 4, 4)
    assert plane_worst(proba, prior, 0.1).bbox == (8, 8, 11, 11)  # outlines that are rarely right weigh less
    assert plane_worst(np.eye(2, dtype=np.float32)[np.zeros((4, 4), int)]) is None


def test_no_plane_next_to_a_painted_one_is_suggested_unless_none_other_is_left():
    from ml4paleo.pipelines.suggest import NEAR, candidate_planes
    from ml4paleo.planes import SliceRef

    planes = candidate_planes((40, 8, 8), [SliceRef("z", 20)], per_axis=40)
    assert all(abs(i - 20) > NEAR for a, i in planes if a == 0) and any(a == 0 for a, _ in planes)
    assert [(a, i) for a, i in candidate_planes((3, 8, 8), [SliceRef("z", 1)]) if a == 0] == [(0, 0), (0, 2)]


def test_a_scarce_class_s_near_misses_come_before_the_doubt_ranking(monkeypatch):
    from ml4paleo.pipelines import suggest
    from ml4paleo.pipelines.suggest import suggest_planes

    monkeypatch.setattr(suggest, "SCARCE_FIRST", True)  # off in the product (docs/decisions.md)

    class Fixed:  # a model whose probabilities are given: only the ranking is under test
        def __init__(self, proba):
            self.proba = proba

        def predict_region(self, array, start, stop):
            return self.proba[tuple(slice(a, b) for a, b in zip(start, stop))]

    proba = np.zeros((9, 12, 12, 2), np.float32)
    proba[..., 0] = 1.0
    proba[2, 1:9, 1:9] = (0.45, 0.55)  # a wide hesitant region called fossil: the most expected wrong voxels
    proba[6, 3:6, 3:6] = (0.6, 0.4)  # a small region called matrix where fossil nearly wins: a near miss
    proba[6, 9, 9] = (0.8, 0.2)  # too unlikely fossil to count as a near miss
    proba[4, 3:9, 3:9] = (0.6, 0.4)  # a wide rim around a region called fossil: its outline's doubt, not a miss
    proba[4, 4:8, 4:8] = (0.3, 0.7)
    model, array = Fixed(proba), np.zeros(proba.shape[:3], np.float32)
    plain = suggest_planes(model, array, [], (1, 1, 1), ["matrix", "fossil"])["suggestions"]
    assert (plain[0]["axis"], plain[0]["index"]) == ("z", 2)
    first = suggest_planes(model, array, [], (1, 1, 1), ["matrix", "fossil"], scarce={"fossil": 4})["suggestions"]
    assert (first[0]["axis"], first[0]["index"], first[0]["bbox"]) == ("z", 6, [3, 3, 6, 6])
    assert "few painted voxels of 'fossil'" in first[0]["reason"]
    assert any(s["axis"] == "z" and s["index"] == 2 and "fossil" not in s["reason"] for s in first)
