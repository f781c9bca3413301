"""SliceRef: one value for a plane, its names derived from it, checked against a volume once."""

from __future__ import annotations

import numpy as np
import pytest

from ml4paleo.errors import InputError
from ml4paleo.planes import AXES, SliceRef


def test_names_derived_from_the_plane():
    z, y = SliceRef("z", 12), SliceRef("y", 120)
    assert (z.name, z.file_name, z.to_json(), z.dim) == ("12", "12.png", 12, 0)
    assert (y.name, y.file_name, y.to_json(), y.dim) == ("y120", "y_0120.png", "y120", 1)
    for ref in (z, y, SliceRef("x", 0)):
        assert SliceRef.of_json(ref.to_json()) == ref and SliceRef.of_file(ref.file_name[:-4]) == ref
    assert AXES == ("z", "y", "x")


def test_order_is_z_slices_first_then_y_then_x():
    refs = [SliceRef("x", 1), SliceRef("z", 30), SliceRef("y", 2), SliceRef("z", 4)]
    assert sorted(refs) == [SliceRef("z", 4), SliceRef("z", 30), SliceRef("y", 2), SliceRef("x", 1)]


def test_callers_forms_and_numpy_indices_become_one_value():
    assert SliceRef.of(7) == SliceRef.of(np.int64(7)) == SliceRef.of(("z", 7)) == SliceRef("z", 7)
    assert SliceRef.of(("y", np.int32(3))) == SliceRef("y", 3) and type(SliceRef("y", np.int32(3)).index) is int
    assert {SliceRef("y", 3): 1}[SliceRef.of(("y", 3))] == 1
    for bad in (True, "7", 7.0, ("w", 1), ("y",), None):
        with pytest.raises(InputError):
            SliceRef.of(bad)


def test_checked_against_the_volume():
    shape = (10, 24, 32)
    assert SliceRef("y", 23).within(shape).plane_shape(shape) == (10, 32)
    assert SliceRef("x", 0).plane_shape(shape) == (10, 24) and SliceRef("z", 9).plane_shape(shape) == (24, 32)
    with pytest.raises(InputError, match="y must be a slice index from 0 to 23; got 24"):
        SliceRef("y", 24).within(shape)
    volume = np.arange(10 * 24 * 32).reshape(shape)
    assert np.array_equal(volume[SliceRef("x", 5).region()], volume[:, :, 5])
