"""The gate interface (architecture section 12, `store.gates`): a gate written here, as a
test fixture, registered on a daemon with one line, halts the revision and rolls it back
through the same path as the CloudWatch alarms - the actor core never knows what is in a
gate. Two regions, one table, one daemon per region, in fake time."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from actors.app.rollout_status import RolloutView
from actors.clock import FakeClock
from store.gates import GateQuery, GateReading
from store.rollout import RolloutPolicy, revision
from tests.integration.regions import Regions, regions

US, EU = "us-east-1", "eu-west-1"
V2 = "repo/model:v2"
BAKE = 600


class SwitchGate:
    """A gate the test throws: it halts while `reason` is set."""

    name = "switch"
    poll_seconds = 5.0
    paces_steps = False

    def __init__(self) -> None:
        self.reason: str | None = None
        self.asked: list[GateQuery] = []
        self._lock = threading.Lock()

    def applies(self, policy: RolloutPolicy) -> bool:
        return True

    def read(self, query: GateQuery) -> GateReading:
        with self._lock:
            self.asked.append(query)
            reason = self.reason
        if reason is not None:
            return GateReading("thrown", reason, halt=f"switch thrown: {reason}")
        return GateReading("ok")

    def close(self) -> None:
        """Nothing to release."""


@pytest.fixture
def world(dynamo_url: str, table_name: str) -> Iterator[Regions]:
    with regions(dynamo_url, table_name, (US, EU), FakeClock()) as scenario:
        for region in scenario.names:
            scenario.start(region)
        scenario.put("m1")
        scenario.converge("m1")
        yield scenario


def test_a_gate_registered_with_one_line_halts_and_rolls_back(world: Regions) -> None:
    """The switch is thrown while the first wave bakes: the revision halts with the gate's
    reason, the first wave rolls back, the second never runs it; meanwhile the gate's
    reading was in the region's status entry."""
    switch = SwitchGate()
    world.daemons[US].gates.append(switch)
    world.update("m1", V2, {"waves": [[US]], "bake_seconds": BAKE})
    new = revision(world.item("m1").raw["spec"])
    world.drive(
        "m1",
        lambda: (
            (s := world.status("m1", US)) is not None
            and (s.revision, s.rollout) == (new, "baking")
            and (s.gates or {}).get("switch", {}).get("state") == "ok"
        ),
        what="the first wave baking, the gate read and shown",
    )
    row = RolloutView.of(world.item("m1"), world.clock.time()).regions[0]
    assert (row.region, row.cells()[-1]) == (US, "switch: ok")
    assert {q.phase for q in switch.asked} <= {"stepping", "baking"}
    assert {(q.endpoint, q.region) for q in switch.asked} == {("m1", US)}
    switch.reason = "error budget spent"
    thrown_at = world.clock.time()
    world.drive(
        "m1",
        lambda: world.record("m1").halt is not None and world.image("m1", US) == "repo/model:v1",
        timeout=120,
        what="the halt and the rollback of the first wave",
    )
    assert world.clock.time() - thrown_at < 2 * SwitchGate.poll_seconds + 5
    halt = world.record("m1").halt
    assert (halt.revision, halt.region, halt.reason) == (
        new,
        US,
        "switch thrown: error budget spent",
    )
    world.drive(
        "m1",
        lambda: set(world.phases("m1").values()) == {"rolled_back"},
        what="every region rolled back",
    )
    assert world.timeline.when(EU, V2) is None


def test_an_invalid_gate_field_is_reported_in_the_status_and_never_applied(
    world: Regions,
) -> None:
    """An item written past the CLI with an analysis entry that has no bound: each region
    reports `error` naming the problem, and keeps serving what it served."""
    loaded = world.item("m1")
    world.store.update(
        "m1",
        set_={
            "spec.image": V2,
            "spec.rollout": {"verify_weights": "yes", "analysis": [{"name": "e", "query": "up"}]},
        },
        expected_updated_at=loaded.updated_at,
    )
    world.drive(
        "m1",
        lambda: all(
            (s := world.status("m1", r)) is not None and s.state == "error" for r in world.names
        ),
        what="every region reporting the invalid policy",
    )
    error = world.status("m1", US).error
    assert "spec.rollout.analysis[0] needs a max or a min" in error
    assert "spec.rollout.verify_weights must be true or false, got 'yes'" in error
    assert world.image("m1", US) == "repo/model:v1"
    assert world.timeline.when(EU, V2) is None
