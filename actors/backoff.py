"""The restart policy: how long a dead actor waits before its restart, and when it is parked.

The schedule itself (exponential, capped, jittered) is `k8s.retry.BackoffPolicy`, the one
used for retried Kubernetes calls too; `Backoff` gives it the restart policy's defaults.
Pure code: time and randomness are passed in, so both are tested with plain values.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

from k8s.retry import BackoffPolicy


@dataclass(frozen=True)
class Backoff:
    """Delay before retry number `attempt` (0-based): base x 2^attempt, capped at `cap`,
    then jittered downwards by up to `jitter` (`k8s.retry.BackoffPolicy.delay`), so a
    delay never exceeds the cap.

    Defaults are the restart policy's: 0.5 s doubling to 5 min, jitter 20 %.
    """

    base: float = 0.5
    cap: float = 300.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if not (self.base > 0 and self.cap >= self.base):
            raise ValueError("backoff needs base > 0 and cap >= base")
        if not 0 <= self.jitter < 1:
            raise ValueError("backoff jitter must be in [0, 1)")

    def delay(self, attempt: int, *, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry `attempt`; never above `cap`."""
        policy = BackoffPolicy(base=self.base, cap=self.cap, jitter=self.jitter)
        return policy.delay(attempt, random_value=(rng or random).random())


@dataclass(frozen=True)
class RestartDecision:
    """What to do after a death: wait `delay` seconds, and whether the endpoint is now parked."""

    delay: float
    parked: bool


@dataclass
class RestartPolicy:
    """Per-endpoint restart bookkeeping.

    Each death doubles the wait (0.5 s to 5 min). More than `max_restarts`
    deaths within `window` seconds parks the endpoint: it is still retried, but
    only at the cap, until `reset()` (the next spec change) unparks it.
    """

    backoff: Backoff = field(default_factory=Backoff)
    max_restarts: int = 5
    window: float = 600.0
    deaths: deque[float] = field(default_factory=deque)
    attempt: int = 0

    def record_death(self, now: float, *, rng: random.Random | None = None) -> RestartDecision:
        """Note a death at monotonic time `now`; return how long to wait before restarting."""
        self.deaths.append(now)
        while self.deaths and now - self.deaths[0] > self.window:
            self.deaths.popleft()
        parked = len(self.deaths) > self.max_restarts
        delay = self.backoff.cap if parked else self.backoff.delay(self.attempt, rng=rng)
        self.attempt += 1
        return RestartDecision(delay=delay, parked=parked)

    @property
    def parked(self) -> bool:
        """True while more than `max_restarts` deaths sit inside the window."""
        return len(self.deaths) > self.max_restarts

    def reset(self) -> None:
        """Forget past deaths (a new spec deserves a fresh start)."""
        self.deaths.clear()
        self.attempt = 0
