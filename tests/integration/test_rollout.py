"""Guarded global rollout across regions (architecture section 12, issue 14's guarantees 1 to 6):
three regions, one table, one daemon per region, in fake time. The failing revision's halt
also runs on real control planes (`SIM_AND_REAL`: a real Deployment that never becomes
ready)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from actors.clock import FakeClock
from actors.endpoint import EndpointActor
from actors.messages import SpecChanged
from store.model import parse_timestamp
from store.rollout import revision
from store.rollout_commands import abort, pause
from tests.integration.planes import SIM_AND_REAL, ControlPlanes
from tests.integration.regions import INTERVAL, Regions, regions

US, EU, AP = "us-east-1", "eu-west-1", "ap-south-1"
V1, V2, V3, BAD = "repo/model:v1", "repo/model:v2", "repo/model:v3", "repo/model:crashloop"
BOOM = "repo/model:boom"
BAKE = 30
STEP = 20


@pytest.fixture
def world(dynamo_url: str, table_name: str, planes: ControlPlanes | None) -> Iterator[Regions]:
    with regions(dynamo_url, table_name, (US, EU, AP), planes=planes) as scenario:
        for region in scenario.names:
            scenario.start(region)
        scenario.put("m1")
        scenario.converge("m1")
        yield scenario


def _baking_since(world: Regions, region: str, rev: str) -> float | None:
    status = world.status("m1", region)
    if status is None or status.revision != rev or status.rollout not in ("baking", "done"):
        return None
    return parse_timestamp(status.since)


def test_a_later_wave_serves_the_new_revision_only_after_the_first_baked(world: Regions) -> None:
    world.update("m1", V2, {"waves": [[US]], "bake_seconds": BAKE, "progress_deadline_seconds": 60})
    new = revision(world.item("m1").raw["spec"])
    baking: dict[str, float] = {}

    def done() -> bool:
        since = _baking_since(world, US, new)
        if since is not None and world.status("m1", US).rollout == "baking":
            baking.setdefault(US, since)
        if world.image("m1", EU) == V1:
            # Not yet due: it keeps serving the completed revision and says so.
            status = world.status("m1", EU)
            assert status.rollout in (None, "waiting", "done"), status
        return world.record("m1").completed_revision == new

    world.drive("m1", done, timeout=120, what="the rollout to complete")
    first_later = min(world.timeline.when(EU, V2), world.timeline.when(AP, V2))
    assert US in baking, "the first wave was never seen baking"
    assert first_later >= baking[US] + BAKE, "a later wave took the revision before the bake"
    assert world.timeline.when(US, V2) < first_later
    assert dict.fromkeys(world.names, "done") == world.phases("m1")
    assert dict.fromkeys(world.names, V2) == {r: world.image("m1", r) for r in world.names}


@SIM_AND_REAL
def test_a_failing_revision_halts_in_the_first_wave_and_rolls_back(world: Regions) -> None:
    world.update(
        "m1", BAD, {"waves": [[US]], "bake_seconds": BAKE, "progress_deadline_seconds": 20}
    )
    bad = revision(world.item("m1").raw["spec"])
    world.drive(
        "m1",
        lambda: world.record("m1").halt is not None and world.image("m1", US) == V1,
        timeout=120,
        what="the halt and the rollback",
    )
    halt = world.record("m1").halt
    assert (bad, US) == (halt.revision, halt.region)
    assert "not ready within 20s" in halt.reason
    assert world.timeline.when(US, BAD) is not None
    # Long after: no other region ever served it, and the halt was recorded once.
    start = world.clock.time()
    world.drive(
        "m1",
        lambda: (
            world.clock.time() - start > 4 * INTERVAL and world.status("m1", US).state == "running"
        ),
        what="time to pass",
    )
    assert world.timeline.when(EU, BAD) is None
    assert world.timeline.when(AP, BAD) is None
    assert halt == world.record("m1").halt
    assert dict.fromkeys(world.names, "rolled_back") == world.phases("m1")
    assert world.record("m1").completed_revision != bad


def test_a_restart_mid_bake_neither_resets_the_bake_nor_skips_a_wave(world: Regions) -> None:
    bake = 60
    world.update("m1", V2, {"waves": [[US], [EU]], "bake_seconds": bake})
    new = revision(world.item("m1").raw["spec"])
    since = world.drive("m1", lambda: _baking_since(world, US, new), what="the first wave baking")
    world.stop(US)
    world.clock.advance(bake / 2)
    world.start(US, identity="b")
    world.drive(
        "m1", lambda: world.timeline.when(EU, V2), timeout=120, what="the second wave taking it"
    )
    took = world.timeline.when(EU, V2)
    assert took >= since + bake, "the second wave did not wait for the bake"
    assert took < since + bake + bake / 2, "the restart reset the bake clock"
    assert world.timeline.when(AP, V2) is None or world.timeline.when(AP, V2) >= took


def test_without_a_policy_every_region_takes_a_change_at_once(world: Regions) -> None:
    world.update("m1", V2)
    # Judged on the timeline (what each observation recorded), so every region has a time.
    world.drive(
        "m1",
        lambda: all(world.timeline.when(r, V2) is not None for r in world.names),
        what="v2 everywhere",
    )
    firsts = [world.timeline.when(r, V2) for r in world.names]
    # No region waits for another (a wave would wait a bake: 300 s by default). The bound is
    # loose because fake time runs on while a loaded machine lags behind it.
    assert max(firsts) - min(firsts) < 60
    item = world.item("m1")
    assert "rollout" not in item.raw
    for status in item.region_status.values():
        assert (status.revision, status.rollout, status.since) == (None, None, None)


# -- guarantee 2: steps -------------------------------------------------------------------


class Traffic:
    """What each region's Ingress sends to the canary, at every observation: `plain` (the
    primary Service alone), a canary weight, or None (no Ingress); the canary Deployment's
    pod spec per image; and every moment an Ingress named a canary Service that did not
    exist (read Ingress, Service, Ingress: an unchanged Ingress around an absent Service)."""

    def __init__(self, world: Regions, name: str) -> None:
        self.world = world
        self.name = name
        self.seen: dict[str, list[tuple[float, Any]]] = {r: [] for r in world.names}
        self.missing: list[tuple[str, float]] = []
        self.canary_pods: dict[tuple[str, str], dict[str, Any]] = {}

    def look(self) -> None:
        now = self.world.clock.time()
        for region in self.world.names:
            kube = self.world.kits[region].kube
            before = kube.get("Ingress", f"inference-{self.name}")
            service = kube.get("Service", f"{self.name}-canary")
            after = kube.get("Ingress", f"inference-{self.name}")
            share = _share(self.name, before)
            if (
                isinstance(share, int)
                and service is None
                and after is not None
                and after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
            ):
                self.missing.append((region, now))
            seen = self.seen[region]
            if not seen or seen[-1][1] != share:
                seen.append((now, share))
            canary = kube.get("Deployment", f"{self.name}-canary")
            if canary is not None:
                pod = canary["spec"]["template"]["spec"]
                self.canary_pods.setdefault((region, pod["containers"][0]["image"]), pod)

    def shares(self, region: str) -> list[tuple[float, Any]]:
        """The changes of `region`'s share, weight 0 (a canary not ready yet) left out."""
        out: list[tuple[float, Any]] = []
        for at, share in self.seen[region]:
            if share != 0 and (not out or out[-1][1] != share):
                out.append((at, share))
        return out

    def now(self, region: str) -> Any:
        return self.seen[region][-1][1] if self.seen[region] else None


