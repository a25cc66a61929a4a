"""The rules of the table's commands (stop, start, delete, update, add-region,
remove-region, canary, promote, rollback, restart): pure functions from the item as read
to the change to write.

Each rule takes the `LoadedItem` just read (plus its arguments), refuses what the
command must not do (`OperationRefused`, `InvalidEndpoint`, `ConditionFailed`) and
returns a `Change`. `DynamoEndpointStore.apply(name, rule, ...)` reads the item, calls
the rule and writes the change in one request conditional on the `updated_at` it read,
so a rule never talks to DynamoDB and a lost race never overwrites anything.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from store import errors
from store.item import LoadedItem
from store.model import next_timestamp
from store.spec_schema import region_image_uris
from store.validation import DESIRED_STATES, read_regions, validate_item

#: Desired states in which the endpoint serves nothing: a canary or a promotion is refused.
NOT_SERVING = ("stopped", "deleted")


@dataclass(frozen=True)
class Change:
    """One write to an item: dotted paths to set and to remove (`updated_at` is bumped
    by the store).

    Attributes:
        set_: {path: value}, paths dotted like "spec.image".
        remove: paths to remove.
        unless_stopped: also conditional on `desired_state` not being stopped or deleted
            at write time (a stop committed after the read wins).
    """

    set_: Mapping[str, Any] = field(default_factory=dict)
    remove: tuple[str, ...] = ()
    unless_stopped: bool = False


#: A command's rule: the item as read, then the command's own arguments.
Rule = Callable[..., Change]


def set_desired_state(loaded: LoadedItem, state: str) -> Change:
    """Set `desired_state` only (the spec is untouched).

    Raises:
        InvalidEndpoint: unknown state. OperationRefused: the endpoint is being deleted
        and `state` is not `deleted`.
    """
    if state not in DESIRED_STATES:
        raise errors.InvalidEndpoint(
            loaded.name,
            [f"desired_state must be one of {', '.join(DESIRED_STATES)}, got {state!r}"],
        )
    if loaded.raw.get("desired_state") == "deleted" and state != "deleted":
        raise errors.OperationRefused(
            f"endpoint {loaded.name!r} is being deleted; it cannot become {state}"
        )
    return Change(set_={"desired_state": state})


def update_spec(
    loaded: LoadedItem, changes: Mapping[str, Any], *, expected_updated_at: str | None = None
) -> Change:
    """Change spec fields; `desired_state` is untouched (a stopped endpoint stays stopped).

    Args:
        changes: {field: value} with fields of the spec ("image", "replicas", "env"...;
            a "spec." prefix is accepted); a value of None removes the field. Changing
            `image` also removes `region_image_uris` unless `changes` sets new ones.
        expected_updated_at: the `updated_at` of the read the changes were computed from
            (default: the read the store did for this change).

    Raises:
        ConditionFailed: `expected_updated_at` is not the item's. InvalidEndpoint: the
        changed item would be invalid.
    """
    _check_read(loaded, expected_updated_at)
    fields = {key.removeprefix("spec."): value for key, value in changes.items()}
    if fields.get("image"):
        # A new primary image makes the old overrides stale (defect 2); an ECR image is
        # rewritten for each target region's registry, as the predecessor's CLI does.
        given = fields.get("region_image_uris") or {}
        rewritten = region_image_uris(fields["image"], _target_regions(loaded.raw))
        fields["region_image_uris"] = {**rewritten, **given} or None
    change = Change(
        set_={f"spec.{k}": v for k, v in fields.items() if v is not None},
        remove=tuple(f"spec.{k}" for k, v in fields.items() if v is None),
    )
    return _checked(loaded, change)


def add_region(
    loaded: LoadedItem, region: str, *, expected_updated_at: str | None = None
) -> Change:
    """Add `region` to `target_regions` (nothing changes if it is there); when the image is
    an ECR image, also its rewrite for that region's registry in `region_image_uris`.

    Raises:
        OperationRefused: the endpoint is being deleted. ConditionFailed: see `update_spec`.
        InvalidEndpoint: the changed item would be invalid.
    """
    _check_read(loaded, expected_updated_at)
    if loaded.raw.get("desired_state") == "deleted":
        raise errors.OperationRefused(f"endpoint {loaded.name!r} is being deleted")
    regions = _target_regions(loaded.raw)
    if region in regions:
        return Change()
    set_: dict[str, Any] = {"target_regions": [*regions, region]}
    spec = loaded.raw.get("spec")
    image = spec.get("image") if isinstance(spec, dict) else None
    if isinstance(image, str) and image:
        current = spec.get("region_image_uris")
        overrides = dict(current) if isinstance(current, dict) else {}
        rewritten = region_image_uris(image, [*regions, region])
        if region not in overrides and rewritten:
            set_["spec.region_image_uris"] = {**rewritten, **overrides}
    return _checked(loaded, Change(set_=set_))


def remove_region(
    loaded: LoadedItem, region: str, *, expected_updated_at: str | None = None
) -> Change:
    """Remove `region` from `target_regions` (and its `region_image_uris` entry); the
    daemon there then removes the endpoint's objects.

    Raises:
        OperationRefused: `region` is not a target, or is the last one (delete the endpoint
        instead). ConditionFailed: see `update_spec`.
    """
    _check_read(loaded, expected_updated_at)
    regions = _target_regions(loaded.raw)
    if region not in regions:
        raise errors.OperationRefused(
            f"endpoint {loaded.name!r} does not target {region}; its regions are "
            f"{', '.join(regions) or 'none'}"
        )
    if regions == [region]:
        raise errors.OperationRefused(
            f"{region} is the last region of endpoint {loaded.name!r}; delete the endpoint instead"
        )
    set_: dict[str, Any] = {"target_regions": [r for r in regions if r != region]}
    remove: tuple[str, ...] = ()
    spec = loaded.raw.get("spec")
    overrides = spec.get("region_image_uris") if isinstance(spec, dict) else None
    if isinstance(overrides, dict) and region in overrides:
        kept = {r: uri for r, uri in overrides.items() if r != region}
        if kept:
            set_["spec.region_image_uris"] = kept
        else:
            remove = ("spec.region_image_uris",)
    return _checked(loaded, Change(set_=set_, remove=remove))


def set_canary(loaded: LoadedItem, image: str, weight: int, replicas: int = 1) -> Change:
    """Start (or change) the canary.

    Raises:
        InvalidEndpoint: bad image, weight or replicas. OperationRefused: the endpoint is
        stopped or deleted.
    """
    state = loaded.raw.get("desired_state")
    if state in NOT_SERVING:
        raise errors.OperationRefused(f"endpoint {loaded.name!r} is {state}; start it first")
    canary = {"image": image, "weight": weight, "replicas": replicas}
    return _checked(loaded, Change(set_={"spec.canary": canary}, unless_stopped=True))


def promote(loaded: LoadedItem) -> Change:
    """Make the canary's image the primary image and drop the canary and the region
    overrides, in one write that fails if the item was stopped or deleted meanwhile.

    Raises:
        OperationRefused: no canary, or the endpoint is stopped or deleted.
    """
    spec = loaded.raw.get("spec")
    canary = spec.get("canary") if isinstance(spec, dict) else None
    if not isinstance(canary, dict) or not canary.get("image"):
        raise errors.OperationRefused(f"endpoint {loaded.name!r} has no canary to promote")
    state = loaded.raw.get("desired_state")
    if state in NOT_SERVING:
        raise errors.OperationRefused(f"endpoint {loaded.name!r} is {state}; not promoting")
    change = Change(
        set_={"spec.image": canary["image"]},
        remove=("spec.region_image_uris", "spec.canary"),
        unless_stopped=True,
    )
    return _checked(loaded, change)


def rollback(loaded: LoadedItem) -> Change:
    """Remove the canary, keeping the primary.

    Raises:
        OperationRefused: no canary.
    """
    spec = loaded.raw.get("spec")
    if not isinstance(spec, dict) or "canary" not in spec:
        raise errors.OperationRefused(f"endpoint {loaded.name!r} has no canary to roll back")
    return Change(remove=("spec.canary",))


def request_restart(loaded: LoadedItem, at: str | None = None) -> Change:
    """Ask for a rolling restart of the endpoint's pods (primary and canary), as
    `kubectl rollout restart` does: sets the top-level `restart_requested_at` (ISO-8601,
    `at` or now, always a new value), which the daemon puts on each pod template as
    `kubectl.kubernetes.io/restartedAt`. The spec is untouched; a stopped endpoint's pods
    start with it later.

    Raises:
        OperationRefused: the endpoint is being deleted.
    """
    if loaded.raw.get("desired_state") == "deleted":
        raise errors.OperationRefused(
            f"endpoint {loaded.name!r} is being deleted; nothing to restart"
        )
    previous = loaded.raw.get("restart_requested_at")
    stamp = at or next_timestamp(previous if isinstance(previous, str) else None)
    if stamp == previous:
        stamp = next_timestamp(previous)
    return Change(set_={"restart_requested_at": stamp})


def changed_item(
    raw: Mapping[str, Any], set_: Mapping[str, Any], remove: Sequence[str]
) -> dict[str, Any]:
    """A copy of the item `raw` with the change applied (the parent maps of `set_` created)."""
    item = copy.deepcopy(dict(raw))
    for path, value in set_.items():
        *parents, leaf = path.split(".")
        target = item
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    for path in remove:
        *parents, leaf = path.split(".")
        target = item
        for parent in parents:
            target = target.get(parent, {})
        target.pop(leaf, None)
    return item


def _target_regions(raw: Mapping[str, Any]) -> list[str]:
    return list(read_regions(raw.get("target_regions")) or ())


def _check_read(loaded: LoadedItem, expected_updated_at: str | None) -> None:
    """Refuse a change computed from an older read than the store's (`ConditionFailed`)."""
    if expected_updated_at is not None and expected_updated_at != loaded.updated_at:
        raise errors.ConditionFailed(
            f"endpoint {loaded.name!r} changed since it was read; nothing was written",
            current_item=loaded.raw,
        )


def _checked(loaded: LoadedItem, change: Change) -> Change:
    """`change`, or InvalidEndpoint if the item with it applied breaks a validation rule."""
    problems = validate_item(changed_item(loaded.raw, change.set_, change.remove))
    if problems:
        raise errors.InvalidEndpoint(loaded.name, problems)
    return change
