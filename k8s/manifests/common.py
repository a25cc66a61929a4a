"""Names, labels, validation and the spec hash shared by every manifest builder."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
from typing import Any

from k8s.naming import MAX_CANARY_NAME_LENGTH, MAX_NAME_LENGTH, canary_name
from k8s.workload import (
    INSTANCE_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    REPLICAS_OWNER_ANNOTATION,
    SPEC_HASH_ANNOTATION,
    TEMPLATE_HASH_ANNOTATION,
    TEMPLATE_SPEC_HASH_ANNOTATION,
    CanaryWorkload,
    Workload,
)

# Kinds we manage, in apply order: backends before the Ingress that points at them.
KINDS: tuple[str, ...] = ("Deployment", "Service", "Ingress", "HorizontalPodAutoscaler")

# The predecessor marks every object with these; an old daemon would still recognise ours.
PREDECESSOR_LABELS: dict[str, str] = {"project": "gco", "gco.io/type": "inference"}
# Set by the predecessor (and by us) on the Ingress while it routes to a canary.
CANARY_LABEL = "gco.io/canary"
REPLICAS_OWNER_HPA = "hpa"

HEALTHCHECK_PATH_ANNOTATION = "alb.ingress.kubernetes.io/healthcheck-path"
HEALTHCHECK_INTERVAL_ANNOTATION = "alb.ingress.kubernetes.io/healthcheck-interval-seconds"
WEIGHTED_ACTION = "weighted-routing"
WEIGHTED_ACTION_ANNOTATION = f"alb.ingress.kubernetes.io/actions.{WEIGHTED_ACTION}"

# Keys only we (or the predecessor) write: a replace drops them when we no longer
# set them, while every other key on a live object (another controller's) survives.
OWNED_LABELS: frozenset[str] = frozenset(
    {MANAGED_BY_LABEL, INSTANCE_LABEL, "app", CANARY_LABEL, *PREDECESSOR_LABELS}
)
OWNED_ANNOTATIONS: frozenset[str] = frozenset(
    {
        SPEC_HASH_ANNOTATION,
        TEMPLATE_SPEC_HASH_ANNOTATION,
        TEMPLATE_HASH_ANNOTATION,
        REPLICAS_OWNER_ANNOTATION,
        HEALTHCHECK_PATH_ANNOTATION,
        HEALTHCHECK_INTERVAL_ANNOTATION,
        WEIGHTED_ACTION_ANNOTATION,
    }
)

ACCELERATOR_RESOURCES = {"nvidia": "nvidia.com/gpu", "neuron": "aws.amazon.com/neuron"}
CAPACITY_TYPES = ("spot", "on-demand")
_NAME_PATTERN = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# Label values (and the name part of keys): at most 63 characters, alphanumeric at both ends.
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Longest name of each kind we build. A Deployment's name is a DNS-1123 subdomain (253)
# but ours is also the `app` label value of its pods (63); a Service's is a DNS-1035
# label; an Ingress's and an HPA's are DNS-1123 subdomains.
NAME_LIMITS: dict[str, int] = {
    "Deployment": 63,
    "Service": 63,
    "Ingress": 253,
    "HorizontalPodAutoscaler": 253,
}
# An item label Kubernetes would refuse (`owner=alice@example.com`) goes on the objects'
# metadata as the annotation `LABEL_ANNOTATION_PREFIX + key` ('/' in the key becomes '.'),
# or, when even that is no valid annotation key, inside the JSON map `LABELS_ANNOTATION`.
LABEL_ANNOTATION_PREFIX = "inference-supervisor.io/label-"
LABELS_ANNOTATION = "inference-supervisor.io/labels"
_HASH_LENGTH = 16


class ManifestError(ValueError):
    """A `Workload` no valid set of objects can be built from (bad name, metric, weight...)."""


def object_key(obj: dict[str, Any]) -> tuple[str, str]:
    """Return `(kind, name)` of a built or live object."""
    return obj["kind"], obj["metadata"]["name"]


def spec_hash(obj: dict[str, Any]) -> str:
    """Return the short sha256 hex of `obj`, ignoring the hash annotation itself and
    `spec.replicas` when an HPA owns it (so the HPA's scaling never changes the hash)."""
    body = copy.deepcopy(obj)
    annotations = body.get("metadata", {}).get("annotations", {})
    annotations.pop(SPEC_HASH_ANNOTATION, None)
    if annotations.get(REPLICAS_OWNER_ANNOTATION) == REPLICAS_OWNER_HPA:
        body.get("spec", {}).pop("replicas", None)
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:_HASH_LENGTH]


# Workload fields a pod template does not depend on (they size or route, never roll).
_NOT_TEMPLATE_INPUTS = frozenset({"replicas", "autoscaling", "canary", "stopped", "serve_traffic"})


def template_spec_hash(w: Workload, name: str, image: str) -> str:
    """The short sha256 of the inputs the pod template of Deployment `name` (running
    `image`) is built from: the workload without what only sizes or routes it.

    It depends on the inputs only, never on the builder's output, so a new version of
    the builders (another probe delay, a new default field) leaves it unchanged and rolls
    no pod; a field left unset (None, empty, False) is left out, so a field added to
    `Workload` later does not change it either.
    """
    inputs: dict[str, Any] = {"deployment": name, "image": image}
    for f in dataclasses.fields(w):
        if f.name in _NOT_TEMPLATE_INPUTS or f.name == "image":
            continue
        value = getattr(w, f.name)
        if value is None or value is False or value in ("", (), [], {}):
            continue
        inputs[f.name] = value
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=_plain)
    return hashlib.sha256(canonical.encode()).hexdigest()[:_HASH_LENGTH]


