"""The runner loop in-process (``run_once``) on real uploads and the real convert pipeline:
a bad job becomes an error with reason and traceback and the runner goes on; a stopping runner
hands its task back."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from ml4paleo.compute.features import compiled_pass_loaded
from ml4paleo.errors import LeaseLost
from ml4paleo.jobs import runner as runner_module
from ml4paleo.jobs.runner import Runner, reason_of
from ml4paleo.jobs.statuses import Lease, TaskKind
from ml4paleo.jobs.store import Claim, JobStore
from ml4paleo.settings import Settings


@pytest.fixture
def store(tmp_path):
    store = JobStore(Settings.from_env({}, data=tmp_path, lease_seconds=5, poll_seconds=0.05))
    yield store
    store.close()


def _upload(store: JobStore, name: str, files: dict[str, bytes]) -> str:
    job_id = store.jobs.create_job(name)["job_id"]
    for filename, payload in files.items():
        target = store.paths(job_id).upload_file(filename)
        target.parent.mkdir(parents=True, exist_ok=True)
        store.uploads.begin_chunk(job_id, filename, 0, len(payload), len(payload))
        target.write_bytes(payload)
        store.uploads.end_chunk(job_id, filename, 0, len(payload))
    store.uploads.upload_complete(job_id)
    return job_id


def _tiff(volume: np.ndarray, tmp_path) -> bytes:
    path = tmp_path / "v.tif"
    tifffile.imwrite(path, volume)
    return path.read_bytes()


def test_a_bad_job_becomes_an_error_and_the_runner_goes_on(store, tmp_path, rng):
    bad = _upload(store, "garbage", {"scan/garbage.tif": rng.bytes(1000)})
    volume = rng.integers(100, 5000, (6, 20, 24), dtype=np.uint16)
    good = _upload(store, "good", {"v.tif": _tiff(volume, tmp_path)})
    runner = Runner(store.settings, "convert", store=store.claims)
    assert runner.drain() == 2
    failed = store.jobs.job_doc(bad)
    assert failed["status"] == "error" and "garbage.tif" in failed["error"]
    with store.session() as s:
        from ml4paleo.jobs.tables import Job

        assert "Traceback (most recent call last)" in s.get(Job, bad).traceback
    doc = store.jobs.job_doc(good)
    assert doc["status"] == "converted" and doc["shape"] == [6, 20, 24] and doc["dtype"] == "uint16"
    lo, hi = doc["window"]
    assert volume.min() <= lo < hi <= volume.max()
    assert (store.paths(good).volume / "zarr.json").is_file()
    assert not runner.run_once()  # nothing left


def test_a_stopping_runner_hands_its_task_back(store, tmp_path, rng):
    job_id = _upload(store, "stop", {"v.tif": _tiff(rng.integers(0, 255, (5, 16, 16), dtype=np.uint8), tmp_path)})
    runner = Runner(store.settings, "convert", store=store.claims, owner="stopping")
    runner.stop_event.set()  # as after SIGTERM: the first progress report stops the work
    assert runner.run_once()
    (task,) = store.queue.tasks(job_id)
    assert task["status"] == "queued" and task["attempts"] == 0
    assert not store.paths(job_id).volume.exists()
    assert Runner(store.settings, "convert", store=store.claims).run_once()
    assert store.jobs.job_doc(job_id)["status"] == "converted"


def test_run_loop_stops_on_request(store):
    runner = Runner(store.settings, "mesh", store=store.claims)
    runner.stop_event.set()
    assert runner.run() == 0
    with pytest.raises(ValueError, match="runner kind"):
        Runner(store.settings, "paint", store=store.claims)


def test_reasons_shown_to_users():
    from ml4paleo.errors import InputError

    assert reason_of(InputError("annotation 3.png has the wrong size")) == "annotation 3.png has the wrong size"
    assert reason_of(KeyError("x")).startswith("internal error: KeyError")


def test_a_running_task_stops_when_the_user_cancels(tmp_path, rng):
    store = JobStore(Settings.from_env({}, data=tmp_path, lease_seconds=0.3))
    job_id = _upload(store, "cancel", {"v.tif": _tiff(rng.integers(0, 999, (5, 16, 16), dtype=np.uint16), tmp_path)})
    first = store.claims.claim("convert", "a runner that will die")
    assert store.queue.cancel(job_id)["stage"] == "cancelling"
    import time

    time.sleep(0.4)  # its lease runs out; the next runner takes the task and sees the cancel at once
    assert Runner(store.settings, "convert", store=store.claims).run_once()
    assert not store.claims.finish(first, {})
    (task,) = store.queue.tasks(job_id)
    assert task["status"] == "cancelled" and task["attempts"] == 2
    doc = store.jobs.job_doc(job_id)
    assert doc["status"] == "uploading" and doc["stage"] == "cancelled" and not store.paths(job_id).volume.exists()


class FakeQueue:
    """The runner's whole view of the store (the ``TaskQueue`` protocol), in memory."""

    def __init__(self, claim: Claim, *, keep_claim: bool = True) -> None:
        self.pending, self.keep_claim, self.calls = [claim], keep_claim, []

    def claim(self, queue, owner):
        return self.pending.pop() if self.pending else None

    def heartbeat(self, claim):
        return Lease.OK

    def report_progress(self, claim, fraction, stage):
        self.calls.append(("progress", fraction, stage))
        return True

    def model_trained(self, claim, info):
        self.calls.append(("model_trained", info))
        return self.keep_claim

    def finish(self, claim, result):
        self.calls.append(("finish", result))
        return True

    def fail(self, claim, reason, traceback=None):
        self.calls.append(("fail", reason))
        return True

    def release(self, claim):
        self.calls.append(("release",))
        return True

    def cancelled(self, claim):
        self.calls.append(("cancelled",))
        return True


