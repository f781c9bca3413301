"""One file per queue whose change tells an idle runner that a task was queued there.

Why: a runner asking the database for work ten times a second (the train runner: a painting user
awaits each draft) spent ~5 % of a core doing nothing, beside every segmentation (measured with
``ml4paleo serve`` idle, docs/benchmarks.md); the ``stat`` of a file costs microseconds. The
database stays the truth: a bell only says when to ask early, and a runner still asks every
``poll_seconds`` (a runner on another host whose file system caches the file's times, a task
handed back or whose lease expired).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

__all__ = ["Bell", "bell_path", "ring"]

BELLS_DIR = "queues"
"""Folder of the bells, in the data folder (shared by every host of a deployment)."""


def bell_path(data: str | Path, queue: str) -> Path:
    """The bell of ``queue`` in data folder ``data``."""
    return Path(data) / BELLS_DIR / f"{queue}.bell"


def ring(data: str | Path, queues: Iterable[str]) -> None:
    """Tell the runners of ``queues`` that a task was queued (a failure is harmless: they poll)."""
    for queue in queues:
        path = bell_path(data, queue)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
            os.utime(path)  # a new time even where the file existed
        except OSError:
            pass


class Bell:
    """A runner's view of its queue's bell: :meth:`rung` says whether it changed since last asked."""

    def __init__(self, data: str | Path, queue: str) -> None:
        self.path = bell_path(data, queue)
        self._seen = self._stamp()

    def _stamp(self) -> int | None:
        try:
            return os.stat(self.path).st_mtime_ns
        except OSError:
            return None

    def rung(self) -> bool:
        stamp = self._stamp()
        changed, self._seen = stamp != self._seen, stamp
        return changed
