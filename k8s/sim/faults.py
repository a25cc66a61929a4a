"""Fault injection and request accounting for the sim's API paths.

`FaultPlan` says which requests get extra latency or an injected error (500 or
429 with `Retry-After`); `RequestStats` counts requests by "VERB kind" and
keeps a bounded log of (verb, path, status). Neither applies to `/_sim/`.
"""

from __future__ import annotations

import random
import threading
from collections import Counter, deque
from collections.abc import Collection
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Faults for matching requests: `verbs`/`kinds` empty means all.

    Attributes:
        latency: seconds added before the request is served.
        error_rate: probability (0-1) that a matching request fails.
        error_status: 500 (InternalError) or 429 (TooManyRequests) for injected failures.
        verbs: e.g. {"GET", "LIST", "UPDATE"}; kinds: plurals, e.g. {"deployments"}.
    """

    latency: float = 0.0
    error_rate: float = 0.0
    error_status: int = 500
    verbs: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()

    def applies(self, verb: str, plural: str) -> bool:
        """True when the plan covers a request of `verb` on `plural`."""
        return (not self.verbs or verb in self.verbs) and (not self.kinds or plural in self.kinds)

    def should_fail(self) -> bool:
        """Draws whether a covered request fails."""
        return self.error_rate > 0 and (self.error_rate >= 1 or random.random() < self.error_rate)


def make_plan(
    *,
    latency: float = 0.0,
    error_rate: float = 0.0,
    error_status: int = 500,
    verbs: Collection[str] = (),
    kinds: Collection[str] = (),
) -> FaultPlan:
    """Builds a checked `FaultPlan` (verbs upper-cased; only 500 and 429 errors)."""
    if error_status not in (429, 500, 503, 504):
        raise ValueError(f"error_status must be 429, 500, 503 or 504, not {error_status}")
    if not 0 <= error_rate <= 1 or latency < 0:
        raise ValueError("error_rate must be within 0-1 and latency >= 0")
    return FaultPlan(
        latency=float(latency),
        error_rate=float(error_rate),
        error_status=int(error_status),
        verbs=frozenset(v.upper() for v in verbs),
        kinds=frozenset(kinds),
    )


class RequestStats:
    """Counts API requests by "VERB kind" (plus "total") and logs (verb, path, status)."""

    def __init__(self, log_size: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._log: deque[tuple[str, str, int]] = deque(maxlen=log_size)

    def count(self, verb: str, resource: str) -> None:
        """Counts one request as it arrives (a watch counts when it opens)."""
        with self._lock:
            self._counts[f"{verb} {resource}"] += 1
            self._counts["total"] += 1

    def record(self, verb: str, path: str, status: int) -> None:
        """Logs one finished request with its status."""
        with self._lock:
            self._log.append((verb, path, status))

    def counters(self) -> dict[str, int]:
        """Returns a copy of the counters ("total" always present)."""
        with self._lock:
            return {"total": 0, **self._counts}

    def log(self) -> list[tuple[str, str, int]]:
        """Returns the request log, oldest first."""
        with self._lock:
            return list(self._log)

    def reset(self) -> None:
        """Sets every counter to zero and empties the log."""
        with self._lock:
            self._counts.clear()
            self._log.clear()
