"""Rollouts that never move a region backwards (architecture section 12, issue 19): three
regions, one table, one daemon per region, in fake time. The hotfix and the stop/start
cases also run on real control planes (`SIM_AND_REAL`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from actors.app.rollout_status import RolloutView
from actors.clock import FakeClock
from actors.endpoint import EndpointActor
from actors.messages import SpecChanged
from store.commands import set_desired_state
from store.item import LoadedItem
from store.model import parse_timestamp
from store.rollout import revision
from store.rollout_commands import update_and_seed
from tests.integration.harness import NAMESPACE
from tests.integration.planes import SIM_AND_REAL, ControlPlanes
from tests.integration.regions import INTERVAL, Regions, regions

US, EU, AP = "us-east-1", "eu-west-1", "ap-south-1"
V1, V2, V3 = "repo/model:v1", "repo/model:v2", "repo/model:v3"
BAKE = 30
POLICY = {"waves": [[US]], "bake_seconds": BAKE, "progress_deadline_seconds": 120}


@pytest.fixture
def world(dynamo_url: str, table_name: str, planes: ControlPlanes | None) -> Iterator[Regions]:
    with regions(dynamo_url, table_name, (US, EU, AP), planes=planes) as scenario:
        for region in scenario.names:
            scenario.start(region)
        scenario.put("m1")
        scenario.converge("m1")
        yield scenario


def _rev(world: Regions) -> str:
    return revision(world.item("m1").raw["spec"])


def _on(world: Regions, region: str, rev: str, *phases: str) -> bool:
    status = world.status("m1", region)
    return status is not None and status.revision == rev and status.rollout in phases


@SIM_AND_REAL
def test_a_hotfix_written_while_the_last_wave_bakes_never_sends_that_wave_back(
    world: Regions,
) -> None:
    """Case 1: v3 written while v2 bakes in its last wave: those regions keep v2 until
    their wave is due for v3, then take v3; none serves v1 again."""
    world.update("m1", V2, {**POLICY, "bake_seconds": 120})
    second = _rev(world)
    world.drive(
        "m1",
        lambda: all(_on(world, r, second, "baking") for r in (EU, AP)),
        timeout=120,
        what="v2 baking in the last wave",
    )
    world.store.apply("m1", update_and_seed, {"image": V3})
    third = _rev(world)

    def done() -> bool:
        for region in (EU, AP):
            assert world.image("m1", region) != V1, f"{region} went back to the completed v1"
        return world.record("m1").completed_revision == third

    world.drive("m1", done, timeout=180, what="v3 to complete")
    assert dict.fromkeys(world.names, V3) == {r: world.image("m1", r) for r in world.names}
    assert world.timeline.when(EU, V3) > world.timeline.when(US, V3)


def test_re_adding_a_policy_after_no_rollout_resurrects_no_older_revision(
    world: Regions,
) -> None:
    """Case 3: v2 rolled out, the policy removed, v3 reaches every region at once; setting
    a policy alone then starts no rollout and sends no region back to v2."""
    world.update("m1", V2, POLICY)
    second = _rev(world)
    world.drive(
        "m1",
        lambda: world.record("m1").completed_revision == second,
        timeout=180,
        what="v2 to complete",
    )
    world.store.apply("m1", update_and_seed, {"rollout": None})
    world.store.apply("m1", update_and_seed, {"image": V3})
    world.drive(
        "m1",
        lambda: all(
            world.image("m1", r) == V3 and world.status("m1", r).state == "running"
            for r in world.names
        ),
        what="v3 everywhere without a policy",
    )
    world.store.apply("m1", update_and_seed, {"rollout": POLICY})
    third = _rev(world)
    start = world.clock.time()

    def settled() -> bool:
        for region in world.names:
            assert world.image("m1", region) == V3, f"{region} left v3"
        return world.clock.time() - start > 4 * INTERVAL and all(
            _on(world, r, third, "done") for r in world.names
        )

    world.drive("m1", settled, what="every region done at v3, untouched")
    assert world.record("m1").completed_revision == third


class ReplaysAStaleScan(EndpointActor):
    """A busy actor's mailbox (case 2): a scan taken before the actor's own latest status
    write is delivered after it. The item it was told of while its region served the last
    canary step is told to it again once its region bakes the promoted new revision."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stale: LoadedItem | None = None
        self.replayed = False

    def _handle(self, message: Any) -> None:
        super()._handle(message)
        own = self.last_reported
        if own is None or own.rollout not in ("stepping", "baking") or self.replayed:
            return
        if isinstance(message, SpecChanged):
            entry = message.item.region_status.get(self.ctx.region)
            if entry is not None and entry.rollout == "stepping" and entry.step == 1:
                self.stale = message.item
        if self.stale is not None and own.rollout == "baking":
            self.replayed = True
            self.actor_ref.tell(SpecChanged(self.stale))


