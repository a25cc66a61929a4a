"""The single timer thread, driven by a fake clock: nothing fires before its time,
everything fires once time passes, periodic timers repeat, cancelled ones never run."""

import threading

from actors.clock import FakeClock
from actors.scheduler import Scheduler
from tests.sim_aids import wait_for


def _wait(event: threading.Event) -> bool:
    return event.wait(timeout=5)


def test_timer_fires_only_after_the_fake_clock_passes_its_time() -> None:
    clock = FakeClock()
    scheduler = Scheduler(clock).start()
    fired = threading.Event()
    try:
        scheduler.call_later(30, fired.set)
        clock.advance(29)
        assert not fired.wait(timeout=0.2)
        clock.advance(1)
        assert _wait(fired)
    finally:
        scheduler.stop()


def test_periodic_timer_repeats_and_cancel_stops_it() -> None:
    clock = FakeClock()
    scheduler = Scheduler(clock).start()
    count = 0
    hits = [threading.Event() for _ in range(3)]

    def tick() -> None:
        nonlocal count
        if count < len(hits):
            hits[count].set()
        count += 1

    try:
        timer = scheduler.call_every(10, tick)
        assert _wait(hits[0]), "first run is immediate"
        clock.advance(10)
        assert _wait(hits[1])
        clock.advance(10)
        assert _wait(hits[2])
        timer.cancel()
        seen = count
        clock.advance(100)
        assert not threading.Event().wait(0.2)
        assert count == seen
    finally:
        scheduler.stop()


def test_a_raising_callback_does_not_stop_the_scheduler() -> None:
    clock = FakeClock()
    scheduler = Scheduler(clock).start()
    after = threading.Event()

    def boom() -> None:
        raise RuntimeError("boom")

    try:
        scheduler.call_later(1, boom)
        scheduler.call_later(2, after.set)
        clock.advance(5)
        assert _wait(after)
    finally:
        scheduler.stop()


def test_the_fake_clock_knows_when_the_next_timer_is_due() -> None:
    """What lets a fake-time test jump straight to the next timer: the earliest live timer
    of any scheduler on the clock, "now" while a callback still runs, nothing once stopped."""
    clock = FakeClock(start=1000.0)
    first, second = Scheduler(clock).start(), Scheduler(clock).start()
    release, running = threading.Event(), threading.Event()

    def slow() -> None:
        running.set()
        release.wait(timeout=5)

    try:
        assert clock.next_due() is None
        first.call_later(30, lambda: None)
        second.call_later(20, lambda: None).cancel()
        second.call_later(25, slow)
        assert clock.next_due() == 1025.0
        clock.advance(25)
        assert _wait(running)
        assert clock.next_due() == 1025.0, "a callback still running is work due now"
        release.set()
        wait_for(lambda: clock.next_due() == 1030.0, timeout=5)
        second.stop()
        first.stop()
        assert clock.next_due() is None
    finally:
        release.set()
        first.stop()
        second.stop()
