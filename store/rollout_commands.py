"""The rules of the rollout verbs (`endpoints rollout pause|resume|abort`, and `endpoints
update` with the seed written with a first policy): pure functions from the item as read
to the `Change` to write, applied with `DynamoEndpointStore.apply(name, rule, ...)`
(conditional on the `updated_at` read, see `store.commands`). Each verb refuses an item
without `spec.rollout` (`OperationRefused`): there is no rollout to steer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from store import errors
from store.commands import Change, update_spec
from store.item import LoadedItem
from store.rollout import ATTRIBUTE, Halt, RolloutRecord, revision

__all__ = ["abort", "pause", "seed", "update_and_seed"]


def _record_change(loaded: LoadedItem, fields: Mapping[str, Any]) -> Change:
    """Set `fields` of the `rollout` map, creating the map when the item has none."""
    if isinstance(loaded.raw.get(ATTRIBUTE), dict):
        return Change(set_={f"{ATTRIBUTE}.{k}": v for k, v in fields.items()})
    return Change(set_={ATTRIBUTE: dict(fields)})


def _spec(loaded: LoadedItem) -> dict[str, Any]:
    spec = loaded.raw.get("spec")
    return spec if isinstance(spec, dict) else {}


def _require_policy(loaded: LoadedItem, verb: str) -> None:
    if _spec(loaded).get(ATTRIBUTE) is None:
        raise errors.OperationRefused(
            f"endpoint {loaded.name!r} has no rollout policy to {verb} "
            "(set one with `endpoints update NAME --waves ...`)"
        )


def pause(loaded: LoadedItem, paused: bool = True) -> Change:
    """`rollout pause` (True) / `rollout resume` (False): every region holds its step.

    Raises:
        OperationRefused: the item has no rollout policy.
    """
    _require_policy(loaded, "pause" if paused else "resume")
    return _record_change(loaded, {"paused": paused})


def abort(loaded: LoadedItem, by: str = "a person", at: str | None = None) -> Change:
    """`rollout abort`: halt the item's current revision as a failure does (with
    `auto_rollback`, every region returns to the completed revision).

    Raises:
        OperationRefused: no rollout policy, or the revision completed or halted already.
    """
    _require_policy(loaded, "abort")
    current = revision(_spec(loaded))
    record = RolloutRecord.from_item(loaded.raw)
    if record.completed_revision == current:
        raise errors.OperationRefused(
            f"the rollout of {loaded.name!r} completed everywhere; nothing to abort"
        )
    halted = record.halted(current)
    if halted is not None:
        raise errors.OperationRefused(
            f"the rollout of {loaded.name!r} is already halted: {halted.reason}"
        )
    halt = Halt(
        revision=current,
        region="",
        reason=f"aborted by {by}",
        # The daemon's format for a halt's time (`...Z`), not `updated_at`'s `+00:00`.
        at=at or dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    return _record_change(loaded, {"halt": halt.to_item()})


def seed(loaded: LoadedItem) -> Change:
    """Record the item's current spec as the completed revision when it has no policy
    yet: to be written with a first (or re-added) policy (`update --waves ...`), in the
    same change as the new spec, so the regions not yet due keep serving what they serve.

    Without a policy every change reached every region at once, so the current spec is
    what they serve: a completed revision recorded before the policy was removed
    (`update --no-rollout`) is stale and is replaced. An item that has a policy keeps its
    record. Returns an empty change when there is nothing to seed."""
    record = RolloutRecord.from_item(loaded.raw)
    spec = loaded.raw.get("spec")
    if not isinstance(spec, dict) or (
        record.completed_spec is not None and spec.get(ATTRIBUTE) is not None
    ):
        return Change()
    current = {k: v for k, v in spec.items() if k != ATTRIBUTE}
    return _record_change(
        loaded, {"completed_revision": revision(current), "completed_spec": current}
    )


def update_and_seed(
    loaded: LoadedItem, changes: Mapping[str, Any], *, expected_updated_at: str | None = None
) -> Change:
    """`endpoints update`: `store.commands.update_spec`'s change, plus the `seed` when the
    spec has a rollout policy afterwards, in one write (architecture section 12: a region not yet
    due
    keeps serving what it serves, which must be recorded before the new spec is)."""
    change = update_spec(loaded, changes, expected_updated_at=expected_updated_at)
    policy = changes.get(ATTRIBUTE, _spec(loaded).get(ATTRIBUTE))
    if policy is None:
        return change
    seeded = seed(loaded)
    return Change(
        set_={**change.set_, **seeded.set_},
        remove=change.remove,
        unless_stopped=change.unless_stopped,
    )
