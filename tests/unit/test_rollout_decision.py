"""The rollout decision of one region (architecture section 12, `actors.rollout.decide`):
plain values and fake times in, what the region serves and reports out."""

from __future__ import annotations

import pytest

from actors.desired import iso_now, precise_iso, step_canary
from actors.rollout import (
    HOLD,
    SERVE_COMPLETED,
    SERVE_NEW,
    Observed,
    Plan,
    RolloutDecision,
    carried,
    decide,
    parked,
)
from store.model import RegionStatus
from store.rollout import Halt, RolloutPolicy, RolloutRecord, revision
from tests.items import loaded

NOW = 1_800_000_000.0
R, C = "new-rev", "old-rev"
TARGETS = ("us-east-1", "eu-west-1", "ap-south-1")
POLICY = RolloutPolicy(waves=(("us-east-1",),), bake_seconds=300, progress_deadline_seconds=600)
RECORD = RolloutRecord(completed_revision=C, completed_spec={"image": "repo/m:v1"})


def entry(rollout: str, *, ago: float, revision: str = R, state: str = "running", step=None):
    return RegionStatus(
        state=state, revision=revision, rollout=rollout, step=step, since=iso_now(NOW - ago)
    )


def run(statuses, *, region="eu-west-1", record=RECORD, policy=POLICY, observed=None):
    return decide(
        policy=policy,
        record=record,
        revision=R,
        targets=TARGETS,
        statuses=statuses,
        region=region,
        observed=observed or Observed(),
        now=NOW,
    )


@pytest.mark.parametrize(
    ("expected", "first_wave"),
    [
        pytest.param((SERVE_COMPLETED, "waiting"), None, id="first-wave-not-started"),
        pytest.param(
            (SERVE_COMPLETED, "waiting"), entry("stepping", ago=50, state="updating"), id="rolling"
        ),
        pytest.param((SERVE_COMPLETED, "waiting"), entry("baking", ago=299), id="bake-not-over"),
        pytest.param(
            (SERVE_COMPLETED, "waiting"), entry("baking", ago=900), id="bake-over-not-done-yet"
        ),
        pytest.param((SERVE_NEW, "stepping"), entry("done", ago=1), id="done"),
        pytest.param(
            (SERVE_COMPLETED, "waiting"),
            entry("baking", ago=900, state="updating"),
            id="baking-but-not-running",
        ),
    ],
)
def test_a_later_wave_waits_until_every_earlier_region_baked(expected, first_wave) -> None:
    statuses = {} if first_wave is None else {"us-east-1": first_wave}
    decision = run(statuses)
    assert expected == (decision.serve, decision.phase)


def test_a_bake_is_never_cut_short_by_a_timestamp_rounded_to_the_second() -> None:
    """The phase's start goes to the table to the microsecond: cut to the second, a bake
    begun at .6 s would end 0.6 s early."""
    plan = Plan(RolloutDecision(SERVE_NEW, "baking", R, None, NOW + 0.6), None, None, R)
    own = plan.stamp(RegionStatus(state="running"))
    ready = Observed(new_ready=True)

    def at(now: float) -> str:
        return decide(
            policy=POLICY,
            record=RECORD,
            revision=R,
            targets=TARGETS,
            statuses={"us-east-1": own},
            region="us-east-1",
            observed=ready,
            now=now,
        ).phase

    assert (at(NOW + 300.5), at(NOW + 300.6)) == ("baking", "done")


def test_a_region_not_due_without_a_completed_revision_touches_nothing() -> None:
    decision = run({}, record=RolloutRecord())
    assert (decision.serve, decision.phase, decision.revision) == (HOLD, "waiting", None)


def test_a_region_on_the_revision_stays_on_it_even_if_an_earlier_wave_regresses() -> None:
    statuses = {
        "us-east-1": entry("baking", ago=10, state="updating"),
        "eu-west-1": entry("baking", ago=10),
    }
    decision = run(statuses, observed=Observed(new_ready=True))
    assert (decision.serve, decision.phase) == (SERVE_NEW, "baking")


