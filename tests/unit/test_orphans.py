"""The deletion guard (`actors.orphans.plan_orphans`): an empty scan never deletes, an
absent endpoint is deleted only after three scans agree, and a mass deletion is refused."""

from __future__ import annotations

import pytest

from actors.orphans import OrphanRules, plan_orphans

RULES = OrphanRules(confirmations=3, max_deletes=5, max_fraction=0.2)


def _scans(missing: set[str], *, scans: int, total: int, present: int) -> list:
    plans, absent = [], {}
    for _ in range(scans):
        plan = plan_orphans(absent, missing, scan_total=total, present=present, rules=RULES)
        absent = dict(plan.absent)
        plans.append(plan)
    return plans


def test_an_absent_endpoint_is_deleted_on_the_third_scan_that_agrees() -> None:
    plans = _scans({"m1"}, scans=3, total=9, present=10)
    assert [p.delete for p in plans] == [frozenset(), frozenset(), frozenset({"m1"})]
    assert plans[0].waiting == {"m1": 1}


def test_an_empty_scan_never_deletes_and_never_confirms() -> None:
    plans = _scans({"m1", "m2"}, scans=10, total=0, present=2)
    assert all(not p.delete and not p.refused for p in plans)
    assert plans[-1].absent == {}


def test_an_empty_scan_in_between_does_not_count_as_agreement() -> None:
    absent: dict[str, int] = {}
    for total in (9, 0, 0, 9):
        plan = plan_orphans(absent, {"m1"}, scan_total=total, present=10, rules=RULES)
        absent = dict(plan.absent)
    assert plan.delete == frozenset()
    assert absent == {"m1": 2}


def test_an_endpoint_back_in_the_table_starts_counting_again() -> None:
    first = plan_orphans({}, {"m1"}, scan_total=9, present=10, rules=RULES)
    second = plan_orphans(first.absent, set(), scan_total=10, present=10, rules=RULES)
    third = plan_orphans(second.absent, {"m1"}, scan_total=9, present=10, rules=RULES)
    assert third.absent == {"m1": 1}
    assert not third.delete


@pytest.mark.parametrize(
    ("missing", "present", "refused"),
    [
        pytest.param(6, 100, True, id="more-than-max-deletes"),
        pytest.param(5, 100, False, id="exactly-max-deletes"),
        pytest.param(3, 10, True, id="more-than-20-percent"),
        pytest.param(2, 10, False, id="exactly-20-percent"),
        pytest.param(1, 1, False, id="a-single-endpoint-is-not-a-mass-deletion"),
        pytest.param(2, 2, True, id="every-endpoint-of-a-small-cluster"),
    ],
)
def test_a_mass_deletion_deletes_none(missing: int, present: int, refused: bool) -> None:
    names = {f"m{i}" for i in range(missing)}
    plan = _scans(names, scans=3, total=50, present=present)[-1]
    if refused:
        assert plan.delete == frozenset()
        assert plan.refused == names
        assert f"refusing to delete {missing} of {present} endpoints" in plan.reason
    else:
        assert plan.delete == names
        assert plan.refused == frozenset()
        assert plan.reason == ""


def test_endpoints_held_by_a_refusal_are_confirmed_afresh_when_it_lifts() -> None:
    # Seven items vanish (refused), then come back one by one: when five are back the
    # two stragglers are below the limits, but the scans they were absent for during the
    # refusal do not count - their items are still being restored.
    names = {f"m{i}" for i in range(7)}
    refused = _scans(names, scans=3, total=50, present=10)[-1]
    assert refused.refused == names
    stragglers = {"m5", "m6"}
    lifted = plan_orphans(
        refused.absent, stragglers, scan_total=55, present=10, rules=RULES, held=refused.refused
    )
    assert (lifted.delete, lifted.refused, lifted.reason) == (frozenset(), frozenset(), "")
    assert lifted.waiting == {"m5": 1, "m6": 1}
    # Still absent for the confirmations that follow: a real removal, deleted.
    later = plan_orphans(lifted.absent, stragglers, scan_total=55, present=10, rules=RULES)
    last = plan_orphans(later.absent, stragglers, scan_total=55, present=10, rules=RULES)
    assert (later.delete, last.delete) == (frozenset(), frozenset(stragglers))


def test_rules_are_checked() -> None:
    with pytest.raises(ValueError, match="confirmations >= 1"):
        OrphanRules(confirmations=0)
