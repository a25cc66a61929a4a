"""The Prometheus analysis gate (policy field `analysis`, daemon setting `PROMETHEUS_URL`).

Each entry of `spec.rollout.analysis` is a PromQL query with a `max` and/or a `min`: its
value above `max` (below `min`) for `for_seconds`, within the region's step or bake, halts
the revision (and with `auto_rollback` rolls it back). "For `for_seconds`" is asked of
Prometheus itself, with a subquery over that window evaluated at the server's time: above
`max` throughout means `min_over_time((query)[Ns:]) > max` (below `min`: the
`max_over_time` is under it), so the answer needs no memory in the daemon and survives a
restart or a leader change. A window longer than the step or bake so far is not asked yet.

A query without data is shown (`no data`) and counts as not crossed, unless its entry says
`on_no_data: halt` (then no data throughout the window counts as crossed). A Prometheus that
cannot be read, or no `PROMETHEUS_URL`, is a problem: shown, and the bake does not end on it.
Every request has a timeout and bounded retries with backoff.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable

import structlog

from store.gates import GateQuery, GateReading
from store.rollout import Analysis, RolloutPolicy

__all__ = ["PrometheusError", "PrometheusGate"]

log = structlog.get_logger(__name__)


class PrometheusError(Exception):
    """Prometheus could not answer a query (after the retries)."""


class PrometheusGate:
    """`store.gates.Gate` over PromQL queries.

    Args:
        url: the Prometheus server (None: no server configured; a policy with analysis
            is then held, and says why).
        timeout: seconds per HTTP request (default 2; the gate is read in a reconcile).
        attempts: tries per query including the first, on connection errors, timeouts and
            5xx (default 2).
        backoff: seconds before the second try, doubled after each (default 0.2).
        sleep: how the gate waits between tries (tests may pass a no-op).
    """

    name = "analysis"
    poll_seconds = 10.0
    paces_steps = False

    def __init__(
        self,
        url: str | None,
        *,
        timeout: float = 2.0,
        attempts: int = 2,
        backoff: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url.rstrip("/") if url else None
        self._timeout = timeout
        self._attempts = max(1, attempts)
        self._backoff = backoff
        self._sleep = sleep

    def applies(self, policy: RolloutPolicy) -> bool:
        return bool(policy.analysis)

    def read(self, query: GateQuery) -> GateReading:
        if self.url is None:
            problem = "analysis not read: the daemon has no PROMETHEUS_URL"
            return GateReading("unreadable", problem, problem=problem)
        elapsed = query.now - query.since
        shown: list[str] = []
        halts: list[str] = []
        for entry in query.policy.analysis:
            try:
                value, crossed = self.evaluate(entry, within=elapsed)
            except PrometheusError as error:
                problem = f"analysis {entry.name} not readable: {error}"[:300]
                log.warning("analysis not readable", analysis=entry.name, error=str(error))
                return GateReading("unreadable", problem, problem=problem)
            text = "no data" if value is None else f"{value:.4g}"
            shown.append(f"{entry.name}={text}")
            if crossed:
                halts.append(f"analysis {entry.name}: {_crossing(entry, value)}")
        if halts:
            return GateReading("violated", ", ".join(shown), halt="; ".join(halts))
        return GateReading("ok", ", ".join(shown))

    def evaluate(self, entry: Analysis, *, within: float) -> tuple[float | None, bool]:
        """(the query's value now, None without data; whether its bound is crossed for
        `for_seconds`, a window that must fit in the `within` seconds of the step or bake)."""
        value = _worst(self._query(entry.query), entry)
        window = entry.for_seconds
        if window > within:
            return value, False
        if window == 0:
            crossed = value is None if entry.on_no_data == "halt" else _crosses(entry, value)
            return value, crossed
        throughout = [
            _worst(self._query(f"{over}(({entry.query})[{window}s:])"), entry)
            for over, bound in (("min_over_time", entry.max), ("max_over_time", entry.min))
            if bound is not None
        ]
        if all(v is None for v in throughout):
            return value, entry.on_no_data == "halt"
        return value, any(_crosses(entry, v) for v in throughout)

    def close(self) -> None:
        """Nothing held between requests."""

    def _query(self, promql: str) -> list[float]:
        """The values of an instant query's series (a scalar counts as one)."""
        assert self.url is not None
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        delay = self._backoff
        for attempt in range(1, self._attempts + 1):
            try:
                with urllib.request.urlopen(url, timeout=self._timeout) as response:
                    body = json.loads(response.read())
                break
            except urllib.error.HTTPError as error:
                if error.code < 500 or attempt == self._attempts:
                    raise PrometheusError(_http_error(error)) from error
            except (urllib.error.URLError, TimeoutError, OSError) as error:
                if attempt == self._attempts:
                    raise PrometheusError(str(getattr(error, "reason", error))) from error
            self._sleep(delay)
            delay *= 2
        data = body.get("data") or {}
        if body.get("status") != "success":
            raise PrometheusError(str(body.get("error") or "query failed"))
        if data.get("resultType") == "scalar":
            return [float(data["result"][1])]
        return [float(series["value"][1]) for series in data.get("result") or []]


def _worst(values: list[float], entry: Analysis) -> float | None:
    """The value that matters most for the bound (the largest against a `max`, else the
    smallest); None without data (NaN counts as no data)."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return None
    return max(values) if entry.max is not None else min(values)


def _crosses(entry: Analysis, value: float | None) -> bool:
    if value is None:
        return False
    return (entry.max is not None and value > entry.max) or (
        entry.min is not None and value < entry.min
    )


def _crossing(entry: Analysis, value: float | None) -> str:
    window = f" for {entry.for_seconds}s" if entry.for_seconds else ""
    if value is None:
        return f"no data{window} (on_no_data: halt)"
    if entry.max is not None and value > entry.max:
        return f"{value:.4g} above max {entry.max:g}{window}"
    return f"{value:.4g} below min {entry.min:g}{window}"


def _http_error(error: urllib.error.HTTPError) -> str:
    try:
        detail = json.loads(error.read()).get("error")
    except (ValueError, OSError):
        detail = None
    return f"HTTP {error.code}" + (f": {detail}" if detail else "")
