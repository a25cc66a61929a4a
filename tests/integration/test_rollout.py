"""Guarded global rollout across regions (DESIGN 12, issue 14's guarantees 1, 3, 4, 6):
three regions, one table, one daemon per region, in fake time."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from actors.clock import FakeClock
from store.model import parse_timestamp
from store.rollout import revision
from tests.integration.regions import INTERVAL, Regions, regions

US, EU, AP = "us-east-1", "eu-west-1", "ap-south-1"
V1, V2, BAD = "repo/model:v1", "repo/model:v2", "repo/model:crashloop"
BAKE = 30


@pytest.fixture
def world(dynamo_url: str, table_name: str) -> Iterator[Regions]:
    clock = FakeClock()
    with regions(dynamo_url, table_name, (US, EU, AP), clock) as scenario:
        for region in scenario.names:
            scenario.start(region)
        scenario.put("m1")
        scenario.drive(
            "m1",
            lambda: all(
                (s := scenario.status("m1", r)) is not None and s.state == "running"
                for r in scenario.names
            ),
            what="v1 running everywhere",
        )
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
    world.drive(
        "m1",
        lambda: all(world.image("m1", r) == V2 for r in world.names),
        what="v2 everywhere",
    )
    firsts = [world.timeline.when(r, V2) for r in world.names]
    assert max(firsts) - min(firsts) <= 2 * INTERVAL
    item = world.item("m1")
    assert "rollout" not in item.raw
    for status in item.region_status.values():
        assert (status.revision, status.rollout, status.since) == (None, None, None)