def _share(name: str, ingress: dict[str, Any] | None) -> Any:
    if ingress is None:
        return None
    path = ingress["spec"]["rules"][0]["http"]["paths"][0]
    if path["backend"]["service"]["name"] == name:
        return "plain"
    action = json.loads(
        ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/actions.weighted-routing"]
    )
    groups = {g["serviceName"]: g["weight"] for g in action["forwardConfig"]["targetGroups"]}
    return groups[f"{name}-canary"]


def _steps(**extra: Any) -> dict[str, Any]:
    return {
        "waves": [[US]],
        "steps": [10, 50],
        "step_seconds": STEP,
        "bake_seconds": BAKE,
        "progress_deadline_seconds": 120,
        **extra,
    }


def test_steps_serve_the_new_pod_through_the_canary_at_each_weight_then_promote(
    world: Regions,
) -> None:
    traffic = Traffic(world, "m1")
    traffic.look()
    world.update("m1", V2, _steps(), env={"MODE": "new"})
    new = revision(world.item("m1").raw["spec"])

    def done() -> bool:
        traffic.look()
        return world.record("m1").completed_revision == new

    world.drive("m1", done, timeout=240, what="the rollout to complete")
    assert traffic.missing == [], "an Ingress named a canary Service that did not exist"
    for region in world.names:
        shares = traffic.shares(region)
        assert [share for _, share in shares] == ["plain", 10, 50, "plain"], region
        (_, _), (at_10, _), (at_50, _), (promoted, _) = shares
        assert at_50 - at_10 >= STEP - 1, f"{region} served 10% for {at_50 - at_10}s"
        assert promoted - at_50 >= STEP - 1, f"{region} served 50% for {promoted - at_50}s"
        # The canary ran the new spec's whole pod: the one the new primary runs now.
        kube = world.kits[region].kube
        primary = kube.get("Deployment", "m1")["spec"]["template"]["spec"]
        assert primary == traffic.canary_pods[region, V2]
        assert {"name": "MODE", "value": "new"} in primary["containers"][0]["env"]
        assert kube.get("Deployment", "m1-canary") is None
        assert kube.get("Service", "m1-canary") is None
    assert world.timeline.when(EU, V2) > world.timeline.when(US, V2)


