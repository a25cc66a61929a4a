"""`actors.decisions.rollout_decision`: a rollout decision is announced when this region's
(revision, phase, step) changes, named as people read it, and never twice."""

from __future__ import annotations

import pytest

from actors.decisions import rollout_decision
from actors.rollout import Plan, RolloutDecision
from store.model import RegionStatus
from store.rollout import Halt

R, C = "r-new", "c-old"


def _plan(phase: str, revision: str | None, step: int | None, **extra) -> Plan:
    return Plan(RolloutDecision("new", phase, revision, step, 0.0, **extra), None, None, R)


def _status(phase: str | None, revision: str | None = R, step: int | None = None) -> RegionStatus:
    return RegionStatus(state="running", revision=revision, rollout=phase, step=step)


@pytest.mark.parametrize(
    ("expected", "before", "plan"),
    [
        pytest.param(
            "RolloutStarted", _status("done", C), _plan("stepping", R, 0, weight=10), id="started"
        ),
        pytest.param(
            "RolloutStepped",
            _status("stepping", R, 0),
            _plan("stepping", R, 1, weight=50),
            id="stepped",
        ),
        pytest.param(
            "RolloutPromoted", _status("stepping", R, 1), _plan("stepping", R, 2), id="promoted"
        ),
        pytest.param(
            "RolloutBaking", _status("stepping", R, 2), _plan("baking", R, 2), id="baking"
        ),
        pytest.param("RolloutDone", _status("baking", R, 2), _plan("done", R, 2), id="done"),
        pytest.param("RolloutPaused", _status("baking", R, 2), _plan("paused", R, 2), id="paused"),
        pytest.param(
            "RolloutResumed", _status("paused", R, 2), _plan("baking", R, 2), id="resumed"
        ),
        pytest.param("RolloutWaiting", _status("done", C), _plan("waiting", C, None), id="waiting"),
        pytest.param(
            "RolloutRolledBack",
            _status("baking", R, 0),
            _plan("rolled_back", C, None),
            id="rolled back",
        ),
        pytest.param(
            "RolloutHalted", _status("waiting", C), _plan("failed", C, None), id="halted elsewhere"
        ),
        pytest.param(None, _status("baking", R, 2), _plan("baking", R, 2), id="unchanged"),
        pytest.param(
            None,
            _status("stepping", R, 0),
            _plan("failed", R, 0, halt="not ready"),
            id="halted here: told by halted()",
        ),
    ],
)
def test_a_change_of_phase_is_one_named_decision(
    expected: str | None, before: RegionStatus, plan: Plan
) -> None:
    found = rollout_decision(before, plan, halt=Halt(R, "us-east-1", "alarm x in ALARM", ""))
    assert expected == (found.reason if found is not None else None)


def test_a_rollback_names_the_region_and_reason_of_the_halt() -> None:
    found = rollout_decision(
        _status("waiting", C),
        _plan("rolled_back", C, None),
        halt=Halt(R, "us-east-1", "alarm m1-5xx in ALARM", ""),
    )
    assert found is not None
    assert found.warning
    assert "us-east-1: alarm m1-5xx in ALARM" in found.message
