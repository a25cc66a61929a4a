"""The daemon's decisions are Kubernetes Events on the endpoint's Deployment (architecture section
12):
the watchdog cutting traffic and restoring it are each one Event, written once when the
decision changes (not on every reconcile), read back with the real kubernetes client as
`kubectl describe deployment` reads them, and each is counted in
`inference_supervisor_decisions_total`. The rollout's Events are covered with the alarm
gate (`tests/integration/test_rollout_alarms.py`)."""

from __future__ import annotations

from kubernetes import client

from actors.app.daemon import Daemon
from actors.clock import FakeClock
from store import commands
from tests.integration.harness import FAKE_TIME_LEASE, NAMESPACE, Harness, drive, metric_total

THRESHOLD = 60


def _events(kit: Harness, name: str) -> list[client.CoreV1Event]:
    """The Events on Deployment `name`, as `kubectl describe deployment` selects them."""
    found = client.CoreV1Api(kit.kube.api).list_namespaced_event(
        NAMESPACE,
        field_selector=f"involvedObject.kind=Deployment,involvedObject.name={name}",
    )
    return sorted(found.items, key=lambda e: e.metadata.creation_timestamp)


def _counted(daemon: Daemon, decision: str) -> float:
    return metric_total(daemon, "inference_supervisor_decisions_total", decision=decision)


def _reconciles(daemon: Daemon) -> float:
    return metric_total(daemon, "inference_supervisor_reconcile_duration_seconds_count")


def test_a_watchdog_cut_and_restore_are_one_event_each_on_the_deployment(
    fake_time_kit: Harness, clock: FakeClock
) -> None:
    kit = fake_time_kit
    kit.put("m1", image="repo/model:crashloop")
    daemon = kit.start_daemon(
        clock=clock,
        POD_NAME="daemon-a",
        RECONCILE_INTERVAL_SECONDS="5",
        INFERENCE_UNHEALTHY_THRESHOLD_SECONDS=str(THRESHOLD),
        **FAKE_TIME_LEASE,
    )
    drive(clock, lambda: kit.kube.get("Ingress", "inference-m1"), what="Ingress created")
    drive(
        clock,
        lambda: kit.kube.get("Ingress", "inference-m1") is None,
        step=5,
        what="the watchdog removing the Ingress",
    )
    # Many reconciles later (resyncs, heartbeats, a spec change that keeps it dead), the
    # cut is still one Event.
    reconciles = _reconciles(daemon)
    kit.store.apply("m1", commands.update_spec, {"replicas": 2})
    drive(
        clock,
        lambda: _reconciles(daemon) >= reconciles + 5,
        step=5,
        timeout=60,
        what="more reconciles",
    )
    deployment = kit.kube.get("Deployment", "m1")
    assert deployment is not None
    [cut] = _events(kit, "m1")
    assert (cut.reason, cut.type, cut.count) == ("TrafficCut", "Warning", 1)
    assert "traffic stopped" in cut.message
    assert cut.source.component == "inference-supervisor"
    assert cut.first_timestamp is not None
    assert cut.last_timestamp is not None
    assert (
        cut.involved_object.kind,
        cut.involved_object.name,
        cut.involved_object.namespace,
    ) == ("Deployment", "m1", NAMESPACE)
    assert deployment["metadata"]["uid"] == cut.involved_object.uid
    assert _counted(daemon, "TrafficCut") == 1

    kit.store.apply("m1", commands.update_spec, {"image": "repo/model:v2"})
    drive(
        clock,
        lambda: kit.kube.get("Ingress", "inference-m1") is not None,
        what="the Ingress back",
    )
    reconciles = _reconciles(daemon)
    drive(clock, lambda: _reconciles(daemon) >= reconciles + 3, step=5, what="more reconciles")
    assert [e.reason for e in _events(kit, "m1")] == ["TrafficCut", "TrafficRestored"]
    assert _counted(daemon, "TrafficRestored") == 1
    assert _counted(daemon, "TrafficCut") == 1