def test_the_bake_clock_comes_from_the_table() -> None:
    own = entry("baking", ago=200)
    decision = run({"us-east-1": own}, region="us-east-1", observed=Observed(new_ready=True))
    assert (
        decision.phase,
        decision.since,
        decision.next_check,
    ) == ("baking", NOW - 200, NOW + 100)
    own = entry("baking", ago=300)
    decision = run({"us-east-1": own}, region="us-east-1", observed=Observed(new_ready=True))
    assert decision.phase == "done"


@pytest.mark.parametrize(
    ("reason", "own", "observed"),
    [
        pytest.param(
            "not ready within 600s",
            entry("stepping", ago=600, state="updating"),
            Observed(),
            id="deadline",
        ),
        pytest.param(
            "watchdog", entry("baking", ago=10), Observed(new_ready=True, serving=False), id="wd"
        ),
        pytest.param(
            "alarm a-5xx in ALARM",
            entry("baking", ago=10),
            Observed(new_ready=True, halts=("alarm a-5xx in ALARM",)),
            id="alarm",
        ),
    ],
)
def test_a_failure_halts_and_rolls_back(reason: str, own, observed: Observed) -> None:
    decision = run({"us-east-1": own}, region="us-east-1", observed=observed)
    assert decision.halt is not None
    assert reason in decision.halt
    assert (
        decision.serve,
        decision.phase,
        decision.revision,
    ) == (SERVE_COMPLETED, "rolled_back", C)


def test_before_the_deadline_a_slow_rollout_is_not_a_failure() -> None:
    own = entry("stepping", ago=599, state="updating")
    decision = run({"us-east-1": own}, region="us-east-1")
    assert (decision.halt, decision.phase, decision.next_check) == (None, "stepping", NOW + 1)


def test_a_halted_revision_is_taken_by_no_further_region() -> None:
    halted = RolloutRecord(C, {"image": "repo/m:v1"}, Halt(R, "us-east-1", "boom", ""))
    decision = run({"us-east-1": entry("done", ago=900)}, record=halted)
    assert (decision.serve, decision.phase) == (SERVE_COMPLETED, "rolled_back")
    no_rollback = RolloutPolicy(waves=POLICY.waves, auto_rollback=False)
    decision = run({"eu-west-1": entry("baking", ago=5)}, record=halted, policy=no_rollback)
    assert (decision.serve, decision.phase) == (SERVE_NEW, "failed")


def test_pause_holds_every_region_where_it_is() -> None:
    paused = RolloutRecord(C, {"image": "repo/m:v1"}, paused=True)
    policy = RolloutPolicy(waves=POLICY.waves, steps=(10, 50))
    statuses = {"us-east-1": entry("stepping", ago=999, step=1, state="updating")}
    first = run(statuses, region="us-east-1", record=paused, policy=policy)
    assert (first.serve, first.phase, first.weight) == (SERVE_NEW, "paused", 50)
    second = run(statuses, record=paused, policy=policy)
    assert (second.serve, second.phase) == (SERVE_COMPLETED, "paused")


def test_steps_serve_the_new_revision_as_canary_then_promote() -> None:
    policy = RolloutPolicy(waves=POLICY.waves, steps=(10, 50), step_seconds=60)
    start = run({}, region="us-east-1", policy=policy)
    assert (start.serve, start.phase, start.step, start.weight) == (SERVE_NEW, "stepping", 0, 10)
    own = entry("stepping", ago=60, step=0, state="running")
    ready = Observed(canary_ready=True)
    nxt = run({"us-east-1": own}, region="us-east-1", policy=policy, observed=ready)
    assert (nxt.step, nxt.weight, nxt.since) == (1, 50, NOW)
    own = entry("stepping", ago=60, step=1, state="running")
    promoted = run({"us-east-1": own}, region="us-east-1", policy=policy, observed=ready)
    # Promoted: the canary keeps the last step's weight while the new primary rolls.
    assert (promoted.step, promoted.weight, promoted.promoting) == (2, 50, True)
    own = entry("stepping", ago=5, step=2, state="updating")
    rolling = Observed(canary_ready=True, canary_serving=True)
    held = run({"us-east-1": own}, region="us-east-1", policy=policy, observed=rolling)
    assert (held.phase, held.weight, held.promoting) == ("stepping", 50, True)
    ready = Observed(new_ready=True, canary_ready=True, canary_serving=True)
    baking = run({"us-east-1": own}, region="us-east-1", policy=policy, observed=ready)
    assert (baking.phase, baking.weight) == ("baking", None)
    own = entry("stepping", ago=30, step=0, state="running")
    held = run({"us-east-1": own}, region="us-east-1", policy=policy, observed=ready)
    assert (held.step, held.weight, held.next_check) == (0, 10, NOW + 30)


