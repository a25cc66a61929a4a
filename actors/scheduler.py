"""One timer thread for every tick in the daemon: poll, lease renewal, watchdog, backoff.

Callbacks run on the scheduler thread, so they must be short: they either do
one bounded call (the lease renewal, which has its own timeout) or `tell()` an
actor. A callback that raises is logged and never stops the scheduler.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable

import structlog

from actors.clock import Clock, SystemClock

log = structlog.get_logger(__name__)


class Timer:
    """Handle of one scheduled callback; `cancel()` makes sure it will not run."""

    __slots__ = ("callback", "cancelled", "due", "period")

    def __init__(self, due: float, callback: Callable[[], None], period: float | None) -> None:
        self.due = due
        self.callback = callback
        self.period = period
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Scheduler:
    """A heap of timers served by one thread, on an injected clock."""

    def __init__(self, clock: Clock | None = None, *, name: str = "scheduler") -> None:
        self._clock = clock or SystemClock()
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopping = False
        # True while a timer's callback runs (popped from the heap, not yet re-pushed).
        self._running = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.last_tick: float = self._clock.monotonic()
        self._clock.on_advance(self._wake)
        self._clock.add_timers(self.next_due)

    @property
    def clock(self) -> Clock:
        return self._clock

    def start(self) -> Scheduler:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving timers and join the thread; pending timers are dropped."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Run `callback` once, `delay` seconds from now on the scheduler's clock."""
        return self._push(Timer(self._clock.monotonic() + max(0.0, delay), callback, None))

    def call_every(
        self, period: float, callback: Callable[[], None], *, first: float = 0.0
    ) -> Timer:
        """Run `callback` every `period` seconds, the first time after `first` seconds."""
        return self._push(Timer(self._clock.monotonic() + first, callback, period))

    def pending(self) -> int:
        """Number of timers waiting (cancelled ones included until they come due)."""
        with self._cond:
            return len(self._heap)

    def next_due(self) -> float | None:
        """When the earliest live timer is due on the clock (None: none, or stopped); while
        a callback runs, now: its work is not done."""
        with self._cond:
            if self._stopping:
                return None
            if self._running:
                return self._clock.monotonic()
            return min((due for due, _, t in self._heap if not t.cancelled), default=None)

    def _push(self, timer: Timer) -> Timer:
        with self._cond:
            heapq.heappush(self._heap, (timer.due, next(self._seq), timer))
            self._cond.notify_all()
        return timer

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    now = self._clock.monotonic()
                    self.last_tick = now
                    if self._heap and self._heap[0][0] <= now:
                        _, _, timer = heapq.heappop(self._heap)
                        self._running = True
                        break
                    wait = self._heap[0][0] - now if self._heap else 1.0
                    # Wake at least once a second so /healthz sees the thread alive.
                    self._cond.wait(timeout=min(wait, 1.0))
                else:
                    return
            try:
                if not timer.cancelled:
                    self._fire(timer)
            finally:
                with self._cond:
                    self._running = False

    def _fire(self, timer: Timer) -> None:
        """Run one timer's callback and queue its next run if it repeats."""
        try:
            timer.callback()
        except Exception:
            log.exception("timer callback failed", callback=repr(timer.callback))
        if timer.period is not None and not timer.cancelled:
            timer.due = max(timer.due + timer.period, self._clock.monotonic())
            self._push(timer)
