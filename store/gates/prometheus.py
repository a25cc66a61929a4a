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
    """Prometheus could not answer a query (after the retries); `outcome` names the kind
    for the metric: "http_<code>", "unreachable" or "bad_answer"."""

    def __init__(self, message: str, outcome: str) -> None:
        super().__init__(message)
        self.outcome = outcome


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
        on_request: called as `on_request(outcome)` once per query answered or given up
            ("ok", or `PrometheusError.outcome`).
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
        on_request: Callable[[str], None] | None = None,
    ) -> None:
        self.url = url.rstrip("/") if url else None
        self._timeout = timeout
        self._attempts = max(1, attempts)
        self._backoff = backoff
        self._sleep = sleep
        self._on_request = on_request

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
            if crossed is not None:
                halts.append(f"analysis {entry.name}: {crossed}")
        if halts:
            return GateReading("violated", ", ".join(shown), halt="; ".join(halts))
        return GateReading("ok", ", ".join(shown))

    def evaluate(self, entry: Analysis, *, within: float) -> tuple[float | None, str | None]:
        """(the query's value now, None without data; why its bound counts as crossed for
        `for_seconds`, None when it does not). The window must fit in the `within` seconds
        the step or bake has run, else it is not asked yet."""
        values = self._query(entry.query)
        value = _pick(values, high=entry.max is not None)
        window = entry.for_seconds
        if window > within:
            return value, None
        suffix = f" for {window}s" if window else ""
        data = False
        for bound, high, over in (
            (entry.max, True, "min_over_time"),
            (entry.min, False, "max_over_time"),
        ):
            if bound is None:
                continue
            # Crossed throughout the window: its least value above max (largest below min).
            found = self._query(f"{over}(({entry.query})[{window}s:])") if window else values
            worst = _pick(found, high=high)
            if worst is None:
                continue
            data = True
            if (worst > bound) if high else (worst < bound):
                side = "above max" if high else "below min"
                return value, f"{worst:.4g} {side} {bound:g}{suffix}"
        if not data and entry.on_no_data == "halt":
            return value, f"no data{suffix} (on_no_data: halt)"
        return value, None

    def close(self) -> None:
        """Nothing held between requests."""

    def _query(self, promql: str) -> list[float]:
        """The values of an instant query's series (a scalar counts as one); counted."""
        try:
            values = self._ask(promql)
        except PrometheusError as error:
            self._count(error.outcome)
            raise
        self._count("ok")
        return values

    def _count(self, outcome: str) -> None:
        if self._on_request is not None:
            self._on_request(outcome)

    def _ask(self, promql: str) -> list[float]:
        assert self.url is not None
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        delay = self._backoff
        for attempt in range(1, self._attempts + 1):
            try:
                with urllib.request.urlopen(url, timeout=self._timeout) as response:
                    body = json.loads(response.read())
                break
            except ValueError as error:
                raise PrometheusError(f"not JSON: {error}", "bad_answer") from error
            except urllib.error.HTTPError as error:
                if error.code < 500 or attempt == self._attempts:
                    raise PrometheusError(_http_error(error), f"http_{error.code}") from error
            except (urllib.error.URLError, TimeoutError, OSError) as error:
                if attempt == self._attempts:
                    reason = str(getattr(error, "reason", error))
                    raise PrometheusError(reason, "unreachable") from error
            self._sleep(delay)
            delay *= 2
        data = body.get("data") or {}
        if body.get("status") != "success":
            raise PrometheusError(str(body.get("error") or "query failed"), "bad_answer")
        try:
            if data.get("resultType") == "scalar":
                return [float(data["result"][1])]
            return [float(series["value"][1]) for series in data.get("result") or []]
        except (KeyError, IndexError, TypeError, ValueError) as error:
            raise PrometheusError(f"unexpected answer: {error!r}", "bad_answer") from error


def _pick(values: list[float], *, high: bool) -> float | None:
    """The value that matters for a bound among a query's series: the largest against a
    `max` (`high`), else the smallest; None without data (NaN counts as no data)."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return None
    return max(values) if high else min(values)


def _http_error(error: urllib.error.HTTPError) -> str:
    try:
        detail = json.loads(error.read()).get("error")
    except (ValueError, OSError):
        detail = None
    return f"HTTP {error.code}" + (f": {detail}" if detail else "")
