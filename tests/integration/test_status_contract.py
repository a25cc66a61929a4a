"""The status contract the predecessor's CLI reads (architecture section 2, issue 13): an item
moves from `deploying` to `running` once every target region runs it (a racing stop wins),
and `last_sync` is a heartbeat refreshed about every STATUS_HEARTBEAT_SECONDS."""

from __future__ import annotations

from actors.clock import FakeClock
from store import commands
from store.model import RegionStatus, parse_timestamp
from tests.integration.harness import FAKE_TIME_LEASE, REGION, Harness, drive, pass_time, wait_for

OTHER = "eu-west-1"


def _desired(kit: Harness, name: str) -> str | None:
    item = kit.item(name)
    return None if item is None else item.raw.get("desired_state")


def test_deploying_becomes_running_once_every_target_region_runs_it(kit: Harness) -> None:
    kit.put("m1", desired_state="deploying", regions=(REGION, OTHER))
    kit.put("m2", desired_state="deploying")
    kit.start_daemon()
    wait_for(lambda: _desired(kit, "m2") == "running", what="single-region m2 running")
    kit.wait_state("m1", "running")
    assert _desired(kit, "m1") == "deploying", "the other region has not reported yet"
    # The other region's daemon reports running: this region's leader may make the move.
    kit.store.write_region_status("m1", OTHER, RegionStatus(state="running"))
    wait_for(lambda: _desired(kit, "m1") == "running", what="m1 running everywhere")


def test_a_stop_that_lands_first_wins_over_the_move_to_running(kit: Harness) -> None:
    kit.put("m1", desired_state="deploying")
    kit.store.write_region_status("m1", REGION, RegionStatus(state="running"))
    kit.store.apply(
        "m1", commands.set_desired_state, "stopped"
    )  # a person's stop, read-then-written first
    assert not kit.store.mark_running("m1", [REGION])
    assert _desired(kit, "m1") == "stopped"


def test_last_sync_is_refreshed_as_a_heartbeat_and_only_then(kit: Harness) -> None:
    clock = FakeClock()
    kit.put("m1")
    daemon = kit.start_daemon(
        clock=clock,
        RECONCILE_INTERVAL_SECONDS="5",
        STATUS_HEARTBEAT_SECONDS="60",
        **FAKE_TIME_LEASE,
    )
    drive(clock, lambda: kit.state("m1") == "running", what="running")
    first = kit.status("m1")
    assert first is not None
    writes = _status_writes(daemon)
    # 10 minutes of fake time: a heartbeat every 60-72 s, nothing else.
    drive(
        clock,
        lambda: (s := kit.status("m1")) and s.last_sync != first.last_sync,
        step=5,
        what="a heartbeat",
    )
    refreshed = kit.status("m1")
    assert refreshed is not None
    assert refreshed.state == "running"
    gap = parse_timestamp(refreshed.last_sync) - parse_timestamp(first.last_sync)
    assert 60 <= gap <= 60 * 1.2 + 10
    pass_time(clock, 600)
    beats = _status_writes(daemon) - writes
    # 600 s / (60-72 s) is 8-10 heartbeats; more would mean writes without a change.
    assert 3 <= beats <= 11, f"{beats} status writes in 10 minutes with a 60 s heartbeat"


def test_no_heartbeat_with_zero(kit: Harness) -> None:
    clock = FakeClock()
    kit.put("m1")
    daemon = kit.start_daemon(
        clock=clock,
        RECONCILE_INTERVAL_SECONDS="5",
        STATUS_HEARTBEAT_SECONDS="0",
        **FAKE_TIME_LEASE,
    )
    drive(clock, lambda: kit.state("m1") == "running", what="running")
    writes = _status_writes(daemon)
    pass_time(clock, 600)
    assert _status_writes(daemon) == writes


def _status_writes(daemon) -> float:
    return sum(
        sample.value
        for family in daemon.metrics.registry.collect()
        for sample in family.samples
        if sample.name == "inference_supervisor_status_writes_total"
    )
