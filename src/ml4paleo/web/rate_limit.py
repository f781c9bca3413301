"""A fixed-window rate limit kept in memory, for what may be dropped when it floods (the audit
trail's refusals): per key, at most N admissions per window, and a count of what was dropped so
that the next admitted entry can say so."""

from __future__ import annotations

import threading
import time


class RateLimit:
    """At most ``per_window`` admissions per key, and ``total_per_window`` over all keys, in each
    window of ``window`` seconds (thread-safe, in memory); :meth:`admit` says how many of the key's
    were refused since its last admission. The total bounds a flood from many keys (addresses)."""

    MAX_KEYS = 10_000

    def __init__(self, per_window: int, total_per_window: int, window: float = 60.0) -> None:
        self.per_window, self.total_per_window, self.window = per_window, total_per_window, window
        self._keys: dict[str, list[float]] = {}  # key -> [window start, admitted, dropped]
        self._total = [0.0, 0]  # [window start, admitted]
        self._lock = threading.Lock()

    def admit(self, key: str, now: float | None = None) -> int | None:
        """None when ``key`` is over its limit (counted), else how many were dropped before this one."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._keys) > self.MAX_KEYS:  # forget finished windows (all, if need be): memory stays bounded
                self._keys = {k: v for k, v in self._keys.items() if now - v[0] < self.window}
                if len(self._keys) > self.MAX_KEYS:
                    self._keys.clear()
            if now - self._total[0] >= self.window:
                self._total = [now, 0]
            state = self._keys.setdefault(key, [now, 0, 0])
            if now - state[0] >= self.window:
                state[0], state[1] = now, 0
            if state[1] >= self.per_window or self._total[1] >= self.total_per_window:
                state[2] += 1
                return None
            state[1] += 1
            self._total[1] += 1
            dropped, state[2] = int(state[2]), 0
            return dropped