def test_the_last_region_done_records_completion() -> None:
    statuses = {r: entry("done", ago=5) for r in TARGETS}
    statuses["ap-south-1"] = entry("baking", ago=300)
    decision = run(statuses, region="ap-south-1", observed=Observed(new_ready=True))
    assert (decision.phase, decision.complete) == ("done", True)
    statuses["eu-west-1"] = entry("baking", ago=10)
    decision = run(statuses, region="ap-south-1", observed=Observed(new_ready=True))
    assert (decision.phase, decision.complete) == ("done", False)


def test_the_completed_revision_is_done_everywhere() -> None:
    record = RolloutRecord(R, {"image": "repo/m:v2"})
    decision = run({}, record=record)
    assert (decision.serve, decision.phase, decision.revision) == (SERVE_NEW, "done", R)


def test_a_region_that_failed_a_halted_revision_without_rollback_stays_frozen_on_it() -> None:
    """auto_rollback false: the region keeps serving the failed revision at its step, also
    once it has reported `failed` (not only on the decision that saw the halt)."""
    halted = RolloutRecord(C, {"image": "repo/m:v1"}, Halt(R, "us-east-1", "boom", ""))
    policy = RolloutPolicy(waves=POLICY.waves, steps=(10, 50), auto_rollback=False)
    own = entry("failed", ago=50, step=1, state="running")
    decision = run({"eu-west-1": own}, record=halted, policy=policy)
    assert (decision.serve, decision.phase, decision.step, decision.weight) == (
        SERVE_NEW,
        "failed",
        1,
        50,
    )


def test_a_region_reporting_failed_without_a_recorded_halt_records_it() -> None:
    """A parked region's `failed` report whose halt write was lost: its next actor
    generation records the halt (with the report's reason) and rolls back."""
    own = RegionStatus(
        state="error", error="crash loop: boom", revision=R, rollout="failed", since=iso_now(NOW)
    )
    decision = run({"us-east-1": own}, region="us-east-1")
    assert (decision.halt, decision.serve, decision.phase) == (
        "crash loop: boom",
        SERVE_COMPLETED,
        "rolled_back",
    )


# -- the canary of a step, and a parked region ------------------------------------------


def _item(spec: dict, *, own: RegionStatus | None = None, record: dict | None = None):
    statuses = {} if own is None else {"us-east-1": own}
    return loaded(spec=spec, regions=TARGETS, statuses=statuses, record=record)


@pytest.mark.parametrize(
    ("expected", "changes", "weight"),
    [
        pytest.param(1, {"replicas": 1}, 10, id="one-replica"),
        pytest.param(1, {"replicas": 4}, 10, id="at-least-one"),
        pytest.param(2, {"replicas": 4}, 50, id="share-of-four"),
        pytest.param(5, {"replicas": 10}, 50, id="share-of-ten"),
        pytest.param(
            2,
            {"replicas": 1, "autoscaling": {"enabled": True, "min_replicas": 3}},
            50,
            id="autoscaled-min",
        ),
    ],
)
def test_a_steps_canary_has_the_new_revisions_share_of_capacity(expected, changes, weight):
    item = _item({"image": "repo/m:v2", **changes})
    canary = step_canary(item.endpoint, "us-east-1", weight)
    assert expected == canary.replicas
    assert (canary.weight, canary.image, canary.pod.image) == (weight, "repo/m:v2", "repo/m:v2")