def _plain(value: Any) -> Any:
    """JSON form of the dataclasses nested in workload fields (tolerations)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: v for k, v in dataclasses.asdict(value).items() if v is not None}
    raise TypeError(f"not serialisable: {value!r}")


def check_workload(w: Workload) -> None:
    """Raise `ManifestError` for a workload whose objects would be invalid or ambiguous."""
    if len(w.name) > MAX_NAME_LENGTH or not _NAME_PATTERN.match(w.name):
        raise ManifestError(
            f"endpoint name {w.name!r} must be a DNS-1035 label of at most "
            f"{MAX_NAME_LENGTH} characters (lower-case letters, digits, '-')"
        )
    if w.accelerator not in ACCELERATOR_RESOURCES:
        raise ManifestError(f"accelerator {w.accelerator!r} is not one of nvidia, neuron")
    if w.capacity_type is not None and w.capacity_type not in CAPACITY_TYPES:
        raise ManifestError(f"capacity_type {w.capacity_type!r} is not one of spot, on-demand")
    if w.canary is not None and not 0 <= w.canary.weight <= 100:
        raise ManifestError(f"canary weight {w.canary.weight} is not a percentage (0-100)")
    if not w.path.startswith("/"):
        raise ManifestError(f"ingress path {w.path!r} must start with '/'")
    for key, value in w.node_selector:
        if not _is_label(key, value):
            raise ManifestError(f"node selector {key}={value!r} is not a valid Kubernetes label")


def check_canary(w: Workload) -> CanaryWorkload:
    """Return the workload's canary; raise `ManifestError` when it has none, its objects
    cannot be named (`{name}-canary` must fit in 63: a longer endpoint name refuses the
    canary only; the primary objects are still built), or its own pod (a rollout step's)
    is another endpoint's: the canary shares the primary's name (model folder), namespace
    and Ingress path (root path)."""
    if w.canary is None:
        raise ManifestError(f"endpoint {w.name!r} has no canary")
    pod = w.canary.pod
    if pod is not None:
        check_workload(pod)
        if (pod.name, pod.namespace, pod.path) != (w.name, w.namespace, w.path):
            raise ManifestError(
                f"the canary pod of endpoint {w.name!r} must be the same endpoint's "
                f"(name, namespace, ingress path), got {pod.name!r} in {pod.namespace!r} "
                f"at {pod.path!r}"
            )
    if len(w.name) > MAX_CANARY_NAME_LENGTH:
        raise ManifestError(
            f"endpoint {w.name!r} cannot have a canary: '{canary_name(w.name)}' would be "
            f"{len(canary_name(w.name))} characters, more than the 63 a Service name allows "
            f"(a canary needs an endpoint name of at most {MAX_CANARY_NAME_LENGTH})"
        )
    return w.canary


def _is_label(key: str, value: str) -> bool:
    return _is_label_key(key) and len(value) <= 63 and bool(_LABEL_VALUE.match(value))


def _is_label_key(key: str) -> bool:
    """`[prefix/]name`: a DNS subdomain prefix of at most 253 and a name of at most 63 chars."""
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _LABEL_PREFIX.match(prefix)):
        return False
    return bool(name) and len(name) <= 63 and bool(_LABEL_VALUE.match(name))


def item_labels(w: Workload) -> dict[str, str]:
    """The item's labels that Kubernetes accepts as labels."""
    return {key: value for key, value in w.labels if _is_label(key, value)}


def label_annotations(w: Workload) -> dict[str, str]:
    """The item's labels that Kubernetes would refuse as labels, as annotations.

    `owner=alice@example.com` becomes `inference-supervisor.io/label-owner:
    alice@example.com`; a key that cannot make an annotation key that way goes,
    with its value, into the JSON map of `LABELS_ANNOTATION`.
    """
    annotations: dict[str, str] = {}
    leftover: dict[str, str] = {}
    for key, value in w.labels:
        if _is_label(key, value):
            continue
        annotation = LABEL_ANNOTATION_PREFIX + key.replace("/", ".")
        if _is_label_key(annotation) and annotation not in annotations:
            annotations[annotation] = value
        else:
            leftover[key] = value
    if leftover:
        annotations[LABELS_ANNOTATION] = json.dumps(leftover, sort_keys=True)
    return annotations


def labels_for(w: Workload, app: str) -> dict[str, str]:
    """Labels of every object and pod: the item's valid ones, the predecessor's, then ours
    (ours win)."""
    return {
        **item_labels(w),
        "app": app,
        **PREDECESSOR_LABELS,
        MANAGED_BY_LABEL: MANAGED_BY_VALUE,
        INSTANCE_LABEL: w.name,
    }


def metadata_for(
    w: Workload, name: str, app: str, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    """Object metadata: the item's labels that are valid labels, the others as annotations
    (`label_annotations`); the spec-hash annotation is added by `with_spec_hash`."""
    return {
        "name": name,
        "namespace": w.namespace,
        "labels": labels_for(w, app),
        "annotations": {**label_annotations(w), **dict(annotations or {})},
    }


def check_object_name(kind: str, name: str) -> None:
    """Raise `ManifestError` when `name` is longer than objects of `kind` may be named."""
    limit = NAME_LIMITS.get(kind)
    if limit is not None and len(name) > limit:
        raise ManifestError(
            f"{kind} name {name!r} is {len(name)} characters, more than the {limit} allowed"
        )


def with_spec_hash(obj: dict[str, Any]) -> dict[str, Any]:
    """Check the object's name fits its kind, stamp the spec-hash annotation on the fully
    built object and return it."""
    check_object_name(obj["kind"], obj["metadata"]["name"])
    obj["metadata"]["annotations"][SPEC_HASH_ANNOTATION] = spec_hash(obj)
    return obj
