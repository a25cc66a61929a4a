"""Leader election between daemons sharing one Lease (architecture section 4, defect 12):
only the leader writes; a graceful stop hands over within seconds; a crashed leader
is replaced once its lease expires."""

from __future__ import annotations

from actors.app.daemon import Daemon
from store import commands
from tests.integration.harness import Harness, wait_for


def _writes(daemon: Daemon) -> float:
    """Endpoint writes this daemon made: Kubernetes object writes and table writes."""
    total = 0.0
    for family in daemon.metrics.registry.collect():
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "inference_supervisor_k8s_requests_total"
                and labels.get("kind") != "Lease"
                and labels.get("verb") in ("create", "update", "patch", "delete")
            ):
                total += sample.value
            if sample.name == "inference_supervisor_dynamodb_requests_total" and labels.get(
                "operation"
            ) in (
                "UpdateItem",
                "PutItem",
                "DeleteItem",
            ):
                total += sample.value
    return total


def test_only_the_leader_writes(kit: Harness) -> None:
    first = kit.start_daemon(POD_NAME="daemon-a")
    wait_for(lambda: first.snapshot().leading, what="a leads")
    second = kit.start_daemon(POD_NAME="daemon-b")
    kit.put("m1")
    kit.wait_state("m1", "running")
    assert not second.snapshot().leading
    assert _writes(first) > 0
    assert _writes(second) == 0
    lease = kit.kube.get("Lease", "inference-monitor-leader")
    assert lease["spec"]["holderIdentity"] == "daemon-a"


def test_graceful_stop_releases_the_lease_and_the_standby_takes_over(kit: Harness) -> None:
    first = kit.start_daemon(
        POD_NAME="daemon-a", LEASE_DURATION_SECONDS="30", LEASE_RENEW_DEADLINE_SECONDS="20"
    )
    wait_for(lambda: first.snapshot().leading, what="a leads")
    second = kit.start_daemon(
        POD_NAME="daemon-b", LEASE_DURATION_SECONDS="30", LEASE_RENEW_DEADLINE_SECONDS="20"
    )
    kit.put("m1")
    kit.wait_state("m1", "running")
    first.stop()
    lease = kit.kube.get("Lease", "inference-monitor-leader")
    assert lease["spec"]["holderIdentity"] in ("", "daemon-b")
    # Well inside the 30 s lease: only a release lets b in this fast.
    wait_for(lambda: second.snapshot().leading, timeout=5, what="b leads after release")
    kit.store.apply("m1", commands.update_spec, {"replicas": 3})
    wait_for(lambda: kit.kube.get("Deployment", "m1")["spec"]["replicas"] == 3, what="b reconciles")


def test_crashed_leader_is_replaced_after_its_lease_expires(kit: Harness) -> None:
    first = kit.start_daemon(POD_NAME="daemon-a")
    wait_for(lambda: first.snapshot().leading, what="a leads")
    second = kit.start_daemon(POD_NAME="daemon-b")
    kit.put("m1")
    kit.wait_state("m1", "running")
    first.stop(release=False)
    lease = kit.kube.get("Lease", "inference-monitor-leader")
    assert lease["spec"]["holderIdentity"] == "daemon-a", "a crash releases nothing"
    wait_for(lambda: second.snapshot().leading, timeout=15, what="b leads after expiry")
    assert kit.kube.get("Lease", "inference-monitor-leader")["spec"]["holderIdentity"] == (
        "daemon-b"
    )
    kit.store.apply("m1", commands.update_spec, {"replicas": 2})
    wait_for(lambda: kit.kube.get("Deployment", "m1")["spec"]["replicas"] == 2, what="b reconciles")
