"""When may the objects of an endpoint that is missing from the table be deleted?

Deletion is the dangerous verb (docs/architecture.md, "Deletion"): a table
restarted empty, a wrong table name or a bad scan must never delete a cluster's
endpoints. `plan_orphans` is the pure rule the supervisor applies to every scan:

- an empty scan never counts as evidence (it deletes nothing and confirms nothing);
- an endpoint is due for deletion only after `confirmations` scans in a row agree
  it is absent (the endpoint actor then reads the server, not its cache, before
  it deletes anything);
- if more endpoints are due at once than `max_deletes`, or more than one and more
  than `max_fraction` of the endpoints present, none is deleted: the refusal is
  reported and holds until the view changes;
- an endpoint that was held back is confirmed afresh once the refusal lifts: a table
  restored item by item passes below the limits while the last items are still being
  written, and those stragglers must not be deleted on the scans that counted during the
  refusal.

Items with `desired_state: deleted` are the normal way to delete and never pass here.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

__all__ = ["OrphanPlan", "OrphanRules", "plan_orphans"]


@dataclass(frozen=True)
class OrphanRules:
    """Guards on deleting endpoints absent from the table.

    confirmations: scans in a row that must agree an endpoint is gone (default 3).
    max_deletes: most endpoints deleted on one scan (`MAX_ORPHAN_DELETES`, default 5).
    max_fraction: most of the endpoints present deleted on one scan (default 0.2); a
        single endpoint is never refused by this rule alone.
    """

    confirmations: int = 3
    max_deletes: int = 5
    max_fraction: float = 0.2

    def __post_init__(self) -> None:
        if self.confirmations < 1 or self.max_deletes < 0 or not 0 <= self.max_fraction <= 1:
            raise ValueError(
                "orphan rules need confirmations >= 1, max_deletes >= 0 and a fraction "
                f"within 0..1, got {self.confirmations}/{self.max_deletes}/{self.max_fraction}"
            )


@dataclass(frozen=True)
class OrphanPlan:
    """What to do about endpoints absent from one scan.

    absent: consecutive scans each absent endpoint has been missing for (carry it to
        the next call).
    delete: endpoints whose objects may be deleted now.
    refused: endpoints due for deletion that the mass-deletion guard holds back.
    reason: why they are held back ("" when nothing is refused).
    """

    absent: Mapping[str, int]
    delete: frozenset[str] = frozenset()
    refused: frozenset[str] = frozenset()
    reason: str = ""
    waiting: Mapping[str, int] = field(default_factory=dict)


def plan_orphans(
    previous: Mapping[str, int],
    missing: Collection[str],
    *,
    scan_total: int,
    present: int,
    rules: OrphanRules,
    held: Collection[str] = (),
) -> OrphanPlan:
    """Decide on the endpoints with objects here that one scan did not return.

    Args:
        previous: the `absent` counts of the last plan.
        missing: endpoints with objects or actors here that are not in this scan.
        scan_total: items the scan returned (0 = an empty table or a wrong one).
        present: endpoints with objects or actors here, missing ones included.
        rules: the guards.
        held: the endpoints the last plan refused.

    Returns:
        The plan; `waiting` lists the absent endpoints not yet confirmed.
    """
    if scan_total == 0:
        kept = {name: count for name, count in previous.items() if name in missing}
        return OrphanPlan(absent=kept, waiting=kept)
    absent = {name: previous.get(name, 0) + 1 for name in missing}
    due = frozenset(name for name, count in absent.items() if count >= rules.confirmations)
    if due & set(held) and not _refuses(due, present, rules):
        # The refusal lifted: what it held counts from this scan again.
        absent.update(dict.fromkeys(due & set(held), 1))
        due = due - set(held)
    waiting = {name: count for name, count in absent.items() if name not in due}
    if _refuses(due, present, rules):
        reason = (
            f"refusing to delete {len(due)} of {present} endpoints absent from the table "
            f"at once (limits: {rules.max_deletes} endpoints, "
            f"{rules.max_fraction:.0%} of those present); check the table and REGION"
        )
        return OrphanPlan(absent=absent, refused=due, reason=reason, waiting=waiting)
    return OrphanPlan(absent=absent, delete=due, waiting=waiting)


def _refuses(due: Collection[str], present: int, rules: OrphanRules) -> bool:
    """Deleting `due` at once, of `present`, is a mass deletion."""
    too_many = len(due) > rules.max_deletes
    too_large = len(due) > 1 and len(due) > rules.max_fraction * present
    return bool(due) and (too_many or too_large)
