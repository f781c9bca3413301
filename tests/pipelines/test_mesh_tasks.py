"""run_tasks: every scheduler gives the same results in order, with progress, and cancels."""

from __future__ import annotations

import pytest

from ml4paleo.errors import Cancelled, InputError
from ml4paleo.pipelines._tasks import resolve_scheduler, run_tasks, scheduler_setting
from ml4paleo.settings import Settings


def square(x: int) -> int:
    return x * x


def fail_on_three(x: int) -> int:
    if x == 3:
        raise InputError("three")
    return x


@pytest.mark.parametrize("scheduler", ["synchronous", "threads", "processes"])
def test_local_schedulers(scheduler):
    seen = []
    out = run_tasks(square, [(i,) for i in range(6)], scheduler=scheduler, progress=lambda d, t, s="": seen.append(d))
    assert out == [i * i for i in range(6)] and seen == list(range(1, 7))  # one report per task, not per batch


@pytest.mark.parametrize("scheduler", ["threads", "processes"])
def test_a_failing_task_raises_its_own_error(scheduler):
    with pytest.raises(InputError, match="three"):
        run_tasks(fail_on_three, [(i,) for i in range(6)], scheduler=scheduler)


def test_the_caller_picks_the_local_default(monkeypatch):
    monkeypatch.delenv("ML4PALEO_DASK_SCHEDULER", raising=False)
    monkeypatch.setattr("ml4paleo.pipelines._tasks.cores", lambda: 2)
    assert resolve_scheduler(None, 4) == "processes" and resolve_scheduler(None, 4, local="threads") == "threads"
    assert resolve_scheduler(None, 1, local="threads") == "synchronous"
    assert resolve_scheduler("processes", 4, local="threads") == "processes"
    assert resolve_scheduler("local", 4, local="threads") == "threads"


def test_distributed_scheduler_address():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        seen = []
        out = run_tasks(square, [(i,) for i in range(4)], scheduler=cluster.scheduler_address,
                        progress=lambda d, t, s="": seen.append(d))
    assert out == [0, 1, 4, 9] and seen == [1, 2, 3, 4]


def test_the_settings_are_read_once_at_the_top(monkeypatch):
    """The public pipelines read the setting in scheduler_setting; below it nothing reads the
    environment again, so a job that passes its server's settings runs where they say."""
    monkeypatch.delenv("ML4PALEO_DASK_SCHEDULER", raising=False)
    assert scheduler_setting(None) == "local" and resolve_scheduler(None, 1) == "synchronous"
    monkeypatch.setenv("ML4PALEO_DASK_SCHEDULER", "threads")
    assert scheduler_setting(None) == "threads" and scheduler_setting("local") == "local"
    monkeypatch.setattr("ml4paleo.pipelines._tasks.cores", lambda: 2)
    assert resolve_scheduler("local", 5) == "processes"  # the environment is not read here
    assert Settings(dask_scheduler="").scheduler == "local"
    assert Settings(dask_scheduler="tcp://h:8786").scheduler == "tcp://h:8786"
    with pytest.raises(InputError, match="scheduler"):
        scheduler_setting("gpu")


def test_default_env_and_errors(monkeypatch):
    assert run_tasks(square, []) == []

    def cancel(done, total, stage=""):
        raise Cancelled("stop")

    for scheduler in ("synchronous", "threads"):
        with pytest.raises(Cancelled):
            run_tasks(square, [(1,), (2,)], scheduler=scheduler, progress=cancel)