def test_a_steps_canary_is_the_new_spec_with_the_regions_image_override() -> None:
    spec = {
        "image": "repo/m:v2",
        "env": {"MODE": "new"},
        "region_image_uris": {"us-east-1": "r/m:2"},
    }
    canary = step_canary(_item(spec).endpoint, "us-east-1", 10)
    assert (canary.image, canary.pod.env) == ("r/m:2", (("MODE", "new"),))
    assert (canary.pod.canary, canary.pod.autoscaling) == (None, None)


def test_a_region_parked_on_the_new_revision_reports_it_failed_and_halts_it() -> None:
    spec = {"image": "repo/m:v2", "rollout": {"waves": [["us-east-1"]]}}
    new = revision(spec)
    own = entry("baking", ago=10, revision=new, step=0)
    record = {"completed_revision": C, "completed_spec": {"image": "repo/m:v1"}}
    parked_error = RegionStatus(state="error", error="parked after 6 restarts; last error: x")
    status, halt = parked(
        _item(spec, own=own, record=record), "us-east-1", parked_error, NOW, own=own
    )
    assert (status.state, status.revision, status.rollout, status.step, status.since) == (
        "error",
        new,
        "failed",
        0,
        precise_iso(NOW),
    )
    assert (halt.revision, halt.region) == (new, "us-east-1")
    assert halt.reason == "crash loop: parked after 6 restarts; last error: x"


@pytest.mark.parametrize(
    "own",
    [
        pytest.param(entry("waiting", ago=10, revision=C), id="waiting"),
        pytest.param(entry("rolled_back", ago=10, revision=C), id="rolled-back"),
    ],
)
def test_a_region_parked_off_the_new_revision_keeps_its_rollout_fields(own) -> None:
    spec = {"image": "repo/m:v2", "rollout": {"waves": [["us-east-1"]]}}
    record = {"completed_revision": C, "completed_spec": {"image": "repo/m:v1"}}
    parked_error = RegionStatus(state="error", error="parked")
    status, halt = parked(
        _item(spec, own=own, record=record), "us-east-1", parked_error, NOW, own=own
    )
    assert halt is None
    assert (status.revision, status.rollout, status.since) == (own.revision, own.rollout, own.since)


def test_a_region_parked_without_a_policy_reports_as_before() -> None:
    parked_error = RegionStatus(state="error", error="parked")
    assert (parked_error, None) == parked(
        _item({"image": "repo/m:v1"}), "us-east-1", parked_error, NOW, own=None
    )


def test_a_step_serves_its_time_from_when_its_canary_became_available() -> None:
    """A canary that loaded its model for 40 of the step's 60 s has served 20: the step
    holds until it has served 60, then moves on."""
    policy = RolloutPolicy(waves=POLICY.waves, steps=(10, 50), step_seconds=60)
    own = entry("stepping", ago=60, step=0, state="running")
    late = Observed(canary_ready=True, canary_since=NOW - 20)
    held = run({"us-east-1": own}, region="us-east-1", policy=policy, observed=late)
    assert (held.step, held.weight, held.next_check) == (0, 10, NOW + 40)
    ready = Observed(canary_ready=True, canary_since=NOW - 60)
    moved = run({"us-east-1": own}, region="us-east-1", policy=policy, observed=ready)
    assert (moved.step, moved.weight) == (1, 50)


# -- issue 19: a region never moves backwards --------------------------------------------

X = "superseded-rev"


def test_a_region_on_a_superseded_revision_keeps_it_until_its_wave_is_due() -> None:
    """A new spec written while this region bakes X (never completed): it changes only to R
    when due, never back to C."""
    statuses = {"eu-west-1": entry("baking", ago=10, revision=X)}
    decision = run(statuses)
    assert (decision.serve, decision.phase, decision.revision) == (HOLD, "superseded", X)
    statuses["us-east-1"] = entry("done", ago=1)
    due = run(statuses, observed=Observed(primary_completed=False))
    assert (due.serve, due.phase, due.revision) == (SERVE_NEW, "stepping", R)


