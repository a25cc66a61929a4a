"""Pure drift logic: does a live object need a write, and what body turns it into the desired one.

"Fields we own" are the keys present in the desired object's labels, annotations
and spec. The live object is compared as a superset of them, so the API server's
defaults (extra keys such as `terminationMessagePath`, `clusterIP`, `behavior`)
never count as drift and a steady state writes nothing. Objects are plain dicts
in the API's JSON shape (camelCase keys).
"""

from __future__ import annotations

import copy
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from k8s.manifests import (
    OWNED_ANNOTATIONS,
    OWNED_LABELS,
    PREDECESSOR_LABELS,
    REPLICAS_OWNER_HPA,
)
from k8s.workload import MANAGED_BY_LABEL, MANAGED_BY_VALUE, REPLICAS_OWNER_ANNOTATION

__all__ = ["is_adoptable", "is_managed", "needs_update", "replacement"]

# Annotation keys under our own prefix are ours even if a later version stops writing them.
_OWN_PREFIX = "inference-supervisor.io/"
# Fields the API server allocates on a Service and that a replace must carry over.
_SERVICE_ALLOCATED = ("clusterIP", "clusterIPs")
# Metadata a replace must carry over: dropping finalizers (the ALB controller sets
# one on each Ingress) or owner references would change the object's lifecycle.
_KEPT_METADATA = ("finalizers", "ownerReferences")

_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$")
_SUFFIX_FACTORS = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    **{f"{p}i": Decimal(1024) ** (i + 1) for i, p in enumerate("KMGTPE")},
}


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return obj.get("metadata", {}).get("labels") or {}


def _annotations(obj: dict[str, Any]) -> dict[str, str]:
    return obj.get("metadata", {}).get("annotations") or {}


def is_managed(obj: dict[str, Any]) -> bool:
    """True when the object carries our managed-by label."""
    return _labels(obj).get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE


def is_adoptable(obj: dict[str, Any]) -> bool:
    """True for an object the predecessor created (`project: gco`, `gco.io/type: inference`)
    that does not carry our managed-by label yet."""
    labels = _labels(obj)
    predecessors = all(labels.get(key) == value for key, value in PREDECESSOR_LABELS.items())
    return predecessors and not is_managed(obj)


def _hpa_owns_replicas(desired: dict[str, Any]) -> bool:
    return _annotations(desired).get(REPLICAS_OWNER_ANNOTATION) == REPLICAS_OWNER_HPA


def _quantity(text: str) -> Decimal | None:
    """Value of a Kubernetes quantity (`500m`, `4Gi`, `1e3`), or None when it is not one."""
    match = _QUANTITY.match(text)
    if match is None:
        return None
    number, suffix = match.group(1), match.group(2) or ""
    try:
        if suffix[:1] in ("e", "E"):
            return Decimal(number + suffix)
        return Decimal(number) * _SUFFIX_FACTORS[suffix]
    except InvalidOperation:
        return None


def _same_scalar(live: Any, desired: Any, path: tuple[str, ...]) -> bool:
    """Equal scalars; resource quantities compare by value, since the server
    canonicalises them (`0.5` comes back as `500m`)."""
    if live == desired:
        return True
    if "resources" in path and isinstance(live, str) and isinstance(desired, str):
        live_value, desired_value = _quantity(live), _quantity(desired)
        return live_value is not None and live_value == desired_value
    return False


def _covers(live: Any, desired: Any, path: tuple[str, ...] = ()) -> bool:
    """True when `live` holds every key of `desired` with an equal value (recursively);
    lists must have the same length and cover element by element. An empty desired
    dict or list matches an absent one (servers drop empty collections)."""
    if isinstance(desired, dict):
        if live is None and not desired:
            return True
        if not isinstance(live, dict):
            return False
        return all(
            (key in live and _covers(live[key], value, (*path, key)))
            or (key not in live and value in ({}, []))
            for key, value in desired.items()
        )
    if isinstance(desired, list):
        if live is None and not desired:
            return True
        if not isinstance(live, list) or len(live) != len(desired):
            return False
        return all(_covers(item, want, path) for item, want in zip(live, desired, strict=True))
    return _same_scalar(live, desired, path)


def needs_update(live: dict[str, Any], desired: dict[str, Any]) -> bool:
    """True when `live` must be written to become `desired`.

    That is: `live` is the predecessor's and not yet ours; or a label, annotation
    (the spec hash included) or spec field of `desired` is missing or different in
    `live`. `spec.replicas` is ignored while the HPA owns it (unless the live
    Deployment sits at 0, which no HPA leaves on its own). The caller decides
    beforehand whether `live` may be touched at all (`is_managed` or `is_adoptable`).
    """
    if is_adoptable(live):
        return True
    if not _covers(_labels(live), _labels(desired)):
        return True
    if not _covers(_annotations(live), _annotations(desired)):
        return True
    spec = dict(desired.get("spec") or {})
    if _hpa_keeps_live_replicas(live, desired):
        spec.pop("replicas", None)
    return not _covers(live.get("spec") or {}, spec, ("spec",))


def _hpa_keeps_live_replicas(live: dict[str, Any], desired: dict[str, Any]) -> bool:
    """While an HPA owns a Deployment's replicas its live count stands - except 0: an HPA
    never scales up from 0 (a stopped endpoint), so starting again must write ours."""
    if desired.get("kind") != "Deployment" or not _hpa_owns_replicas(desired):
        return False
    return int((live.get("spec") or {}).get("replicas", 1) or 0) > 0


def _merged(live: dict[str, str], desired: dict[str, str], owned: frozenset[str]) -> dict[str, str]:
    """Desired keys, plus the live keys that are someone else's (not ours, not desired)."""
    foreign = {
        key: value
        for key, value in live.items()
        if key not in owned and not key.startswith(_OWN_PREFIX)
    }
    return {**foreign, **desired}


def replacement(live: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """Return the body of a PUT that turns `live` into `desired`.

    `desired` plus: `live`'s resourceVersion (so a concurrent write gives 409),
    its foreign labels and annotations, finalizers and owner references, a
    Service's allocated cluster IPs, and a Deployment's live replicas while the
    HPA owns them. Never a `status`. Neither argument is modified.
    """
    body = copy.deepcopy(desired)
    body.pop("status", None)
    live_meta = live.get("metadata", {})
    meta = body.setdefault("metadata", {})
    if "resourceVersion" in live_meta:
        meta["resourceVersion"] = live_meta["resourceVersion"]
    meta["labels"] = _merged(_labels(live), _labels(desired), OWNED_LABELS)
    meta["annotations"] = _merged(_annotations(live), _annotations(desired), OWNED_ANNOTATIONS)
    for key in _KEPT_METADATA:
        if live_meta.get(key):
            meta[key] = copy.deepcopy(live_meta[key])
    live_spec = live.get("spec") or {}
    spec = body.setdefault("spec", {})
    if desired.get("kind") == "Service":
        for key in _SERVICE_ALLOCATED:
            if key in live_spec:
                spec[key] = copy.deepcopy(live_spec[key])
    if _hpa_keeps_live_replicas(live, desired) and "replicas" in live_spec:
        spec["replicas"] = live_spec["replicas"]
    return body
