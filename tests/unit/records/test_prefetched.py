"""``records.common.prefetched``: a reader's tables produced one ahead in a thread."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator

import pytest

from flowaudit.records.common import SWITCH_INTERVAL_S, prefetched


def test_items_in_order_and_bounded_lookahead() -> None:
    made: list[int] = []

    def gen() -> Iterator[int]:
        for i in range(50):
            made.append(i)
            yield i

    out = []
    for x in prefetched(gen(), depth=1):
        time.sleep(0.001)
        # the producer is at most the queue (1) plus the item in its hand ahead
        assert len(made) <= x + 3
        out.append(x)
    assert out == list(range(50))


def test_producer_exception_is_raised_to_the_consumer() -> None:
    def gen() -> Iterator[int]:
        yield 1
        raise ValueError("corrupt at byte 7")

    it = prefetched(gen())
    assert next(it) == 1
    with pytest.raises(ValueError, match="corrupt at byte 7"):
        next(it)


def test_closing_early_stops_the_producer_and_closes_the_source() -> None:
    closed = threading.Event()

    def gen() -> Iterator[int]:
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    before = threading.active_count()
    it = prefetched(gen())
    assert [next(it) for _ in range(3)] == [0, 1, 2]
    it.close()
    assert closed.is_set()
    assert threading.active_count() == before


def test_switch_interval_lowered_while_running_and_restored() -> None:
    before = sys.getswitchinterval()
    seen = []

    def gen() -> Iterator[int]:
        for i in range(3):
            seen.append(sys.getswitchinterval())
            yield i

    assert list(prefetched(gen())) == [0, 1, 2]
    assert seen and max(seen) <= SWITCH_INTERVAL_S < before
    assert sys.getswitchinterval() == before
