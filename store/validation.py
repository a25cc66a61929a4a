"""Validation of endpoint items (architecture section 8): one message per problem.

Pure code on plain values: `validate_item` takes an item with Decimals already
converted (Decimals are converted here too, to be safe) and returns the list of
problems, each naming its field, e.g. "spec.replicas must be between 0 and
1000, got 5000". An empty list means the item is valid. Unknown attributes are
allowed: items written by the predecessor carry some. The item-level rules are
here; each spec field's own check is declared with the field (`store.spec_schema`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from store.checks import (
    ACCELERATORS,
    CAPACITY_TYPES,
    METRIC_TYPES,
    check_new_labels,
    is_valid_image,
)
from store.convert import plain
from store.rollout import check_rollout
from store.spec_schema import spec_problems

__all__ = [
    "ACCELERATORS",
    "CAPACITY_TYPES",
    "DESIRED_STATES",
    "MAX_CANARY_NAME_LENGTH",
    "MAX_NAME_LENGTH",
    "METRIC_TYPES",
    "is_valid_image",
    "read_regions",
    "validate_item",
    "validate_new_item",
]

DESIRED_STATES = ("deploying", "running", "stopped", "deleted")

# An endpoint name is a DNS-1035 label (it names the Service); the Ingress
# `inference-{name}` may be up to 253. Only the canary needs `{name}-canary` to fit in 63,
# so a longer name refuses the canary, not the endpoint (architecture section 8).
# The same limits as `k8s.naming` (the home of object names; `store` cannot import `k8s`):
# tests/unit/test_naming.py keeps them equal.
MAX_NAME_LENGTH = 63
MAX_CANARY_NAME_LENGTH = 63 - len("-canary")
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def read_regions(value: Any) -> tuple[str, ...] | None:
    """`target_regions` as region names, or None when it cannot be read as them.

    A list keeps its order; a DynamoDB string set (a Python set here) is served like a
    list, as the predecessor's `region in target_regions` served it, in sorted order so
    every region reads the same sequence (waves, conditions). Absent means no region.
    """
    if value is None:
        return ()
    if isinstance(value, list | set | frozenset) and all(isinstance(r, str) and r for r in value):
        return tuple(value) if isinstance(value, list) else tuple(sorted(value))
    return None


def validate_item(item: Mapping[str, Any]) -> list[str]:
    """Return every problem of the endpoint item `item` (empty when it is valid)."""
    item = plain(dict(item))
    problems: list[str] = []
    _check_name(item.get("endpoint_name"), problems)
    state = item.get("desired_state")
    if state is not None and state not in DESIRED_STATES:
        problems.append(f"desired_state must be one of {', '.join(DESIRED_STATES)}, got {state!r}")
    regions = item.get("target_regions")
    if read_regions(regions) is None:
        problems.append(
            f"target_regions must be a list or a string set of region names, got {regions!r}"
        )
    namespace = item.get("namespace")
    if namespace is not None and not (
        isinstance(namespace, str) and len(namespace) <= 63 and _DNS_1123.match(namespace)
    ):
        problems.append(f"namespace must be a DNS-1123 label, got {namespace!r}")
    _check_ingress_path(item.get("ingress_path"), item.get("endpoint_name"), problems)
    labels = item.get("labels")
    if labels is not None and not isinstance(labels, dict):
        problems.append(f"labels must be a map, got {labels!r}")
    spec = item.get("spec")
    if spec is None:
        problems.append("spec is required")
    elif not isinstance(spec, dict):
        problems.append(f"spec must be a map, got {spec!r}")
    else:
        problems.extend(spec_problems(spec))
        problems.extend(check_rollout(spec))
        _check_canary_name(item.get("endpoint_name"), spec.get("canary"), problems)
    return problems


def _check_name(name: Any, problems: list[str]) -> None:
    if not isinstance(name, str) or not name:
        problems.append("endpoint_name is required")
    elif len(name) > MAX_NAME_LENGTH:
        problems.append(
            f"endpoint_name must be at most {MAX_NAME_LENGTH} characters (a DNS-1035 label), "
            f"got {len(name)}"
        )
    elif not _DNS_1035.match(name):
        problems.append(
            "endpoint_name must be a DNS-1035 label (lowercase letters, digits and '-', "
            f"starting with a letter, ending with a letter or digit), got {name!r}"
        )


def _check_ingress_path(path: Any, name: Any, problems: list[str]) -> None:
    """Absent or empty means `/inference/{name}`; anything else goes into the Ingress as its
    path (as the predecessor did), so it must be a string starting with '/'."""
    if path is None or path == "":
        return
    if not (isinstance(path, str) and path.startswith("/")):
        example = f"/inference/{name}" if isinstance(name, str) and name else "/inference/NAME"
        problems.append(
            f"ingress_path must be a path like {example} (a string starting with '/'), got {path!r}"
        )


def _check_canary_name(name: Any, canary: Any, problems: list[str]) -> None:
    """A canary's Deployment and Service are `{name}-canary`, a name of at most 63."""
    if canary is None or not isinstance(name, str) or len(name) > MAX_NAME_LENGTH:
        return
    if len(name) > MAX_CANARY_NAME_LENGTH:
        problems.append(
            f"spec.canary cannot be served: its objects are named '{name}-canary', more than "
            f"63 characters; a canary needs an endpoint_name of at most "
            f"{MAX_CANARY_NAME_LENGTH} characters, got {len(name)}"
        )


def validate_new_item(item: Mapping[str, Any]) -> list[str]:
    """`validate_item`, plus what a command refuses to write although the daemon serves it
    in an item it finds (a label key Kubernetes refuses: `store.checks.check_new_labels`)."""
    problems = validate_item(item)
    check_new_labels(plain(dict(item)).get("labels"), problems)
    return problems
