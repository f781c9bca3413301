"""Segmentation: chunked (local and distributed) equals whole volume, outputs, options, preview."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from segdata import FAST, FAST_RF, phantom, scribbles, write_volume

import ml4paleo.pipelines.segment as segment_mod
from ml4paleo.cli import main as cli
from ml4paleo.errors import Cancelled, InputError, OutputExistsError, VolumeNotFoundError
from ml4paleo.compute.features import compute_features
from ml4paleo.io.annotations import write_annotation
from ml4paleo.io.omezarr import open_level, read_info
from ml4paleo.models import load_model
from ml4paleo.pipelines.preview import predict_slice
from ml4paleo.pipelines.segment import segment_volume
from ml4paleo.pipelines.train import train_model
from ml4paleo.compute.postprocess import postprocess


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    rng = np.random.default_rng(2)
    root = tmp_path_factory.mktemp("segment")
    vol, truth = phantom(rng, shape=(24, 40, 36))
    write_volume(root / "vol.ome.zarr", vol, chunks=8)  # tiny chunks: many blocks
    ann = {z: scribbles(truth[z]) for z in (4, 12, 20)}
    train_model(root / "vol.ome.zarr", ann, root / "model", features=FAST, params=FAST_RF, method="forest")
    model = load_model(root / "model")
    feats = compute_features(vol, model.feature_settings)
    whole = model.predict(feats.reshape(-1, feats.shape[-1])).reshape(vol.shape)
    return root, vol, truth, whole


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(segment_mod, "BLOCK_VOXELS", 8 * 16 * 16)


def labels_of(path):
    return np.asarray(open_level(path, 0)[:])


def test_chunked_segmentation_equals_whole_volume(world, tmp_path, small_blocks):
    root, vol, truth, whole = world
    seen = []
    result = segment_volume(root / "vol.ome.zarr", root / "model", tmp_path / "labels.ome.zarr", scheduler="threads",
                            progress=lambda d, t, s="": seen.append((d / t, s)))
    assert result.n_blocks > 8
    out = labels_of(tmp_path / "labels.ome.zarr")
    assert out.dtype == np.uint8 and np.array_equal(out, whole)
    info = read_info(tmp_path / "labels.ome.zarr")
    assert info.kind == "labels" and info.voxel_size == (2.0, 1.0, 1.0) and info.shape == vol.shape
    assert info.attrs["classes"] == ["background", "fossil"] and info.attrs["model_id"] == "model"
    assert result.voxels_per_class == {"background": int((whole == 0).sum()), "fossil": int((whole == 1).sum())}
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert sum(1 for f, s in seen if s == "segmenting" and 0 < f < 1) >= result.n_blocks - 1  # real progress per block
    assert [p.name for p in tmp_path.iterdir()] == ["labels.ome.zarr"]


def test_a_thin_last_piece_joins_the_block_before_and_the_labels_stay_the_whole_volumes(world, tmp_path, small_blocks,
                                                                                        monkeypatch):
    assert segment_mod._cuts(136, 64) == [(0, 64), (64, 136)]  # the small scan's 8 last planes join
    assert segment_mod._cuts(250, 128) == [(0, 128), (128, 250)] and segment_mod._cuts(10, 64) == [(0, 10)]
    root, vol, truth, whole = world
    monkeypatch.setattr(segment_mod, "THIN_LAST", 0.6)  # blocks of 8 x 16 x 16: y's last 8 and x's last 4 join
    result = segment_volume(root / "vol.ome.zarr", root / "model", tmp_path / "labels.ome.zarr", scheduler="threads")
    assert result.n_blocks == 3 * 2 * 2
    assert np.array_equal(labels_of(tmp_path / "labels.ome.zarr"), whole)


def test_local_threads_default_equals_whole_volume(world, tmp_path, small_blocks, monkeypatch):
    from threadpoolctl import threadpool_info

    root, vol, truth, whole = world
    monkeypatch.delenv("ML4PALEO_DASK_SCHEDULER", raising=False)
    monkeypatch.setattr("ml4paleo.pipelines._tasks.cores", lambda: 2)
    before = [pool["num_threads"] for pool in threadpool_info()]
    result = segment_volume(root / "vol.ome.zarr", root / "model", tmp_path / "l.ome.zarr")
    assert result.scheduler == "threads" and result.n_blocks > 1
    assert np.array_equal(labels_of(tmp_path / "l.ome.zarr"), whole)
    assert [pool["num_threads"] for pool in threadpool_info()] == before  # a runner keeps its native threads


def test_local_processes_equal_whole_volume(world, tmp_path, small_blocks):
    root, vol, truth, whole = world
    result = segment_volume(root / "vol.ome.zarr", root / "model", tmp_path / "l.ome.zarr", scheduler="processes")
    assert result.scheduler == "processes" and result.n_blocks > 1
    assert np.array_equal(labels_of(tmp_path / "l.ome.zarr"), whole)


def test_distributed_cluster_equals_local(world, tmp_path, small_blocks, monkeypatch):
    distributed = pytest.importorskip("distributed")
    root, vol, truth, whole = world
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster:
        monkeypatch.setenv("ML4PALEO_DASK_SCHEDULER", cluster.scheduler_address)
        result = segment_volume(root / "vol.ome.zarr", root / "model", tmp_path / "d.ome.zarr", probabilities=True)
    assert result.scheduler.startswith("tcp://")
    assert np.array_equal(labels_of(tmp_path / "d.ome.zarr"), whole)


def test_probabilities_beside_the_labels(world, tmp_path):
    root, vol, truth, whole = world
    result = segment_volume(root / "vol.ome.zarr", root / "model", tmp_path / "labels.ome.zarr",
                            probabilities=True, scheduler="synchronous")
    assert [p.name for p in result.probability_paths] == ["labels_prob_background.ome.zarr", "labels_prob_fossil.ome.zarr"]
    probs = np.stack([labels_of(p) for p in result.probability_paths])
    assert probs.dtype == np.uint8 and np.all(np.abs(probs.astype(int).sum(axis=0) - 255) <= 1)
    assert np.array_equal(np.argmax(probs, axis=0) == 1, whole == 1) or (np.argmax(probs, axis=0) != whole).mean() < 1e-3
    assert read_info(result.probability_paths[1]).attrs["probability_of"] == "fossil"


@pytest.mark.parametrize("block", [None, 8 * 8 * 8], ids=["one block", "many blocks"])
def test_postprocessing_options(world, tmp_path, monkeypatch, block):
    import ml4paleo.pipelines.postprocess as post_mod

    root, vol, truth, whole = world
    if block:  # post-processing block by block (8^3 voxels), merged across faces: still exact
        monkeypatch.setattr(post_mod, "POST_BLOCK_VOXELS", block)
    result = segment_volume(root / "vol.ome.zarr", root / "model", tmp_path / "p.ome.zarr", scheduler="synchronous",
                            min_size=30, fill_holes=True, keep_largest=False)
    out = labels_of(tmp_path / "p.ome.zarr")
    assert result.postprocessing["downsample_factor"] == 1
    assert np.array_equal(out, postprocess(whole, min_size=30, fill=True))
    assert result.voxels_per_class["fossil"] == int((out == 1).sum())
    assert labels_of(tmp_path / "p.ome.zarr").shape == vol.shape
    assert [p.name for p in tmp_path.iterdir()] == ["p.ome.zarr"]  # no scratch left behind


def test_refusals_and_cancel_leave_nothing(world, tmp_path):
    root, vol, truth, whole = world
    (tmp_path / "exists.ome.zarr").mkdir()
    with pytest.raises(OutputExistsError):
        segment_volume(root / "vol.ome.zarr", root / "model", tmp_path / "exists.ome.zarr")
    with pytest.raises(VolumeNotFoundError):
        segment_volume(root / "vol.ome.zarr", tmp_path / "no-model", tmp_path / "x.ome.zarr")
    with pytest.raises(InputError, match="min_size"):
        segment_volume(root / "vol.ome.zarr", root / "model", tmp_path / "x.ome.zarr", min_size=-3)
    with pytest.raises(InputError, match="scheduler"):
        segment_volume(root / "vol.ome.zarr", root / "model", tmp_path / "x.ome.zarr", scheduler="gpu")

    def cancel(done, total, stage=""):
        if done > 0:
            raise Cancelled("stop")

    with pytest.raises(Cancelled):
        segment_volume(root / "vol.ome.zarr", root / "model", tmp_path / "x.ome.zarr", scheduler="synchronous",
                       progress=cancel)
    assert [p.name for p in tmp_path.iterdir()] == ["exists.ome.zarr"]


def test_model_with_other_feature_count_is_refused(world, tmp_path):
    root, vol, truth, whole = world
    import shutil

    shutil.copytree(root / "model", tmp_path / "model")
    meta = json.loads((tmp_path / "model" / "metadata.json").read_text())
    meta["features"]["sigmas"] = [1.0]
    (tmp_path / "model" / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="features"):
        segment_volume(root / "vol.ome.zarr", tmp_path / "model", tmp_path / "x.ome.zarr")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_preview_equals_the_segmented_slice(world):
    root, vol, truth, whole = world
    for z in (0, 13, 23):
        pred = predict_slice(root / "vol.ome.zarr", root / "model", z)
        assert pred.dtype == np.uint8 and np.array_equal(pred, whole[z])
    assert np.array_equal(predict_slice(root / "vol.ome.zarr", root / "model", 13), whole[13])  # cached features
    with pytest.raises(InputError, match="z must be"):
        predict_slice(root / "vol.ome.zarr", root / "model", 24)


def test_preview_of_an_xz_or_yz_plane_equals_that_plane_of_the_segmentation(world):
    from ml4paleo.pipelines.preview import predict_plane

    root, vol, truth, whole = world
    assert np.array_equal(predict_plane(root / "vol.ome.zarr", root / "model", "z", 13), whole[13])
    for axis, index, plane in (("y", 0, whole[:, 0, :]), ("y", 17, whole[:, 17, :]), ("x", 9, whole[:, :, 9])):
        pred = predict_plane(root / "vol.ome.zarr", root / "model", axis, index)
        assert pred.dtype == np.uint8 and np.array_equal(pred, plane), axis
    assert np.array_equal(predict_plane(root / "vol.ome.zarr", root / "model", "y", 17), whole[:, 17, :])  # cached
    with pytest.raises(InputError, match="x must be"):
        predict_plane(root / "vol.ome.zarr", root / "model", "x", vol.shape[2])
    with pytest.raises(InputError, match="axis"):
        predict_plane(root / "vol.ome.zarr", root / "model", "w", 0)


def test_cli_train_segment_and_predict_slice(world, tmp_path):
    root, vol, truth, whole = world
    for z in (4, 20):
        write_annotation(tmp_path / "ann", z, scribbles(truth[z]))
    runner = CliRunner()
    r = runner.invoke(cli, ["train", str(root / "vol.ome.zarr"), str(tmp_path / "ann"), str(tmp_path / "m"),
                            "--sigmas", "1,3.5", "--features", "gaussian,ggm,hessian", "--validate", "now"])
    assert r.exit_code == 0, r.output
    # two slices of scribbles on three filters: the forest leaves the fossil below 0.5, context (which
    # no fold can score with two slices) is chosen and the reason says so
    assert "forest: background 0." in r.output and "context: not scored" in r.output
    assert "method: context (context: every method scored" in r.output
    assert "paint next 1: " in r.output and "estimated Dice" in r.output
    r = runner.invoke(cli, ["segment", str(root / "vol.ome.zarr"), str(tmp_path / "m"), str(tmp_path / "s.ome.zarr"),
                            "--scheduler", "synchronous", "--min-size", "5", "--exact-labels"])
    assert r.exit_code == 0, r.output
    assert labels_of(tmp_path / "s.ome.zarr").shape == vol.shape
    # as a program, the process ends without the interpreter's teardown (cli._finished): the same
    # labels written, its output said, its status 0
    out = subprocess.run([sys.executable, "-m", "ml4paleo.cli", "segment", str(root / "vol.ome.zarr"), str(tmp_path / "m"),
                          str(tmp_path / "s2.ome.zarr"), "--min-size", "5", "--exact-labels"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "wrote" in out.stdout, out.stderr
    assert np.array_equal(labels_of(tmp_path / "s2.ome.zarr"), labels_of(tmp_path / "s.ome.zarr"))
    r = runner.invoke(cli, ["predict-slice", str(root / "vol.ome.zarr"), str(tmp_path / "m"), "3", str(tmp_path / "p.png")])
    assert r.exit_code == 0 and (tmp_path / "p.png").is_file()
    r = runner.invoke(cli, ["train", str(root / "vol.ome.zarr"), str(tmp_path / "ann"), str(tmp_path / "m")])
    assert r.exit_code != 0 and "already exists" in r.output


def test_two_d_model_chunked_equals_whole_volume(world, tmp_path, small_blocks):
    root, vol, truth, whole = world
    ann = {z: scribbles(truth[z]) for z in (4, 20)}
    train_model(root / "vol.ome.zarr", ann, tmp_path / "m2d", features=FAST, params=FAST_RF, two_d=True, method="forest")
    model = load_model(tmp_path / "m2d")
    feats = compute_features(vol, model.feature_settings)
    expected = model.predict(feats.reshape(-1, feats.shape[-1])).reshape(vol.shape)
    segment_volume(root / "vol.ome.zarr", tmp_path / "m2d", tmp_path / "s.ome.zarr", scheduler="threads")
    assert np.array_equal(labels_of(tmp_path / "s.ome.zarr"), expected)
    assert np.array_equal(predict_slice(root / "vol.ome.zarr", tmp_path / "m2d", 7), expected[7])


@pytest.mark.parametrize("workers, tile", [(2, 512), (3, 512), (2, 7)])
def test_slice_features_on_threads_equal_one_pass(world, workers, tile):
    from ml4paleo.compute.regions import slice_features

    root, vol, truth, whole = world
    settings = load_model(root / "model").feature_settings
    one = slice_features(vol, 11, settings)
    assert np.array_equal(slice_features(vol, 11, settings, tile=tile, workers=workers), one)


def test_labels_only_equal_labels_with_probabilities_through_the_packed_forest(world, tmp_path, small_blocks,
                                                                                  monkeypatch):
    """Without probabilities a forest's blocks take the early-exit labels path; with them, the
    probabilities' argmax: the same label volume, and the whole volume's. By default the labels
    come coarse to fine, near exact."""
    import ml4paleo.models._forest as forest

    root, vol, truth, whole = world
    monkeypatch.setattr(forest, "PACKED_MIN_ROWS", 1000)  # the test's small blocks use the packed forest
    calls = []
    labels_path = forest.RandomForestSegmenter.predict_labels_region
    monkeypatch.setattr(forest.RandomForestSegmenter, "predict_labels_region",
                        lambda self, *a: calls.append(a[1]) or labels_path(self, *a))
    segment_volume(root / "vol.ome.zarr", root / "model", tmp_path / "l.ome.zarr", scheduler="synchronous",
                   exact_labels=True)
    assert len(calls) > 1
    segment_volume(root / "vol.ome.zarr", root / "model", tmp_path / "p.ome.zarr", scheduler="synchronous",
                   probabilities=True)
    assert len(calls) == len(set(calls))  # the probabilities' run did not take the labels path
    assert np.array_equal(labels_of(tmp_path / "l.ome.zarr"), labels_of(tmp_path / "p.ome.zarr"))
    assert np.array_equal(labels_of(tmp_path / "l.ome.zarr"), whole)
    lattice = []
    lattice_path = forest.RandomForestSegmenter.lattice_labels_region
    monkeypatch.setattr(forest.RandomForestSegmenter, "lattice_labels_region",
                        lambda self, *a: lattice.append(a[1]) or lattice_path(self, *a))
    segment_volume(root / "vol.ome.zarr", root / "model", tmp_path / "c.ome.zarr", scheduler="synchronous")
    assert len(lattice) > 1  # by default, coarse to fine: near exact
    assert np.mean(labels_of(tmp_path / "c.ome.zarr") != whole) < 1e-3
