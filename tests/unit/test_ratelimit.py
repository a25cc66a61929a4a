"""The client-side token bucket: burst first, then `qps`, with a fake clock."""

from __future__ import annotations

import re

import pytest

from actors.clock import FakeClock
from k8s.ratelimit import TokenBucket


def _bucket(qps: float, burst: int, clock: FakeClock) -> TokenBucket:
    return TokenBucket(qps, burst, monotonic=clock.monotonic, sleep=clock.sleep)


def test_a_full_bucket_lets_burst_requests_through_without_waiting() -> None:
    clock = FakeClock(start=100.0)
    bucket = _bucket(10, 100, clock)
    waits = [bucket.acquire() for _ in range(100)]
    assert waits == [0.0] * 100
    assert clock.slept == []


def test_past_the_burst_each_request_waits_one_token_interval() -> None:
    clock = FakeClock(start=100.0)
    bucket = _bucket(10, 3, clock)
    for _ in range(3):
        bucket.acquire()
    waits = [bucket.acquire() for _ in range(3)]
    assert waits == pytest.approx([0.1, 0.1, 0.1])
    assert clock.monotonic() == pytest.approx(100.3)


def test_sustained_rate_is_qps() -> None:
    """1,100 requests at 10 qps with burst 100 take (1100 - 100) / 10 = 100 s."""
    clock = FakeClock(start=100.0)
    bucket = _bucket(10, 100, clock)
    for _ in range(1100):
        bucket.acquire()
    assert clock.monotonic() - 100.0 == pytest.approx(100.0)


def test_idle_time_refills_up_to_the_burst_only() -> None:
    clock = FakeClock(start=100.0)
    bucket = _bucket(10, 5, clock)
    for _ in range(5):
        bucket.acquire()
    clock.advance(3600)
    assert bucket.available() == pytest.approx(5.0)
    assert [bucket.acquire() for _ in range(5)] == [0.0] * 5
    assert bucket.acquire() == pytest.approx(0.1)


def test_concurrent_reservations_queue_in_order() -> None:
    """Two callers reserving on an empty bucket wait one and two intervals, not both one."""
    clock = FakeClock(start=100.0)
    bucket = _bucket(2, 1, clock)
    bucket.acquire()
    assert bucket.reserve() == pytest.approx(0.5)
    assert bucket.reserve() == pytest.approx(1.0)


def test_partial_refill_shortens_the_wait() -> None:
    clock = FakeClock(start=100.0)
    bucket = _bucket(10, 1, clock)
    bucket.acquire()
    clock.advance(0.04)
    assert bucket.acquire() == pytest.approx(0.06)


@pytest.mark.parametrize(
    ("message", "qps", "burst"),
    [
        pytest.param("qps must be > 0, got 0", 0, 10, id="zero-qps"),
        pytest.param("qps must be > 0, got -1", -1, 10, id="negative-qps"),
        pytest.param("burst must be >= 1, got 0", 10, 0, id="zero-burst"),
    ],
)
def test_invalid_settings_are_refused(message: str, qps: float, burst: int) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        TokenBucket(qps, burst)
