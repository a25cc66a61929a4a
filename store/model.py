"""The endpoint model: frozen dataclasses for one item of the endpoints table.

The item format is the predecessor's (GCO's `inference_store.py`), see DESIGN
section 2. `parse_endpoint` turns a Decimal-free item into an `Endpoint` after
validating it; `Endpoint.to_item` writes the same format back, omitting optional
fields that hold their defaults just as the predecessor's CLI does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from store.convert import plain
from store.errors import InvalidEndpoint
from store.validation import (
    ACCELERATORS,
    CAPACITY_TYPES,
    DESIRED_STATES,
    METRIC_TYPES,
    validate_item,
)

__all__ = [
    "ACCELERATORS",
    "CAPACITY_TYPES",
    "DEFAULT_NAMESPACE",
    "DESIRED_STATES",
    "METRIC_TYPES",
    "REGION_STATES",
    "AutoscalingSpec",
    "Canary",
    "Endpoint",
    "EndpointSpec",
    "Metric",
    "RegionStatus",
    "Resources",
    "default_ingress_path",
    "next_timestamp",
    "parse_endpoint",
    "parse_region_status",
    "utc_timestamp",
]

REGION_STATES = ("creating", "running", "updating", "stopped", "deleting", "deleted", "error")
DEFAULT_NAMESPACE = "gco-inference"
DEFAULT_REQUESTS: Mapping[str, str] = {"cpu": "1", "memory": "4Gi"}
DEFAULT_LIMITS: Mapping[str, str] = {"cpu": "4", "memory": "16Gi"}


def utc_timestamp(now: datetime | None = None) -> str:
    """Return `now` (default: the current time) as the predecessor writes timestamps:
    ISO-8601 UTC with microseconds and a `+00:00` offset."""
    return (now or datetime.now(UTC)).astimezone(UTC).isoformat()


def parse_timestamp(text: str | None) -> float | None:
    """Seconds since the epoch of an ISO-8601 timestamp (ours with `Z`, the predecessor's
    with `+00:00`; no offset means UTC), or None when it is missing or unreadable."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def next_timestamp(previous: str | None) -> str:
    """Return the current timestamp, moved 1 microsecond past `previous` when equal to it,
    so a write always changes `updated_at` (the token of conditional writes)."""
    now = datetime.now(UTC)
    stamp = utc_timestamp(now)
    if stamp == previous:
        stamp = utc_timestamp(now + timedelta(microseconds=1))
    return stamp


def default_ingress_path(name: str) -> str:
    """The predecessor's ingress path for endpoint `name`."""
    return f"/inference/{name}"


@dataclass(frozen=True)
class Resources:
    """Container resource requests and limits (Kubernetes quantities as strings)."""

    requests: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_REQUESTS))
    limits: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_LIMITS))


@dataclass(frozen=True)
class Metric:
    """One HPA metric: average utilisation `target` percent of `type` (cpu|memory, above
    100 allowed), or for `gpu` the target average of the per-pod GPU metric."""

    type: str
    target: int = 70


@dataclass(frozen=True)
class AutoscalingSpec:
    """HorizontalPodAutoscaler settings; `enabled=False` means no HPA."""

    enabled: bool = False
    min_replicas: int = 1
    max_replicas: int = 10
    metrics: tuple[Metric, ...] = (Metric("cpu", 70),)


@dataclass(frozen=True)
class Canary:
    """A canary Deployment running `image` that receives `weight` percent of traffic."""

    image: str
    weight: int = 10
    replicas: int = 1


