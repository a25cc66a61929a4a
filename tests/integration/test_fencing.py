"""Fencing is end to end (architecture section 4; defects 12, 22 and 23): a deposed leader sends
nothing after its renew deadline, its in-flight writes are conditional on what they were
computed from, and its table writes carry its epoch, so a late write is refused instead of
overwriting the new leader's."""

from __future__ import annotations

from typing import Any

import pytest

from k8s.sim import SimCluster
from k8s.sim.faults import RequestArrival, RequestRecord
from store import commands
from store.errors import Superseded
from store.model import RegionStatus
from tests.integration.harness import REGION, Harness, wait_for

LEASE = "inference-monitor-leader"
# Wider than the harness's 3/2/0.5 s so that a loaded machine does not lose the lease early.
TIMINGS = {
    "LEASE_DURATION_SECONDS": "6",
    "LEASE_RENEW_DEADLINE_SECONDS": "4",
    "LEASE_RETRY_PERIOD_SECONDS": "1",
    # Longer than the renew deadline: an attempt that times out would, unfenced, be
    # retried after it.
    "K8S_API_TIMEOUT": "6",
}
RENEW_DEADLINE = 4.0
UPDATE_LATENCY = 10.0


def _from(records: list[Any], who: str) -> list[Any]:
    """The records (finished or arrived) of one daemon, by its user agent."""
    return [r for r in records if who in r.user_agent]


def _is_lease(record: RequestRecord | RequestArrival) -> bool:
    return "/leases" in record.path


def _is_update_of(record: RequestRecord | RequestArrival, path: str) -> bool:
    return record.verb == "UPDATE" and record.path.split("?")[0].endswith(path)


def test_a_deposed_leader_sends_nothing_after_its_renew_deadline(
    kit: Harness, sim: SimCluster
) -> None:
    a = kit.start_daemon(POD_NAME="daemon-a", **TIMINGS)
    wait_for(lambda: a.snapshot().leading, what="a leads")
    b = kit.start_daemon(POD_NAME="daemon-b", **TIMINGS)
    kit.put("m1")
    kit.wait_state("m1", "running")
    a_status = kit.status("m1")
    assert a_status is not None
    assert a_status.holder == "daemon-a"

    # a's Deployment updates take 10 s to be served: a's next one is in flight ...
    sim.set_faults(
        verbs=["UPDATE"], kinds=["deployments"], latency=UPDATE_LATENCY, user_agent="daemon-a"
    )
    updates = sim.counters().get("UPDATE deployments", 0)
    kit.store.apply("m1", commands.update_spec, {"replicas": 3})
    wait_for(
        lambda: sim.counters().get("UPDATE deployments", 0) > updates,
        what="a's update of m1 to reach the API server",
    )
    # ... when its lease calls start failing: it must stop writing by its renew deadline.
    sim.add_faults(kinds=["leases"], error_rate=1.0, error_status=500, user_agent="daemon-a")
    wait_for(lambda: b.snapshot().leading, timeout=20, what="b leads")
    lease = kit.kube.get("Lease", LEASE)
    assert lease["spec"]["holderIdentity"] == "daemon-b"

    # The new leader writes m1 (a's update is still waiting in the server) ...
    wait_for(lambda: kit.kube.get("Deployment", "m1")["spec"]["replicas"] == 3, what="b writes m1")
    kit.store.apply("m1", commands.update_spec, {"replicas": 4})
    wait_for(lambda: kit.kube.get("Deployment", "m1")["spec"]["replicas"] == 4, what="b writes 4")
    # ... then a's late update reaches the store: conditional on the version it was
    # computed from, it is refused.
    wait_for(
        lambda: any(
            _is_update_of(r, "/deployments/m1") for r in _from(sim.request_records(), "daemon-a")
        ),
        timeout=UPDATE_LATENCY + 5,
        what="a's update of m1 to be served",
    )
    records = sim.request_records()
    sent = sim.request_arrivals()
    sim.clear_faults()

    mine = _from(records, "daemon-a")
    renewals = [
        r.arrived
        for r in mine
        if _is_lease(r) and r.verb in ("CREATE", "UPDATE") and r.status in (200, 201)
    ]
    # a renews at the start of each attempt, so its deadline is at most this.
    deadline = max(renewals) + RENEW_DEADLINE
    late = [
        (r.verb, r.path, round(r.arrived - deadline, 2))
        for r in _from(sent, "daemon-a")
        if not _is_lease(r) and r.arrived >= deadline
    ]
    assert late == [], "the deposed leader sent requests after its renew deadline"

    b_wrote = min(
        r.finished
        for r in _from(records, "daemon-b")
        if _is_update_of(r, "/deployments/m1") and r.status == 200
    )
    a_updates = [r for r in mine if _is_update_of(r, "/deployments/m1")]
    landed_late = [r for r in a_updates if r.finished > b_wrote]
    assert landed_late, "a's update was still in flight when b wrote m1"
    assert {r.status for r in landed_late} == {409}, "a's late update overwrote b's"
    assert kit.kube.get("Deployment", "m1")["spec"]["replicas"] == 4

    # The table: b's status entry carries b's epoch, taken when b began to lead; a's is older.
    status = wait_for(
        lambda: (s := kit.status("m1")) is not None and s.holder == "daemon-b" and s,
        what="b's status of m1",
    )
    assert a_status.epoch is not None
    assert status.epoch is not None
    assert status.epoch > a_status.epoch
    a.stop()
    b.stop()


