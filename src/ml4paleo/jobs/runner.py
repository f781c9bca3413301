"""The runner loop: claim a task, work on it while a heartbeat renews the lease, record the result.

A runner never dies of one bad job: any exception of a task becomes the job's error (reason
and traceback in the store) and the loop goes on. ``run_once()`` works on at most one task and
returns, so tests drive a runner in-process; ``run()`` loops until stopped. On a stop request
(SIGTERM from ``ml4paleo serve``) the current task is handed back to the queue unharmed.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import threading
import time
import traceback

from ml4paleo.errors import Cancelled, LeaseLost, Ml4PaleoError, RunnerStopping
from ml4paleo.jobs.bells import Bell
from ml4paleo.jobs.paths import JobPaths
from ml4paleo.jobs.statuses import QUEUES, Lease, RunnerKind
from ml4paleo.jobs.store import Claim, JobStore, TaskQueue
from ml4paleo.jobs.tasks import TASKS, TaskContext
from ml4paleo.settings import Settings

log = logging.getLogger("ml4paleo.runner")
PROGRESS_INTERVAL = 0.5
"""Seconds between progress writes to the store (a pipeline may report far more often)."""
HEARTBEAT_MAX = 5.0
"""Longest interval between lease renewals, which is also how soon a cancel request is seen."""
BELL_SECONDS: dict[RunnerKind, float] = {RunnerKind.TRAIN: 0.05}
"""How often an idle runner of these kinds looks at its queue's bell (:mod:`ml4paleo.jobs.bells`):
it asks the database for work as soon as the bell rang, else every ``poll_seconds``. A draft is
awaited by a user who is painting (the 2 s from stroke to overlay), where a second of polling
would be half of it, while asking the database ten times a second cost an idle train runner
~2.5 % of a core. The other kinds wait ``poll_seconds`` (a second of a segmentation's or an
export's start is nothing to its user, and each wake-up costs CPU on a loaded machine)."""

WARM_IMPORTS: dict[RunnerKind, tuple[str, ...]] = {
    RunnerKind.TRAIN: ("ml4paleo.pipelines.draft", "ml4paleo.pipelines.view_preview", "sklearn.ensemble")}
"""Pipelines a runner imports before its first claim, where the first task's wait matters more
than the runner's start-up (the draft's imports take 1-2 s; scikit-learn's forest, which a draft
fits, another 1.5 s of the first draft's CPU at 1024^2, bench/fullsize.py --web)."""
WARM_UPS: dict[RunnerKind, tuple[str, ...]] = {
    RunnerKind.TRAIN: ("ml4paleo.compute.features:load_compiled_pass", "ml4paleo.models._packed_warm:warm_up")}
"""Functions (``module:name``) a runner calls before its first claim, after its imports: the
train runner loads numba's Gaussian pass and packed forest, which halve a preview's CPU seconds
(bench/fullsize.py --web) but cost ~1 s to load (~7 s to compile on a fresh install), paid here
once instead of by the first overlay a user waits for."""

BATCH_NICE: dict[RunnerKind, int] = {RunnerKind.CONVERT: 5, RunnerKind.SEGMENT: 5, RunnerKind.MESH: 5}
"""Niceness of the runners whose work nobody watches stroke by stroke (conversion, training and
segmentation, meshes and exports): on the 2-core machine the train runner's drafts and previews
(a painting user waits on each) and the web server go first: a conversion beside the train
runner's warm-up delayed the first draft (docs/decisions.md, docs/benchmarks.md). Their children
(segmentation workers, the validation) inherit it."""


def lower_priority(kind: str) -> None:
    """Nice this process by :data:`BATCH_NICE` for a runner of ``kind`` (nothing for the others);
    called once by ``ml4paleo runner`` before its loop."""
    nice = BATCH_NICE.get(RunnerKind(kind), 0)
    if nice:
        try:
            os.nice(nice)
        except (OSError, AttributeError):  # no os.nice (Windows) or not allowed: the cores shared as before
            log.warning("could not lower the priority of the %s runner", kind)


def reason_of(exc: BaseException) -> str:
    """The message shown to the user: ours as written, others with their type."""
    if isinstance(exc, Ml4PaleoError):
        return str(exc) or type(exc).__name__
    return f"internal error: {type(exc).__name__}: {exc}"[:2000]


class _Heartbeat(threading.Thread):
    """Renews the lease every third of its length; notes a cancel request or a lost lease."""

    def __init__(self, store: TaskQueue, claim: Claim, interval: float) -> None:
        super().__init__(name=f"lease-{claim.task_id}", daemon=True)
        self.store, self.claim, self.interval = store, claim, interval
        self.state = Lease.OK
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.interval):
            try:
                self.state = self.store.heartbeat(self.claim)
            except Exception:  # a database hiccup: try again at the next beat
                log.exception("lease renewal of task %s failed", self.claim.task_id)
            if self.state == Lease.LOST:
                return

    def stop(self) -> None:
        self._done.set()


