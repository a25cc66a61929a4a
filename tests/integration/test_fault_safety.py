"""Safety under the faults production brings (issue 11, architecture section 4): an empty or
wrong table deletes nothing, a slow API is waited out without restarting anyone and
without starving the other endpoints, and a dead poller is replaced."""

from __future__ import annotations

import pykka
import pytest

from actors.poller import PollerActor
from store import commands
from tests.integration.harness import Harness, scan_count, wait_for

ENDPOINT_KINDS = ("deployments", "services", "ingresses", "horizontalpodautoscalers")


def _objects_of(kit: Harness, name: str) -> bool:
    return (
        kit.kube.get("Deployment", name) is not None
        and kit.kube.get("Service", name) is not None
        and kit.kube.get("Ingress", f"inference-{name}") is not None
    )


def _empty_the_table(kit: Harness, how: str) -> None:
    table = kit.raw_table()
    if how == "items deleted":
        for item in table.scan(ConsistentRead=True)["Items"]:
            table.delete_item(Key={"endpoint_name": item["endpoint_name"]})
    else:  # the table restarted empty: gone for a while, then back without its items
        table.delete()
        table.wait_until_not_exists()
        kit.store.create_table(stream=False)


@pytest.mark.parametrize("how", ["items deleted", "table recreated empty"])
def test_an_empty_table_deletes_nothing(kit: Harness, how: str) -> None:
    # One endpoint: deleting it would not be a "mass" deletion, so only the rule that an
    # empty scan is no evidence protects it.
    names = ["m1"]
    for name in names:
        kit.put(name)
    daemon = kit.start_daemon()
    for name in names:
        kit.wait_state(name, "running")
    _empty_the_table(kit, how)
    scans = scan_count(daemon)
    wait_for(lambda: scan_count(daemon) >= scans + 8, what="eight scans of the empty table")
    for name in names:
        assert _objects_of(kit, name), f"{name}'s objects were deleted on an empty scan"
    assert daemon.snapshot().alive == frozenset(names)


def test_a_wrong_table_deletes_none_and_says_why_until_the_view_changes(kit: Harness) -> None:
    names = [f"m{i}" for i in range(7)]
    for name in names:
        kit.put(name)
    daemon = kit.start_daemon()
    for name in names:
        kit.wait_state(name, "running")
    saved = {name: kit.raw_table().get_item(Key={"endpoint_name": name})["Item"] for name in names}
    for name in names:
        kit.raw_table().delete_item(Key={"endpoint_name": name})
    # Another team's items: the scan is not empty, it just lacks every endpoint of ours.
    for i in range(3):
        kit.put(f"other-{i}", regions=("eu-west-1",))
    wait_for(lambda: "refusing to delete 7 of 7" in daemon.snapshot().detail, what="refusal")
    scans = scan_count(daemon)
    wait_for(lambda: scan_count(daemon) >= scans + 5, what="five more scans")
    for name in names:
        assert _objects_of(kit, name), f"{name}'s objects were deleted by a mass deletion"
    assert "check the table and REGION" in daemon.snapshot().detail
    for item in saved.values():
        kit.raw_table().put_item(Item=item)
    wait_for(lambda: daemon.snapshot().detail == "", what="the refusal lifted")
    assert all(_objects_of(kit, name) for name in names)


def test_one_vanished_endpoint_is_deleted_after_three_scans_read_from_the_server(
    kit: Harness, sim
) -> None:
    for name in ("m1", "m2"):
        kit.put(name)
    daemon = kit.start_daemon()
    kit.wait_state("m1", "running")
    kit.wait_state("m2", "running")
    sim.reset_counters()
    scans = scan_count(daemon)
    kit.raw_table().delete_item(Key={"endpoint_name": "m1"})
    # Removed one after the other: wait for the last.
    wait_for(
        lambda: (
            kit.kube.get("Deployment", "m1") is None
            and kit.kube.get("Ingress", "inference-m1") is None
        ),
        what="orphan removed",
    )
    assert scan_count(daemon) - scans >= 3
    counters = sim.counters()
    assert counters.get("GET deployments", 0) >= 1, f"no read from the server: {counters}"
    assert kit.kube.get("Ingress", "inference-m1") is None
    assert _objects_of(kit, "m2")


def test_a_slow_api_is_waited_out_without_restarting_anyone(kit: Harness, sim) -> None:
    names = [f"m{i}" for i in range(4)]
    for name in names:
        kit.put(name)
    # Calls time out after 1 s; each update takes 1.5 s to be served. A handler spends far
    # longer than HANDLER_TIMEOUT_SECONDS waiting on the API - that is not a hang.
    daemon = kit.start_daemon(
        K8S_API_TIMEOUT="1", HANDLER_TIMEOUT_SECONDS="1", gateway_retries=(3, 0.2, 1.0)
    )
    for name in names:
        kit.wait_state(name, "running")
    sim.set_faults(latency=1.5, verbs=("UPDATE",), kinds=ENDPOINT_KINDS)
    for name in names:
        kit.store.apply(name, commands.update_spec, {"image": "repo/model:v2"})
    scans = scan_count(daemon)
    wait_for(lambda: scan_count(daemon) >= scans + 15, timeout=30, what="15 scans in the slow API")
    assert daemon.snapshot().restarts == {}, "a slow API must not restart actors"
    sim.clear_faults()

    def final_spec() -> bool:
        return all(
            kit.state(n) == "running"
            and kit.kube.get("Deployment", n)["spec"]["template"]["spec"]["containers"][0]["image"]
            == "repo/model:v2"
            for n in names
        )

    wait_for(final_spec, timeout=30, what="every endpoint at its final spec")
    assert daemon.snapshot().restarts == {}


def test_the_33rd_endpoint_converges_while_32_wait_on_a_stuck_api(kit: Harness, sim) -> None:
    stuck = [f"s{i}" for i in range(32)]
    for name in stuck:
        kit.put(name)
    daemon = kit.start_daemon(K8S_API_TIMEOUT="30", gateway_retries=(0, 0.1, 0.1))
    for name in stuck:
        kit.wait_state(name, "running", timeout=60)
    # Every Deployment update now hangs for 20 s: 32 handlers are stuck waiting on it.
    sim.set_faults(latency=20, verbs=("UPDATE",), kinds=("deployments",))
    sim.reset_counters()
    for name in stuck:
        kit.store.apply(name, commands.update_spec, {"replicas": 2})
    wait_for(
        lambda: sim.counters().get("UPDATE deployments", 0) >= 32,
        timeout=30,
        what="32 Deployment updates sent (and held by the slow server)",
    )
    kit.put("fresh")  # needs only creates, which are not slowed
    kit.wait_state("fresh", "running", timeout=10)
    still_stuck = [n for n in stuck if kit.kube.get("Deployment", n)["spec"]["replicas"] == 1]
    assert len(still_stuck) == 32, "the 32 were not stuck while the 33rd converged"
    assert daemon.snapshot().restarts == {}
    sim.clear_faults()


def test_a_dead_poller_is_restarted(kit: Harness) -> None:
    kit.put("m1")
    daemon = kit.start_daemon()
    kit.wait_state("m1", "running")
    killed = 0
    for ref in pykka.ActorRegistry.get_by_class(PollerActor):
        ref.stop()
        killed += 1
    assert killed == 1
    wait_for(lambda: daemon.snapshot().restarts.get("(poller)") == 1, what="poller restarted")
    kit.store.apply("m1", commands.update_spec, {"replicas": 3})
    wait_for(
        lambda: kit.kube.get("Deployment", "m1")["spec"]["replicas"] == 3,
        what="the table followed again",
    )