def test_a_superseded_region_whose_primary_serves_x_takes_r_without_steps() -> None:
    """Step 0 would make C the primary again: it takes R as the primary at once."""
    policy = RolloutPolicy(waves=POLICY.waves, steps=(10, 50))
    statuses = {
        "us-east-1": entry("done", ago=1),
        "eu-west-1": entry("done", ago=10, revision=X, step=2),
    }
    due = run(statuses, policy=policy, observed=Observed(primary_completed=False))
    assert (due.step, due.weight) == (2, None)
    on_c = run(statuses, policy=policy, observed=Observed(primary_completed=True))
    assert (on_c.step, on_c.weight) == (0, 10)


def test_a_halt_rolls_back_only_the_regions_serving_the_halted_revision() -> None:
    superseded = {"eu-west-1": entry("baking", ago=10, revision=X)}
    r_halted = RolloutRecord(C, {"image": "repo/m:v1"}, Halt(R, "us-east-1", "boom", ""))
    decision = run(superseded, record=r_halted)
    assert (decision.serve, decision.revision) == (HOLD, X)
    x_halted = RolloutRecord(C, {"image": "repo/m:v1"}, Halt(X, "us-east-1", "boom", ""))
    decision = run(superseded, record=x_halted)
    assert (decision.serve, decision.phase, decision.revision) == (
        SERVE_COMPLETED,
        "rolled_back",
        C,
    )
    paused = RolloutRecord(C, {"image": "repo/m:v1"}, paused=True)
    assert run(superseded, record=paused).serve == HOLD


def test_a_stopped_region_holds_its_clock_and_is_never_done_for_what_did_not_run() -> None:
    idle = Observed(idle=True, new_ready=True)
    baking = {"us-east-1": entry("baking", ago=900, state="stopped")}
    held = run(baking, region="us-east-1", observed=idle)
    assert (held.phase, held.halt, held.complete) == ("paused", None, False)
    stepping = {"us-east-1": entry("stepping", ago=900, state="stopped")}
    assert run(stepping, region="us-east-1", observed=idle).halt is None
    # Not due while stopped: a later wave does not take the revision.
    assert run({"us-east-1": entry("done", ago=900)}, observed=idle).serve == SERVE_COMPLETED
    # A region done before the stop baked what ran: it stays done.
    done = run({"us-east-1": entry("done", ago=5)}, region="us-east-1", observed=idle)
    assert done.phase == "done"


def test_a_bake_is_done_only_after_a_gate_read_taken_after_its_end() -> None:
    policy = RolloutPolicy(waves=POLICY.waves, bake_seconds=300, alarms=("a-5xx",))
    own = {"us-east-1": entry("baking", ago=300)}
    end = NOW

    def at(**observed) -> RolloutDecision:
        return run(
            own, region="us-east-1", policy=policy, observed=Observed(new_ready=True, **observed)
        )

    early = at(gate_at=end - 1)
    assert (early.phase, early.gate) == ("baking", "alarms not read since the bake ended")
    assert at(gate_at=end).phase == "done"
    missing = at(gate_problem="alarm a-5xx does not exist in CloudWatch")
    assert (missing.phase, missing.gate) == ("baking", "alarm a-5xx does not exist in CloudWatch")
    # Without alarms there is no gate to read.
    assert run(own, region="us-east-1", observed=Observed(new_ready=True)).phase == "done"


@pytest.mark.parametrize(
    ("ready", "expected"),
    [(0, 0), (1, 25), (2, 25), (3, 75)],
)
def test_a_step_weight_needs_ready_canary_pods_carrying_a_primary_pods_share(
    ready: int, expected: int
) -> None:
    """4 primary replicas: 75 % needs 3 ready canary pods (25 % each, a primary pod's
    share of all traffic); until then the previous step's 25 % holds."""
    assert carried(75, (25, 75), ready, 4) == expected
