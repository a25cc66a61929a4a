"""Fault injection and request accounting for the sim's API paths.

`FaultPlan` says which requests get extra latency or an injected error (500 or
429 with `Retry-After`), optionally only for one client (a `User-Agent`
substring); `RequestStats` counts requests by "VERB kind" and keeps a bounded
log of `RequestRecord`s (arrival time, verb, path, status, user agent). Neither
applies to `/_sim/`.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, deque
from collections.abc import Collection
from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Faults for matching requests: `verbs`/`kinds` empty means all.

    Attributes:
        latency: seconds added before the request is served.
        error_rate: probability (0-1) that a matching request fails.
        error_status: 500 (InternalError) or 429 (TooManyRequests) for injected failures.
        verbs: e.g. {"GET", "LIST", "UPDATE"}; kinds: plurals, e.g. {"deployments"}.
        user_agent: a substring of the `User-Agent` header; empty means every client.
    """

    latency: float = 0.0
    error_rate: float = 0.0
    error_status: int = 500
    verbs: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()
    user_agent: str = ""

    def applies(self, verb: str, plural: str, user_agent: str = "") -> bool:
        """True when the plan covers a request of `verb` on `plural` from `user_agent`."""
        return (
            (not self.verbs or verb in self.verbs)
            and (not self.kinds or plural in self.kinds)
            and (not self.user_agent or self.user_agent in user_agent)
        )

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
    user_agent: str = "",
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
        user_agent=str(user_agent),
    )


class RequestArrival(NamedTuple):
    """One API request as it arrived (before faults and serving): what a client *sent*,
    including requests still being served. `arrived` is `time.monotonic()`."""

    arrived: float
    verb: str
    path: str
    user_agent: str


class RequestRecord(NamedTuple):
    """One finished API request. `arrived`/`finished` are `time.monotonic()` readings of
    the sim's process (comparable with a client's in the same process)."""

    arrived: float
    finished: float
    verb: str
    path: str
    status: int
    user_agent: str


class RequestStats:
    """Counts API requests by "VERB kind" (plus "total") and logs each one finished."""

    def __init__(self, log_size: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._log: deque[RequestRecord] = deque(maxlen=log_size)
        self._arrivals: deque[RequestArrival] = deque(maxlen=log_size)

    def count(self, verb: str, resource: str) -> None:
        """Counts one request as it arrives (a watch counts when it opens)."""
        with self._lock:
            self._counts[f"{verb} {resource}"] += 1
            self._counts["total"] += 1

    def arrive(self, verb: str, path: str, *, arrived: float, user_agent: str = "") -> None:
        """Logs one request as it arrives."""
        with self._lock:
            self._arrivals.append(RequestArrival(arrived, verb, path, user_agent))

    def arrivals(self) -> list[RequestArrival]:
        """Every request as it arrived, in arrival order (finished or not)."""
        with self._lock:
            return list(self._arrivals)

    def record(
        self,
        verb: str,
        path: str,
        status: int,
        *,
        arrived: float | None = None,
        user_agent: str = "",
    ) -> None:
        """Logs one finished request with its status (`arrived`: monotonic, default now)."""
        finished = time.monotonic()
        entry = RequestRecord(
            finished if arrived is None else arrived, finished, verb, path, status, user_agent
        )
        with self._lock:
            self._log.append(entry)

    def counters(self) -> dict[str, int]:
        """Returns a copy of the counters ("total" always present)."""
        with self._lock:
            return {"total": 0, **self._counts}

    def log(self) -> list[tuple[str, str, int]]:
        """Returns the request log as (verb, path, status), in the order requests finished."""
        with self._lock:
            return [(r.verb, r.path, r.status) for r in self._log]

    def records(self) -> list[RequestRecord]:
        """Returns the full request log, in the order requests finished."""
        with self._lock:
            return list(self._log)

    def reset(self) -> None:
        """Sets every counter to zero and empties the log."""
        with self._lock:
            self._counts.clear()
            self._log.clear()
            self._arrivals.clear()
