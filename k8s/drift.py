"""Pure drift logic: does a live object need a write, and what body turns it into the desired one.

"Fields we own" are the keys present in the desired object's labels, annotations
and spec. The live object is compared as a superset of them, so the API server's
defaults (extra keys such as `terminationMessagePath`, `clusterIP`, `behavior`)
never count as drift and a steady state writes nothing. The comparison follows
the server's omission rules: an empty string, list or map we send is stored as
absent (Go `omitempty`, e.g. an empty `env[].value`), so absent matches it.

Some places we own entirely (`OWNED_PLACES`): a Deployment's pod spec and each
of its containers. There a key we did not set is drift too - a `hostNetwork`, a
`securityContext` with `privileged`, a `command` added by hand - unless it is one
the API server fills in itself, with its default value (`dnsPolicy:
ClusterFirst`, `terminationMessagePath`, `securityContext: {}`, ...).

A Deployment's pod template is more: writing it rolls every pod. `template_plan`
decides whether the template is written at all (see there); when it is not, the
live template stands and only metadata (labels, annotations) and the other spec
fields are compared and written (`for_live`). So adopting the predecessor's
Deployments, and a new version of the builders, change no pod template. The
template's hash is taken without the server's defaults (`template_hash`), so it is
recorded in the same write as the template.

Objects are plain dicts in the API's JSON shape (camelCase keys).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from k8s.manifests import (
    OWNED_ANNOTATIONS,
    OWNED_LABELS,
    PREDECESSOR_LABELS,
    REPLICAS_OWNER_HPA,
)
from k8s.workload import (
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    REPLICAS_OWNER_ANNOTATION,
    TEMPLATE_HASH_ANNOTATION,
    TEMPLATE_SPEC_HASH_ANNOTATION,
)

__all__ = [
    "OWNED_PLACES",
    "TemplatePlan",
    "for_live",
    "foreign_keys",
    "is_adoptable",
    "is_managed",
    "needs_update",
    "replacement",
    "template_hash",
    "template_plan",
]

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


# Values Go's `omitempty` drops when the server writes an object back: sent, they
# come back absent.
_OMITTED: tuple[Any, ...] = ({}, [], "")


def _any(_value: Any, _place: dict[str, Any]) -> bool:
    return True


def _equals(default: Any) -> Callable[[Any, dict[str, Any]], bool]:
    def check(value: Any, _place: dict[str, Any]) -> bool:
        return bool(value == default)

    return check


def _same_service_account(value: Any, place: dict[str, Any]) -> bool:
    # The deprecated alias the server keeps equal to serviceAccountName.
    return bool(value == place.get("serviceAccountName"))


# What the API server adds to a place we own entirely: key -> is this value its default.
Defaults = dict[str, Callable[[Any, dict[str, Any]], bool]]
_POD_SPEC_DEFAULTS: Defaults = {
    "restartPolicy": _equals("Always"),
    "terminationGracePeriodSeconds": _equals(30),
    "dnsPolicy": _equals("ClusterFirst"),
    "securityContext": _equals({}),
    "schedulerName": _equals("default-scheduler"),
    "serviceAccount": _same_service_account,
    "enableServiceLinks": _equals(True),
}
_CONTAINER_DEFAULTS: Defaults = {
    # Its default depends on the image tag (and admission may force Always): any value.
    "imagePullPolicy": _any,
    "terminationMessagePath": _equals("/dev/termination-log"),
    "terminationMessagePolicy": _equals("File"),
    "resources": _equals({}),
}
# Places we own entirely, by kind: (path from the object, is it a list of places,
# the server's defaults there).
OWNED_PLACES: dict[str, tuple[tuple[tuple[str, ...], bool, Defaults], ...]] = {
    "Deployment": (
        (("spec", "template", "spec"), False, _POD_SPEC_DEFAULTS),
        (("spec", "template", "spec", "containers"), True, _CONTAINER_DEFAULTS),
        (("spec", "template", "spec", "initContainers"), True, _CONTAINER_DEFAULTS),
    ),
}


def _at(obj: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _extra_keys(live: Any, desired: Any, defaults: Defaults) -> list[str]:
    """Keys of `live` that `desired` lacks and that are not a server default."""
    if not isinstance(live, dict):
        return []
    want = desired if isinstance(desired, dict) else {}
    return [
        key
        for key, value in live.items()
        if key not in want
        and value not in _OMITTED[1:]  # an empty list or string there is no field at all
        and not (key in defaults and defaults[key](value, live))
    ]


def foreign_keys(live: dict[str, Any], desired: dict[str, Any]) -> list[str]:
    """Paths of the keys `live` carries in a place we own entirely that we did not set
    and the server does not default (`spec.template.spec.hostNetwork`, ...)."""
    found: list[str] = []
    for path, many, defaults in OWNED_PLACES.get(str(desired.get("kind")), ()):
        live_place, desired_place = _at(live, path), _at(desired, path)
        if many:
            pairs = list(
                zip(
                    live_place if isinstance(live_place, list) else [],
                    desired_place if isinstance(desired_place, list) else [],
                    strict=False,
                )
            )
        else:
            pairs = [(live_place, desired_place)]
        for index, (live_item, desired_item) in enumerate(pairs):
            where = ".".join(path) + (f"[{index}]" if many else "")
            found += [f"{where}.{key}" for key in _extra_keys(live_item, desired_item, defaults)]
    return found


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
    string, dict or list matches an absent one (the server omits them)."""
    if isinstance(desired, dict):
        if live is None and not desired:
            return True
        if not isinstance(live, dict):
            return False
        return all(
            (key in live and _covers(live[key], value, (*path, key)))
            or (key not in live and value in _OMITTED)
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
    `live`; or `live` carries a key we did not set in a place we own entirely
    (`foreign_keys`). `spec.replicas` is ignored while the HPA owns it (unless the live
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
    if not _covers(live.get("spec") or {}, spec, ("spec",)):
        return True
    return bool(foreign_keys(live, desired))


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


# -- the pod template: written only for a reason ------------------------------------


_PROBE_DEFAULTS = {
    "timeoutSeconds": 1,
    "periodSeconds": 10,
    "successThreshold": 1,
    "failureThreshold": 3,
}
_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")


def _without_defaults(value: Any, path: tuple[str, ...] = ()) -> Any:
    """`value` without what the API server adds or drops on its own: empty values (Go
    `omitempty`), the defaults of pod specs, containers and probes, `protocol: TCP`,
    `scheme: HTTP`; resource quantities in canonical form. So a template hashes the same
    as we sent it and as the server stores it."""
    if isinstance(value, list):
        return [_without_defaults(item, path) for item in value]
    if not isinstance(value, dict):
        if "resources" in path and isinstance(value, str):
            quantity = _quantity(value)
            return value if quantity is None else str(quantity.normalize())
        return value
    defaults: Defaults = {}
    last = path[-1] if path else ""
    if path == ("spec",):
        defaults = _POD_SPEC_DEFAULTS
    elif last in ("containers", "initContainers"):
        defaults = _CONTAINER_DEFAULTS
    elif last in _PROBES:
        defaults = {key: _equals(default) for key, default in _PROBE_DEFAULTS.items()}
    elif last == "httpGet":
        defaults = {"scheme": _equals("HTTP")}
    elif last == "ports":
        defaults = {"protocol": _equals("TCP")}
    result = {}
    for key, item in value.items():
        if key in defaults and defaults[key](item, value):
            continue
        kept = _without_defaults(item, (*path, key))
        if kept is None or kept in _OMITTED:
            continue
        result[key] = kept
    return result


def template_hash(template: Any) -> str:
    """Short sha256 of a pod template, without what the API server adds on its own
    (`_without_defaults`): the template as we send it and as the server stores it hash
    the same, and a change made to it since (a hand edit) does not."""
    canonical = json.dumps(
        _without_defaults(template or {}), sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TemplatePlan:
    """Whether the desired pod template replaces the live one, and why.

    `write` False: the live template stands (no pod restarts); True: ours is written,
    which rolls the pods. `reason` is one of: `adopted` (no record yet: the template is
    taken as built from the current spec), `image` (no record and the live image is not
    the spec's: the spec changed since it was built), `spec` (the template's inputs
    changed: spec change or restart request), `recorded` (the live template is the one
    recorded), `edited` (changed since recorded and differs from ours: a hand edit),
    `matches` (changed since recorded but still what we build, e.g. our own write not
    recorded yet).
    """

    write: bool
    reason: str


def _template(obj: dict[str, Any]) -> Any:
    return (obj.get("spec") or {}).get("template")


def _first_image(obj: dict[str, Any]) -> Any:
    """The image of the first container: the one the predecessor reconciled."""
    containers = ((_template(obj) or {}).get("spec") or {}).get("containers") or [{}]
    first = containers[0] if isinstance(containers[0], dict) else {}
    return first.get("image")


def _template_drift(live: dict[str, Any], desired: dict[str, Any]) -> bool:
    """The live template differs from the desired one in a field we own, or carries a
    field we did not set where we own the whole place (same rules as `needs_update`)."""
    if not _covers(_template(live) or {}, _template(desired) or {}, ("spec", "template")):
        return True
    return any(path.startswith("spec.template.") for path in foreign_keys(live, desired))


def template_plan(live: dict[str, Any], desired: dict[str, Any]) -> TemplatePlan:
    """Decide whether a Deployment's desired pod template is written over the live one.

    A pod template is written only when (a) the endpoint's spec changed: the inputs hash
    `TEMPLATE_SPEC_HASH_ANNOTATION` differs from the one recorded on the live object (a
    restart request is one of those inputs); (b) the template was edited by hand: its hash
    differs from `TEMPLATE_HASH_ANNOTATION` recorded when we applied it, and it drifted
    from ours; or, for a Deployment without a record (the predecessor's, or an older
    version of ours), (c) its image is not the spec's (the spec changed since it was built,
    a change the predecessor would have rolled too). A different builder output alone
    (same inputs, same live template) is never a reason.
    """
    live_meta = _annotations(live)
    recorded_inputs = live_meta.get(TEMPLATE_SPEC_HASH_ANNOTATION)
    if recorded_inputs is None:
        if _first_image(live) != _first_image(desired):
            return TemplatePlan(True, "image")
        return TemplatePlan(False, "adopted")
    if recorded_inputs != _annotations(desired).get(TEMPLATE_SPEC_HASH_ANNOTATION):
        return TemplatePlan(True, "spec")
    if live_meta.get(TEMPLATE_HASH_ANNOTATION) == template_hash(_template(live)):
        return TemplatePlan(False, "recorded")
    if _template_drift(live, desired):
        return TemplatePlan(True, "edited")
    return TemplatePlan(False, "matches")


def for_live(live: dict[str, Any] | None, desired: dict[str, Any]) -> dict[str, Any]:
    """The object to converge `live` (None: to create) to: `desired`, except that a
    Deployment keeps its live pod template unless `template_plan` says to write ours. A
    Deployment's `TEMPLATE_HASH_ANNOTATION` records the hash of the template it then has
    (ours as sent, or the live one). `desired` is not modified."""
    if desired.get("kind") != "Deployment" or _template(desired) is None:
        return desired
    if live is None or _template(live) is None or template_plan(live, desired).write:
        template = _template(desired)
    else:
        template = _template(live)
    target = copy.deepcopy(desired)
    target["spec"]["template"] = copy.deepcopy(template)
    target["metadata"].setdefault("annotations", {})[TEMPLATE_HASH_ANNOTATION] = template_hash(
        template
    )
    return target
