"""The packed forest's compiled kernel, loaded ahead of the first request in a long-lived process.

Why: loading the kernel (numba's import and the machine code from its on-disk cache) costs
about a second, once per process. A short-lived process that only previews must not pay it, so
small inputs (a preview's slice) stay with scikit-learn until the kernel is loaded; a runner or
server, which lives for many previews, loads it at start in a background thread
(:func:`warm_up_in_background`), after which every input takes the packed forest: the same
probabilities bit for bit, ~0.3 s of scikit-learn per 512^2 slice saved.
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from ml4paleo.models._packed import PackedForest

__all__ = ["kernel_loaded", "mark_loaded", "warm_up", "warm_up_in_background"]

log = logging.getLogger(__name__)
_LOADED = threading.Event()


def kernel_loaded() -> bool:
    """Whether the kernel has run in this process (so using it for small inputs costs nothing)."""
    return _LOADED.is_set()


def mark_loaded() -> None:
    """Record that the kernel has run (a segmentation block's prediction loads it too)."""
    _LOADED.set()


def warm_up() -> None:
    """Run both of the kernel's entry points (rows, and feature-major columns) on a one-leaf
    forest with the argument types of real ones, so their machine code is loaded (or compiled
    and cached on a fresh install) before a request needs it."""
    forest = PackedForest(np.zeros(1, np.uint32), 1, np.full(1, np.inf, np.float32), np.ones((1, 2)),
                          np.zeros(1, np.uint32), np.ones(1, np.uint32), 2)
    rows = np.zeros((16, 2), np.float32)
    forest.predict_proba(rows)
    forest.predict_proba(np.ascontiguousarray(rows.T).T)
    mark_loaded()


def warm_up_in_background() -> threading.Thread:
    """:func:`warm_up` in a daemon thread, so a process's first request is not held up by it
    (a failure is logged: requests then keep scikit-learn for small inputs)."""
    def run() -> None:
        try:
            warm_up()
        except Exception:
            log.exception("could not load the packed forest's kernel; previews use scikit-learn")

    thread = threading.Thread(target=run, name="packed-forest-warm-up", daemon=True)
    thread.start()
    return thread
