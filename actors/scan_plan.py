"""What the supervisor does with one table scan, as a pure function.

`plan_scan` takes the scan and what the supervisor knows (its endpoint actors, the
parked endpoints, the absence counts, the endpoints with objects in the cluster)
and says which actors to start, which to tell of a change, which endpoints to
retire (their objects deleted here), which actors to stop and what the deletion
guard decided. The supervisor only carries the plan out, so every rule here is
unit-tested on plain values (`tests/unit/test_scan_plan.py`):

- a new endpoint gets an actor, unless it is parked or its restart is pending;
- a parked endpoint is unparked only when a person changed its item (its content
  hash differs from the one it was parked on): the daemon's own status writes
  change the item but never its content hash;
- an item that no longer targets this region but still has a status entry here
  is retired; an endpoint absent from the table with objects here follows
  `actors.orphans`;
- an endpoint absent from the table with no object here (purged after every region
  reported it deleted, or removed before anything was created) is `gone`: its actor
  stops and its slot goes at once, and the deletion guard never counts it (there is
  nothing to delete);
- an actor whose endpoint is in the table but neither targets this region nor has a
  status entry here is stopped (it was never ours to clean up);
- a partial view (the change feed's items) plans only for the items it holds: it
  counts no absence and stops no other actor.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from actors.messages import Scanned
from actors.orphans import OrphanPlan, OrphanRules, plan_orphans
from store.item import LoadedItem

__all__ = ["ScanPlan", "plan_scan"]


@dataclass(frozen=True)
class ScanPlan:
    """The supervisor's actions for one scan.

    start: endpoints that need a new actor (new, or unparked).
    unpark: the parked endpoints among `start`.
    changed: endpoints whose running actor must be told of its changed item.
    retire: endpoints whose objects here must go (item, or None when absent from the table).
    stop: actors to stop without touching their objects.
    gone: endpoints absent from the table with no object here: their actors stop and
        their slots go (a subset of `stop`).
    orphans: the deletion guard's decision (counts to keep, refusal to report); None when
        the cluster's view is not synced, so nothing was counted.
    """

    start: tuple[str, ...] = ()
    unpark: frozenset[str] = frozenset()
    changed: tuple[str, ...] = ()
    retire: Mapping[str, LoadedItem | None] = field(default_factory=dict)
    stop: frozenset[str] = frozenset()
    gone: frozenset[str] = frozenset()
    orphans: OrphanPlan | None = None


def plan_scan(
    scan: Scanned,
    *,
    actors: Mapping[str, bool],
    parked: Mapping[str, str],
    absent: Mapping[str, int],
    held: Collection[str] = (),
    in_cluster: Collection[str] | None,
    rules: OrphanRules,
) -> ScanPlan:
    """Plan the supervisor's actions for `scan`.

    Args:
        scan: the poller's view of the table for this region.
        actors: endpoints with an actor slot -> True when its restart is pending (a
            dead actor waiting out its backoff).
        parked: parked endpoints -> the content hash of the item they were parked on.
        absent: the absence counts of the previous plan.
        held: the endpoints the previous plan's guard refused to delete.
        in_cluster: endpoints with objects in the cluster (from the watch cache), or
            None when the cache is not synced (then nothing absent is counted).
        rules: the deletion guard.
    """
    start: list[str] = []
    unpark: set[str] = set()
    changed: list[str] = []
    for name, item in scan.active.items():
        parked_on = parked.get(name)
        if parked_on is not None:
            if parked_on != item.content_hash:
                start.append(name)
                unpark.add(name)
        elif name not in actors:
            start.append(name)
        elif name in scan.changed and not actors[name]:
            changed.append(name)
    retire: dict[str, LoadedItem | None] = dict(scan.retiring)
    orphans: OrphanPlan | None = None
    if scan.partial:
        # The change feed's few items: what it does not hold says nothing of the table.
        held = set(scan.present) & set(actors)
        return ScanPlan(
            start=tuple(start),
            unpark=frozenset(unpark),
            changed=tuple(changed),
            retire=retire,
            stop=frozenset(held - set(scan.active) - set(scan.retiring)),
        )
    absent_here = set(actors) - set(scan.present)
    gone: set[str] = set()
    if in_cluster is None:
        missing = absent_here
    else:
        # Only endpoints with objects here are evidence for the guard: a purged endpoint
        # (or one removed before anything was created) has nothing to delete.
        missing = set(in_cluster) - set(scan.present)
        gone = absent_here - missing
        here = (set(actors) - gone) | set(in_cluster)
        orphans = plan_orphans(
            absent, missing, scan_total=scan.total, present=len(here), rules=rules, held=held
        )
        retire.update(dict.fromkeys(sorted(orphans.delete)))
    stop = frozenset(set(actors) - set(scan.active) - set(scan.retiring) - missing)
    return ScanPlan(
        start=tuple(start),
        unpark=frozenset(unpark),
        changed=tuple(changed),
        retire=retire,
        stop=stop,
        gone=frozenset(gone),
        orphans=orphans,
    )
