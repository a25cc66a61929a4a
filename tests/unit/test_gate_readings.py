"""Gate readings (architecture section 12, `store.gates`): kept in a region's status entry
with a durable `since` per gate (unchanged while nothing changes), shown per region by
`rollout status` and its JSON form; and what a pending gate does to the decision."""

from __future__ import annotations

import dataclasses

from actors.app.rollout_status import RolloutView
from actors.desired import iso_now
from actors.rollout import Observed, RolloutDecision, _shown, decide
from store.gates import GateReading
from store.item import load_item
from store.model import RegionStatus
from store.rollout import RolloutPolicy, RolloutRecord

NOW = 1_800_000_000.0
US, EU = "us-east-1", "eu-west-1"


def test_a_reading_keeps_its_since_while_its_state_and_detail_stay() -> None:
    before = RegionStatus(
        "running",
        gates={"weights": {"state": "verified", "detail": "90/10", "since": iso_now(NOW - 50)}},
    )
    same = _shown({"weights": GateReading("verified", "90/10")}, before, NOW)
    assert same == {"weights": {"state": "verified", "detail": "90/10", "since": iso_now(NOW - 50)}}
    moved = _shown({"weights": GateReading("verified", "50/50")}, before, NOW)
    assert moved["weights"]["since"] != iso_now(NOW - 50)


def test_readings_round_trip_through_the_status_entry() -> None:
    status = RegionStatus("running", gates={"alarms": {"state": "ok", "since": "t"}})
    assert RegionStatus.from_item(status.to_item()) == status
    # Absent without a gate: the predecessor's entries are unchanged.
    assert "gates" not in RegionStatus("running").to_item()


def test_rollout_status_shows_each_regions_gate_readings() -> None:
    item = load_item(
        {
            "endpoint_name": "m1",
            "desired_state": "running",
            "target_regions": [US, EU],
            "spec": {"image": "repo/m:v2", "rollout": {"waves": [[US]], "alarms": ["m1-5xx"]}},
            "region_status": {
                US: {
                    "state": "running",
                    "rollout": "baking",
                    "gates": {
                        "alarms": {"state": "ok", "detail": "m1-5xx not in ALARM", "since": "t"},
                        "weights": {"state": "pending", "detail": "load balancer: 100/0"},
                    },
                },
                EU: {"state": "running", "rollout": "waiting"},
            },
        }
    )
    view = RolloutView.of(item, NOW)
    us, eu = view.regions
    assert us.cells()[-1] == (
        "alarms: ok (m1-5xx not in ALARM), weights: pending (load balancer: 100/0)"
    )
    assert eu.cells()[-1] == ""
    assert view.to_json()["regions"][0]["gates"]["weights"]["state"] == "pending"
    assert view.to_json()["regions"][1]["gates"] == {}


def _decide(own: RegionStatus, observed: Observed) -> RolloutDecision:
    policy = RolloutPolicy(
        steps=(10, 50), step_seconds=60, progress_deadline_seconds=600, verify_weights=True
    )
    return decide(
        policy=policy,
        record=RolloutRecord(completed_revision="c", completed_spec={"image": "repo/m:v1"}),
        revision="r",
        targets=(US,),
        statuses={US: own},
        region=US,
        observed=observed,
        now=NOW,
    )


def _own(phase: str, step: int, ago: float) -> RegionStatus:
    return RegionStatus("running", revision="r", rollout=phase, step=step, since=iso_now(NOW - ago))


def test_a_pending_gate_holds_a_step_and_halts_it_past_the_deadline() -> None:
    ready = Observed(canary_ready=True, canary_serving=True, canary_since=NOW - 500)
    held = _decide(_own("stepping", 0, 500), dataclasses.replace(ready, pending="not carried"))
    assert (held.phase, held.step, held.weight, held.halt, held.gate) == (
        "stepping",
        0,
        10,
        None,
        "not carried",
    )
    late = _decide(_own("stepping", 0, 600), dataclasses.replace(ready, pending="not carried"))
    assert late.halt == "not carried after 600s"
    # Passing again: the step's time counts from then, not from the step's start.
    passed = dataclasses.replace(ready, passed_since=NOW - 30)
    assert _decide(_own("stepping", 0, 500), passed).step == 0
    assert (
        _decide(_own("stepping", 0, 500), dataclasses.replace(ready, passed_since=NOW - 60)).step
        == 1
    )


def test_a_pending_gate_holds_the_promotion_and_the_end_of_the_bake() -> None:
    promoted = Observed(new_ready=True, canary_serving=True, pending="not carried")
    held = _decide(_own("stepping", 2, 10), promoted)
    assert (held.phase, held.weight, held.promoting) == ("stepping", 50, True)
    baked = Observed(new_ready=True, gate_at=NOW, pending="not carried")
    assert _decide(_own("baking", 2, 400), baked).phase == "baking"
    assert _decide(_own("baking", 2, 300), dataclasses.replace(baked, pending=None)).phase == "done"


def test_under_a_pacing_gate_a_promoted_canary_is_drained_before_it_goes() -> None:
    """The promoted primary is ready: the canary's weight goes to 0 first (kept while the
    load balancer has not taken it), and the region bakes (canary removed) once 0 is
    carried; without a pacing gate it bakes at once."""
    ready = Observed(new_ready=True, canary_serving=True, passed_since=NOW - 5, canary_weight=50)
    drain = _decide(_own("stepping", 2, 10), ready)
    assert (drain.phase, drain.weight, drain.promoting) == ("stepping", 0, True)
    lagging = dataclasses.replace(ready, canary_weight=0, passed_since=None, pending="lags")
    held = _decide(_own("stepping", 2, 10), lagging)
    assert (held.phase, held.weight, held.promoting) == ("stepping", 0, True)
    drained = dataclasses.replace(ready, canary_weight=0)
    assert _decide(_own("stepping", 2, 10), drained).phase == "baking"
    unpaced = dataclasses.replace(ready, passed_since=None)
    assert _decide(_own("stepping", 2, 10), unpaced).phase == "baking"
