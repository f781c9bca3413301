"""A slice with strokes of one class enters the prior: the prior's answer on its plane, corrected
where the strokes contradict it, and every painted voxel its painted class (painted voxels are law)."""

from __future__ import annotations

import numpy as np
import pytest

from ml4paleo.compute.complete import complete_slice, correct_slice, supported
from ml4paleo.compute.painted import keep_painted
from ml4paleo.errors import InputError


def disc(shape, cy, cx, r):
    yy, xx = np.indices(shape)
    return ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r).astype(np.uint8)


def dab(shape, cy, cx, value, r=1):
    return disc(shape, cy, cx, r) * np.uint8(value)


def test_a_matrix_stroke_in_a_false_blob_removes_the_blob_and_nothing_else():
    labels = np.maximum(disc((64, 64), 16, 16, 8), disc((64, 64), 44, 44, 10))  # the second blob is false
    out = correct_slice(labels, dab(labels.shape, 44, 44, 1))
    assert not out[30:, 30:].any()  # the blob under the stroke is gone...
    assert np.array_equal(out[:30, :30], labels[:30, :30])  # ...the other untouched


def test_a_matrix_stroke_near_an_outline_trims_it_there_only():
    labels = disc((64, 64), 32, 32, 20)
    local = correct_slice(labels, dab(labels.shape, 32, 50, 1))  # 2 voxels inside the outline, on its right
    assert local[32, 50] == 0 and local[32, 52] == 0 and local[32, 32] == 1 and local[32, 47] == 1
    assert np.array_equal(local[:, :40], labels[:, :40])  # the rest of the outline stays


def test_a_structure_stroke_grows_the_nearest_outline_or_stands_alone():
    labels = disc((64, 64), 32, 20, 8)
    near = correct_slice(labels, dab(labels.shape, 32, 33, 2))  # 5 voxels right of the outline
    assert near[32, 28:34].all() and near.sum() > labels.sum()
    far = correct_slice(labels, dab((64, 64), 5, 60, 2))  # far from every outline: the stroke alone
    assert far[5, 60] == 1 and (far - labels).sum() == dab((64, 64), 5, 60, 1).sum()
    assert correct_slice(np.zeros((8, 8), np.uint8), dab((8, 8), 4, 4, 2))[4, 4] == 1  # no outline at all


def test_anisotropic_pixels_and_three_classes():
    labels = np.zeros((40, 40), np.uint8)
    labels[5:35, 5:15] = 1
    labels[5:35, 25:35] = 2
    out = correct_slice(labels, dab(labels.shape, 20, 30, 1, r=0), spacing=(3.0, 1.0))
    assert out[20, 30] == 0 and (out == 1).sum() == (labels == 1).sum()  # class 1 untouched
    with pytest.raises(InputError):
        correct_slice(labels, np.zeros((4, 4), np.uint8))


def test_painted_voxels_set_labels_and_probabilities_in_any_region():
    mask = np.zeros((6, 8), np.uint8)  # a y plane: rows z, columns x
    mask[2, 3], mask[4, 5] = 2, 1
    labels = np.zeros((6, 7, 8), np.uint8)
    keep_painted(labels, [(1, 3, mask)], (0, 0, 0), (6, 7, 8))
    assert labels[2, 3, 3] == 1 and labels[4, 3, 5] == 0 and labels.sum() == 1
    proba = np.full((3, 2, 4, 2), 0.5, np.float32)  # region z 1:4, y 2:4, x 2:6
    keep_painted(proba, [(1, 3, mask)], (1, 2, 2), (4, 4, 6))
    assert proba[1, 1, 1].tolist() == [0.0, 1.0] and proba[3 - 1, 1, 3].tolist() == [0.5, 0.5]
    untouched = np.zeros((2, 2, 2), np.uint8)
    assert not keep_painted(untouched, [(1, 3, mask)], (0, 0, 0), (2, 2, 2)).any()  # the plane is outside


def test_an_offered_completion_leaves_unlabeled_what_no_stroke_reaches():
    rng = np.random.default_rng(0)
    image = 1000 + rng.normal(0, 5, (96, 96))
    image[:, 60:] += 400  # a strong edge: nothing on its right is painted
    strokes = np.zeros((96, 96), np.uint8)
    strokes[20:70, 10] = 1
    strokes[20:70, 40] = 2
    full = complete_slice(image, strokes)
    offered = complete_slice(image, strokes, supported_only=True)
    assert (full[:, 70:] > 0).all()  # training's walker assigns every voxel...
    assert not offered[:, 70:].any()  # ...the offer leaves what lies behind the edge unlabeled
    assert (offered[20:70, 5:15] == 1).all() and (offered[20:70, 35:45] == 2).all()
    assert np.array_equal(offered[strokes > 0], strokes[strokes > 0])
    sure = np.zeros((96, 96, 2), np.float32)
    sure[..., 1] = 1.0  # a confident model says class 2 everywhere...
    backed = supported(image, strokes, full, sure)
    assert backed[full == 2].all()  # ...supports every voxel of class 2, behind the edge too
    assert not backed[(full == 1) & (strokes == 0)].any()  # and refutes class 1 wherever it was not painted


def test_far_apart_dabs_of_two_classes_correct_the_prior_and_strokes_either_side_of_an_outline_draw_it():
    from ml4paleo.compute.complete import brackets_an_outline, outline_slices

    beside = np.zeros((60, 96), np.uint8)
    beside[20:40, 30:33] = 2  # inside, just left of an outline
    beside[20:40, 37:40] = 1  # outside, just right of it
    apart = np.zeros((60, 96), np.uint8)
    apart[5:8, 5:8] = 2
    apart[50:53, 85:88] = 1
    assert brackets_an_outline(beside) and not brackets_an_outline(apart)
    one = np.zeros((60, 96), np.uint8)
    one[5:8, 5:8] = 1
    assert outline_slices({10: beside, 20: apart, 30: one}) == {10}
    assert outline_slices({20: apart, 30: one}) == {20}  # no outline anywhere: a first model takes what there is
    full = np.ones((60, 96), np.uint8)
    assert outline_slices({0: full, 20: apart}) == {0}
