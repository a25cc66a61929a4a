"""The write fence end to end in its pure parts (architecture section 4, defects 22 and 23), on a
fake clock: the keeper's window (send deadline = last renew + renew deadline, expiry = last
renew + duration, epoch = the term's, taken from the table), and a fenced transport that
sends nothing past the deadline - no attempt, no retry after a backoff sleep, no rate-limit
wait - and whose attempts time out by the lease's expiry."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import urllib3

from actors.clock import FakeClock
from actors.lease import LeaseKeeper, LeaseSettings
from k8s import errors
from k8s.fence import Fence
from k8s.ratelimit import TokenBucket
from k8s.retry import BackoffPolicy
from k8s.transport import RequestCounter, Transport
from tests.unit.test_lease import LeaseRecords, keeper_with_terms

SETTINGS = {"name": "inference-monitor-leader", "namespace": "gco-inference"}


def _keeper(records: LeaseRecords, clock: FakeClock, identity: str) -> LeaseKeeper:
    settings = LeaseSettings(identity=identity, **SETTINGS)  # 15 / 10 / 2 s
    return keeper_with_terms(records, clock, settings)


# -- the keeper's window ---------------------------------------------------------


def test_the_fence_opens_at_the_renewal_and_closes_at_the_renew_deadline() -> None:
    records, clock = LeaseRecords(), FakeClock()
    keeper = _keeper(records, clock, "a")
    assert keeper.fence() is None, "no fence before leading"
    renewed_at = clock.monotonic()
    keeper.tick()
    fence = keeper.fence()
    assert fence is not None
    assert fence.send_deadline == renewed_at + 10
    assert fence.expiry == renewed_at + 15
    assert (fence.epoch, fence.holder) == (1, "a")
    clock.advance(9.9)
    fence = keeper.fence()
    assert fence is not None
    assert fence.open
    assert fence.send_window == pytest.approx(0.1)
    assert fence.expiry_window == pytest.approx(5.1)
    clock.advance(0.1)
    fence = keeper.fence()
    assert fence is not None
    assert not fence.open, "closed at the deadline, before any tick"
    assert not keeper.may_write()


def test_no_fence_until_the_term_has_its_epoch() -> None:
    """Leading is not enough to write: the fence opens only once the supervisor has
    taken the term's epoch from the table (a write without one could not be refused
    later), and a term that ended meanwhile cannot be given one."""
    records, clock = LeaseRecords(), FakeClock()
    keeper = LeaseKeeper(
        records, LeaseSettings(identity="a", **SETTINGS), clock, on_change=lambda _: None
    )
    keeper.tick()
    assert keeper.leading
    assert keeper.fence() is None
    assert not keeper.may_write()
    term = keeper.transitions
    assert not keeper.begin_term(7, term - 1), "an older term's epoch is refused"
    assert keeper.begin_term(7, term)
    fence = keeper.fence()
    assert fence is not None
    assert fence.epoch == 7
    records.down = True
    clock.advance(10)
    keeper.tick()  # past the renew deadline: steps down, the epoch goes with the term
    records.down = False
    assert keeper.epoch is None
    assert not keeper.begin_term(8, term), "the ended term cannot be reopened"


def test_a_renewal_moves_the_window_and_a_takeover_raises_the_epoch() -> None:
    records, clock = LeaseRecords(), FakeClock()
    a, b = _keeper(records, clock, "a"), _keeper(records, clock, "b")
    a.tick()
    clock.advance(5)
    a.tick()
    fence = a.fence()
    assert fence is not None
    assert fence.send_deadline == clock.monotonic() + 10
    records.down = True
    clock.advance(10)
    a.tick()  # fails, past the deadline: steps down
    assert a.fence() is None
    records.down = False
    b.tick()  # sees the record for the first time
    clock.advance(15)
    b.tick()  # expired on b's clock: takes over
    fence = b.fence()
    assert fence is not None
    assert (fence.epoch, fence.holder) == (2, "b")
    assert b.epoch == 2
    assert records.lease["spec"]["leaseTransitions"] == 1


def test_close_fence_refuses_writes_but_keeps_the_lease_for_its_release() -> None:
    records, clock = LeaseRecords(), FakeClock()
    keeper = _keeper(records, clock, "a")
    keeper.tick()
    keeper.close_fence()
    assert keeper.fence() is None
    assert not keeper.may_write()
    keeper.tick()
    assert keeper.leading, "a closed fence is not a lost lease"
    keeper.release()
    assert records.holder == ""


def test_attempt_timeout_is_cut_to_the_lease_expiry() -> None:
    fence = Fence(now=100.0, send_deadline=104.0, expiry=109.0)
    assert fence.attempt_timeout(30.0) == 9.0
    assert fence.attempt_timeout(2.0) == 2.0
    assert fence.may_wait(3.9)
    assert not fence.may_wait(4.0)


# -- the rate limiter never waits past the deadline -----------------------------


def test_the_rate_limiter_never_waits_past_the_deadline_and_gives_the_token_back() -> None:
    time = FakeClock()
    bucket = TokenBucket(1, 1, monotonic=time.monotonic, sleep=time.sleep)
    now = time.monotonic()
    assert bucket.acquire_before(now + 0.5) == 0.0
    assert bucket.acquire_before(now + 0.5) is None, "the next token comes in 1 s"
    assert time.slept == []
    assert bucket.available() == pytest.approx(0.0), "the refused reservation was given back"
    assert bucket.acquire_before(now + 1.5) == pytest.approx(1.0)
    assert time.slept == [pytest.approx(1.0)]
    assert bucket.acquire_before(time.monotonic()) is None, "nothing at or past the deadline"


# -- a fenced transport ----------------------------------------------------------


class Response:
    data = b'{"ok": true}'

    def release_conn(self) -> None:
        return None

    def close(self) -> None:
        return None


class Api:
    """A scripted `send`: each attempt records its timeout and the clock, then answers
    or raises the next scripted failure."""

    def __init__(self, time: FakeClock, failures: int = 0) -> None:
        self.time = time
        self.failures = failures
        self.attempts: list[tuple[float, float]] = []

    def send(self, timeout: Any) -> Response:
        self.attempts.append((self.time.monotonic(), timeout))
        if self.failures:
            self.failures -= 1
            raise urllib3.exceptions.ReadTimeoutError(None, "/x", "read timed out")
        return Response()


class Lease:
    """A fence source on the fake clock: renewed once at `renewed_at`."""

    def __init__(
        self, time: FakeClock, *, renew_deadline: float = 10, duration: float = 15
    ) -> None:
        self.time = time
        self.renewed_at = time.monotonic()
        self.renew_deadline = renew_deadline
        self.duration = duration
        self.leading = True

    def fence(self) -> Fence | None:
        if not self.leading:
            return None
        return Fence(
            now=self.time.monotonic(),
            send_deadline=self.renewed_at + self.renew_deadline,
            expiry=self.renewed_at + self.duration,
            epoch=3,
            holder="a",
        )


def _transport(
    time: FakeClock, lease: Lease | None, *, qps: float = 100, burst: int = 100, timeout: float = 30
) -> Transport:
    return Transport(
        limiter=TokenBucket(qps, burst, monotonic=time.monotonic, sleep=time.sleep),
        policy=BackoffPolicy(base=2.0, cap=2.0, max_retries=5),
        timeout=timeout,
        counter=RequestCounter(),
        sleep=time.sleep,
        random=lambda: 0.5,
        fence=None if lease is None else lease.fence,
        monotonic=time.monotonic,
    )


def test_nothing_is_sent_once_the_renew_deadline_has_passed() -> None:
    time = FakeClock()
    lease = Lease(time)
    api = Api(time)
    transport = _transport(time, lease)
    transport.call("update", "Deployment", "m1", api.send)
    time.advance(10)
    with pytest.raises(errors.Fenced):
        transport.call("update", "Deployment", "m1", api.send)
    lease.leading = False
    with pytest.raises(errors.Fenced):
        transport.call("update", "Deployment", "m1", api.send)
    assert len(api.attempts) == 1


def test_each_attempt_times_out_by_the_lease_expiry() -> None:
    time = FakeClock()
    lease = Lease(time)
    api = Api(time)
    transport = _transport(time, lease, timeout=30)
    time.advance(4)
    transport.call("update", "Deployment", "m1", api.send)
    assert api.attempts[-1][1] == pytest.approx(11.0), "15 s lease renewed 4 s ago"
    assert not isinstance(errors.Fenced("x"), errors.Retryable)


def test_a_retry_that_would_go_out_after_the_deadline_is_not_waited_for() -> None:
    time = FakeClock()
    lease = Lease(time)
    api = Api(time, failures=10)
    transport = _transport(time, lease)
    time.advance(5)
    # Retries every 1.8 s (2 s, jitter): attempts at 5, 6.8, 8.6; the next would be at 10.4.
    with pytest.raises(errors.Fenced) as refused:
        transport.call("update", "Deployment", "m1", api.send)
    assert isinstance(refused.value.__cause__, errors.Retryable)
    sent_at = [at - lease.renewed_at for at, _ in api.attempts]
    assert sent_at == pytest.approx([5, 6.8, 8.6])
    assert all(at < lease.renew_deadline for at in sent_at)
    assert time.monotonic() - lease.renewed_at < lease.renew_deadline, "no sleep past it"


def test_a_rate_limit_wait_past_the_deadline_is_refused_without_waiting() -> None:
    time = FakeClock()
    lease = Lease(time)
    api = Api(time)
    transport = _transport(time, lease, qps=0.1, burst=1)  # one token per 10 s
    time.advance(5)
    transport.call("update", "Deployment", "m1", api.send)
    with pytest.raises(errors.Fenced, match="rate limiter"):
        transport.call("update", "Deployment", "m1", api.send)
    assert time.slept == []
    assert len(api.attempts) == 1


def test_an_unfenced_transport_is_never_refused() -> None:
    time = FakeClock()
    api = Api(time, failures=2)
    transport = _transport(time, None)
    time.advance(1000)
    transport.call("update", "Lease", "leader", api.send)
    assert len(api.attempts) == 3
    assert api.attempts[-1][1] == 30


def test_quiesce_waits_for_the_attempts_in_flight() -> None:
    time = FakeClock()
    transport = _transport(time, Lease(time))
    started, finish = threading.Event(), threading.Event()

    def slow(_timeout: Any) -> Response:
        started.set()
        finish.wait(10)
        return Response()

    worker = threading.Thread(
        target=transport.call, args=("update", "Deployment", "m1", slow), daemon=True
    )
    worker.start()
    assert started.wait(5)
    assert not transport.quiesce(0.05), "an attempt is in flight"
    finish.set()
    assert transport.quiesce(5)
    worker.join(5)
    assert transport.quiesce(0)
