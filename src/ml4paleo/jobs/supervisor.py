"""Runner child processes for ``ml4paleo serve``: start them, restart one that dies, stop all.

Each runner is ``python -m ml4paleo.cli runner <kind>`` with the parent's settings passed as
``ML4PALEO_*`` variables, so the web server and its runners always agree on the data folder
and database.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from ml4paleo.jobs.statuses import QUEUES
from ml4paleo.settings import Settings

log = logging.getLogger("ml4paleo.serve")
RESTART_BACKOFF_MAX = 30.0
"""Longest wait before restarting a runner that keeps dying at once (e.g. a broken install)."""


@dataclass
class _Slot:
    kind: str
    process: subprocess.Popen | None = None
    started: float = 0.0
    backoff: float = 0.5
    restarts: int = 0
    next_start: float = field(default=0.0)


class Supervisor:
    """Keeps ``counts[kind]`` runners of each kind alive until :meth:`stop`."""

    def __init__(self, settings: Settings, counts: dict[str, int] | None = None, *, check_every: float = 0.5) -> None:
        counts = counts if counts is not None else {kind: 1 for kind in QUEUES}
        unknown = set(counts) - set(QUEUES)
        if unknown:
            raise ValueError(f"unknown runner kinds {sorted(unknown)}; expected {', '.join(QUEUES)}")
        self.settings = settings
        self.slots = [_Slot(kind) for kind, n in counts.items() for _ in range(int(n))]
        self.check_every = check_every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _spawn(self, slot: _Slot) -> None:
        env = {**os.environ, **self.settings.to_env()}
        slot.process = subprocess.Popen([sys.executable, "-m", "ml4paleo.cli", "runner", slot.kind], env=env)
        slot.started = time.monotonic()
        log.info("started %s runner (pid %s)", slot.kind, slot.process.pid)

    def pids(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for slot in self.slots:
            if slot.process is not None and slot.process.poll() is None:
                out.setdefault(slot.kind, []).append(slot.process.pid)
        return out

    def check(self) -> None:
        """Restart every runner that exited (with a growing delay if it dies right after starting)."""
        now = time.monotonic()
        with self._lock:
            if self._stop.is_set():
                return
            for slot in self.slots:
                if slot.process is None:
                    self._spawn(slot)
                    continue
                code = slot.process.poll()
                if code is None:
                    continue
                if slot.next_start == 0.0:
                    lived = now - slot.started
                    slot.backoff = 0.5 if lived > 60 else min(slot.backoff * 2, RESTART_BACKOFF_MAX)
                    slot.next_start = now + (0.0 if lived > 60 else slot.backoff)
                    log.warning("%s runner (pid %s) exited with %s after %.0f s; restarting",
                                slot.kind, slot.process.pid, code, lived)
                if now >= slot.next_start:
                    slot.restarts += 1
                    slot.next_start = 0.0
                    self._spawn(slot)

    def start(self) -> None:
        self.check()
        self._thread = threading.Thread(target=self._watch, name="runner-supervisor", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.check_every):
            try:
                self.check()
            except Exception:  # never let the watcher die: log and look again
                log.exception("runner supervisor check failed")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM every runner (each hands its current task back to the queue), then SIGKILL
        whatever is still alive after ``timeout`` seconds."""
        with self._lock:
            self._stop.set()
            procs = [s.process for s in self.slots if s.process is not None and s.process.poll() is None]
            for proc in procs:
                try:
                    proc.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout
        for proc in procs:
            try:
                proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                log.warning("runner pid %s did not stop in %.0f s; killing it", proc.pid, timeout)
                proc.kill()
                proc.wait()
