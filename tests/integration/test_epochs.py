"""A leader's epoch never goes back (architecture section 4; issue 19 item 10, issue 22 case 2).

The epoch that fences status and item writes is taken from the table each time a daemon
starts leading, not read from the Lease's `leaseTransitions`, which restarts at 0 when the
Lease is deleted by hand or the whole cluster is rebuilt. Before, either froze the region's
status for good: every write of the new leader was refused as older than the stamp its
predecessor left on the items.
"""

from __future__ import annotations

import pytest

from k8s.sim import SimCluster
from store import commands
from store.dynamo import DynamoEndpointStore
from store.errors import Superseded
from tests.integration.harness import REGION, Harness, metric_total, wait_for

LEASE = "inference-monitor-leader"


def _hand_over(kit: Harness) -> tuple[int, str]:
    """a leads and reports m1; a stops gracefully and b takes over (leaseTransitions 1)
    and reports. Returns a's epoch and b's identity."""
    a = kit.start_daemon(POD_NAME="daemon-a")
    wait_for(lambda: a.snapshot().leading, what="a leads")
    b = kit.start_daemon(POD_NAME="daemon-b")
    kit.put("m1", replicas=1)
    first = kit.wait_state("m1", "running")
    assert first.holder == "daemon-a"
    assert first.epoch is not None
    a.stop()
    wait_for(lambda: b.snapshot().leading, what="b leads after a's release")
    kit.store.apply("m1", commands.update_spec, {"replicas": 2})
    wait_for(
        lambda: (
            (s := kit.status("m1")) is not None
            and (s.holder, s.state, s.replicas_desired) == ("daemon-b", "running", 2)
        ),
        what="b reports m1 at 2 replicas",
    )
    lease = kit.kube.get("Lease", LEASE)
    assert lease is not None
    assert lease["spec"]["leaseTransitions"] >= 1
    return first.epoch, "daemon-b"


def test_a_lease_deleted_by_hand_does_not_freeze_status(kit: Harness) -> None:
    old_epoch, leader = _hand_over(kit)
    stamped = kit.status("m1")
    assert stamped is not None
    assert stamped.epoch is not None

    # An operator deletes the Lease: the leader recreates it (leaseTransitions 0 again).
    assert kit.kube.delete("Lease", LEASE) in (200, 202)
    wait_for(
        lambda: (
            (lease := kit.kube.get("Lease", LEASE)) is not None
            and lease["spec"]["holderIdentity"] == leader
            and not lease["spec"].get("leaseTransitions")
        ),
        what="the Lease recreated by the leader",
    )
    # Status writes go on: a change is applied and reported, within one lease duration.
    kit.store.apply("m1", commands.update_spec, {"replicas": 3})
    wait_for(
        lambda: (
            (s := kit.status("m1")) is not None
            and (s.state, s.replicas_desired, s.replicas_ready) == ("running", 3, 3)
        ),
        what="the change to 3 replicas reported after the Lease was recreated",
    )

    # Deleted again, and a third daemon takes over: a new epoch, above every one before.
    assert kit.kube.delete("Lease", LEASE) in (200, 202)
    for daemon in kit.daemons:
        daemon.stop(release=False)
    c = kit.start_daemon(POD_NAME="daemon-c")
    wait_for(lambda: c.snapshot().leading, what="c leads")
    kit.store.apply("m1", commands.update_spec, {"replicas": 1})
    status = wait_for(
        lambda: (
            (s := kit.status("m1")) is not None
            and s.holder == "daemon-c"
            and (s.state, s.replicas_desired) == ("running", 1)
            and s
        ),
        what="c reports m1 at 1 replica",
    )
    assert status.epoch > stamped.epoch > old_epoch

    # A deposed leader's late write is still refused.
    late = stamped.__class__(state="error", error="late write of a deposed leader")
    with pytest.raises(Superseded):
        kit.store.write_region_status("m1", REGION, late, epoch=old_epoch, holder="daemon-a")
    with pytest.raises(Superseded):
        kit.store.write_region_status("m1", REGION, late, epoch=stamped.epoch, holder=leader)
    assert kit.state("m1") == "running"


def test_a_rebuilt_cluster_reports_and_purges_in_the_same_region(
    kit: Harness, sim: SimCluster
) -> None:
    _hand_over(kit)
    for daemon in kit.daemons:
        daemon.stop()
    # The cluster is rebuilt: an empty API server (no Lease, no objects), a new daemon.
    sim.restart(empty=True)
    wait_for(lambda: kit.kube.get("Lease", LEASE) is None, what="the empty cluster")
    rebuilt = kit.start_daemon(POD_NAME="daemon-rebuilt")
    wait_for(lambda: rebuilt.snapshot().leading, what="the rebuilt cluster's daemon leads")
    kit.store.apply("m1", commands.update_spec, {"replicas": 3})
    wait_for(
        lambda: (
            (s := kit.status("m1")) is not None
            and (s.holder, s.state, s.replicas_desired, s.replicas_ready)
            == ("daemon-rebuilt", "running", 3, 3)
        ),
        what="the rebuilt cluster's status of m1 at 3 replicas",
    )
    # A delete completes: objects gone, `deleted` reported, the item purged.
    kit.store.apply("m1", commands.set_desired_state, "deleted")
    wait_for(lambda: kit.item("m1") is None, what="m1 purged after the delete")
    assert kit.kube.get("Deployment", "m1") is None


def test_the_epoch_counter_is_not_an_endpoint(store: DynamoEndpointStore) -> None:
    """The per-region counter lives in the table but is never served, listed or reported."""
    assert store.take_epoch("eu-west-1", floor=4) == 5
    assert store.take_epoch("eu-west-1", floor=4) == 6
    assert store.take_epoch("us-east-1") == 1
    assert store.scan() == []


def test_refused_writes_show_on_readyz_and_in_a_metric(kit: Harness) -> None:
    """A daemon whose status writes a newer leader's epoch refuses says so where an
    operator looks (/readyz, a metric), not only in a log line per write."""
    daemon = kit.start_daemon(POD_NAME="daemon-a")
    kit.put("m1", replicas=1)
    mine = kit.wait_state("m1", "running")
    assert daemon._ready() == (True, "leader")
    # Another daemon of this region (a second cluster, say) led after us and wrote m1.
    newer = kit.store.take_epoch(REGION)
    assert mine.epoch is not None
    assert newer > mine.epoch
    kit.store.write_region_status(
        "m1",
        REGION,
        mine.__class__(state="running", replicas_ready=1, replicas_desired=1),
        epoch=newer,
        holder="other-cluster-daemon",
    )
    kit.store.apply("m1", commands.update_spec, {"replicas": 2})
    wait_for(
        lambda: "refused by a newer leader's epoch" in daemon._ready()[1],
        what="/readyz to say that status writes are refused",
    )
    ready, text = daemon._ready()
    assert ready
    assert "other-cluster-daemon" in text
    assert metric_total(daemon, "inference_supervisor_status_writes_refused_total") >= 1
    status = kit.status("m1")
    assert status is not None
    assert status.holder == "other-cluster-daemon", "the newer leader's entry was not overwritten"
