"""Work split over threads where its kernels release the GIL (filters, numba trees), or done in
this thread when there is one part or one worker: a pool of one only adds a thread switch to a
small slice's preview. Standard library only: every layer uses it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, TypeVar

__all__ = ["map_on_threads"]

Item = TypeVar("Item")
Result = TypeVar("Result")


def map_on_threads(work: Callable[[Item], Result], items: Iterable[Item], workers: int,
                   name: str = "ml4paleo") -> list[Result]:
    """``[work(item) for item in items]``, on up to ``workers`` threads named ``name``, in order;
    the first exception raised is raised here."""
    items = list(items)
    if int(workers) <= 1 or len(items) <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(int(workers), len(items)), thread_name_prefix=name) as pool:
        return list(pool.map(work, items))
