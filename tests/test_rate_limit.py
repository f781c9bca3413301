"""The in-memory rate limit of the audit trail's refusals: per key, over all keys, and the count
of what was dropped reported with the next admission."""

from __future__ import annotations

from ml4paleo.web.rate_limit import RateLimit


def test_per_key_and_total_limits_with_the_dropped_count():
    limit = RateLimit(per_window=2, total_per_window=3, window=60.0)
    assert [limit.admit("ben", now=0.0) for _ in range(4)] == [0, 0, None, None]
    assert limit.admit("ann", now=1.0) == 0
    assert limit.admit("cy", now=1.0) is None  # the total of the window is spent
    assert limit.admit("ben", now=60.0) == 2  # a new window: ben's two dropped ones are reported
    assert limit.admit("cy", now=61.0) == 1


def test_memory_stays_bounded():
    limit = RateLimit(per_window=1, total_per_window=10**9, window=60.0)
    limit.MAX_KEYS = 100
    for i in range(1000):
        limit.admit(f"192.0.2.{i}", now=float(i) / 100)
    assert len(limit._keys) <= 101
