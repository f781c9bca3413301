"""Crash safety with real runner processes: a runner killed with SIGKILL in the middle of a job
(the job completes exactly once, by another runner), and two segmentation runners sharing
four queued jobs (each processed exactly once)."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from apiserver import converted_job, png_b64, start_server, stop_server, tiff_slices, upload_files

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server2(tmp_path_factory, postgres_url_or_none):
    """Two segmentation runners (and one convert runner) under one ``ml4paleo serve``, on
    PostgreSQL where the tests have a server (runners racing for tasks across processes there
    too), else on SQLite."""
    import psutil

    srv = start_server(tmp_path_factory.mktemp("data"), runners="convert=1,segment=2",
                       postgres_url=postgres_url_or_none)
    if postgres_url_or_none:  # the server and its runners really work on PostgreSQL
        from sqlalchemy import create_engine, inspect

        engine = create_engine(srv.env["ML4PALEO_DATABASE_URL"])
        assert "tasks" in inspect(engine).get_table_names()
        engine.dispose()
        assert not (srv.data / "ml4paleo.sqlite3").exists()
    yield srv
    children = psutil.Process(srv.proc.pid).children(recursive=True)
    stop_server(srv, graceful=True)
    # SIGTERM to the server stops every runner it started
    assert srv.proc.returncode == 0
    assert not [c.pid for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]


def _annotate(srv, job_id: str, volume: np.ndarray, zs) -> None:
    t = np.median(volume)
    for z in zs:
        mask = np.where(volume[z] > t, 2, 1).astype(np.uint8)
        srv.json("POST", f"/api/annotate/{job_id}/data/submit", json={"z": int(z), "mask": png_b64(mask)})


def _events(srv, job_id: str) -> dict:
    return srv.json("GET", f"/api/job/{job_id}/events")


def test_runner_killed_mid_job_the_job_completes_exactly_once(server2, snow_volume):
    pytest.importorskip("ml4paleo.pipelines.segment")
    srv = server2
    volume = snow_volume  # segmenting 100^3 takes seconds: time enough to kill its runner
    job_id = converted_job(srv, volume, "crash")
    _annotate(srv, job_id, volume, (30, 70))
    seg_id = srv.json("POST", f"/api/job/{job_id}/start", 202)["seg_id"]
    deadline = time.monotonic() + 60
    while srv.status(job_id)["status"] != "segmenting":  # training done, the volume is being segmented
        assert time.monotonic() < deadline and srv.status(job_id)["status"] != "error", srv.tail()
        time.sleep(0.02)
    task = next(t for t in _events(srv, job_id)["tasks"] if t["kind"] == "start")
    assert task["status"] == "running"
    victim = int(task["owner"].split(":")[1])
    assert victim in srv.runner_pids("segment")
    os.kill(victim, signal.SIGKILL)

    doc = srv.wait(job_id, {"segmented"}, timeout=90)
    assert next(s for s in doc["segmentations"] if s["seg_id"] == seg_id)["status"] == "done"
    log = _events(srv, job_id)
    task = next(t for t in log["tasks"] if t["kind"] == "start")
    assert task["status"] == "done" and task["attempts"] == 2 and int(task["owner"].split(":")[1]) != victim
    kinds = [e["kind"] for e in log["events"] if e["task_id"] == task["task_id"]]
    assert kinds.count("task:claimed") == 2 and kinds.count("task:done") == 1
    assert [e["kind"] for e in log["events"]].count("status:segmented") == 1
    # the killed runner was replaced by the server
    deadline = time.monotonic() + 20
    while len(srv.runner_pids("segment")) < 2:
        assert time.monotonic() < deadline, "the dead runner was not restarted"
        time.sleep(0.2)
    assert victim not in srv.runner_pids("segment")


def test_two_segment_runners_four_jobs_each_processed_once(server2, rng):
    pytest.importorskip("ml4paleo.pipelines.train")
    srv = server2
    volumes = {}
    for i in range(4):
        volume = rng.normal(1000, 50, (12, 40, 40)).astype(np.uint16)
        volume[:, 10:30, 10 + i:30] += 2000
        job_id = srv.json("POST", "/api/job/new", 201, json={"name": f"job {i}"})["job_id"]
        upload_files(srv, job_id, tiff_slices(volume))
        srv.json("POST", "/api/job/status/upload-complete", 202, json={"job_id": job_id})
        volumes[job_id] = volume
    jobs = list(volumes)
    for job_id in jobs:
        srv.wait(job_id, {"converted"})
        _annotate(srv, job_id, volumes[job_id], (3, 8))
    model_ids = {job_id: srv.json("POST", f"/api/job/{job_id}/retrain", 202)["model_id"] for job_id in jobs}
    owners = set()
    for job_id in jobs:
        doc = srv.wait(job_id, {"trained"}, timeout=90)
        assert [m["status"] for m in doc["models"] if m["model_id"] == model_ids[job_id]] == ["ready"]
        log = _events(srv, job_id)
        (task,) = [t for t in log["tasks"] if t["kind"] == "train"]
        assert task["status"] == "done" and task["attempts"] == 1
        kinds = [e["kind"] for e in log["events"] if e["task_id"] == task["task_id"]]
        assert kinds.count("task:claimed") == 1 and kinds.count("task:done") == 1
        owners.add(task["owner"])
    assert all(o.endswith(":segment") for o in owners)


def test_batch_runners_give_way_to_the_server(server2):
    """Conversion and segmentation runners run niced (BATCH_NICE), the web server does not: the
    train runner's drafts and previews, at the server's priority, go first on shared cores."""
    import psutil

    from ml4paleo.jobs.runner import BATCH_NICE
    from ml4paleo.jobs.statuses import RunnerKind

    srv = server2
    base = psutil.Process(srv.proc.pid).nice()
    for kind in ("convert", "segment"):
        pids = srv.runner_pids(kind)
        assert pids and all(psutil.Process(p).nice() == base + BATCH_NICE[RunnerKind(kind)] for p in pids)
    assert RunnerKind.TRAIN not in BATCH_NICE