def test_a_late_status_write_of_the_old_leader_is_refused(kit: Harness) -> None:
    """moto does not serialise conditional writes against concurrent ones, so the race is
    played in its order: the new leader writes at epoch N+1, then the old one's late write
    at epoch N arrives."""
    kit.put("m1")
    store = kit.store
    # An entry the predecessor wrote (no epoch) never refuses.
    assert store.write_region_status("m1", REGION, RegionStatus(state="creating"))
    old = RegionStatus(state="running", replicas_ready=1, replicas_desired=1)
    assert store.write_region_status("m1", REGION, old, epoch=4, holder="daemon-a")
    assert kit.status("m1") == RegionStatus(
        state="running",
        replicas_ready=1,
        replicas_desired=1,
        last_sync=kit.status("m1").last_sync,
        epoch=4,
        holder="daemon-a",
    )
    new = RegionStatus(state="updating", replicas_ready=1, replicas_desired=3)
    assert store.write_region_status("m1", REGION, new, epoch=5, holder="daemon-b")

    with pytest.raises(Superseded) as refused:
        store.write_region_status("m1", REGION, old, epoch=4, holder="daemon-a")
    assert (refused.value.epoch, refused.value.holder) == (5, "daemon-b")
    with pytest.raises(Superseded):
        store.write_region_status("m1", REGION, old, epoch=5, holder="daemon-a")
    with pytest.raises(Superseded):
        store.write_region_status("m1", REGION, None, epoch=4, holder="daemon-a")
    stored = kit.status("m1")
    assert (stored.state, stored.epoch, stored.holder) == ("updating", 5, "daemon-b")

    # Another region's entry has its own leader and epoch: not compared.
    assert store.write_region_status("m1", "eu-west-1", old, epoch=1, holder="daemon-x")
    # The same leader rewrites its own entry.
    assert store.write_region_status("m1", REGION, old, epoch=5, holder="daemon-b")


def test_a_late_purge_of_the_old_leader_is_refused(kit: Harness) -> None:
    kit.put("m1", desired_state="deleted")
    store = kit.store
    deleted = RegionStatus(state="deleted")
    assert store.write_region_status("m1", REGION, deleted, epoch=5, holder="daemon-b")
    assert not store.purge_if_deleted("m1", [REGION], region=REGION, epoch=4, holder="daemon-a")
    assert kit.item("m1") is not None
    assert store.purge_if_deleted("m1", [REGION], region=REGION, epoch=5, holder="daemon-b")
    assert kit.item("m1") is None
