"""A region that stops reporting during a rollout (`actors.silence`, and its use in
`actors.rollout.decide`; architecture section 12)."""

from __future__ import annotations

from actors.desired import iso_now
from actors.rollout import Observed, decide
from actors.silence import silence_limit, silent_regions
from store.model import RegionStatus
from store.rollout import RolloutPolicy, RolloutRecord

NOW = 1_800_000_000.0
R, C = "new-rev", "old-rev"
US, EU, AP = "us-east-1", "eu-west-1", "ap-south-1"
TARGETS = (US, EU, AP)
POLICY = RolloutPolicy(waves=((US,),), bake_seconds=60, progress_deadline_seconds=600)
RECORD = RolloutRecord(completed_revision=C, completed_spec={"image": "repo/m:v1"})


def entry(rollout: str, *, quiet: float, revision: str = R) -> RegionStatus:
    return RegionStatus(
        state="running",
        last_sync=iso_now(NOW - quiet),
        revision=revision,
        rollout=rollout,
        since=iso_now(NOW - 1000),
    )


def test_only_regions_expected_to_move_the_revision_are_judged() -> None:
    statuses = {US: entry("baking", quiet=100), EU: entry("waiting", quiet=500, revision=C)}
    found = silent_regions(POLICY, TARGETS, statuses, R, exclude=AP, now=NOW)
    # eu-west-1 is not due (us-east-1 is not done): its silence says nothing yet.
    assert [(s.region, s.quiet) for s in found] == [(US, 100)]
    statuses[US] = entry("done", quiet=900)
    found = silent_regions(POLICY, TARGETS, statuses, R, exclude=AP, now=NOW)
    assert [(s.region, s.quiet) for s in found] == [(EU, 500)]


def test_the_limit_is_the_heartbeat_with_its_jitter_and_three_intervals() -> None:
    assert silence_limit(300, 15) == 405
    assert silence_limit(0, 15) == float("inf")


def run(statuses, *, silence: float = 60.0):
    return decide(
        policy=POLICY,
        record=RECORD,
        revision=R,
        targets=TARGETS,
        statuses=statuses,
        region=EU,
        observed=Observed(),
        now=NOW,
        silence=silence,
    )


def test_a_silent_baking_region_is_named_then_halts_past_the_deadline() -> None:
    quiet = run({US: entry("baking", quiet=100)})
    assert (quiet.phase, quiet.halt) == ("waiting", None)
    assert quiet.gate == f"{US} silent since {iso_now(NOW - 100)}"
    assert quiet.next_check == NOW - 100 + 600 + 0.01
    halted = run({US: entry("baking", quiet=600)})
    assert halted.halt is not None
    assert halted.halt.startswith(f"{US} silent for 600s")
    assert (halted.serve, halted.phase) == ("completed", "rolled_back")


def test_a_reporting_region_or_no_limit_names_no_one() -> None:
    assert run({US: entry("baking", quiet=30)}).gate is None
    assert run({US: entry("baking", quiet=6000)}, silence=float("inf")).halt is None


def test_a_dead_cluster_is_not_hidden_behind_a_live_one_of_its_region() -> None:
    """Two clusters serve us-east-1: the region's summary is as fresh as its latest
    cluster, so each cluster is judged on its own, named region/cluster - also by the
    other cluster of the same region."""
    blue, green = entry("baking", quiet=5), entry("baking", quiet=700)
    statuses = {US: entry("baking", quiet=5)}
    found = silent_regions(
        POLICY,
        TARGETS,
        statuses,
        R,
        exclude=AP,
        now=NOW,
        sharing={US: {"blue": blue, "green": green}},
    )
    assert [(s.region, s.quiet) for s in found] == [(f"{US}/green", 700), (f"{US}/blue", 5)]
    # Blue judges its own region's other cluster (not itself).
    found = silent_regions(
        POLICY, TARGETS, statuses, R, exclude=US, now=NOW, sharing={US: {"green": green}}
    )
    assert [(s.region, s.quiet) for s in found] == [(f"{US}/green", 700)]
    # A done cluster is not expected to report.
    done = entry("done", quiet=700)
    found = silent_regions(
        POLICY, TARGETS, statuses, R, exclude=US, now=NOW, sharing={US: {"green": done}}
    )
    assert found == []


def test_a_cluster_silent_past_the_deadline_halts_the_revision_for_its_sibling() -> None:
    green = entry("baking", quiet=700)
    decision = decide(
        policy=POLICY,
        record=RECORD,
        revision=R,
        targets=TARGETS,
        statuses={US: entry("done", quiet=1), EU: entry("baking", quiet=1)},
        region=EU,
        observed=Observed(),
        now=NOW,
        silence=60.0,
        sharing={EU: {"green": green}},
    )
    assert decision.halt is not None
    assert decision.halt.startswith(f"{EU}/green silent for 700s")