JOB_ID = "0b5f1f9e-7a39-4c43-9d8e-3c1a35c1e2a4"


def _claim(kind: TaskKind) -> Claim:
    return Claim(task_id=7, job_id=JOB_ID, kind=kind, token="t", attempts=1, model_id="0123456789ab",
                 seg_id="ba9876543210", params={"formats": ["stl"]}, voxel_size=(2.0, 1.0, 1.0), unit="micrometer",
                 classes=("background", "shell"))


def test_a_task_gets_its_context_not_the_store(tmp_path, monkeypatch):
    seen = []

    def task(ctx):
        seen.append(ctx)
        ctx.check()
        ctx.progress(1, 2, "half")
        return {"done": True}

    monkeypatch.setitem(runner_module.TASKS, TaskKind.TRAIN, task)
    queue = FakeQueue(_claim(TaskKind.TRAIN))
    settings = Settings.from_env({}, data=tmp_path)
    assert Runner(settings, "segment", store=queue).drain() == 1
    (ctx,) = seen
    assert (ctx.job_id, ctx.task_id, ctx.model_id, ctx.seg_id) == (JOB_ID, 7, "0123456789ab", "ba9876543210")
    assert ctx.paths.root == settings.jobs_dir / JOB_ID and ctx.params == {"formats": ["stl"]}
    assert (ctx.voxel_size, ctx.unit, ctx.classes) == ((2.0, 1.0, 1.0), "micrometer", ("background", "shell"))
    assert not hasattr(ctx, "store") and not hasattr(ctx, "claim")
    assert queue.calls == [("progress", 0.5, "half"), ("finish", {"done": True})]


def test_a_refused_step_drops_the_task_without_writing(tmp_path, monkeypatch):
    def task(ctx):
        ctx.model_trained({"n_slices": 1})
        raise AssertionError("not reached: another runner owns the task")

    monkeypatch.setitem(runner_module.TASKS, TaskKind.START, task)
    queue = FakeQueue(_claim(TaskKind.START), keep_claim=False)
    assert Runner(Settings.from_env({}, data=tmp_path), "segment", store=queue).run_once()
    assert queue.calls == [("model_trained", {"n_slices": 1})]  # no finish, fail, release or cancel
    assert issubclass(LeaseLost, runner_module.Cancelled)



def test_a_train_runner_warms_up_before_its_first_claim_and_survives_a_failed_warm_up(store, monkeypatch):
    """The train runner loads its compiled kernels before it claims (the first overlay a user
    waits for does not pay them); a warm-up that fails is logged and the runner goes on."""
    monkeypatch.setattr(runner_module, "WARM_UPS", {"train": ("ml4paleo.compute.features:no_such_function",
                                                              "ml4paleo.compute.features:load_compiled_pass")})
    assert Runner(store.settings, "train", store=store.claims).run(max_tasks=0) == 0
    assert compiled_pass_loaded()


def test_a_queued_task_rings_its_queues_bell_once_committed(tmp_path, monkeypatch):
    """Queueing rings the bell of the task's queue after the commit (an idle runner then asks the
    database at once instead of at its next poll); a transaction rolled back rings nothing."""
    import threading

    from ml4paleo.jobs.bells import Bell

    store = JobStore(Settings.from_env({}, data=tmp_path, poll_seconds=600))
    monkeypatch.setitem(runner_module.BELL_SECONDS, "convert", 0.05)  # as the train runner looks at its bell
    runner = Runner(store.settings, "convert", store=store.claims)
    try:
        convert, segment = Bell(tmp_path, "convert"), Bell(tmp_path, "segment")
        assert not convert.rung()
        with pytest.raises(RuntimeError):
            with store.session() as s:
                from ml4paleo.jobs.store._base import queued_on

                queued_on(s, "convert")
                raise RuntimeError("rolled back")
        assert not convert.rung()
        _upload(store, "bell", {"a.tif": b"x"})  # queues the conversion
        assert convert.rung() and not segment.rung() and not convert.rung()
        idle = threading.Thread(target=runner._idle, args=(Bell(tmp_path, "convert"),))
        idle.start()
        store.jobs.create_job("another")  # no task queued: the runner stays idle
        idle.join(0.3)
        assert idle.is_alive()
        _upload(store, "rings", {"a.tif": b"x"})
        idle.join(60)  # woken by the bell, not by the 600 s poll
        assert not idle.is_alive()
    finally:
        runner.stop_event.set()
        store.close()
