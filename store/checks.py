"""Checks of single values of an endpoint item (architecture section 8): one message per problem.

Pure code on plain values (Decimals already converted). Each `check_*` takes a value
(None: absent) and the list of problems to append to, each problem naming its field,
e.g. "spec.replicas must be between 0 and 1000, got 5000". `store.spec_schema` puts
them next to the fields they check; `store.validation` adds the item-level rules.
"""

from __future__ import annotations

import re
from typing import Any

ACCELERATORS = ("nvidia", "neuron")
CAPACITY_TYPES = ("spot", "on-demand")
# `gpu` is served as an HPA Pods metric (k8s.manifests.GPU_METRIC_NAME), as the
# predecessor's CLI advertised; any other type is an input error (defect 21).
METRIC_TYPES = ("cpu", "memory", "gpu")
# Pod toleration fields, their allowed operators and effects (core/v1 Toleration).
TOLERATION_FIELDS = ("key", "operator", "value", "effect", "tolerationSeconds")
TOLERATION_OPERATORS = ("Exists", "Equal")
TOLERATION_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
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


def check_env(env: Any, problems: list[str]) -> None:
    if not is_map(env, "spec.env", problems):
        return
    for key, value in env.items():
        if not _ENV_NAME.match(key):
            problems.append(f"spec.env key {key!r} is not a valid environment variable name")
        # Numbers and booleans are served as the predecessor served them: `str(value)`.
        if value is None or not isinstance(value, str | int | float):
            problems.append(f"spec.env.{key} must be a string, number or boolean, got {value!r}")


def check_resources(resources: Any, problems: list[str]) -> None:
    if not is_map(resources, "spec.resources", problems):
        return
    for section in ("requests", "limits"):
        values = resources.get(section)
        if not is_map(values, f"spec.resources.{section}", problems):
            continue
        for key, value in values.items():
            if isinstance(value, bool) or not _QUANTITY.match(str(value)):
                problems.append(
                    f"spec.resources.{section}.{key} must be a Kubernetes quantity, got {value!r}"
                )


def check_autoscaling(autoscaling: Any, problems: list[str]) -> None:
    if not is_map(autoscaling, "spec.autoscaling", problems):
        return
    enabled = autoscaling.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        problems.append(f"spec.autoscaling.enabled must be true or false, got {enabled!r}")
    low = check_int(
        autoscaling.get("min_replicas"), "spec.autoscaling.min_replicas", 1, 1000, problems
    )
    high = check_int(
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
        check_int(metric.get("target"), f"{where}.target", 1, None, problems)


def check_canary(canary: Any, problems: list[str]) -> None:
    if not is_map(canary, "spec.canary", problems):
        return
    image = canary.get("image")
    if image is None or image == "":
        problems.append("spec.canary.image is required")
    elif not is_valid_image(image):
        problems.append(f"spec.canary.image must be a valid image reference, got {image!r}")
    check_int(canary.get("weight"), "spec.canary.weight", 1, 99, problems)
    check_int(canary.get("replicas"), "spec.canary.replicas", 1, 1000, problems)


def check_model_source(source: Any, problems: list[str]) -> None:
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


def check_gpu_type(gpu_type: Any, problems: list[str]) -> None:
    """`gpu_type` becomes a node-selector value (a GPU name such as `a10g` or an instance
    type such as `g5.xlarge`), so it must be a valid label value."""
    if gpu_type is None or gpu_type == "":
        return
    if not (isinstance(gpu_type, str) and len(gpu_type) <= 63 and _LABEL_VALUE.match(gpu_type)):
        problems.append(
            "spec.gpu_type must be a GPU name (like a10g) or an instance type (like "
            f"g5.xlarge), got {gpu_type!r}"
        )


def is_label_key(key: Any) -> bool:
    if not isinstance(key, str):
        return False
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _LABEL_PREFIX.match(prefix)):
        return False
    return bool(name) and len(name) <= 63 and bool(_LABEL_VALUE.match(name))


def check_tolerations(tolerations: Any, problems: list[str]) -> None:
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
        if key not in (None, "") and not is_label_key(key):
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
        if check_int(seconds, f"{where}.tolerationSeconds", low, None, problems) is not None and (
            effect != "NoExecute"
        ):
            problems.append(f"{where}.tolerationSeconds needs effect NoExecute")


def is_map(value: Any, where: str, problems: list[str]) -> bool:
    """True when `value` is a map to check further; records a problem when it is not one."""
    if value is None:
        return False
    if not isinstance(value, dict):
        problems.append(f"{where} must be a map, got {value!r}")
        return False
    return True


def check_int(
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


def check_choice(value: Any, where: str, choices: tuple[str, ...], problems: list[str]) -> None:
    if value is not None and value not in choices:
        problems.append(f"{where} must be one of {', '.join(choices)}, got {value!r}")


def check_image(value: Any, where: str, problems: list[str], *, required: bool = False) -> None:
    """An image reference; absent (or empty) is a problem only when `required`."""
    if value is None or value == "":
        if required:
            problems.append(f"{where} is required")
    elif not is_valid_image(value):
        problems.append(f"{where} must be a valid image reference, got {value!r}")


def check_region_images(overrides: Any, problems: list[str]) -> None:
    """Not a map, or a value that is not a non-empty string: that region uses `image`, as
    the predecessor's `_resolve_image_for_region` did. Only a string that is not an image
    reference (a pod that cannot pull) is refused."""
    if isinstance(overrides, dict):
        for region, uri in overrides.items():
            if isinstance(uri, str) and uri:
                check_image(uri, f"spec.region_image_uris.{region}", problems)


def check_http_path(value: Any, where: str, problems: list[str]) -> None:
    if value is not None and not (isinstance(value, str) and value.startswith("/")):
        problems.append(f"{where} must start with '/', got {value!r}")


def check_text(value: Any, where: str, problems: list[str]) -> None:
    if value is not None and not isinstance(value, str):
        problems.append(f"{where} must be a string, got {value!r}")


def check_text_list(value: Any, where: str, problems: list[str]) -> None:
    if value is not None and not (
        isinstance(value, list) and all(isinstance(v, str) for v in value)
    ):
        problems.append(f"{where} must be a list of strings, got {value!r}")


def check_text_map(value: Any, where: str, problems: list[str]) -> None:
    if is_map(value, where, problems):
        for key, entry in value.items():
            if not isinstance(entry, str):
                problems.append(f"{where}.{key} must be a string, got {entry!r}")


def check_new_labels(labels: Any, problems: list[str]) -> None:
    """What a command writes: every label key must be a Kubernetes label key. (Items
    already in the table are served whatever their labels: a key or value Kubernetes
    refuses goes on the objects as an annotation, as the predecessor never labelled.)"""
    if isinstance(labels, dict):
        for key in labels:
            if not is_label_key(key):
                problems.append(
                    f"labels: {key!r} is not a Kubernetes label key ([prefix/]name: letters, "
                    "digits, '-', '_', '.', at most 63, starting and ending alphanumeric)"
                )