@dataclass(frozen=True)
class EndpointSpec:
    """What to run for one endpoint (the item's `spec` map)."""

    image: str
    region_image_uris: dict[str, str] = field(default_factory=dict)
    replicas: int = 1
    port: int = 8000
    gpu_count: int = 1
    accelerator: str = "nvidia"
    health_check_path: str = "/health"
    env: dict[str, str] = field(default_factory=dict)
    resources: Resources = field(default_factory=Resources)
    command: tuple[str, ...] | None = None
    args: tuple[str, ...] | None = None
    model_path: str | None = None
    model_source: str | None = None
    node_selector: dict[str, str] = field(default_factory=dict)
    capacity_type: str | None = None
    autoscaling: AutoscalingSpec = field(default_factory=AutoscalingSpec)
    canary: Canary | None = None
    #: A GPU name (`a10g`) or instance type (`g5.xlarge`) for the node selector.
    gpu_type: str | None = None
    #: Pod tolerations as the item gives them (API field names), after the accelerator's.
    tolerations: tuple[dict[str, Any], ...] = ()

    def image_for(self, region: str) -> str:
        """Return the primary image for `region`: its override if any, else `image`."""
        return self.region_image_uris.get(region) or self.image

    def to_item(self) -> dict[str, Any]:
        """Return the `spec` map in the predecessor's format (optional defaults omitted)."""
        item: dict[str, Any] = {
            "image": self.image,
            "port": self.port,
            "replicas": self.replicas,
            "gpu_count": self.gpu_count,
            "health_check_path": self.health_check_path,
        }
        if self.region_image_uris:
            item["region_image_uris"] = dict(self.region_image_uris)
        if self.accelerator != "nvidia":
            item["accelerator"] = self.accelerator
        if self.env:
            item["env"] = dict(self.env)
        if self.resources != Resources():
            item["resources"] = {
                "requests": dict(self.resources.requests),
                "limits": dict(self.resources.limits),
            }
        if self.command is not None:
            item["command"] = list(self.command)
        if self.args is not None:
            item["args"] = list(self.args)
        for key in ("model_path", "model_source", "capacity_type"):
            if getattr(self, key) is not None:
                item[key] = getattr(self, key)
        if self.node_selector:
            item["node_selector"] = dict(self.node_selector)
        if self.autoscaling != AutoscalingSpec():
            item["autoscaling"] = {
                "enabled": self.autoscaling.enabled,
                "min_replicas": self.autoscaling.min_replicas,
                "max_replicas": self.autoscaling.max_replicas,
                "metrics": [{"type": m.type, "target": m.target} for m in self.autoscaling.metrics],
            }
        if self.canary is not None:
            item["canary"] = {
                "image": self.canary.image,
                "weight": self.canary.weight,
                "replicas": self.canary.replicas,
            }
        if self.gpu_type:
            item["gpu_type"] = self.gpu_type
        if self.tolerations:
            item["tolerations"] = [dict(t) for t in self.tolerations]
        return item


@dataclass(frozen=True)
class RegionStatus:
    """One region's observed status, the value of `region_status.<region>`.

    `epoch` and `holder` say which leader wrote it (the Lease's `leaseTransitions` and
    holder identity): extra attributes the predecessor's CLI ignores, absent from the
    entries the predecessor wrote. A write of a lower epoch is refused (DESIGN 4).
    """

    state: str
    replicas_ready: int = 0
    replicas_desired: int = 0
    last_sync: str = ""
    error: str | None = None
    epoch: int | None = None
    holder: str | None = None

    def to_item(self) -> dict[str, Any]:
        """Return the map the predecessor writes (`error` only when set), plus `epoch` and
        `holder` when set."""
        item: dict[str, Any] = {
            "state": self.state,
            "replicas_ready": self.replicas_ready,
            "replicas_desired": self.replicas_desired,
            "last_sync": self.last_sync,
        }
        if self.error:
            item["error"] = self.error
        if self.epoch is not None:
            item["epoch"] = self.epoch
            item["holder"] = self.holder or ""
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> RegionStatus:
        """Parse a status map leniently: missing or malformed fields take their defaults."""
        item = plain(dict(item))
        error = item.get("error")
        return cls(
            state=str(item.get("state", "")),
            replicas_ready=_lenient_int(item.get("replicas_ready")),
            replicas_desired=_lenient_int(item.get("replicas_desired")),
            last_sync=str(item.get("last_sync", "")),
            error=None if error is None else str(error),
            epoch=_optional_int(item.get("epoch")),
            holder=None if item.get("holder") is None else str(item.get("holder")),
        )


def parse_region_status(value: Any) -> dict[str, RegionStatus]:
    """Parse an item's `region_status` leniently; entries that are not maps are skipped."""
    if not isinstance(value, Mapping):
        return {}
    return {
        str(region): RegionStatus.from_item(entry)
        for region, entry in value.items()
        if isinstance(entry, Mapping)
    }


@dataclass(frozen=True)
class Endpoint:
    """One endpoint: the whole item of the table, parsed."""

    endpoint_name: str
    desired_state: str
    target_regions: tuple[str, ...]
    spec: EndpointSpec
    namespace: str = DEFAULT_NAMESPACE
    ingress_path: str = ""
    created_at: str = ""
    updated_at: str = ""
    labels: dict[str, Any] = field(default_factory=dict)
    created_by: str | None = None
    region_status: dict[str, RegionStatus] = field(default_factory=dict)
    #: When `endpoints restart` last asked for a rolling restart (top-level attribute
    #: `restart_requested_at`, ISO-8601; absent in the predecessor's items). The daemon
    #: puts it on the pod template as `kubectl rollout restart` does: a new value rolls
    #: the pods once.
    restart_requested_at: str | None = None

    def __post_init__(self) -> None:
        if not self.ingress_path:
            # Frozen: the default depends on the name, so it is filled in here.
            object.__setattr__(self, "ingress_path", default_ingress_path(self.endpoint_name))

    def to_item(self) -> dict[str, Any]:
        """Return the whole item in the predecessor's format, for `create`."""
        item: dict[str, Any] = {
            "endpoint_name": self.endpoint_name,
            "desired_state": self.desired_state,
            "target_regions": list(self.target_regions),
            "namespace": self.namespace,
            "spec": self.spec.to_item(),
            "ingress_path": self.ingress_path,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "region_status": {r: s.to_item() for r, s in self.region_status.items()},
        }
        if self.labels:
            item["labels"] = dict(self.labels)
        if self.created_by:
            item["created_by"] = self.created_by
        if self.restart_requested_at:
            item["restart_requested_at"] = self.restart_requested_at
        return item


