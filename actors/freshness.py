"""Which table state an endpoint actor adopts when it is told of a scanned item
(architecture section 12, "nothing moves backwards").

A scan queued behind a busy actor (a slow alarm read, a slow API) can arrive after the
actor's own later writes: its entry for this region and its rollout record are then older
than what the actor wrote. Versions decide, not arrival order: this region's entry is
adopted only when its `seq` is not below the one the actor holds, and the record fields
the actor itself wrote (a halt, a completion) are kept on an item of the same `updated_at`
that lacks them (the record only grows while a person's content is unchanged).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from store.item import LoadedItem, load_item
from store.model import RegionStatus
from store.rollout import ATTRIBUTE


@dataclass(frozen=True)
class Recorded:
    """The `rollout` record fields an actor wrote while the item had `updated_at`."""

    updated_at: str | None
    fields: Mapping[str, Any] = field(default_factory=dict)

    def add(self, updated_at: str | None, fields: Mapping[str, Any]) -> Recorded:
        """These fields too (a new `updated_at` starts afresh)."""
        kept = dict(self.fields) if updated_at == self.updated_at else {}
        return Recorded(updated_at, {**kept, **fields})


@dataclass(frozen=True)
class Adopted:
    """What the actor holds after a scanned item.

    Attributes:
        item: the scanned item, with the record fields this actor wrote kept.
        own: this cluster's entry: the item's, or the actor's when the item's is older.
        repair: the item's entry is older than the actor's (a stale scan, or a write that
            was lost): the actor writes its own again.
    """

    item: LoadedItem
    own: RegionStatus | None
    repair: bool


def older(theirs: RegionStatus | None, ours: RegionStatus | None) -> bool:
    """The table's entry `theirs` is older than `ours` (by `seq`; an entry without one
    is older than any with one, and nothing is older than an actor that wrote nothing)."""
    if ours is None or ours.seq is None:
        return False
    return theirs is None or theirs.seq is None or theirs.seq < ours.seq


def adopt(
    item: LoadedItem,
    theirs: RegionStatus | None,
    ours: RegionStatus | None,
    recorded: Recorded | None,
) -> Adopted:
    """What the actor holding `ours` (its last reported entry) and having written
    `recorded` takes from the scanned `item`, whose entry of its own is `theirs` (its
    cluster's, `EndpointStore.own_status`)."""
    stale = older(theirs, ours)
    return Adopted(with_record(item, recorded), ours if stale else theirs, stale)


def with_record(item: LoadedItem, recorded: Recorded | None) -> LoadedItem:
    """`item` with the record fields the actor wrote while it had the same `updated_at`."""
    if recorded is None or not recorded.fields or item.updated_at != recorded.updated_at:
        return item
    record = item.raw.get(ATTRIBUTE)
    record = dict(record) if isinstance(record, dict) else {}
    if all(record.get(k) == v for k, v in recorded.fields.items()):
        return item
    return load_item({**item.raw, ATTRIBUTE: {**record, **recorded.fields}})
