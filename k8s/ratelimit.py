"""Client-side token bucket, as client-go's default rate limiter (10 qps, burst 100).

The bucket starts full. Each request takes one token; tokens come back at `qps`
per second up to `burst`. A caller that finds the bucket empty reserves the
next token (the count goes negative) and sleeps until its turn, so concurrent
callers are served in order and never spin.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    """A thread-safe token bucket with an injected clock.

    Args:
        qps: tokens added per second; must be > 0.
        burst: bucket size, the number of requests allowed back to back; >= 1.
        monotonic: the clock, in seconds.
        sleep: how to wait, in seconds.

    Raises:
        ValueError: for a non-positive `qps` or a `burst` below 1.
    """

    def __init__(
        self,
        qps: float,
        burst: int,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if qps <= 0:
            raise ValueError(f"qps must be > 0, got {qps}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst}")
        self._qps = float(qps)
        self._burst = float(burst)
        self._monotonic = monotonic
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._last = monotonic()

    def _refill(self, now: float) -> None:
        """Add the tokens earned since the last look (caller holds the lock)."""
        elapsed = max(0.0, now - self._last)
        self._tokens = min(self._burst, self._tokens + elapsed * self._qps)
        self._last = now

    def reserve(self) -> float:
        """Take one token now, possibly on credit; return the seconds to wait before using it."""
        with self._lock:
            self._refill(self._monotonic())
            self._tokens -= 1.0
            if self._tokens >= 0:
                return 0.0
            return -self._tokens / self._qps

    def acquire(self) -> float:
        """Take one token, sleeping until it is available; return the seconds slept."""
        delay = self.reserve()
        if delay > 0:
            self._sleep(delay)
        return delay

    def acquire_before(self, deadline: float) -> float | None:
        """Take one token if it is available before `deadline` (this bucket's clock).

        Never waits past the deadline: when the token would come later, the
        reservation is given back at once and None is returned (nothing slept).
        Otherwise sleeps until the token is available and returns the seconds slept.
        """
        with self._lock:
            now = self._monotonic()
            self._refill(now)
            self._tokens -= 1.0
            delay = 0.0 if self._tokens >= 0 else -self._tokens / self._qps
            if now + delay >= deadline:
                self._tokens += 1.0
                return None
        if delay > 0:
            self._sleep(delay)
        return delay

    def available(self) -> float:
        """Tokens in the bucket right now (negative while callers are queued)."""
        with self._lock:
            self._refill(self._monotonic())
            return self._tokens
