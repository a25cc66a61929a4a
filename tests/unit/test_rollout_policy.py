"""`spec.rollout` (architecture section 12): parsed into a frozen policy, validated with one
message per
problem, and the revision of a spec ignores the policy."""

from __future__ import annotations

from decimal import Decimal

import pytest

from store.model import RegionStatus
from store.rollout import RolloutPolicy, RolloutRecord, check_rollout, parse_rollout, revision
from store.validation import validate_item


def test_defaults_and_waves_over_the_targets() -> None:
    policy = parse_rollout({"image": "m", "rollout": {"waves": [["b"], ["x", "c"]]}})
    assert policy is not None
    assert (
        policy.bake_seconds,
        policy.step_seconds,
        policy.progress_deadline_seconds,
        policy.auto_rollback,
        policy.steps,
    ) == (300, 60, 600, True, ())
    assert policy.waves_for(("a", "b", "c", "d")) == (("b",), ("c",), ("a", "d"))
    assert parse_rollout({"image": "m"}) is None


@pytest.mark.parametrize(
    ("expected", "rollout"),
    [
        pytest.param("spec.rollout.steps must increase, got [50, 10]", {"steps": [50, 10]}, id="s"),
        pytest.param(
            "spec.rollout.steps must be a list of canary weights between 1 and 99, got [100]",
            {"steps": [100]},
            id="weight",
        ),
        pytest.param(
            "spec.rollout.bake_seconds must be a whole number of seconds between 0 and 604800, "
            "got -1",
            {"bake_seconds": -1},
            id="bake",
        ),
        pytest.param(
            "spec.rollout.waves names region 'a' more than once", {"waves": [["a"], ["a"]]}
        ),
        pytest.param(
            "spec.rollout.auto_rollback must be true or false, got 'yes'", {"auto_rollback": "yes"}
        ),
        pytest.param(
            "spec.rollout.alarms must be a list of alarm names, got 'x'", {"alarms": "x"}, id="al"
        ),
    ],
)
def test_bad_policies_are_refused_with_one_message_each(expected: str, rollout: dict) -> None:
    assert [expected] == check_rollout({"image": "m", "rollout": rollout})


def test_steps_refuse_a_hand_made_canary_and_the_item_check_includes_the_policy() -> None:
    spec = {"image": "repo/m:v1", "canary": {"image": "repo/m:v2"}, "rollout": {"steps": [10]}}
    problems = validate_item({"endpoint_name": "m1", "spec": spec})
    assert any("cannot be used with spec.canary" in p for p in problems)


def test_the_revision_ignores_the_policy_key_order_and_decimals() -> None:
    spec = {"image": "repo/m:v1", "replicas": 2}
    same = {"replicas": Decimal(2), "image": "repo/m:v1", "rollout": {"bake_seconds": 5}}
    assert revision(spec) == revision(same)
    assert revision(spec) != revision({**spec, "image": "repo/m:v2"})


def test_record_and_status_fields_round_trip_and_predecessor_items_read_empty() -> None:
    assert RolloutRecord() == RolloutRecord.from_item({"endpoint_name": "m1"})
    record = RolloutRecord.from_item(
        {"rollout": {"completed_revision": "r1", "completed_spec": {"image": "m"}, "paused": True}}
    )
    assert (record.completed_revision, record.paused, record.halt) == ("r1", True, None)
    status = RegionStatus(state="running", revision="r1", rollout="baking", step=0, since="t")
    assert status == RegionStatus.from_item(status.to_item())
    plain = RegionStatus(state="running")
    assert {"revision", "rollout", "step", "since"}.isdisjoint(plain.to_item())
    assert RolloutPolicy().to_item() == {}


def test_verify_weights_is_a_gate_field() -> None:
    assert check_rollout({"rollout": {"verify_weights": "yes"}}) == [
        "spec.rollout.verify_weights must be true or false, got 'yes'"
    ]
    policy = parse_rollout({"rollout": {"verify_weights": True}})
    assert policy is not None
    assert (policy.gated, policy.gate_fields, policy.to_item()) == (
        True,
        ("verify_weights",),
        {"verify_weights": True},
    )


@pytest.mark.parametrize(
    ("problem", "analysis"),
    [
        pytest.param(
            "spec.rollout.analysis[0] needs a max or a min",
            [{"name": "e", "query": "q"}],
            id="no-bound",
        ),
        pytest.param(
            "spec.rollout.analysis[0].query must be a PromQL expression, got ''",
            [{"name": "e", "query": "", "max": 1}],
            id="query",
        ),
        pytest.param(
            "spec.rollout.analysis[0].on_no_data must be pass or halt, got 'fail'",
            [{"name": "e", "query": "q", "max": 1, "on_no_data": "fail"}],
            id="no-data",
        ),
        pytest.param(
            "spec.rollout.analysis names 'e' more than once",
            [{"name": "e", "query": "q", "max": 1}, {"name": "e", "query": "r", "min": 0}],
            id="twice",
        ),
        pytest.param(
            "spec.rollout.analysis[0].max must be a number, got 'high'",
            [{"name": "e", "query": "q", "max": "high"}],
            id="max",
        ),
    ],
)
def test_an_invalid_analysis_is_refused(problem: str, analysis: list) -> None:
    assert problem in check_rollout({"rollout": {"analysis": analysis}})


def test_an_analysis_round_trips() -> None:
    entry = {
        "name": "e",
        "query": "rate(x[1m])",
        "max": 0.5,
        "for_seconds": 60,
        "on_no_data": "halt",
    }
    policy = parse_rollout({"rollout": {"analysis": [entry]}})
    assert policy is not None
    assert policy.to_item() == {"analysis": [entry]}
    assert policy.gate_fields == ("analysis",)