class Runner:
    """Works on the tasks of one queue: ``convert``, ``segment`` (train, start), ``mesh`` (mesh,
    export) or ``train`` (drafts)."""

    def __init__(self, settings: Settings, kind: str, *, store: TaskQueue | None = None,
                 owner: str | None = None) -> None:
        if kind not in QUEUES:
            raise ValueError(f"runner kind must be one of {', '.join(QUEUES)}; got {kind!r}")
        self.settings, self.kind = settings, kind
        self.store: TaskQueue = store if store is not None else JobStore(settings).claims
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{kind}"
        self.stop_event = threading.Event()

    def run_once(self) -> bool:
        """Claim one task and work on it to its end; False when the queue had nothing."""
        claim = self.store.claim(self.kind, self.owner)
        if claim is None:
            return False
        log.info("task %s (%s) of job %s claimed, attempt %s", claim.task_id, claim.kind, claim.job_id, claim.attempts)
        beat = _Heartbeat(self.store, claim, min(max(self.settings.lease_seconds / 3.0, 0.05), HEARTBEAT_MAX))
        beat.state = self.store.heartbeat(claim)  # a cancel asked for before the claim counts at once
        beat.start()
        last = [0.0]

        def check() -> None:
            if beat.state == Lease.LOST:
                raise LeaseLost(f"task {claim.task_id} was taken over by another runner")
            if beat.state == Lease.CANCEL:
                raise Cancelled("cancelled by the user")
            if self.stop_event.is_set():
                raise RunnerStopping("the runner is stopping")

        def progress(done: float, total: float, stage: str = "") -> None:
            check()
            now = time.monotonic()
            if now - last[0] >= PROGRESS_INTERVAL or (total and done >= total):
                last[0] = now
                try:
                    self.store.report_progress(claim, (done / total) if total else 1.0, stage)
                except Exception:  # progress is cosmetic: a database hiccup must not fail the task
                    log.exception("could not record progress of task %s", claim.task_id)

        def model_trained(info: dict) -> None:
            if not self.store.model_trained(claim, info):
                raise LeaseLost(f"task {claim.task_id} was taken over by another runner")

        try:
            ctx = TaskContext(
                settings=self.settings, paths=JobPaths.of(self.settings.jobs_dir, claim.job_id), job_id=claim.job_id,
                task_id=claim.task_id, model_id=claim.model_id, seg_id=claim.seg_id, params=claim.params,
                model_ready=claim.model_ready, voxel_size=claim.voxel_size, unit=claim.unit, classes=claim.classes,
                progress=progress, check=check, model_trained=model_trained)
            result = TASKS[claim.kind](ctx)
            if not self.store.finish(claim, result):
                log.warning("task %s finished but its claim was lost; result not recorded", claim.task_id)
        except LeaseLost:
            log.warning("task %s: lease lost to another runner; dropping it", claim.task_id)
        except RunnerStopping:
            self.store.release(claim)
            log.info("task %s handed back to the queue (runner stopping)", claim.task_id)
        except Cancelled:
            self.store.cancelled(claim)
            log.info("task %s cancelled", claim.task_id)
        except Exception as exc:
            log.error("task %s (%s) of job %s failed: %s", claim.task_id, claim.kind, claim.job_id, reason_of(exc))
            try:
                self.store.fail(claim, reason_of(exc), traceback.format_exc())
            except Exception:
                log.exception("could not record the failure of task %s", claim.task_id)
        finally:
            beat.stop()
        return True

    def run(self, *, max_tasks: int | None = None) -> int:
        """Work until :attr:`stop_event` is set (or ``max_tasks`` were done); returns the count."""
        done = 0
        for module in WARM_IMPORTS.get(RunnerKind(self.kind), ()):
            importlib.import_module(module)
        for target in WARM_UPS.get(RunnerKind(self.kind), ()):
            module, _, name = target.partition(":")
            try:
                getattr(importlib.import_module(module), name)()
            except Exception:  # a warm-up is an optimisation: the tasks take the uncompiled paths
                log.exception("runner %s: warm-up %s failed", self.owner, target)
        bell = Bell(self.settings.data, self.kind)
        log.info("runner %s waiting for %s tasks", self.owner, self.kind)
        while not self.stop_event.is_set() and (max_tasks is None or done < max_tasks):
            try:
                worked = self.run_once()
            except Exception:  # the store itself failed (database unreachable): wait, retry
                log.exception("runner %s: could not claim a task", self.owner)
                worked = False
            if worked:
                done += 1
            else:
                self._idle(bell)
        return done

    def _idle(self, bell: Bell) -> None:
        """Wait ``poll_seconds``, or less: until the queue's bell rings or the runner is stopped."""
        end = time.monotonic() + self.settings.poll_seconds
        step = BELL_SECONDS.get(RunnerKind(self.kind), self.settings.poll_seconds)
        while not self.stop_event.wait(min(step, max(end - time.monotonic(), 0.0))):
            if bell.rung() or time.monotonic() >= end:
                return

    def drain(self) -> int:
        """Run tasks until the queue is empty (for tests); returns how many ran."""
        done = 0
        while self.run_once():
            done += 1
        return done
