"""How often a batch process's cyclic garbage collector runs. Standard library only.

Python collects its youngest generation every 700 new container objects and the whole heap
every hundred or so of those: while scikit-learn, scipy, zarr and numba are imported (~1 million
objects, nearly all kept for the process's life) that is ~450 young and 3 full collections in
``ml4paleo train`` of the small scan, 0.20-0.23 CPU s, and 0.11 in ``ml4paleo segment``; they
found ~2 300 and ~1 500 cyclic objects to free. A process that imports, works for seconds and
exits (train, segment, the background validation) collects far less often instead: the cycles
it makes are still freed, each collection scans a longer young generation, and the long-lived
imports are not scanned again and again (docs/benchmarks.md, "Small scan, twelfth stop")."""

from __future__ import annotations

import gc

__all__ = ["BATCH_THRESHOLDS", "collect_less"]

BATCH_THRESHOLDS = (50_000, 20, 20)
"""``gc.set_threshold`` of a batch process: the young generation every 50 000 new containers
(Python's default 700), the older ones every 20 collections of the one below (default 10, 10).
Measured on the small scan (CPU s spent collecting, by ``gc.callbacks``, set from the process's
start): train 0.23 -> 0.08, segment 0.11 -> 0.04; 10 000 left 0.12 / 0.06, 100 000 0.10 / 0.06.
Set where the commands set it (after the command line's own imports): 0.10 and 0.06-0.08."""


def collect_less() -> None:
    """Collect at ``BATCH_THRESHOLDS`` in this process: for the commands that run once and exit,
    not for the long-lived server, whose garbage would wait as long."""
    gc.set_threshold(*BATCH_THRESHOLDS)