def parse_endpoint(item: Mapping[str, Any]) -> Endpoint:
    """Validate `item` (Decimals allowed) and return it as an `Endpoint`.

    Raises:
        InvalidEndpoint: the item breaks a rule; `problems` lists every one.
    """
    item = plain(dict(item))
    problems = validate_item(item)
    name = item.get("endpoint_name")
    if problems:
        raise InvalidEndpoint(name if isinstance(name, str) else "", problems)
    return Endpoint(
        endpoint_name=name,
        desired_state=item.get("desired_state") or "deploying",
        target_regions=tuple(item.get("target_regions") or ()),
        spec=_parse_spec(item["spec"]),
        namespace=item.get("namespace") or DEFAULT_NAMESPACE,
        ingress_path=item.get("ingress_path") or default_ingress_path(name),
        created_at=str(item.get("created_at") or ""),
        updated_at=str(item.get("updated_at") or ""),
        labels=dict(item.get("labels") or {}),
        created_by=item.get("created_by"),
        region_status=parse_region_status(item.get("region_status")),
        restart_requested_at=_restart_request(item.get("restart_requested_at")),
    )


def _restart_request(value: Any) -> str | None:
    """The item's restart request: a non-empty string, else none (anything else is not
    one we wrote, and restarts nothing)."""
    return value if isinstance(value, str) and value else None


def _parse_spec(spec: Mapping[str, Any]) -> EndpointSpec:
    """Build an `EndpointSpec` from a validated `spec` map, applying defaults."""
    resources = spec.get("resources") or {}
    autoscaling = spec.get("autoscaling") or {}
    canary = spec.get("canary")
    metrics = autoscaling.get("metrics")
    command = spec.get("command")
    args = spec.get("args")
    overrides = spec.get("region_image_uris")
    tolerations = spec.get("tolerations")
    return EndpointSpec(
        image=spec["image"],
        # Malformed overrides fall back to `image`, as the predecessor's daemon did.
        region_image_uris={
            str(region): uri
            for region, uri in (overrides.items() if isinstance(overrides, Mapping) else ())
            if isinstance(uri, str) and uri
        },
        replicas=_or_default(spec, "replicas", 1),
        port=_or_default(spec, "port", 8000),
        gpu_count=_or_default(spec, "gpu_count", 1),
        accelerator=spec.get("accelerator") or "nvidia",
        health_check_path=spec.get("health_check_path") or "/health",
        env={str(key): _env_text(value) for key, value in (spec.get("env") or {}).items()},
        resources=Resources(
            requests=_quantities(resources.get("requests"), DEFAULT_REQUESTS),
            limits=_quantities(resources.get("limits"), DEFAULT_LIMITS),
        ),
        command=None if command is None else tuple(command),
        args=None if args is None else tuple(args),
        model_path=spec.get("model_path"),
        model_source=spec.get("model_source"),
        node_selector=dict(spec.get("node_selector") or {}),
        capacity_type=spec.get("capacity_type"),
        autoscaling=AutoscalingSpec(
            enabled=bool(autoscaling.get("enabled", False)),
            min_replicas=_or_default(autoscaling, "min_replicas", 1),
            max_replicas=_or_default(autoscaling, "max_replicas", 10),
            # No metric (absent or an empty list) is CPU 70 and a metric without a type
            # is cpu: the predecessor's defaults.
            metrics=(
                tuple(Metric(m.get("type") or "cpu", _or_default(m, "target", 70)) for m in metrics)
                if metrics
                else AutoscalingSpec().metrics
            ),
        ),
        canary=None
        if canary is None
        else Canary(
            image=canary["image"],
            weight=_or_default(canary, "weight", 10),
            replicas=_or_default(canary, "replicas", 1),
        ),
        gpu_type=spec.get("gpu_type") or None,
        tolerations=tuple(dict(t) for t in tolerations or ()),
    )


def _env_text(value: Any) -> str:
    """An env value as the predecessor's daemon put it in the pod: `str(value)` after its
    Decimal conversion (8 -> "8", 1.5 -> "1.5", True -> "True")."""
    return value if isinstance(value, str) else str(value)


def _or_default(values: Mapping[str, Any], key: str, default: int) -> int:
    value = values.get(key)
    return default if value is None else int(value)


def _quantities(values: Mapping[str, Any] | None, default: Mapping[str, str]) -> dict[str, str]:
    # A section given in the item replaces the default section as a whole, like the
    # predecessor's `resources.get("requests", ...)`.
    if values is None:
        return dict(default)
    return {str(key): str(value) for key, value in values.items()}


def _optional_int(value: Any) -> int | None:
    """An integral number (DynamoDB's come back as Decimal, converted by `plain`), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if float(value).is_integer() else None


def _lenient_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
