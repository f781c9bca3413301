"""Run independent chunk tasks in parallel with progress: the scheduler belongs to the caller.

``scheduler`` is ``"synchronous"`` (or ``"sync"``), ``"threads"``, ``"processes"``, a ``tcp://host:port`` address of
a Dask distributed scheduler, or ``"local"``: this machine, the caller's ``local`` choice when there are several
tasks (processes where the work holds the GIL, zmesh's marching cubes; threads where it does not, scipy.ndimage
filters and scikit-learn's tree prediction). A public pipeline reads the settings once, in :func:`scheduler_setting`
(``None`` there: :attr:`ml4paleo.settings.Settings.dask_scheduler`, else ``"local"``), and passes the answer down;
nothing below it reads the environment again.

The local schedulers are :mod:`concurrent.futures` pools, one task per submission: Dask's local process scheduler
hands out tasks in batches of 6 (its ``chunksize``), so 12 blocks on 2 workers were 2 batches, the first progress
came after half the work (63 s of 71 s, measured on the 8.7 M-voxel scan of ``bench/small_scan.py``), and a slow
batch could not be balanced; and ``import dask`` is 0.5 s that a small job paid before its first block. Only the
``tcp://`` path imports Dask (distributed).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from typing import Any, Callable, Iterator, Sequence

from ml4paleo.errors import InputError
from ml4paleo.progress import ProgressCallback, no_progress
from ml4paleo.settings import LOCAL_SCHEDULER as LOCAL, Settings

LOCAL_SCHEDULERS = ("synchronous", "sync", "threads", "processes", LOCAL)


def cores() -> int:
    """CPUs this process may use (the affinity mask, e.g. in a container), not the host's."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def scheduler_setting(scheduler: str | None) -> str:
    """The scheduler a public pipeline runs on: the caller's, else the settings'
    (``ML4PALEO_DASK_SCHEDULER``), else :data:`LOCAL`; checked here, once."""
    choice = scheduler or Settings.env_value("dask_scheduler") or LOCAL
    if choice in LOCAL_SCHEDULERS or "://" in choice:
        return choice
    raise InputError(f"scheduler must be one of {', '.join(LOCAL_SCHEDULERS)} or tcp://host:port; got {choice!r}")


def resolve_scheduler(scheduler: str | None, n_tasks: int, local: str = "processes") -> str:
    """The concrete scheduler for ``n_tasks`` tasks: :data:`LOCAL` (or ``None``) becomes ``local``
    (``processes`` or ``threads``) for several tasks on several cores, else ``synchronous``."""
    if scheduler in (None, LOCAL):
        return local if n_tasks > 1 and cores() > 1 else "synchronous"
    return scheduler


def _spawned_pool(workers: int) -> ProcessPoolExecutor:
    # spawn, not fork: the parent may hold threads (tqdm, estimator pools) that a fork would copy mid-lock
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


def _run_distributed(func, args, address: str, progress: ProgressCallback, stage: str) -> list[Any]:
    import dask  # lazy: only for a tcp:// scheduler (dask 0.5 s, distributed 1.1 s more)
    from distributed import Client, as_completed as dask_completed

    tasks = [dask.delayed(func, pure=False)(*a) for a in args]
    with Client(address, set_as_default=False) as client:
        futures = client.compute(tasks)
        try:
            for done, _ in enumerate(dask_completed(futures, loop=client.loop), start=1):
                progress(done, len(tasks), stage)
            return client.gather(futures)
        except BaseException:
            client.cancel(futures)
            raise


def _run_pool(func, args, executor: Executor, progress: ProgressCallback, stage: str) -> list[Any]:
    futures: list[Future] = [executor.submit(func, *a) for a in args]
    try:
        for done, future in enumerate(as_completed(futures), start=1):
            future.result()  # the first failure propagates at once
            progress(done, len(futures), stage)
    except BaseException:
        for f in futures:
            f.cancel()  # queued tasks never start; running ones finish their block
        raise
    return [f.result() for f in futures]


def run_tasks(
    func: Callable[..., Any],
    args: Sequence[tuple],
    *,
    scheduler: str | None = None,
    progress: ProgressCallback | None = None,
    stage: str = "",
    pool: Any = None,
    workers: int | None = None,
) -> list[Any]:
    """``[func(*a) for a in args]`` in parallel, results in order, ``progress`` after each task.

    ``pool``: with the ``"processes"`` scheduler, an executor from :func:`process_pool` to reuse
    across calls (a pipeline of several passes then starts its worker processes once).
    ``workers``: at most this many local tasks at once (default: one per core), where each
    task's memory, not the cores, sets the bound.
    Exceptions (including :class:`ml4paleo.errors.Cancelled` raised by ``progress``) propagate.
    """
    progress = progress or no_progress
    if not args:
        return []
    which = resolve_scheduler(scheduler, len(args))
    if "://" in which:
        return _run_distributed(func, args, which, progress, stage)
    if which in ("synchronous", "sync"):
        out = []
        for done, a in enumerate(args, start=1):
            out.append(func(*a))
            progress(done, len(args), stage)
        return out
    workers = min(workers or cores(), cores(), len(args))
    if which == "processes" and pool is not None:
        return _run_pool(func, args, pool, progress, stage)
    with (ThreadPoolExecutor(workers) if which == "threads" else _spawned_pool(workers)) as executor:
        try:
            return _run_pool(func, args, executor, progress, stage)
        except BaseException:
            executor.shutdown(wait=True, cancel_futures=True)
            raise


@contextlib.contextmanager
def process_pool(scheduler: str | None, n_tasks: int) -> Iterator[Any]:
    """A process pool to pass to several :func:`run_tasks` calls when ``scheduler`` resolves
    to local processes (else ``None``); shut down on exit."""
    if resolve_scheduler(scheduler, n_tasks) != "processes":
        yield None
        return
    pool = _spawned_pool(cores())
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
