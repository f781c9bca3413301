"""A real Dask cluster: ``dask scheduler`` and ``dask worker`` started as their own processes
(Dask's commands, as a lab would start them on its machines), then segment (with exact
post-processing) and mesh on it; the results equal the local ones."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from segdata import FAST, FAST_RF, phantom, scribbles, write_volume

from ml4paleo.io.omezarr import open_level
from ml4paleo.pipelines.mesh import mesh_labels
from ml4paleo.pipelines.segment import segment_volume
from ml4paleo.pipelines.train import train_model


def _dask_cli() -> str | None:
    here = Path(sys.executable).parent / "dask"
    return str(here) if here.is_file() else shutil.which("dask")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A scheduler and one worker process (one thread) on free local ports; their address."""
    cli = _dask_cli()
    if cli is None:
        pytest.skip("the dask command (dask[distributed]) is not installed")
    distributed = pytest.importorskip("distributed")
    logs = tmp_path_factory.mktemp("dask")
    address = f"tcp://127.0.0.1:{_free_port()}"
    port = address.rsplit(":", 1)[1]
    procs = []
    try:
        procs.append(subprocess.Popen([cli, "scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"],
                                      stdout=(logs / "scheduler.log").open("wb"), stderr=subprocess.STDOUT))
        procs.append(subprocess.Popen([cli, "worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard",
                                       "--host", "127.0.0.1", "--local-directory", str(logs / "worker")],
                                      stdout=(logs / "worker.log").open("wb"), stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 120
        while True:
            try:
                with distributed.Client(address, timeout="5s") as client:
                    client.wait_for_workers(1, timeout=max(1.0, deadline - time.monotonic()))
                break
            except (OSError, TimeoutError):
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    pytest.fail("the dask cluster did not start:\n" + (logs / "scheduler.log").read_text()
                                + (logs / "worker.log").read_text())
                time.sleep(0.5)
        yield address
    finally:
        for p in reversed(procs):
            _stop(p)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    rng = np.random.default_rng(5)
    root = tmp_path_factory.mktemp("cluster-world")
    vol, truth = phantom(rng, shape=(20, 28, 28))
    write_volume(root / "vol.ome.zarr", vol, chunks=8)
    train_model(root / "vol.ome.zarr", {z: scribbles(truth[z]) for z in (4, 15)}, root / "model",
                features=FAST, params=FAST_RF, method="forest")
    return root


def test_segment_and_mesh_on_a_dask_cluster_equal_local(cluster, trained, tmp_path, monkeypatch):
    import ml4paleo.pipelines.postprocess as post_mod
    import ml4paleo.pipelines.segment as segment_mod

    monkeypatch.setattr(segment_mod, "BLOCK_VOXELS", 8 * 16 * 16)  # several tasks
    monkeypatch.setattr(post_mod, "POST_BLOCK_VOXELS", 8 * 8 * 8)
    options = dict(min_size=20, fill_holes=True, keep_largest=False)
    remote = segment_volume(trained / "vol.ome.zarr", trained / "model", tmp_path / "d.ome.zarr",
                            scheduler=cluster, **options)
    local = segment_volume(trained / "vol.ome.zarr", trained / "model", tmp_path / "l.ome.zarr",
                           scheduler="synchronous", **options)
    assert remote.scheduler == cluster and remote.n_blocks > 1
    labels = np.asarray(open_level(tmp_path / "d.ome.zarr", 0)[:])
    assert np.array_equal(labels, np.asarray(open_level(tmp_path / "l.ome.zarr", 0)[:]))
    assert remote.voxels_per_class == local.voxels_per_class and labels.any()

    far = mesh_labels(tmp_path / "d.ome.zarr", tmp_path / "dm", scheduler=cluster, chunk=8, formats=("stl", "ply"))
    near = mesh_labels(tmp_path / "l.ome.zarr", tmp_path / "lm", scheduler="synchronous", chunk=8,
                       formats=("stl", "ply"))
    assert far.measurements == near.measurements and far.measurements[1]["watertight"]
    for a, b in zip(sorted(far.files), sorted(near.files)):
        assert a.read_bytes() == b.read_bytes()
