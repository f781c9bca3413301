"""Objects slab by slab equal objects of the whole volume, for any slab depth."""

from __future__ import annotations

import numpy as np
import pytest

from ml4paleo.compute import objects as ob
from ml4paleo.compute.objects_chunked import find_pieces, objects_by_slabs
from ml4paleo.errors import InputError
from ml4paleo.testing.shapes import ellipsoid, touching_pair


def scene(voxel_size=(1.0, 1.0, 1.0)) -> np.ndarray:
    """Touching pairs lying across slab borders, a pair along z, two classes, specks."""
    nz = int(48 / voxel_size[0])
    labels = np.zeros((nz, 40, 80), np.uint8)
    touching_pair(labels, (20.0, 20.0, 22.0), 8.0, 10.0, 0.3, voxel_size)
    ellipsoid(labels, (30.0, 20.0, 62.0), (14.0, 6.0, 6.0), voxel_size, value=2)
    ellipsoid(labels, (12.0, 10.0, 60.0), (5.0, 5.0, 5.0), voxel_size, value=2)
    ellipsoid(labels, (25.0, 12.0, 70.0), (5.0, 5.0, 5.0), voxel_size, value=1)  # touches class 2: never joined
    labels[0, 0, 0] = labels[nz - 1, 39, 79] = 1
    return labels


def run_chunked(labels, classes, voxel_size, depth, **kw):
    out = np.zeros(labels.shape, np.uint32)

    def write(z0, slab):
        out[z0:z0 + len(slab)] = slab

    pieces = find_pieces(labels, classes, min_size=kw.pop("min_size", 0), depth=depth, run=kw.get("run"))
    result = objects_by_slabs(labels, pieces, voxel_size, write, **kw)
    return out, result


@pytest.mark.parametrize("depth", [1, 3, 7, 64])
@pytest.mark.parametrize("split", ["auto", "none"])
def test_chunked_equals_whole(depth, split):
    labels = scene()
    whole, kinds = ob.objects_whole(labels, [1, 2], (1.0, 1.0, 1.0), min_size=2, split=split)
    out, result = run_chunked(labels, [1, 2], (1.0, 1.0, 1.0), depth, min_size=2, split=split, measure=False)
    np.testing.assert_array_equal(out, whole)
    assert [r["class"] for r in result.rows] == list(kinds)
    assert [r["id"] for r in result.rows] == list(range(1, whole.max() + 1))


@pytest.mark.parametrize("depth", [1, 7])
def test_pieces_on_worker_processes_equal_the_whole_volume(depth):
    """The slabs labelled and the pieces split and measured on two worker processes: still the
    whole volume's objects, with the rows of the serial run."""
    from functools import partial

    from ml4paleo.pipelines._tasks import process_pool, run_tasks

    labels = scene()
    whole, _ = ob.objects_whole(labels, [1, 2], (1.0, 1.0, 1.0), min_size=2)
    serial_out, serial = run_chunked(labels, [1, 2], (1.0, 1.0, 1.0), depth, min_size=2)
    with process_pool("processes", 2) as pool:
        out, pooled = run_chunked(labels, [1, 2], (1.0, 1.0, 1.0), depth, min_size=2,
                                  run=partial(run_tasks, scheduler="processes", pool=pool))
    np.testing.assert_array_equal(out, whole)
    np.testing.assert_array_equal(serial_out, whole)
    assert pooled.rows == serial.rows


def test_chunked_equals_whole_anisotropic_with_measurements():
    vs = (3.0, 1.0, 1.0)
    labels = scene(vs)
    grey = labels.astype(np.float32) * 100
    whole, _ = ob.objects_whole(labels, [1], vs)
    out, result = run_chunked(labels, [1], vs, 2, grey=grey)
    np.testing.assert_array_equal(out, whole)
    assert whole.max() == 5  # the pair split in two, one ball, two specks
    for row in result.rows:
        assert row["voxel_count"] == int((whole == row["id"]).sum())
        assert row["grey_mean"] == pytest.approx(100.0)


def test_a_piece_whose_box_is_too_large_is_refused_by_name():
    labels = scene()
    with pytest.raises(InputError, match=r"piece 1 \(class 1, \d+ voxels, bounding box \[11, 11, 6\].*box of"):
        run_chunked(labels, [1], (1.0, 1.0, 1.0), 8, min_size=2, max_box_voxels=2000)
