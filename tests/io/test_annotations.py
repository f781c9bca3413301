"""Annotation files of every plane: names, replacement of other names for the same slice, planes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ml4paleo.errors import ArtifactNotFound, InputError
from ml4paleo.io.annotations import annotation_files, delete_annotation, read_annotations, slice_of_name, write_annotation
from ml4paleo.planes import SliceRef


def test_plane_slices_are_written_with_the_cli_names_and_read_back(tmp_path):
    mask = np.array([[0, 1], [2, 1]], np.uint8)
    Image.fromarray(mask).save(tmp_path / "y120.png")  # another tool's name for the same plane
    assert write_annotation(tmp_path, SliceRef("y", 120), mask).name == "y_0120.png"
    write_annotation(tmp_path, SliceRef("x", 8), mask)
    write_annotation(tmp_path, 3, mask)  # a caller's bare z index is read as SliceRef("z", 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["3.png", "x_0008.png", "y_0120.png"]
    assert list(read_annotations(tmp_path)) == [SliceRef("z", 3), SliceRef("y", 120), SliceRef("x", 8)]
    delete_annotation(tmp_path, ("y", 120))
    assert set(annotation_files(tmp_path)) == {SliceRef("z", 3), SliceRef("x", 8)}
    with pytest.raises(ArtifactNotFound, match="y120"):
        delete_annotation(tmp_path, SliceRef("y", 120))


def test_a_file_name_gives_one_plane():
    assert slice_of_name("12.png") == SliceRef("z", 12) and slice_of_name("scan2_slice_0007.png") == SliceRef("z", 7)
    assert slice_of_name("y_0120.png") == SliceRef("y", 120) and slice_of_name("X80.png") == SliceRef("x", 80)
    assert slice_of_name("notes.png") is None
    for ref in (SliceRef("z", 12), SliceRef("y", 120), SliceRef("x", 8)):
        assert slice_of_name(ref.file_name) == ref  # file names are derived and read back in one place


def test_bad_planes_are_refused_where_they_enter():
    with pytest.raises(InputError, match="axis must be z, y or x"):
        SliceRef("w", 1)
    with pytest.raises(InputError, match="y must be a slice index"):
        SliceRef("y", -1)
    with pytest.raises(InputError, match="x must be a slice index"):
        write_annotation("unused", ("x", True), np.zeros((2, 2), np.uint8))
    with pytest.raises(InputError, match="a slice is a z index or"):
        write_annotation("unused", "12", np.zeros((2, 2), np.uint8))
