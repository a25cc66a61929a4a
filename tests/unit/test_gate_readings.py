"""Gate readings in a region's status entry and in `rollout status` (architecture section
12, `store.gates`): kept with a durable `since` per gate, written back unchanged while
nothing changes, shown per region after the reason, and in the JSON form."""

from __future__ import annotations

from actors.app.rollout_status import RolloutView
from actors.desired import iso_now
from actors.rollout import _shown
from store.dynamo import load_item
from store.gates import GateReading
from store.model import RegionStatus

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
