"""Time, injected: the system clock in production, a fake one in tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    """Wall time (epoch seconds, for timestamps) and monotonic time (for deadlines)."""

    def time(self) -> float: ...

    def monotonic(self) -> float: ...

    def on_advance(self, listener: Callable[[], None]) -> None:
        """Register `listener` to be called whenever time jumps (fake clocks only)."""
        ...

    def add_timers(self, next_due: Callable[[], float | None]) -> None:
        """Register a queue of timers on this clock: `next_due()` is the monotonic time its
        earliest timer is due, None when it has none (a fake clock jumps to it)."""
        ...


class SystemClock:
    """The real clock; time never jumps, so listeners are never called."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def on_advance(self, listener: Callable[[], None]) -> None:
        return None

    def add_timers(self, next_due: Callable[[], float | None]) -> None:
        return None


class FakeClock:
    """A clock that moves only when a test calls `advance`; wall and monotonic move together."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []
        self._timers: list[Callable[[], float | None]] = []
        #: Every `sleep` asked of this clock, in order.
        self.slept: list[float] = []

    def time(self) -> float:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        return self.time()

    def on_advance(self, listener: Callable[[], None]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def add_timers(self, next_due: Callable[[], float | None]) -> None:
        with self._lock:
            self._timers.append(next_due)

    def next_due(self) -> float | None:
        """The earliest time any timer queue on this clock is due (None: no timer pending).
        A time not after `monotonic()` means work is due now or still running."""
        with self._lock:
            queues = list(self._timers)
        dues = [due for next_due in queues if (due := next_due()) is not None]
        return min(dues, default=None)

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds` and wake everything waiting on this clock."""
        with self._lock:
            self._now += seconds
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def sleep(self, seconds: float) -> None:
        """A sleep that does not block: time moves forward by `seconds` (recorded in
        `slept`), for code that takes `sleep` and `monotonic` callables (backoff, rate
        limits)."""
        self.slept.append(seconds)
        self.advance(seconds)
