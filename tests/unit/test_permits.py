"""Handler permits (`actors.permits`): a handler gives its slot back while it waits on the
API, so endpoints stuck on a slow API never starve the others; a hung handler's slot can
be taken back; the hang clock runs only while the handler runs its own code."""

from __future__ import annotations

import threading

from actors.clock import FakeClock
from actors.permits import HandlerPermits, Permit
from actors.pool import WorkerPool


def _noop(_permit: Permit | None) -> None:
    return None


def test_a_waiting_handler_frees_its_slot_for_another() -> None:
    permits = HandlerPermits(1, monotonic=FakeClock().monotonic)
    waiting, release, other_ran = threading.Event(), threading.Event(), threading.Event()

    def slow_handler() -> None:
        with permits.held(_noop), permits.waiting():
            waiting.set()
            release.wait(5)

    def other_handler() -> None:
        with permits.held(_noop):
            other_ran.set()

    slow = threading.Thread(target=slow_handler)
    slow.start()
    assert waiting.wait(5)
    other = threading.Thread(target=other_handler)
    other.start()
    assert other_ran.wait(5), "the only slot stayed with a handler that only waits"
    release.set()
    slow.join(5)
    other.join(5)


def test_the_hang_clock_stops_while_waiting_and_restarts_after() -> None:
    clock = FakeClock()
    permits = HandlerPermits(2, monotonic=clock.monotonic)
    seen: list[Permit | None] = []
    with permits.held(seen.append) as permit:
        assert permit.busy_since == clock.monotonic()
        with permits.waiting():
            assert permit.busy_since is None
            clock.advance(100)
        assert permit.busy_since == clock.monotonic()
    assert seen[0] is permit
    assert seen[-1] is None


def test_a_reclaimed_slot_is_free_at_once_and_never_released_twice() -> None:
    permits = HandlerPermits(1, monotonic=FakeClock().monotonic)
    hung_inside, finish = threading.Event(), threading.Event()
    holder: list[Permit] = []

    def hung_handler() -> None:
        with permits.held(lambda p: holder.append(p) if p else None):
            hung_inside.set()
            finish.wait(5)
            with permits.waiting():  # a wait after being reclaimed must not take a slot
                pass

    thread = threading.Thread(target=hung_handler)
    thread.start()
    assert hung_inside.wait(5)
    holder[0].reclaim()
    got = threading.Event()

    def next_handler() -> None:
        with permits.held(_noop):
            got.set()
            finish.set()

    other = threading.Thread(target=next_handler)
    other.start()
    assert got.wait(5)
    thread.join(5)
    other.join(5)
    # Exactly one slot exists afterwards: two holders at once would mean a double release.
    first = permits.held(_noop)
    first.__enter__()
    blocked = threading.Event()

    def third() -> None:
        with permits.held(_noop):
            blocked.set()

    t3 = threading.Thread(target=third)
    t3.start()
    assert not blocked.wait(0.2)
    first.__exit__(None, None, None)
    assert blocked.wait(5)
    t3.join(5)


def test_nested_waits_keep_one_slot() -> None:
    permits = HandlerPermits(1, monotonic=FakeClock().monotonic)
    with permits.held(_noop) as permit:
        with permits.waiting():
            with permits.waiting():
                assert not permit.held
            assert not permit.held
        assert permit.held
    # The single slot is free again, and only one: a second holder waits for the first.
    with permits.held(_noop) as again:
        assert again.held


def test_on_a_pool_a_waiting_handler_lets_another_worker_start() -> None:
    """The pool's only running worker waits on the API: queued work gets a worker."""
    pool = WorkerPool(1, limit=2, idle_seconds=0.05, name="permits-pool")
    permits = HandlerPermits(1, monotonic=FakeClock().monotonic, pool=pool)
    waiting, release, other_ran = threading.Event(), threading.Event(), threading.Event()

    def slow_handler() -> None:
        with permits.held(_noop), permits.waiting():
            waiting.set()
            release.wait(5)

    pool.submit(slow_handler)
    assert waiting.wait(5)
    pool.submit(other_ran.set)
    try:
        assert other_ran.wait(5), "queued work waited behind a worker that only waits"
    finally:
        release.set()
        assert pool.close(5)


def test_on_a_pool_a_hung_handler_keeps_its_worker_only_until_reclaimed() -> None:
    pool = WorkerPool(1, limit=2, idle_seconds=0.05, name="permits-pool")
    permits = HandlerPermits(1, monotonic=FakeClock().monotonic, pool=pool)
    hung, finish, other_ran = threading.Event(), threading.Event(), threading.Event()
    holder: list[Permit | None] = []

    def hung_handler() -> None:
        with permits.held(holder.append):
            hung.set()
            finish.wait(5)

    pool.submit(hung_handler)
    assert hung.wait(5)
    pool.submit(other_ran.set)
    try:
        assert not other_ran.wait(0.2), "the only worker is busy in its handler"
        permit = holder[0]
        assert permit is not None
        permit.reclaim()
        assert other_ran.wait(5), "a reclaimed handler still kept the work from a worker"
    finally:
        finish.set()
        assert pool.close(5)
