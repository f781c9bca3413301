"""The runner loop in-process (``run_once``) on real uploads and the real convert pipeline:
a bad job becomes an error with reason and traceback and the runner goes on; a stopping runner
hands its task back."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from ml4paleo.jobs.runner import Runner, reason_of
from ml4paleo.jobs.store import JobStore
from ml4paleo.settings import Settings


@pytest.fixture
def store(tmp_path):
    store = JobStore(Settings.from_env({}, data=tmp_path, lease_seconds=5, poll_seconds=0.05))
    yield store
    store.close()


def _upload(store: JobStore, name: str, files: dict[str, bytes]) -> str:
    job_id = store.create_job(name)["job_id"]
    for filename, payload in files.items():
        target = store.paths(job_id).upload_file(filename)
        target.parent.mkdir(parents=True, exist_ok=True)
        store.begin_chunk(job_id, filename, 0, len(payload), len(payload))
        target.write_bytes(payload)
        store.end_chunk(job_id, filename, 0, len(payload))
    store.upload_complete(job_id)
    return job_id


def _tiff(volume: np.ndarray, tmp_path) -> bytes:
    path = tmp_path / "v.tif"
    tifffile.imwrite(path, volume)
    return path.read_bytes()


def test_a_bad_job_becomes_an_error_and_the_runner_goes_on(store, tmp_path, rng):
    bad = _upload(store, "garbage", {"scan/garbage.tif": rng.bytes(1000)})
    volume = rng.integers(100, 5000, (6, 20, 24), dtype=np.uint16)
    good = _upload(store, "good", {"v.tif": _tiff(volume, tmp_path)})
    runner = Runner(store.settings, "convert", store=store)
    assert runner.drain() == 2
    failed = store.job_doc(bad)
    assert failed["status"] == "error" and "garbage.tif" in failed["error"]
    with store.session() as s:
        from ml4paleo.jobs.tables import Job

        assert "Traceback (most recent call last)" in s.get(Job, bad).traceback
    doc = store.job_doc(good)
    assert doc["status"] == "converted" and doc["shape"] == [6, 20, 24] and doc["dtype"] == "uint16"
    lo, hi = doc["window"]
    assert volume.min() <= lo < hi <= volume.max()
    assert (store.paths(good).volume / "zarr.json").is_file()
    assert not runner.run_once()  # nothing left


def test_a_stopping_runner_hands_its_task_back(store, tmp_path, rng):
    job_id = _upload(store, "stop", {"v.tif": _tiff(rng.integers(0, 255, (5, 16, 16), dtype=np.uint8), tmp_path)})
    runner = Runner(store.settings, "convert", store=store, owner="stopping")
    runner.stop_event.set()  # as after SIGTERM: the first progress report stops the work
    assert runner.run_once()
    (task,) = store.tasks(job_id)
    assert task["status"] == "queued" and task["attempts"] == 0
    assert not store.paths(job_id).volume.exists()
    assert Runner(store.settings, "convert", store=store).run_once()
    assert store.job_doc(job_id)["status"] == "converted"


def test_run_loop_stops_on_request(store):
    runner = Runner(store.settings, "mesh", store=store)
    runner.stop_event.set()
    assert runner.run() == 0
    with pytest.raises(ValueError, match="runner kind"):
        Runner(store.settings, "paint", store=store)


def test_reasons_shown_to_users():
    from ml4paleo.errors import InputError

    assert reason_of(InputError("annotation 3.png has the wrong size")) == "annotation 3.png has the wrong size"
    assert reason_of(KeyError("x")).startswith("internal error: KeyError")


def test_a_running_task_stops_when_the_user_cancels(tmp_path, rng):
    store = JobStore(Settings.from_env({}, data=tmp_path, lease_seconds=0.3))
    job_id = _upload(store, "cancel", {"v.tif": _tiff(rng.integers(0, 999, (5, 16, 16), dtype=np.uint16), tmp_path)})
    first = store.claim("convert", "a runner that will die")
    assert store.cancel(job_id)["stage"] == "cancelling"
    import time

    time.sleep(0.4)  # its lease runs out; the next runner takes the task and sees the cancel at once
    assert Runner(store.settings, "convert", store=store).run_once()
    assert not store.finish(first, {})
    (task,) = store.tasks(job_id)
    assert task["status"] == "cancelled" and task["attempts"] == 2
    doc = store.job_doc(job_id)
    assert doc["status"] == "uploading" and doc["stage"] == "cancelled" and not store.paths(job_id).volume.exists()