# -- guarantee 5: manual steering, a new spec mid-rollout -----------------------------------


def test_pause_holds_every_region_at_its_step_and_resume_continues(world: Regions) -> None:
    traffic = Traffic(world, "m1")
    world.update("m1", V2, _steps())
    new = revision(world.item("m1").raw["spec"])

    def at_50() -> bool:
        traffic.look()
        return traffic.now(US) == 50

    world.drive("m1", at_50, what="the first wave at 50%")
    world.store.apply("m1", pause)
    world.drive("m1", lambda: set(world.phases("m1").values()) == {"paused"}, what="paused")
    start = world.clock.time()

    def held() -> bool:
        traffic.look()
        assert traffic.now(US) == 50, "a paused region moved on"
        assert (world.image("m1", US), world.image("m1", US, canary=True)) == (V1, V2)
        assert (world.image("m1", EU), world.image("m1", AP)) == (V1, V1)
        assert dict.fromkeys(world.names, "paused") == world.phases("m1")
        return world.clock.time() - start > 3 * STEP

    world.drive("m1", held, what="time to pass while paused")
    world.store.apply("m1", pause, False)

    def done() -> bool:
        traffic.look()
        return world.record("m1").completed_revision == new

    world.drive("m1", done, timeout=240, what="the resumed rollout to complete")
    assert dict.fromkeys(world.names, V2) == {r: world.image("m1", r) for r in world.names}
    assert traffic.missing == []


def test_abort_rolls_every_region_back_as_a_failure_does(world: Regions) -> None:
    world.update("m1", V2, {"waves": [[US]], "bake_seconds": 600})
    new = revision(world.item("m1").raw["spec"])
    world.drive("m1", lambda: _baking_since(world, US, new), what="the first wave baking")
    world.store.apply("m1", abort, "test")
    world.drive(
        "m1",
        lambda: (
            world.image("m1", US) == V1
            and dict.fromkeys(world.names, "rolled_back") == world.phases("m1")
        ),
        what="every region rolled back",
    )
    halt = world.record("m1").halt
    assert (new, "aborted by test") == (halt.revision, halt.reason)
    assert world.timeline.when(EU, V2) is None
    assert world.timeline.when(AP, V2) is None
    assert world.record("m1").completed_revision != new


def test_a_new_spec_mid_rollout_starts_over_from_the_completed_revision(world: Regions) -> None:
    world.update("m1", V2, {"waves": [[US]], "bake_seconds": BAKE})
    second = revision(world.item("m1").raw["spec"])
    since = world.drive(
        "m1", lambda: _baking_since(world, US, second), what="v2 baking in the first wave"
    )
    # Late in that bake, so a v2 bake counted for v3 would let the next wave go early.
    world.drive("m1", lambda: world.clock.time() >= since + BAKE - 10, what="v2's bake to run")
    world.update("m1", V3, {"waves": [[US]], "bake_seconds": BAKE})
    written = world.clock.time()
    third = revision(world.item("m1").raw["spec"])
    baking: dict[str, float] = {}

    def done() -> bool:
        since = _baking_since(world, US, third)
        if since is not None:
            baking.setdefault(US, since)
        return world.record("m1").completed_revision == third

    world.drive("m1", done, timeout=120, what="v3 to complete")
    assert world.timeline.when(EU, V2) is None, "a later wave served the intermediate revision"
    assert world.timeline.when(AP, V2) is None, "a later wave served the intermediate revision"
    later = min(world.timeline.when(EU, V3), world.timeline.when(AP, V3))
    assert later >= baking[US] + BAKE
    # The new revision bakes in full: the older one's bake does not count for it.
    assert later >= written + BAKE, "the first wave's bake of v2 was counted for v3"
    assert dict.fromkeys(world.names, V3) == {r: world.image("m1", r) for r in world.names}


