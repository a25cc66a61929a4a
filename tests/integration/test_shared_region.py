"""Two clusters serving one region (issue 22 case 3; architecture sections 2 and 4).

A blue/green cluster migration runs two daemons with the same `REGION` and different
`CLUSTER_NAME`s against one table. Each keeps its own status entry under
`region_status.<region>.clusters.<cluster>`, fenced by its own epoch, under a summary
the region-level fields give (what the predecessor's CLI reads); each cleans up its own
copies, and a delete is purged only once every cluster reports `deleted`. One cluster per
region keeps the predecessor's entry exactly. Real moto, two `k8s.sim` API servers,
two in-process daemons.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from k8s.sim import SimCluster
from store import commands
from store.dynamo import DynamoEndpointStore
from store.errors import Superseded
from store.model import RegionStatus, utc_timestamp
from tests.integration.harness import (
    REGION,
    CliResult,
    Harness,
    harness,
    metric_total,
    wait_for,
)
from tests.items import item

REFUSED = "inference_supervisor_status_writes_refused_total"


@pytest.fixture
def green_sim() -> Iterator[SimCluster]:
    """The second cluster of the region."""
    cluster = SimCluster(port=0, ready_delay=0.2).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def green(dynamo_url: str, table_name: str, green_sim: SimCluster) -> Iterator[Harness]:
    """A harness on the same table as `kit`, on the second cluster."""
    with harness(dynamo_url, table_name, green_sim.url) as h:
        yield h


def _start(kit: Harness, cluster: str) -> Any:
    daemon = kit.start_daemon(CLUSTER_NAME=cluster, POD_NAME=f"{cluster}-a")
    wait_for(lambda: daemon.snapshot().leading, what=f"{cluster}'s daemon leads")
    return daemon


def _entry(kit: Harness, name: str) -> dict[str, Any]:
    item = kit.item(name)
    assert item is not None
    return item.raw["region_status"][REGION]


def _clusters(kit: Harness, name: str) -> dict[str, RegionStatus]:
    item = kit.item(name)
    if item is None:
        return {}
    found = item.raw.get("region_status", {}).get(REGION, {}).get("clusters", {})
    return {c: RegionStatus.from_item(e) for c, e in found.items()}


def _both(kit: Harness, name: str, state: str, replicas: int) -> dict[str, RegionStatus]:
    """Wait until blue and green both report `state` at `replicas` ready."""
    return wait_for(
        lambda: (
            (found := _clusters(kit, name)).keys() == {"blue", "green"}
            and all(
                (s.state, s.replicas_ready, s.replicas_desired) == (state, replicas, replicas)
                for s in found.values()
            )
            and found
        ),
        timeout=30,
        what=f"{name} {state} at {replicas} in both clusters (now {_clusters(kit, name)})",
    )


def test_each_cluster_keeps_its_own_status_and_applies_every_change(
    kit: Harness, green: Harness
) -> None:
    blue_daemon = _start(kit, "blue")
    green_daemon = _start(green, "green")
    kit.put("m1", replicas=1)
    first = _both(kit, "m1", "running", 1)
    assert first["blue"].epoch != first["green"].epoch, "each cluster writes with its own epoch"
    entry = _entry(kit, "m1")
    # The region-level fields summarise both: what the predecessor's CLI reads.
    assert (entry["state"], entry["replicas_ready"], entry["replicas_desired"]) == (
        "running",
        2,
        2,
    )
    assert kit.state("m1") == "running"
    wait_for(lambda: kit.item("m1").endpoint.desired_state == "running", what="running")

    kit.store.apply("m1", commands.update_spec, {"replicas": 3})
    _both(kit, "m1", "running", 3)
    for cluster in (kit, green):
        deployment = cluster.kube.get("Deployment", "m1")
        assert deployment is not None
        assert deployment["spec"]["replicas"] == 3
    entry = _entry(kit, "m1")
    assert (entry["state"], entry["replicas_ready"]) == ("running", 6)
    # Neither cluster's writes were refused by the other's epoch.
    assert metric_total(blue_daemon, REFUSED) == 0
    assert metric_total(green_daemon, REFUSED) == 0
    assert blue_daemon._ready() == (True, "leader")
    assert green_daemon._ready() == (True, "leader")


def test_a_delete_cleans_both_clusters_before_the_item_is_purged(
    kit: Harness, green: Harness
) -> None:
    _start(kit, "blue")
    _start(green, "green")
    kit.put("m1", replicas=1)
    _both(kit, "m1", "running", 1)
    kit.store.apply("m1", commands.set_desired_state, "deleted")
    wait_for(lambda: kit.item("m1") is None, timeout=30, what="m1 purged")
    for cluster in (kit, green):
        assert cluster.kube.get("Deployment", "m1") is None
        assert cluster.kube.get("Service", "m1") is None
        assert cluster.kube.get("Ingress", "inference-m1") is None


def test_a_delete_is_not_purged_while_a_cluster_that_holds_copies_is_down(
    kit: Harness, green: Harness, cli: Callable[..., CliResult]
) -> None:
    _start(kit, "blue")
    green_daemon = _start(green, "green")
    kit.put("m1", replicas=1)
    _both(kit, "m1", "running", 1)
    green_daemon.stop()
    kit.store.apply("m1", commands.set_desired_state, "deleted")
    wait_for(
        lambda: (
            kit.item("m1") is None
            or _clusters(kit, "m1").get("blue", RegionStatus("")).state == "deleted"
        ),
        timeout=30,
        what="blue reports m1 deleted",
    )
    assert kit.item("m1") is not None, "purged on blue's report alone"
    assert kit.kube.get("Deployment", "m1") is None
    # Green's copies are still there, so the item stays, and the region says why.
    entry = _entry(kit, "m1")
    assert entry["state"] == "deleting"
    assert "green: running" in entry["error"]
    assert green.kube.get("Deployment", "m1") is not None
    assert kit.item("m1") is not None
    # `show` gives the region's summary, then each cluster's own row.
    shown = cli("show", "m1")
    assert shown.status == 0
    rows = {line.split()[0]: line.split()[1] for line in shown.out.splitlines() if line.strip()}
    assert (rows[REGION], rows[f"{REGION}/blue"], rows[f"{REGION}/green"]) == (
        "deleting",
        "deleted",
        "running",
    )

    # Green's daemon back: it deletes its own copies, and only then the item goes.
    _start(green, "green")
    wait_for(lambda: kit.item("m1") is None, timeout=30, what="m1 purged after green's delete")
    assert green.kube.get("Deployment", "m1") is None


def test_one_cluster_per_region_writes_the_predecessors_entry_exactly(kit: Harness) -> None:
    _start(kit, "blue")
    kit.put("m1", replicas=1)
    kit.wait_state("m1", "running")
    assert set(_entry(kit, "m1")) == {
        "state",
        "replicas_ready",
        "replicas_desired",
        "last_sync",
        "epoch",
        "holder",
        "seq",
    }


def test_an_operator_retiring_a_stopped_cluster_lets_the_delete_finish(
    kit: Harness, green: Harness, cli: Callable[..., CliResult]
) -> None:
    """A cluster being decommissioned never reports `deleted`: `retire-cluster` takes it
    out of the region (refused while it reported recently, unless forced), and the
    delete completes on the clusters left."""
    _start(kit, "blue")
    green_daemon = _start(green, "green")
    kit.put("m1", replicas=1)
    _both(kit, "m1", "running", 1)
    green_daemon.stop()
    kit.store.apply("m1", commands.set_desired_state, "deleted")
    wait_for(
        lambda: _clusters(kit, "m1").get("blue", RegionStatus("")).state == "deleted",
        timeout=30,
        what="blue reports m1 deleted",
    )
    refused = cli("retire-cluster", "green", "--region", REGION)
    assert refused.status == 2
    assert "stop its daemon first" in refused.err
    assert kit.item("m1") is not None

    retired = cli("retire-cluster", "green", "--region", REGION, "--force")
    assert retired.status == 0, retired.err
    assert "status removed from 1 endpoint(s)" in retired.out
    wait_for(lambda: kit.item("m1") is None, timeout=30, what="m1 purged once green retired")
    record = kit.store.get("#leader-epoch/" + REGION)
    assert record is not None
    assert "cluster/green" not in record.raw
    assert record.raw["founder"] == "blue"


def test_on_the_change_feed_each_cluster_hears_of_the_others_report(
    kit: Harness, green: Harness, sim: SimCluster, green_sim: SimCluster
) -> None:
    """With the table's stream as the change feed (scans a minute apart), the cluster
    that reports `deleted` last has heard of the other's `deleted` on the feed and
    purges the item at once: a cluster's own writes are not news to it, the other
    cluster's are. The Load Balancer Controller's finalizer holds each Ingress for a
    while: green's for 1 s, blue's for 3 s, so blue reports last."""
    green_sim.set_ingress_finalizer(1.0)
    sim.set_ingress_finalizer(3.0)
    kit.raw_table().delete()
    kit.raw_table().wait_until_not_exists()
    assert kit.store.create_table(stream=True)
    feed = {
        "RECONCILE_INTERVAL_SECONDS": "60",
        "STREAM_POLL_SECONDS": "0.2",
        "STREAM_RESYNC_SECONDS": "600",
    }
    for harness_, cluster in ((kit, "blue"), (green, "green")):
        daemon = harness_.start_daemon(CLUSTER_NAME=cluster, POD_NAME=f"{cluster}-a", **feed)
        wait_for(lambda d=daemon: d.snapshot().leading, what=f"{cluster} leads")
    kit.put("m1", replicas=1)
    _both(kit, "m1", "running", 1)
    kit.store.apply("m1", commands.set_desired_state, "deleted")
    wait_for(lambda: kit.item("m1") is None, timeout=20, what="m1 purged within the feed's time")
    for cluster in (kit, green):
        assert cluster.kube.get("Deployment", "m1") is None


def test_a_summary_is_never_computed_from_a_stale_view_of_the_other_cluster(
    dynamo_url: str, table_name: str
) -> None:
    """Green writes between blue's read of the entry and blue's write (the interleaving
    made explicit with a botocore hook on blue's client): blue's write is refused, planned
    again from what it was refused on, and its summary counts green's latest report. A
    deposed leader of green (an older epoch) is refused; blue is not."""
    blue = DynamoEndpointStore(table_name, endpoint_url=dynamo_url, cluster="blue")
    green = DynamoEndpointStore(table_name, endpoint_url=dynamo_url, cluster="green")
    try:
        blue.create_table(stream=False)
        now = utc_timestamp()
        blue.create_item(item("m1", created_at=now, updated_at=now))
        blue_epoch, green_epoch = blue.take_epoch(REGION), green.take_epoch(REGION)
        assert (blue.founder(REGION), green.founder(REGION)) == ("blue", "blue")

        def report(store: DynamoEndpointStore, epoch: int, ready: int, seq: int) -> None:
            status = RegionStatus("running", ready, ready, seq=seq)
            assert store.write_region_status("m1", REGION, status, epoch=epoch, holder="pod")

        report(blue, blue_epoch, 1, 1)
        report(green, green_epoch, 1, 1)
        writes = []

        def green_first(**_: Any) -> None:
            # Blue's first attempt (its flat guess) is refused and returns the entry;
            # green reports 5 replicas before blue's second attempt lands.
            writes.append(1)
            if len(writes) == 2:
                report(green, green_epoch, 5, 2)

        blue.events.register("before-call.dynamodb.UpdateItem", green_first)
        report(blue, blue_epoch, 2, 2)
        entry = blue.get("m1").raw["region_status"][REGION]
        assert len(writes) == 3, "blue's write was planned again after green's"
        assert (entry["replicas_ready"], entry["clusters"]["green"]["replicas_ready"]) == (7, 5)

        with pytest.raises(Superseded):
            report(green, green_epoch - 5, 0, 3)
        report(blue, blue_epoch, 3, 3)
        assert blue.get("m1").raw["region_status"][REGION]["replicas_ready"] == 8
    finally:
        blue.close()
        green.close()


def test_a_late_write_of_a_deposed_leader_is_refused_by_its_own_clusters_entry(
    dynamo_url: str, table_name: str
) -> None:
    """Green's old leader (epoch e1) has read its entry when green's new leader (e2)
    writes; the old leader's write then lands on a newer entry and is refused (its
    condition is on `clusters.green`'s epoch), not written over it."""
    stores = [
        DynamoEndpointStore(table_name, endpoint_url=dynamo_url, cluster=cluster)
        for cluster in ("blue", "green", "green")
    ]
    blue, old, new = stores
    try:
        blue.create_table(stream=False)
        now = utc_timestamp()
        blue.create_item(item("m1", created_at=now, updated_at=now))
        blue_epoch, old_epoch = blue.take_epoch(REGION), old.take_epoch(REGION)
        running = RegionStatus("running", 1, 1, seq=1)
        assert blue.write_region_status("m1", REGION, running, epoch=blue_epoch, holder="b")
        assert old.write_region_status("m1", REGION, running, epoch=old_epoch, holder="g-old")
        new_epoch = new.take_epoch(REGION)
        calls = []

        def new_leader_first(**_: Any) -> None:
            calls.append(1)
            if len(calls) == 2:
                stopped = RegionStatus("stopped", 0, 0, seq=2)
                new.write_region_status("m1", REGION, stopped, epoch=new_epoch, holder="g-new")

        old.events.register("before-call.dynamodb.UpdateItem", new_leader_first)
        late = RegionStatus("error", error="late", seq=2)
        with pytest.raises(Superseded):
            old.write_region_status("m1", REGION, late, epoch=old_epoch, holder="g-old")
        entry = blue.get("m1").raw["region_status"][REGION]["clusters"]["green"]
        assert (entry["state"], entry["holder"]) == ("stopped", "g-new")
    finally:
        for store in stores:
            store.close()


def test_after_the_migration_the_cluster_left_writes_the_predecessors_entry_again(
    kit: Harness, green: Harness, cli: Callable[..., CliResult]
) -> None:
    """Blue and green share m1; green is stopped and retired: blue's next write makes
    the entry flat again, key for key the predecessor's."""
    _start(kit, "blue")
    green_daemon = _start(green, "green")
    kit.put("m1", replicas=1)
    _both(kit, "m1", "running", 1)
    green_daemon.stop()
    assert cli("retire-cluster", "green", "--region", REGION, "--force").status == 0
    kit.store.apply("m1", commands.update_spec, {"replicas": 2})
    wait_for(
        lambda: (e := _entry(kit, "m1")).get("replicas_ready") == 2 and "clusters" not in e,
        timeout=30,
        what=f"blue's flat entry at 2 replicas (now {_entry(kit, 'm1')})",
    )
    assert set(_entry(kit, "m1")) == {
        "state",
        "replicas_ready",
        "replicas_desired",
        "last_sync",
        "epoch",
        "holder",
        "seq",
    }
    assert kit.state("m1") == "running"


def test_retiring_the_founder_hands_the_region_to_the_cluster_left(
    dynamo_url: str, table_name: str
) -> None:
    """Blue (the founder) is retired: green founds the region, and from its next term its
    writes make the shared entries flat again."""
    blue, green = (
        DynamoEndpointStore(table_name, endpoint_url=dynamo_url, cluster=c)
        for c in ("blue", "green")
    )
    try:
        blue.create_table(stream=False)
        now = utc_timestamp()
        blue.create_item(
            {
                "endpoint_name": "m1",
                "desired_state": "running",
                "target_regions": [REGION],
                "created_at": now,
                "updated_at": now,
                "spec": {"image": "repo/model:v1"},
            }
        )
        blue_epoch, green_epoch = blue.take_epoch(REGION), green.take_epoch(REGION)
        running = RegionStatus("running", 1, 1, seq=1)
        assert blue.write_region_status("m1", REGION, running, epoch=blue_epoch, holder="b")
        assert green.write_region_status("m1", REGION, running, epoch=green_epoch, holder="g")
        assert blue.retire_cluster(REGION, "blue") == ["m1"]
        record = blue.get("#leader-epoch/" + REGION)
        assert record is not None
        assert (record.raw["founder"], "cluster/blue" in record.raw) == ("green", False)
        assert set(blue.get("m1").raw["region_status"][REGION]["clusters"]) == {"green"}
        next_term = green.take_epoch(REGION)
        assert green.founder(REGION) == "green"
        again = RegionStatus("running", 2, 2, seq=2)
        assert green.write_region_status("m1", REGION, again, epoch=next_term, holder="g2")
        entry = green.get("m1").raw["region_status"][REGION]
        assert (set(entry), entry["holder"]) == (
            {"state", "replicas_ready", "replicas_desired", "last_sync", "epoch", "holder", "seq"},
            "g2",
        )
    finally:
        blue.close()
        green.close()


def test_show_marks_a_cluster_that_stopped_reporting_silent(
    kit: Harness, cli: Callable[..., CliResult]
) -> None:
    """A cluster whose last report is older than a live daemon's heartbeat allows (5m15s
    with the defaults) is shown silent, under a region summary that says who differs."""
    kit.put("m1", desired_state="deleted")
    old, fresh = "2026-01-01T00:00:00Z", utc_timestamp()
    kit.raw_table().update_item(
        Key={"endpoint_name": "m1"},
        UpdateExpression="SET region_status.#r = :entry",
        ExpressionAttributeNames={"#r": REGION},
        ExpressionAttributeValues={
            ":entry": {
                **RegionStatus("deleting", 1, 1, fresh, error="green: running").to_item(),
                "clusters": {
                    "blue": RegionStatus("deleted", 0, 0, fresh, seq=3).to_item(),
                    "green": RegionStatus("running", 1, 1, old, seq=2).to_item(),
                },
            }
        },
    )
    shown = cli("show", "m1")
    assert shown.status == 0
    lines = {line.split()[0]: line for line in shown.out.splitlines() if line.strip()}
    assert "deleted" in lines[f"{REGION}/blue"]
    assert "silent" not in lines[f"{REGION}/blue"]
    assert "running, silent" in lines[f"{REGION}/green"]