@pytest.fixture
def replaying_world(dynamo_url: str, table_name: str) -> Iterator[Regions]:
    """`world`, with the first region's daemon running `ReplaysAStaleScan`."""
    clock = FakeClock()
    with regions(dynamo_url, table_name, (US, EU, AP), clock) as scenario:
        scenario.start(US, actor_factory=ReplaysAStaleScan)
        scenario.start(EU)
        scenario.start(AP)
        scenario.put("m1")
        scenario.converge("m1")
        yield scenario


def test_a_stale_scan_never_undoes_a_promotion(replaying_world: Regions) -> None:
    """Case 2: once promoted, the region keeps the new revision as its primary, whatever
    older scan it is told of later; the rollout completes without a halt."""
    world = replaying_world
    step = 20
    world.update(
        "m1",
        V2,
        {**POLICY, "steps": [10, 50], "step_seconds": step, "progress_deadline_seconds": 60},
    )
    new = _rev(world)
    steps: list[int] = []

    def done() -> bool:
        # The region's reported step never goes back, and once it reported the promotion
        # (step 2) its primary serves the new image. (The primary takes the image just
        # before the status says so: the image alone is not the promotion's report.)
        status = world.status("m1", US)
        if status is not None and status.revision == new and status.step is not None:
            assert not steps or status.step >= max(steps), (
                f"us-east-1 went back from step {max(steps)} to {status.step}"
            )
            steps.append(status.step)
        if steps and max(steps) == 2:
            assert world.image("m1", US) == V2, "a stale scan undid the promotion"
        assert world.record("m1").halt is None, world.record("m1").halt
        return world.record("m1").completed_revision == new

    world.drive("m1", done, timeout=240, what="the rollout to complete")
    assert dict.fromkeys(world.names, V2) == {r: world.image("m1", r) for r in world.names}


# -- nothing bakes what did not run (case 5) ----------------------------------------------


def _stop_and_wait(world: Regions) -> None:
    world.store.apply("m1", set_desired_state, "stopped")
    world.drive(
        "m1",
        lambda: all(world.status("m1", r).state == "stopped" for r in world.names),
        what="stopped everywhere",
    )


@SIM_AND_REAL
@pytest.mark.parametrize("steps", [[], [10, 50]], ids=["no-steps", "steps"])
def test_a_stop_mid_rollout_holds_the_region_clock_and_start_resumes(
    world: Regions, steps: list[int]
) -> None:
    """Stopped during the first wave: no region bakes, finishes or fails the revision
    while no pod of it runs (past the progress deadline); after start the rollout
    resumes and completes with the new revision running everywhere."""
    deadline = 40
    world.update(
        "m1",
        V2,
        {**POLICY, "steps": steps, "step_seconds": 10, "progress_deadline_seconds": deadline},
    )
    new = _rev(world)
    world.drive("m1", lambda: _on(world, US, new, "stepping"), what="the first wave stepping")
    _stop_and_wait(world)
    start = world.clock.time()

    def held() -> bool:
        assert world.record("m1").halt is None, world.record("m1").halt
        for region in world.names:
            status = world.status("m1", region)
            assert status.rollout not in ("baking", "done"), f"{region} {status.rollout} stopped"
        return world.clock.time() - start > 2 * deadline

    world.drive("m1", held, timeout=120, what="time to pass while stopped")
    assert world.status("m1", US).rollout == "paused"
    world.store.apply("m1", set_desired_state, "running")

    def done() -> bool:
        assert world.record("m1").halt is None, world.record("m1").halt
        return world.record("m1").completed_revision == new

    world.drive("m1", done, timeout=240, what="the resumed rollout to complete")
    for region in world.names:
        status = world.status("m1", region)
        assert (world.image("m1", region), status.state) == (V2, "running")
        assert status.replicas_ready >= 1


# -- a bake counts only while its region keeps reporting (case 4) ----------------------------

#: Short heartbeats, so a silent region is told in fake seconds: 10 x 1.2 + 3 x 5 = 27 s.
HEARTBEAT = {"STATUS_HEARTBEAT_SECONDS": "10"}


