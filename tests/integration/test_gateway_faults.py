"""Retries, timeouts and the rate limit of the gateway under injected API faults.

Retry waits go to a recording `sleep` (no real waiting), so the tests see the
backoff schedule the gateway used.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

from actors.clock import FakeClock
from k8s import errors
from k8s.gateway import ClusterGateway, GatewaySettings, make_api_client
from k8s.manifests import build_service
from k8s.workload import Workload
from tests.sim_aids import NAMESPACE

SERVICE = build_service(Workload(name="m1", namespace=NAMESPACE, image="x:1"))


def _gateway(url: str, clock: FakeClock, **settings: Any) -> ClusterGateway:
    return ClusterGateway(
        make_api_client(url=url),
        GatewaySettings(namespace=NAMESPACE, **settings),
        sleep=clock.sleep,
        monotonic=clock.monotonic,
        random=lambda: 0.0,
    )


def test_persistent_500s_end_in_retryable_after_bounded_retries(sim: Any) -> None:
    clock = FakeClock()
    gw = _gateway(sim.url, clock, max_retries=3, backoff_base=0.2, backoff_cap=5.0)
    sim.set_faults(error_rate=1.0, error_status=500)
    with pytest.raises(errors.Retryable, match="get Service m1: HTTP 500") as caught:
        gw.ensure(SERVICE)
    assert caught.value.status == 500
    assert sim.counters()["GET services"] == 4
    assert clock.slept == pytest.approx([0.2, 0.4, 0.8])
    assert gw.request_counts() == {("get", "Service", "500"): 4}


def test_429_honours_retry_after(sim: Any) -> None:
    clock = FakeClock()
    gw = _gateway(sim.url, clock, max_retries=2, backoff_base=0.2)
    sim.set_faults(error_rate=1.0, error_status=429)
    with pytest.raises(errors.Retryable) as caught:
        gw.ensure(SERVICE)
    assert caught.value.status == 429
    assert caught.value.retry_after == 1.0
    assert clock.slept == pytest.approx([1.0, 1.0])
    assert sim.counters()["GET services"] == 3


def test_partial_faults_are_absorbed_by_retries(sim: Any) -> None:
    clock = FakeClock()
    gw = _gateway(sim.url, clock, max_retries=20)
    sim.set_faults(error_rate=0.5, error_status=500)
    results = [gw.ensure(SERVICE) for _ in range(5)]
    assert results[0] == "created"
    assert results[1:] == ["unchanged"] * 4
    sim.clear_faults()
    assert [s["metadata"]["name"] for s in sim.objects("services", NAMESPACE)] == ["m1"]


def test_a_slow_server_times_out_as_retryable(sim: Any) -> None:
    clock = FakeClock()
    gw = _gateway(sim.url, clock, timeout=0.2, max_retries=1)
    sim.set_faults(latency=2.0, verbs=["GET"])
    with pytest.raises(errors.Retryable, match="Timeout") as caught:
        gw.ensure(SERVICE)
    assert caught.value.reason == "Timeout"
    assert gw.request_counts() == {("get", "Service", "timeout"): 2}


def test_an_unreachable_server_is_a_retryable_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    clock = FakeClock()
    gw = _gateway(f"http://127.0.0.1:{port}", clock, max_retries=2)
    with pytest.raises(errors.Retryable) as caught:
        gw.ensure(SERVICE)
    assert caught.value.reason == "ConnectionError"
    assert gw.request_counts() == {("get", "Service", "error"): 3}


def test_lease_calls_are_single_attempts(sim: Any) -> None:
    clock = FakeClock()
    gw = _gateway(sim.url, clock, max_retries=5)
    sim.set_faults(error_rate=1.0, error_status=500, kinds=["leases"])
    with pytest.raises(errors.Retryable):
        gw.get_lease("leader", timeout=1.0)
    assert sim.counters()["GET leases"] == 1
    assert clock.slept == []


def test_the_rate_limit_paces_requests_but_never_lease_calls(sim: Any) -> None:
    clock = FakeClock()
    gw = _gateway(sim.url, clock, qps=2.0, burst=2)
    for _ in range(4):
        gw.ensure_namespace()
    assert clock.slept == pytest.approx([0.5, 0.5])
    for _ in range(3):
        gw.get_lease("leader")
    assert clock.slept == pytest.approx([0.5, 0.5])


def test_the_on_request_callback_sees_every_request(sim: Any) -> None:
    seen: list[tuple[str, str, str]] = []

    def broken_metrics(verb: str, kind: str, outcome: str) -> None:
        seen.append((verb, kind, outcome))
        raise RuntimeError("metrics bug")

    gw = ClusterGateway(
        make_api_client(url=sim.url),
        GatewaySettings(namespace=NAMESPACE),
        on_request=broken_metrics,
    )
    assert gw.ensure(SERVICE) == "created"
    assert seen == [("get", "Service", "404"), ("create", "Service", "ok")]
