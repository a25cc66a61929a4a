"""Ordinary deletes (issue 22, case 1): a purged endpoint's actor stops and its slot
goes, so the mass-deletion guard never counts it; an endpoint later removed from the
table by hand is still cleaned up after the usual scans."""

from __future__ import annotations

import pykka

from actors.endpoint import EndpointActor
from store import commands
from tests.integration.harness import Harness, scan_count, wait_for


def test_purged_endpoints_stop_their_actors_and_never_trip_the_guard(kit: Harness) -> None:
    names = [f"m{i:02d}" for i in range(21)]
    for name in names:
        kit.put(name)
    daemon = kit.start_daemon()
    for name in names:
        kit.wait_state(name, "running", timeout=60)
    wait_for(lambda: len(daemon.snapshot().alive) == 21, what="21 actors")
    deleted = names[:8]
    for name in deleted:
        kit.store.apply(name, commands.set_desired_state, "deleted")
    wait_for(
        lambda: all(kit.item(name) is None for name in deleted),
        timeout=60,
        what="the 8 deleted items purged",
    )
    wait_for(
        lambda: set(daemon.snapshot().generations) == set(names[8:]),
        timeout=20,
        what=f"only the 13 remaining endpoints keep a slot, got {daemon.snapshot().generations}",
    )
    wait_for(
        lambda: len(pykka.ActorRegistry.get_by_class(EndpointActor)) == 13,
        what="only the 13 remaining endpoints keep an actor",
    )
    scans = scan_count(daemon)
    wait_for(lambda: scan_count(daemon) >= scans + 4, what="four more scans")
    assert daemon.snapshot().detail == "", "no deletion refused"
    kit.raw_table().delete_item(Key={"endpoint_name": "m20"})
    wait_for(
        lambda: kit.kube.get("Deployment", "m20") is None,
        timeout=20,
        what="m20, removed from the table by hand, loses its Deployment",
    )
    assert daemon.snapshot().detail == ""
    assert kit.kube.get("Deployment", "m19") is not None
