"""Several clusters in one region: the summary and the write plans (`store.clusters`)."""

from __future__ import annotations

import pytest

from store.clusters import (
    CLUSTERS,
    UNNAMED,
    cluster_entries,
    own_entry,
    plan_removal,
    plan_write,
    summarize,
)
from store.model import RegionStatus


def at(state: str, ready: int = 1, *, sync: str = "2026-01-01T00:00:01Z", **extra) -> RegionStatus:
    return RegionStatus(state, ready, 1, sync, **extra)


@pytest.mark.parametrize(
    ("expected", "states"),
    [
        pytest.param("running", ("running", "running"), id="all-running"),
        pytest.param("deleted", ("deleted", "deleted"), id="all-deleted"),
        pytest.param("deleting", ("deleted", "running"), id="a-delete-is-done-when-all-are"),
        pytest.param("error", ("error", "running"), id="an-error-shows"),
        pytest.param("creating", ("creating", "running"), id="running-when-all-run"),
        pytest.param("updating", ("stopped", "running"), id="mixed"),
    ],
)
def test_the_region_state_is_what_every_cluster_agrees_on(
    expected: str, states: tuple[str, str]
) -> None:
    entries = {"blue": at(states[0]), "green": at(states[1])}
    assert expected == summarize(entries).state


def test_the_summary_sums_replicas_names_who_differs_and_carries_no_fence() -> None:
    summary = summarize(
        {
            "blue": at("deleted", 0, sync="2026-01-01T00:00:05Z", epoch=3, holder="b", seq=4),
            "green": at("running", 2, sync="2026-01-01T00:00:09Z", epoch=4, holder="g", seq=1),
        }
    )
    assert (summary.replicas_ready, summary.replicas_desired) == (2, 2)
    assert summary.last_sync == "2026-01-01T00:00:09Z"
    assert "green: running, last report 2026-01-01T00:00:09Z" in (summary.error or "")
    assert (summary.epoch, summary.holder, summary.seq) == (None, None, None)


def test_a_region_is_done_only_when_every_cluster_is_done_at_one_revision() -> None:
    def entry(phase: str, revision: str = "r2") -> RegionStatus:
        return at("running", revision=revision, rollout=phase, step=1, since="t")

    baking = summarize({"blue": entry("done"), "green": entry("baking")})
    assert (baking.revision, baking.rollout) == ("r2", "baking")
    both = summarize({"blue": entry("done"), "green": entry("done")})
    assert (both.revision, both.rollout) == ("r2", "done")
    split = summarize({"blue": entry("done"), "green": entry("done", revision="r1")})
    assert split.revision is None


def test_a_lone_founder_writes_the_predecessors_flat_entry() -> None:
    own = at("running", seq=1).to_item()
    plan = plan_write(None, own, cluster="blue", founder="blue")
    assert (plan.whole, plan.flat) == (own, True)


def test_another_cluster_converts_the_founders_flat_entry_keeping_it() -> None:
    flat = at("running", seq=7, epoch=1, holder="b").to_item()
    own = at("creating", 0, seq=1, epoch=2, holder="g").to_item()
    plan = plan_write(flat, own, cluster="green", founder="blue")
    assert plan.whole is not None
    assert plan.whole[CLUSTERS] == {"blue": flat, "green": own}
    assert plan.whole["state"] == "creating"
    assert plan.read == flat


def test_a_first_entry_of_a_non_founder_is_per_cluster_from_the_start() -> None:
    own = at("creating", 0, seq=1).to_item()
    plan = plan_write(None, own, cluster="green", founder="blue")
    assert plan.absent
    assert plan.whole is not None
    assert plan.whole[CLUSTERS] == {"green": own}


def test_a_shared_entry_is_written_per_cluster_with_the_summary_recomputed() -> None:
    blue = at("running", seq=3).to_item()
    current = {
        **at("creating").to_item(),
        CLUSTERS: {"blue": blue, "green": at("creating").to_item()},
    }
    own = at("running", seq=2).to_item()
    for cluster, founder in (("green", "blue"), ("blue", "blue")):
        plan = plan_write(current, own, cluster=cluster, founder=founder)
        assert (plan.whole, plan.own) == (None, own)
        assert plan.read == current
    plan = plan_write(current, own, cluster="green", founder="blue")
    assert plan.summary["state"] == "running"
    assert plan.summary["replicas_ready"] == 2


def test_own_entries() -> None:
    flat = at("running").to_item()
    assert own_entry(flat, "blue", "blue") == at("running")
    assert own_entry(flat, "green", "blue") is None
    shared = {CLUSTERS: {"green": at("deleted").to_item()}}
    assert own_entry(shared, "green", "blue") == at("deleted")
    assert cluster_entries(flat, None) == {UNNAMED: at("running")}


def test_removing_a_cluster_leaves_the_others_summary_or_nothing() -> None:
    assert plan_removal(at("running").to_item(), cluster="blue") is None
    two = {CLUSTERS: {"blue": at("running").to_item(), "green": at("deleted").to_item()}}
    plan = plan_removal(two, cluster="blue")
    assert plan is not None
    assert (plan.own, plan.summary["state"]) == (None, "deleted")
    last = plan_removal({CLUSTERS: {"blue": at("running").to_item()}}, cluster="blue")
    assert last is not None
    assert last.summary == {}


def test_the_founder_left_alone_in_a_shared_entry_makes_it_flat_again() -> None:
    current = {**at("running").to_item(), CLUSTERS: {"blue": at("running", seq=3).to_item()}}
    own = at("running", 2, seq=4).to_item()
    plan = plan_write(current, own, cluster="blue", founder="blue")
    assert (plan.whole, plan.collapse) == (own, True)
    # Not the founder: it stays per cluster (its flat entry would be taken for the founder's).
    assert not plan_write(current, own, cluster="green", founder="blue").collapse
