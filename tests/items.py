"""The one builder of table items for tests: the shape of an item is written here once.

`item()` returns the raw item (a dict, as the table holds it); `loaded()` the same item as
the daemon reads it (`store.item.LoadedItem`). Every field has a valid default; a test sets
only what it is about.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from store.item import LoadedItem, load_item
from store.model import RegionStatus

REGION = "us-east-1"
NAMESPACE = "gco-inference"
IMAGE = "repo/model:v1"
UPDATED_AT = "2026-01-01T00:00:00Z"


def item(
    name: str = "m1",
    *,
    image: str = IMAGE,
    spec: Mapping[str, Any] | None = None,
    regions: Sequence[str] = (REGION,),
    desired_state: str = "running",
    namespace: str = NAMESPACE,
    statuses: Mapping[str, RegionStatus] | None = None,
    record: Mapping[str, Any] | None = None,
    updated_at: str = UPDATED_AT,
    **fields: Any,
) -> dict[str, Any]:
    """A valid item named `name`: `spec` replaces `{"image": image}`; `statuses` are the
    region entries; `record` the rollout record; `fields` any other attribute (or an
    override of one above, `region_status` included)."""
    raw: dict[str, Any] = {
        "endpoint_name": name,
        "desired_state": desired_state,
        "target_regions": list(regions),
        "namespace": namespace,
        "ingress_path": f"/inference/{name}",
        "updated_at": updated_at,
        "spec": dict(spec) if spec is not None else {"image": image},
        "region_status": {r: s.to_item() for r, s in (statuses or {}).items()},
    }
    if record is not None:
        raw["rollout"] = dict(record)
    raw.update(fields)
    return raw


def loaded(name: str = "m1", **options: Any) -> LoadedItem:
    """`item(name, **options)` as the daemon reads it."""
    return load_item(item(name, **options))
