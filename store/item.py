"""One item as read from the table: `LoadedItem`, what every reader of the table holds
(the supervisor, the endpoint actors, the CLI), apart from the DynamoDB adapter that reads
it, so holding an item never imports boto3's side of the store."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from store import clusters, errors
from store.convert import plain
from store.model import Endpoint, RegionStatus, parse_endpoint, parse_region_status
from store.rollout import ATTRIBUTE as ROLLOUT
from store.validation import read_regions

#: The table's key attribute.
KEY = "endpoint_name"
# Fields of the item that are not the endpoint's content: status writes and the
# timestamp bump must not look like spec changes to `content_hash`.
_NOT_CONTENT = frozenset({"region_status", "updated_at"})
# Region names inside a `target_regions` given as a string ("us-east-1", "us-east-1,eu-west-1").
_REGION_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


@dataclass(frozen=True)
class LoadedItem:
    """One item as read from the table.

    Attributes:
        name: `endpoint_name` ("" when the item has none that is a string).
        endpoint: the parsed endpoint, or None when the item is invalid.
        problems: why the item is invalid (empty when `endpoint` is set).
        updated_at: the item's `updated_at`, the token for conditional writes.
        content_hash: stable hash of the item without `region_status` and `updated_at`,
            so status writes do not look like spec changes.
        region_status: parsed leniently, even when the item is invalid.
        raw: the whole item with Decimals converted, unknown attributes included.
    """

    name: str
    endpoint: Endpoint | None
    problems: tuple[str, ...]
    updated_at: str | None
    content_hash: str
    region_status: dict[str, RegionStatus]
    raw: dict[str, Any]

    @property
    def target_regions(self) -> tuple[str, ...]:
        """The regions that serve the item, or for an invalid item report why it is not.

        An invalid item's `target_regions` is read leniently so that a problem is never
        silent: a string counts as the region names in it (`"us-east-1"`, as the
        predecessor's `region in target_regions` took it), non-strings in a list are skipped.
        """
        if self.endpoint is not None:
            return self.endpoint.target_regions
        regions = self.raw.get("target_regions")
        if isinstance(regions, str):
            return tuple(_REGION_WORD.findall(regions))
        if isinstance(regions, list):
            return tuple(r for r in regions if isinstance(r, str) and r)
        if isinstance(regions, set | frozenset):
            return tuple(sorted(r for r in regions if isinstance(r, str) and r))
        return ()

    @property
    def targets_unreadable(self) -> bool:
        """`target_regions` is there but names no region that can be read (a number, a
        map, a set of numbers, an empty string): no region can tell whether it is a target,
        so every region reports the problem (architecture section 8), never silence."""
        regions = self.raw.get("target_regions")
        if regions is None or self.target_regions:
            return False
        return read_regions(regions) is None

    def cluster_status(self, region: str) -> dict[str, RegionStatus]:
        """Each cluster's entry of `region` when several clusters share it
        (`store.clusters`); empty when one cluster serves it (its entry is the region's)."""
        statuses = self.raw.get("region_status")
        entry = statuses.get(region) if isinstance(statuses, dict) else None
        return clusters.cluster_entries(entry, None) if clusters.is_shared(entry) else {}

    @property
    def status_problem(self) -> str | None:
        """Why no region can write its status into this item (`region_status` is there but
        is not a map), or None. See `DynamoEndpointStore.write_region_status`."""
        status = self.raw.get("region_status")
        if status is None or isinstance(status, dict):
            return None
        return (
            f"region_status must be a map of region to status, got {repr(status)[:80]}; "
            "no region's status can be written until it is fixed"
        )


def load_item(raw: Mapping[str, Any]) -> LoadedItem:
    """Return a `LoadedItem` for a deserialized item (Decimals allowed)."""
    item = plain(dict(raw))
    name = item.get(KEY)
    try:
        endpoint: Endpoint | None = parse_endpoint(item)
        problems: tuple[str, ...] = ()
    except errors.InvalidEndpoint as invalid:
        endpoint, problems = None, invalid.problems
    updated_at = item.get("updated_at")
    return LoadedItem(
        name=name if isinstance(name, str) else "",
        endpoint=endpoint,
        problems=problems,
        updated_at=updated_at if isinstance(updated_at, str) else None,
        content_hash=content_hash(item),
        region_status=parse_region_status(item.get("region_status")),
        raw=item,
    )


def content_hash(item: Mapping[str, Any]) -> str:
    """Stable SHA-256 of `item` without `region_status` and `updated_at`, and of its
    `rollout` record only `paused` (what a person sets): the daemon's own rollout writes
    must not look like a person's change (they would unpark an endpoint, defect 26)."""
    content = {k: v for k, v in plain(dict(item)).items() if k not in _NOT_CONTENT}
    record = content.get(ROLLOUT)
    if isinstance(record, dict):
        content[ROLLOUT] = {"paused": record.get("paused")}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), default=_canonical)
    return hashlib.sha256(text.encode()).hexdigest()


def _canonical(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    return repr(value)
