"""The Prometheus analysis gate (architecture section 12, `store.gates.prometheus`, policy
field `analysis`, daemon setting PROMETHEUS_URL), against a real Prometheus server that
scrapes an exporter the test controls every second (`tests.integration.prometheus`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.clock import FakeClock
from store.gates import GateQuery
from store.gates.prometheus import PrometheusGate
from store.rollout import RolloutPolicy, parse_rollout, revision
from tests.integration.harness import metric_total
from tests.integration.prometheus import BINARY, Served, served
from tests.integration.regions import Regions, regions

pytestmark = pytest.mark.skipif(
    BINARY is None, reason="prometheus not installed (apt-get install prometheus)"
)

US, EU = "us-east-1", "eu-west-1"
V1, V2 = "repo/model:v1", "repo/model:v2"
ERRORS = {"name": "errors", "query": "test_error_rate", "max": 1, "for_seconds": 3}


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Served]:
    with served(tmp_path) as server:
        yield server


def policy(*analysis: dict) -> RolloutPolicy:
    parsed = parse_rollout({"rollout": {"analysis": list(analysis)}})
    assert parsed is not None
    return parsed


def ask(gate: PrometheusGate, policy: RolloutPolicy, *, elapsed: float = 60.0):
    return gate.read(
        GateQuery(
            endpoint="m1",
            namespace="gco-inference",
            region=US,
            policy=policy,
            phase="baking",
            since=1000.0 - elapsed,
            now=1000.0,
        )
    )


def until(check, *, timeout: float = 30.0):
    """Poll `check()` until it returns a truthy value (real time: Prometheus scrapes)."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)
    return found


def test_a_bound_crossed_for_its_window_halts_and_no_data_is_shown(prometheus: Served) -> None:
    gate = PrometheusGate(prometheus.url)
    errors = policy(ERRORS)
    prometheus.exporter.values["test_error_rate"] = 0.2
    # Below a min, for the window, too (both bounds on one query: a band).
    prometheus.exporter.values["test_throughput"] = 2
    ok = until(lambda: (r := ask(gate, errors)).detail == "errors=0.2" and r)
    assert (ok.state, ok.halt) == ("ok", None)

    prometheus.exporter.values["test_error_rate"] = 5
    violated = until(lambda: (r := ask(gate, errors)).halt is not None and r)
    assert violated.state == "violated"
    assert violated.halt == "analysis errors: 5 above max 1 for 3s"
    # A window longer than the step or bake so far is not asked yet.
    assert ask(gate, errors, elapsed=2).halt is None

    band = policy(
        {"name": "rps", "query": "test_throughput", "min": 10, "max": 100, "for_seconds": 3}
    )
    low = until(lambda: (r := ask(gate, band)).halt is not None and r)
    assert (low.detail, low.halt) == ("rps=2", "analysis rps: 2 below min 10 for 3s")

    absent = {"name": "latency", "query": "absent_metric_seconds", "min": 0.5, "for_seconds": 3}
    shown = ask(gate, policy(absent))
    assert (shown.state, shown.detail, shown.halt) == ("ok", "latency=no data", None)
    halts = ask(gate, policy({**absent, "on_no_data": "halt"}))
    assert halts.halt == "analysis latency: no data for 3s (on_no_data: halt)"


def test_an_unreadable_prometheus_is_a_problem_not_a_pass() -> None:
    gate = PrometheusGate("http://127.0.0.1:9", timeout=0.5, sleep=lambda _: None)
    reading = ask(gate, policy(ERRORS))
    assert (reading.state, reading.halt) == ("unreadable", None)
    assert reading.problem is not None
    assert reading.problem.startswith("analysis errors not readable: ")
    unset = ask(PrometheusGate(None), policy(ERRORS))
    assert unset.problem == "analysis not read: the daemon has no PROMETHEUS_URL"


def test_a_query_over_its_bound_during_the_bake_halts_and_rolls_back(
    dynamo_url: str, table_name: str, prometheus: Served
) -> None:
    """The first wave bakes under `errors` (max 1 for 3 s), which is at 5: the revision
    halts naming the query, the wave rolls back, the next wave never runs it."""
    prometheus.exporter.values["test_error_rate"] = 5
    until(lambda: ask(PrometheusGate(prometheus.url), policy(ERRORS)).halt)
    with regions(dynamo_url, table_name, (US, EU), FakeClock()) as world:
        for region in world.names:
            world.start(region, PROMETHEUS_URL=prometheus.url)
        world.put("m1")
        world.drive("m1", lambda: _running(world), what="v1 running everywhere")
        world.update("m1", V2, {"waves": [[US]], "bake_seconds": 600, "analysis": [ERRORS]})
        new = revision(world.item("m1").raw["spec"])
        world.drive(
            "m1",
            lambda: world.record("m1").halt is not None and world.image("m1", US) == V1,
            timeout=120,
            what="the halt and the rollback",
        )
        halt = world.record("m1").halt
        assert (halt.revision, halt.region, halt.reason) == (
            new,
            US,
            "analysis errors: 5 above max 1 for 3s",
        )
        assert world.timeline.when(EU, V2) is None
        reads = "inference_supervisor_gate_reads_total"
        assert metric_total(world.daemons[US], reads, gate="analysis", outcome="ok") >= 1


def _running(world: Regions) -> bool:
    return all(
        (s := world.status("m1", r)) is not None and s.state == "running" for r in world.names
    )
