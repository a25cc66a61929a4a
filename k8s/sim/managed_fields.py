"""`metadata.managedFields` as a real API server records them: one entry per field manager,
operation and subresource, with the set of fields that manager last wrote (FieldsV1).

The sim records them so clients see objects of a real server's size and shape: on a
typical Deployment managedFields are 40-50 % of its JSON. The field sets follow the
server's encoding (`f:<key>` for map keys, `k:{"name":...}` for list items keyed by
name, `.` for an item itself); their exact content is not a contract anyone reads.
"""

from __future__ import annotations

import json
from typing import Any

#: The manager a real server names for the Python kubernetes client (its User-Agent).
DEFAULT_MANAGER = "OpenAPI-Generator"
#: The manager of the controllers' status writes.
CONTROLLER_MANAGER = "kube-controller-manager"


def field_set(value: Any) -> dict[str, Any]:
    """The FieldsV1 set of every field under `value` (an empty map for a leaf)."""
    if isinstance(value, dict):
        return {f"f:{key}": field_set(item) for key, item in value.items()}
    if isinstance(value, list) and all(isinstance(i, dict) and "name" in i for i in value):
        return {
            f"k:{json.dumps({'name': item['name']}, separators=(',', ':'))}": {
                ".": {},
                **field_set(item),
            }
            for item in value
        }
    return {}


def written_fields(obj: dict[str, Any], subresource: str | None) -> dict[str, Any]:
    """The fields a write of `obj` sets: its status for a status write, else its labels,
    annotations and spec (or data)."""
    if subresource == "status":
        return {"f:status": field_set(obj.get("status") or {})}
    meta = obj.get("metadata") or {}
    fields: dict[str, Any] = {}
    owned_meta = {key: meta[key] for key in ("labels", "annotations") if meta.get(key)}
    if owned_meta:
        fields["f:metadata"] = field_set(owned_meta)
    for key, item in obj.items():
        if key not in ("apiVersion", "kind", "metadata", "status"):
            fields[f"f:{key}"] = field_set(item)
    return fields


def record(
    obj: dict[str, Any], manager: str, subresource: str | None, *, api_version: str, time: str
) -> None:
    """Set `obj`'s managedFields entry of `manager` (operation Update) to what `obj` now
    holds, keeping every other manager's entry."""
    meta = obj["metadata"]
    entry: dict[str, Any] = {
        "manager": manager,
        "operation": "Update",
        "apiVersion": api_version,
        "time": time,
        "fieldsType": "FieldsV1",
        "fieldsV1": written_fields(obj, subresource),
    }
    if subresource is not None:
        entry["subresource"] = subresource
    others = [
        e
        for e in meta.get("managedFields") or []
        if (e.get("manager"), e.get("subresource")) != (manager, subresource)
    ]
    meta["managedFields"] = [*others, entry]