# -- guarantee 1: a region added mid-rollout --------------------------------------------------


def test_a_region_added_mid_rollout_serves_the_completed_revision_until_its_wave(
    world: Regions,
) -> None:
    world.kits[US].put("m2", regions=(US, EU))
    world.converge("m2", (US, EU))
    bake = 40
    world.update("m2", V2, {"waves": [[US], [EU, AP]], "bake_seconds": bake})
    new = revision(world.item("m2").raw["spec"])
    since = world.drive(
        "m2",
        lambda: (s := world.status("m2", US)) and s.revision == new and s.rollout == "baking" and s,
        what="the first wave baking",
    )
    baking = parse_timestamp(since.since)
    loaded = world.item("m2")
    world.store.update(
        "m2", set_={"target_regions": [US, EU, AP]}, expected_updated_at=loaded.updated_at
    )

    def joined() -> bool:
        status = world.status("m2", AP)
        return status is not None and status.state == "running" and world.image("m2", AP) == V1

    world.drive("m2", joined, what="the new region running the completed revision")
    assert world.status("m2", AP).rollout == "waiting"
    world.drive("m2", lambda: world.record("m2").completed_revision == new, timeout=120)
    assert world.timeline.when(AP, V1) < world.timeline.when(AP, V2)
    assert world.timeline.when(AP, V2) >= baking + bake


# -- a parked region halts the revision ---------------------------------------------------------


class CrashWhileBakingBoom(EndpointActor):
    """A daemon bug: raises on every message while its region bakes a `boom` image."""

    def on_receive(self, message: Any) -> None:
        item = message.item if isinstance(message, SpecChanged) else self.item
        own = item.region_status.get(self.ctx.region) if item is not None else None
        if (
            item is not None
            and item.endpoint is not None
            and "boom" in item.endpoint.spec.image
            and any(s is not None and s.rollout == "baking" for s in (own, self.last_reported))
        ):
            raise RuntimeError("boom while baking")
        super().on_receive(message)


@pytest.fixture
def crashy_world(dynamo_url: str, table_name: str) -> Iterator[Regions]:
    """`world`, with the first region's daemon running `CrashWhileBakingBoom`."""
    clock = FakeClock()
    with regions(dynamo_url, table_name, (US, EU, AP), clock) as scenario:
        scenario.start(US, actor_factory=CrashWhileBakingBoom)
        scenario.start(EU)
        scenario.start(AP)
        scenario.put("m1")
        scenario.converge("m1")
        yield scenario


def test_a_region_parked_on_the_new_revision_reports_it_failed_and_halts_it(
    crashy_world: Regions,
) -> None:
    world = crashy_world
    world.update("m1", BOOM, {"waves": [[US]], "bake_seconds": 600})
    new = revision(world.item("m1").raw["spec"])
    world.drive("m1", lambda: world.record("m1").halt is not None, what="the halt", timeout=120)
    halt = world.record("m1").halt
    assert (new, US) == (halt.revision, halt.region)
    assert "crash loop: parked after" in halt.reason
    status = world.status("m1", US)
    assert ("error", new, "failed") == (status.state, status.revision, status.rollout)
    # The other regions never take it; the parked region rolls back when its actor is
    # retried (at the restart cap), its crash no longer triggered.
    world.drive(
        "m1",
        lambda: dict.fromkeys(world.names, "rolled_back") == world.phases("m1"),
        timeout=120,
        what="every region rolled back",
    )
    assert world.image("m1", US) == V1
    assert world.timeline.when(EU, BOOM) is None
    assert world.timeline.when(AP, BOOM) is None
