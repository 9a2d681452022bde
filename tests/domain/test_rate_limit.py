"""Token buckets on a fake clock: a burst, then the refill rate; waits say how long."""

from __future__ import annotations

import pytest

from shared_context_server.clock import FakeClock
from shared_context_server.domain.rate_limit import TokenBuckets


def test_a_bucket_allows_its_burst_then_refills_at_its_rate() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(clock, capacity=3, per_second=2)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)
    assert buckets.wait("a") == pytest.approx(0.5)
    clock.advance(0.5)
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0
    clock.advance(60)  # never above capacity
    assert [buckets.take("a") for _ in range(4)][-1] > 0


def test_keys_have_their_own_buckets_and_waiting_takes_nothing() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(clock, capacity=1, per_second=1)
    assert buckets.wait("a") == 0.0
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0
    assert buckets.take("b") == 0.0
    assert buckets.wait("c") == 0.0  # an unknown key is not remembered by asking
    assert len(buckets) == 2


def test_a_zero_limit_is_no_limit() -> None:
    buckets = TokenBuckets(FakeClock(), capacity=0, per_second=0)
    assert all(buckets.take("a") == 0.0 for _ in range(1000))
    assert len(buckets) == 0


def test_the_table_forgets_full_buckets_first_then_the_least_recent() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(clock, capacity=1, per_second=1, max_keys=3)
    for key in "abc":
        buckets.take(key)
    clock.advance(10)  # a, b, c are full again: forgettable
    buckets.take("x")
    buckets.take("y")
    buckets.take("z")
    buckets.take("w")
    assert len(buckets) <= 3
    assert buckets.take("w") > 0  # the newest is remembered
