"""Run independent chunk tasks through Dask with progress: the scheduler belongs to the caller.

``scheduler`` is ``"synchronous"`` (or ``"sync"``), ``"threads"``, ``"processes"``, or a ``tcp://host:port`` address of
a Dask distributed scheduler; ``None`` takes the settings' value (:attr:`ml4paleo.settings.Settings.dask_scheduler`,
``ML4PALEO_DASK_SCHEDULER``) and otherwise picks processes (the work holds the GIL, e.g. zmesh's marching cubes)
when there are several tasks.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Callable, Iterator, Sequence

from ml4paleo.errors import InputError
from ml4paleo.progress import ProgressCallback, no_progress
from ml4paleo.settings import Settings

LOCAL_SCHEDULERS = ("synchronous", "sync", "threads", "processes")


def cores() -> int:
    """CPUs this process may use (the affinity mask, e.g. in a container), not the host's."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def settings_scheduler() -> str:
    """The scheduler of the settings (``ML4PALEO_DASK_SCHEDULER``); empty means local."""
    return Settings.env_value("dask_scheduler")


def resolve_scheduler(scheduler: str | None, n_tasks: int) -> str:
    """The scheduler to use: explicit, else the settings', else processes for several tasks."""
    choice = scheduler or settings_scheduler()
    if not choice:
        return "processes" if n_tasks > 1 and cores() > 1 else "synchronous"
    if choice in LOCAL_SCHEDULERS or "://" in choice:
        return choice
    raise InputError(f"scheduler must be one of {', '.join(LOCAL_SCHEDULERS)} or tcp://host:port; got {choice!r}")


def run_tasks(
    func: Callable[..., Any],
    args: Sequence[tuple],
    *,
    scheduler: str | None = None,
    progress: ProgressCallback | None = None,
    stage: str = "",
    pool: Any = None,
) -> list[Any]:
    """``[func(*a) for a in args]`` in parallel, results in order, ``progress`` after each task.

    ``pool``: with the ``"processes"`` scheduler, an executor from :func:`process_pool` to reuse
    across calls (a pipeline of several passes then starts its worker processes once).
    Exceptions (including :class:`ml4paleo.errors.Cancelled` raised by ``progress``) propagate.
    """
    # lazy: dask with its callbacks is 0.46 s of imports (measured), which export (it only
    # needs cores()) would pay; distributed below is 1.1 s more
    import dask
    from dask.callbacks import Callback

    progress = progress or no_progress
    if not args:
        return []
    which = resolve_scheduler(scheduler, len(args))
    tasks = [dask.delayed(func, pure=False)(*a) for a in args]
    total = len(tasks)
    if "://" in which:
        from distributed import Client, as_completed  # lazy: only for a tcp:// scheduler

        with Client(which, set_as_default=False) as client:
            futures = client.compute(tasks)
            try:
                for done, _ in enumerate(as_completed(futures, loop=client.loop), start=1):
                    progress(done, total, stage)
                return client.gather(futures)
            except BaseException:
                client.cancel(futures)
                raise
    keys = {t.key for t in tasks}
    finished = [0]

    class _Progress(Callback):
        def _posttask(self, key, result, dsk, state, worker_id):  # noqa: D401 - dask hook
            if key in keys:
                finished[0] += 1
                progress(finished[0], total, stage)

    with _Progress():
        extra = {"pool": pool} if pool is not None and which == "processes" else {}
        results = dask.compute(*tasks, scheduler=which, num_workers=cores(), **extra)
    return list(results)


@contextlib.contextmanager
def process_pool(scheduler: str | None, n_tasks: int) -> Iterator[Any]:
    """A process pool to pass to several :func:`run_tasks` calls when ``scheduler`` resolves
    to local processes (else ``None``); shut down on exit."""
    if resolve_scheduler(scheduler, n_tasks) != "processes":
        yield None
        return
    from concurrent.futures import ProcessPoolExecutor

    from dask.multiprocessing import get_context

    pool = ProcessPoolExecutor(cores(), mp_context=get_context())
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
