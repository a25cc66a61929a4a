"""Pure backoff schedule for retried Kubernetes calls and watch reconnects.

Exponential: `base * 2**attempt`, capped at `cap`, then jittered downwards by up
to `jitter` (a fraction) so that many callers failing together spread out
without ever exceeding the cap. A server's `Retry-After` is honoured as a floor
(bounded by `retry_after_cap`, so a hostile or buggy header cannot park a
caller for an hour). No I/O, no clock: the caller sleeps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = ["BackoffPolicy"]


@dataclass(frozen=True)
class BackoffPolicy:
    """How long to wait before retry number `attempt` (0 = the first retry).

    Attributes:
        base: first delay in seconds (default 0.2).
        cap: largest computed delay in seconds (default 5.0).
        max_retries: retries after the first attempt (default 5); 0 = never retry.
        jitter: fraction of the delay that is randomised away, 0..1 (default 0.2).
        retry_after_cap: largest `Retry-After` honoured, in seconds (default 30.0).
    """

    base: float = 0.2
    cap: float = 5.0
    max_retries: int = 5
    jitter: float = 0.2
    retry_after_cap: float = 30.0

    def __post_init__(self) -> None:
        if self.base <= 0 or self.cap < self.base:
            raise ValueError(f"need 0 < base <= cap, got base={self.base} cap={self.cap}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be within 0..1, got {self.jitter}")

    def delay(
        self, attempt: int, *, random_value: float, retry_after: float | None = None
    ) -> float:
        """Seconds to wait before retry `attempt`.

        Args:
            attempt: 0 for the first retry, 1 for the second, ...
            random_value: a number in [0, 1) (`random.random()`); 0 means no jitter.
            retry_after: the server's `Retry-After` in seconds, if any.

        Returns:
            `min(cap, base * 2**attempt) * (1 - jitter * random_value)`, raised to
            `min(retry_after, retry_after_cap)` when the server asked for longer.
        """
        # Bound the exponent: 2**1100 overflows a float long after the cap is reached.
        exponential = self.base * 2.0 ** min(max(attempt, 0), 64)
        computed = min(self.cap, exponential) * (1.0 - self.jitter * random_value)
        if retry_after is None:
            return computed
        return max(computed, min(retry_after, self.retry_after_cap))

    def schedule(self, random: Callable[[], float]) -> Iterator[float]:
        """The delays of all `max_retries` retries in order (no `Retry-After`)."""
        for attempt in range(self.max_retries):
            yield self.delay(attempt, random_value=random())
