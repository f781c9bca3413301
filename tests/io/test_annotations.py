"""Annotation files of every plane: names, replacement of other names for the same slice, keys."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ml4paleo.errors import ArtifactNotFound, InputError
from ml4paleo.io.annotations import (annotation_files, axis_index, delete_annotation, file_name, make_key,
                                     read_annotations, write_annotation)


def test_plane_slices_are_written_with_the_cli_names_and_read_back(tmp_path):
    mask = np.array([[0, 1], [2, 1]], np.uint8)
    Image.fromarray(mask).save(tmp_path / "y120.png")  # another tool's name for the same plane
    assert write_annotation(tmp_path, ("y", 120), mask).name == "y_0120.png"
    write_annotation(tmp_path, make_key("x", 8), mask)
    write_annotation(tmp_path, make_key("z", 3), mask)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["3.png", "x_0008.png", "y_0120.png"]
    assert list(read_annotations(tmp_path)) == [3, ("y", 120), ("x", 8)]
    delete_annotation(tmp_path, ("y", 120))
    assert set(annotation_files(tmp_path)) == {3, ("x", 8)}
    with pytest.raises(ArtifactNotFound, match="y120"):
        delete_annotation(tmp_path, ("y", 120))


def test_keys_and_their_checks():
    assert make_key("z", 4) == 4 and make_key("y", 4) == ("y", 4)
    assert axis_index(4) == ("z", 4) and axis_index(("x", 2)) == ("x", 2)
    assert file_name(12) == "12.png" and file_name(("x", 80)) == "x_0080.png"
    with pytest.raises(InputError, match="axis must be z, y or x"):
        make_key("w", 1)
    with pytest.raises(InputError, match="y must be a slice index"):
        make_key("y", -1)
    with pytest.raises(InputError, match="x must be a slice index"):
        write_annotation("unused", ("x", True), np.zeros((2, 2), np.uint8))
