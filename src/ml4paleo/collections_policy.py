"""How often a batch process's cyclic garbage collector runs. Standard library only.

Python collects its youngest generation every 700 new container objects and the whole heap
every hundred or so of those: while scikit-learn, scipy, zarr and numba are imported (about a
million objects, nearly all kept for the process's life) that means hundreds of collections that
find little to free, a visible share of a small scan's ``train`` and ``segment``. A process that imports, works for seconds and
exits (train, segment, the background validation) collects far less often instead: the cycles
it makes are still freed, each collection scans a longer young generation, and the long-lived
imports are not scanned again and again (docs/benchmarks.md, "Small scan, twelfth stop")."""

from __future__ import annotations

import gc

__all__ = ["BATCH_THRESHOLDS", "collect_less"]

BATCH_THRESHOLDS = (50_000, 20, 20)
"""``gc.set_threshold`` of a batch process: the young generation every 50 000 new containers
(Python's default 700), the older ones every 20 collections of the one below (default 10, 10);
10 000 and 100 000 were measured beside it (docs/benchmarks.md, "Small scan, twelfth stop")."""


def collect_less() -> None:
    """Collect at ``BATCH_THRESHOLDS`` in this process: for the commands that run once and exit,
    not for the long-lived server, whose garbage would wait as long."""
    gc.set_threshold(*BATCH_THRESHOLDS)
