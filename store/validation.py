"""Validation of endpoint items (DESIGN section 8): one message per problem.

Pure code on plain values: `validate_item` takes an item with Decimals already
converted (Decimals are converted here too, to be safe) and returns the list of
problems, each naming its field, e.g. "spec.replicas must be between 0 and
1000, got 5000". An empty list means the item is valid. Unknown attributes are
allowed: items written by the predecessor carry some.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from store.convert import plain

DESIRED_STATES = ("deploying", "running", "stopped", "deleted")
ACCELERATORS = ("nvidia", "neuron")
CAPACITY_TYPES = ("spot", "on-demand")
# `gpu` is served as an HPA Pods metric (k8s.manifests.GPU_METRIC_NAME), as the
# predecessor's CLI advertised; any other type is an input error (defect 21).
METRIC_TYPES = ("cpu", "memory", "gpu")

# An endpoint name is a DNS-1035 label (it names the Service); the Ingress
# `inference-{name}` may be up to 253. Only the canary needs `{name}-canary` to fit in 63,
# so a longer name refuses the canary, not the endpoint (DESIGN section 8).
# The same limits as `k8s.naming` (the home of object names; `store` cannot import `k8s`):
# tests/unit/test_naming.py keeps them equal.
MAX_NAME_LENGTH = 63
MAX_CANARY_NAME_LENGTH = 63 - len("-canary")
# Pod toleration fields, their allowed operators and effects (core/v1 Toleration).
TOLERATION_FIELDS = ("key", "operator", "value", "effect", "tolerationSeconds")
TOLERATION_OPERATORS = ("Exists", "Equal")
TOLERATION_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Kubernetes accepts these environment variable names (validation.IsEnvVarName).
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[numkMGTPE]|[KMGTPE]i)?$")
# `s3://bucket` (a bucket root) or `s3://bucket/prefix`; other sources (a Hugging Face id)
# are kept and only mount the model volume, as the predecessor did.
_S3_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$", re.DOTALL)
# Label values and the name part of label (and annotation) keys.
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# The distribution reference grammar (docker/distribution `reference`): optional
# registry host[:port], lowercase path components, optional tag, optional digest.
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*(?::[0-9]+)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_IMAGE = re.compile(rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::{_TAG})?(?:@{_DIGEST})?$")


def is_valid_image(reference: Any) -> bool:
    """True when `reference` is a string that is a valid container image reference."""
    return isinstance(reference, str) and len(reference) <= 4096 and bool(_IMAGE.match(reference))


def validate_item(item: Mapping[str, Any]) -> list[str]:
    """Return every problem of the endpoint item `item` (empty when it is valid)."""
    item = plain(dict(item))
    problems: list[str] = []
    _check_name(item.get("endpoint_name"), problems)
    state = item.get("desired_state")
    if state is not None and state not in DESIRED_STATES:
        problems.append(f"desired_state must be one of {', '.join(DESIRED_STATES)}, got {state!r}")
    regions = item.get("target_regions")
    if regions is not None and not (
        isinstance(regions, list) and all(isinstance(r, str) and r for r in regions)
    ):
        problems.append(f"target_regions must be a list of region names, got {regions!r}")
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
        _check_spec(spec, problems)
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


def _check_spec(spec: dict[str, Any], problems: list[str]) -> None:
    image = spec.get("image")
    if image is None or image == "":
        problems.append("spec.image is required")
    elif not is_valid_image(image):
        problems.append(f"spec.image must be a valid image reference, got {image!r}")
    overrides = spec.get("region_image_uris")
    # Not a map, or a value that is not a non-empty string: that region uses `image`, as
    # the predecessor's `_resolve_image_for_region` did. Only a string that is not an
    # image reference (a pod that cannot pull) is refused.
    if isinstance(overrides, dict):
        for region, uri in overrides.items():
            if isinstance(uri, str) and uri and not is_valid_image(uri):
                problems.append(
                    f"spec.region_image_uris.{region} must be a valid image reference, got {uri!r}"
                )
    _check_int(spec.get("replicas"), "spec.replicas", 0, 1000, problems)
    _check_int(spec.get("port"), "spec.port", 1, 65535, problems)
    _check_int(spec.get("gpu_count"), "spec.gpu_count", 0, None, problems)
    _check_choice(spec.get("accelerator"), "spec.accelerator", ACCELERATORS, problems)
    _check_choice(spec.get("capacity_type"), "spec.capacity_type", CAPACITY_TYPES, problems)
    path = spec.get("health_check_path")
    if path is not None and not (isinstance(path, str) and path.startswith("/")):
        problems.append(f"spec.health_check_path must start with '/', got {path!r}")
    _check_env(spec.get("env"), problems)
    _check_resources(spec.get("resources"), problems)
    for key in ("command", "args"):
        value = spec.get(key)
        if value is not None and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            problems.append(f"spec.{key} must be a list of strings, got {value!r}")
    model_path = spec.get("model_path")
    if model_path is not None and not isinstance(model_path, str):
        problems.append(f"spec.model_path must be a string, got {model_path!r}")
    _check_model_source(spec.get("model_source"), problems)
    _check_gpu_type(spec.get("gpu_type"), problems)
    _check_tolerations(spec.get("tolerations"), problems)
    selector = spec.get("node_selector")
    if _is_map(selector, "spec.node_selector", problems):
        for key, value in selector.items():
            if not isinstance(value, str):
                problems.append(f"spec.node_selector.{key} must be a string, got {value!r}")
    _check_autoscaling(spec.get("autoscaling"), problems)
    _check_canary(spec.get("canary"), problems)


def _check_env(env: Any, problems: list[str]) -> None:
    if not _is_map(env, "spec.env", problems):
        return
    for key, value in env.items():
        if not _ENV_NAME.match(key):
            problems.append(f"spec.env key {key!r} is not a valid environment variable name")
        # Numbers and booleans are served as the predecessor served them: `str(value)`.
        if value is None or not isinstance(value, str | int | float):
            problems.append(f"spec.env.{key} must be a string, number or boolean, got {value!r}")


def _check_resources(resources: Any, problems: list[str]) -> None:
    if not _is_map(resources, "spec.resources", problems):
        return
    for section in ("requests", "limits"):
        values = resources.get(section)
        if not _is_map(values, f"spec.resources.{section}", problems):
            continue
        for key, value in values.items():
            if isinstance(value, bool) or not _QUANTITY.match(str(value)):
                problems.append(
                    f"spec.resources.{section}.{key} must be a Kubernetes quantity, got {value!r}"
                )


def _check_autoscaling(autoscaling: Any, problems: list[str]) -> None:
    if not _is_map(autoscaling, "spec.autoscaling", problems):
        return
    enabled = autoscaling.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        problems.append(f"spec.autoscaling.enabled must be true or false, got {enabled!r}")
    low = _check_int(
        autoscaling.get("min_replicas"), "spec.autoscaling.min_replicas", 1, 1000, problems
    )
    high = _check_int(
        autoscaling.get("max_replicas"), "spec.autoscaling.max_replicas", 1, 1000, problems
    )
    low = 1 if autoscaling.get("min_replicas") is None else low
    high = 10 if autoscaling.get("max_replicas") is None else high
    if low is not None and high is not None and low > high:
        problems.append(
            "spec.autoscaling.min_replicas must be at most max_replicas, "
            f"got min {low} > max {high}"
        )
    metrics = autoscaling.get("metrics")
    if metrics is None:
        return
    if not isinstance(metrics, list):
        problems.append(f"spec.autoscaling.metrics must be a list, got {metrics!r}")
        return
    for index, metric in enumerate(metrics):
        where = f"spec.autoscaling.metrics[{index}]"
        if not isinstance(metric, dict):
            problems.append(f"{where} must be a map, got {metric!r}")
            continue
        kind = metric.get("type")
        # Absent means cpu, the predecessor's default.
        if kind is not None and kind not in METRIC_TYPES:
            problems.append(f"{where}.type must be one of {', '.join(METRIC_TYPES)}, got {kind!r}")
        # Utilisation above 100 % of the requests is a valid HPA target.
        _check_int(metric.get("target"), f"{where}.target", 1, None, problems)


def _check_canary(canary: Any, problems: list[str]) -> None:
    if not _is_map(canary, "spec.canary", problems):
        return
    image = canary.get("image")
    if image is None or image == "":
        problems.append("spec.canary.image is required")
    elif not is_valid_image(image):
        problems.append(f"spec.canary.image must be a valid image reference, got {image!r}")
    _check_int(canary.get("weight"), "spec.canary.weight", 1, 99, problems)
    _check_int(canary.get("replicas"), "spec.canary.replicas", 1, 1000, problems)


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


def _check_model_source(source: Any, problems: list[str]) -> None:
    """`s3://bucket[/path]` is synced to the model volume; any other non-empty string (a
    Hugging Face id such as `meta-llama/Llama-3.1-8B-Instruct`) only mounts it."""
    if source is None:
        return
    if not isinstance(source, str) or not source.strip():
        problems.append(
            f"spec.model_source must be an s3://bucket[/path] URI or a model id, got {source!r}"
        )
    elif source.startswith("s3://") and not _S3_URI.match(source):
        problems.append(
            f"spec.model_source must name an S3 bucket, like s3://bucket or "
            f"s3://bucket/path, got {source!r}"
        )


def _check_gpu_type(gpu_type: Any, problems: list[str]) -> None:
    """`gpu_type` becomes a node-selector value (a GPU name such as `a10g` or an instance
    type such as `g5.xlarge`), so it must be a valid label value."""
    if gpu_type is None or gpu_type == "":
        return
    if not (isinstance(gpu_type, str) and len(gpu_type) <= 63 and _LABEL_VALUE.match(gpu_type)):
        problems.append(
            "spec.gpu_type must be a GPU name (like a10g) or an instance type (like "
            f"g5.xlarge), got {gpu_type!r}"
        )


def _is_label_key(key: Any) -> bool:
    if not isinstance(key, str):
        return False
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _LABEL_PREFIX.match(prefix)):
        return False
    return bool(name) and len(name) <= 63 and bool(_LABEL_VALUE.match(name))


def _check_tolerations(tolerations: Any, problems: list[str]) -> None:
    """Pod tolerations, added after the accelerator's own: each a map of the API's fields
    (camelCase), checked as the API server checks them."""
    if tolerations is None:
        return
    if not isinstance(tolerations, list):
        problems.append(f"spec.tolerations must be a list of maps, got {tolerations!r}")
        return
    for index, toleration in enumerate(tolerations):
        where = f"spec.tolerations[{index}]"
        if not isinstance(toleration, dict):
            problems.append(f"{where} must be a map, got {toleration!r}")
            continue
        unknown = sorted(str(k) for k in toleration if k not in TOLERATION_FIELDS)
        if unknown:
            problems.append(
                f"{where} has unknown fields {', '.join(unknown)} "
                f"(allowed: {', '.join(TOLERATION_FIELDS)})"
            )
        key, value = toleration.get("key"), toleration.get("value")
        operator, effect = toleration.get("operator"), toleration.get("effect")
        if key not in (None, "") and not _is_label_key(key):
            problems.append(f"{where}.key must be a label key, got {key!r}")
        if operator not in (None, "") and operator not in TOLERATION_OPERATORS:
            problems.append(
                f"{where}.operator must be one of {', '.join(TOLERATION_OPERATORS)}, "
                f"got {operator!r}"
            )
        if key in (None, "") and operator != "Exists":
            problems.append(f"{where} without a key must have operator Exists")
        if operator == "Exists":
            if value not in (None, ""):
                problems.append(f"{where}.value must be empty with operator Exists, got {value!r}")
        elif value is not None and not (
            isinstance(value, str) and len(value) <= 63 and _LABEL_VALUE.match(value)
        ):
            problems.append(f"{where}.value must be a label value, got {value!r}")
        if effect not in (None, "") and effect not in TOLERATION_EFFECTS:
            problems.append(
                f"{where}.effect must be one of {', '.join(TOLERATION_EFFECTS)}, got {effect!r}"
            )
        seconds = toleration.get("tolerationSeconds")
        # Any int64; zero or less means "evict at once", as the API server treats it.
        low = -(2**63)
        if _check_int(seconds, f"{where}.tolerationSeconds", low, None, problems) is not None and (
            effect != "NoExecute"
        ):
            problems.append(f"{where}.tolerationSeconds needs effect NoExecute")


def _is_map(value: Any, where: str, problems: list[str]) -> bool:
    """True when `value` is a map to check further; records a problem when it is not one."""
    if value is None:
        return False
    if not isinstance(value, dict):
        problems.append(f"{where} must be a map, got {value!r}")
        return False
    return True


def _check_int(
    value: Any, where: str, low: int, high: int | None, problems: list[str]
) -> int | None:
    """Record a problem unless `value` is absent or an integer in [low, high]; return it."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(f"{where} must be an integer, got {value!r}")
        return None
    if high is None and value < low:
        problems.append(f"{where} must be at least {low}, got {value}")
        return None
    if high is not None and not low <= value <= high:
        problems.append(f"{where} must be between {low} and {high}, got {value}")
        return None
    return value


def _check_choice(value: Any, where: str, choices: tuple[str, ...], problems: list[str]) -> None:
    if value is not None and value not in choices:
        problems.append(f"{where} must be one of {', '.join(choices)}, got {value!r}")