@pytest.fixture
def reporting_world(dynamo_url: str, table_name: str) -> Iterator[Regions]:
    """`world`, each daemon writing its status at least every 10 s."""
    clock = FakeClock()
    with regions(dynamo_url, table_name, (US, EU, AP), clock) as scenario:
        for region in scenario.names:
            scenario.start(region, **HEARTBEAT)
        scenario.put("m1")
        scenario.converge("m1")
        yield scenario


def test_a_baking_region_whose_daemon_died_stops_the_next_wave_then_halts(
    reporting_world: Regions,
) -> None:
    """Its bake does not count once it stops reporting: the next wave waits, the others
    and `rollout status` name it silent, and past the progress deadline the revision
    halts with that reason and the regions roll back."""
    world = reporting_world
    deadline = 90
    world.update("m1", V2, {**POLICY, "bake_seconds": 20, "progress_deadline_seconds": deadline})
    new = _rev(world)
    world.drive("m1", lambda: _on(world, US, new, "baking"), what="the first wave baking")
    world.stop(US)
    # Silence counts from the region's last write, which is at or before its daemon's stop.
    last_heard = parse_timestamp(world.status("m1", US).last_sync)
    assert last_heard is not None

    def noticed() -> bool:
        assert world.timeline.when(EU, V2) is None, "a later wave took a bake nobody reported"
        view = RolloutView.of(world.item("m1"), world.clock.time(), silence=27)
        us = next(row for row in view.regions if row.region == US)
        eu = next(row for row in view.regions if row.region == EU)
        return ", silent " in us.phase and eu.reason.startswith(f"{US} silent since ")

    world.drive("m1", noticed, timeout=120, what="the silence to be shown")
    world.drive("m1", lambda: world.record("m1").halt is not None, timeout=120, what="the halt")
    halt = world.record("m1").halt
    assert halt.reason.startswith(f"{US} silent for "), halt.reason
    assert world.clock.time() - last_heard >= deadline
    assert world.timeline.when(EU, V2) is None
    assert world.timeline.when(AP, V2) is None
    assert world.record("m1").completed_revision != new
    # `rollout status --watch` stops: the others rolled back, the silent one is named.
    world.drive(
        "m1",
        lambda: RolloutView.of(world.item("m1"), world.clock.time(), silence=27).settled,
        what="the rollout settled",
    )


def test_completion_announces_done_once_per_region_and_keeps_its_since(world: Regions) -> None:
    """Case 11: each region's `RolloutDone` Event is emitted once, and recording the
    completion does not reset the `since` a region reported done with."""
    world.update("m1", V2, {**POLICY, "bake_seconds": 10})
    new = _rev(world)
    done_since: dict[str, str] = {}

    def complete() -> bool:
        for region in world.names:
            status = world.status("m1", region)
            if status.revision == new and status.rollout == "done":
                done_since.setdefault(region, status.since)
        return world.record("m1").completed_revision == new

    world.drive("m1", complete, timeout=180, what="the rollout to complete")
    start = world.clock.time()
    world.drive("m1", lambda: world.clock.time() - start > 4 * INTERVAL, what="time to pass")
    for region in world.names:
        assert world.status("m1", region).since == done_since[region], region
        events = client.CoreV1Api(world.kits[region].kube.api).list_namespaced_event(
            NAMESPACE, field_selector="involvedObject.name=m1,reason=RolloutDone"
        )
        assert sum(e.count or 1 for e in events.items) == 1, region


def test_a_wave_whose_region_never_reports_is_bounded_by_the_progress_deadline(
    reporting_world: Regions,
) -> None:
    """Case 4: a daemon down before its wave: once the wave is due, the silent region
    halts the revision past the progress deadline instead of holding it forever."""
    world = reporting_world
    world.stop(EU)
    world.update(
        "m1",
        V2,
        {"waves": [[US], [EU]], "bake_seconds": 10, "progress_deadline_seconds": 60},
    )
    world.drive("m1", lambda: world.record("m1").halt is not None, timeout=120, what="the halt")
    halt = world.record("m1").halt
    assert halt.reason.startswith(f"{EU} silent for "), halt.reason
    world.drive(
        "m1",
        lambda: world.image("m1", US) == "repo/model:v1",
        what="the first wave rolled back",
    )
    assert world.timeline.when(AP, V2) is None
    assert world.timeline.when(EU, V2) is None
