"""Work split over threads: results in order, errors raised to the caller, one worker inline."""

from __future__ import annotations

import threading

import pytest

from ml4paleo.threads import map_on_threads


def test_results_come_in_order_and_one_worker_stays_in_this_thread():
    assert map_on_threads(lambda i: i * i, range(5), 2) == [0, 1, 4, 9, 16]
    names = map_on_threads(lambda _: threading.current_thread().name, range(3), 1)
    assert set(names) == {threading.current_thread().name}
    assert map_on_threads(lambda i: i, [], 4) == []


def test_an_error_in_a_worker_reaches_the_caller():
    def work(i: int) -> int:
        if i == 2:
            raise ValueError("part 2")
        return i

    with pytest.raises(ValueError, match="part 2"):
        map_on_threads(work, range(4), 2)
