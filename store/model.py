"""The endpoint model: frozen dataclasses for one item of the endpoints table.

The item format is the predecessor's (GCO's `inference_store.py`), see DESIGN
section 2. `parse_endpoint` turns a Decimal-free item into an `Endpoint` after
validating it; `Endpoint.to_item` writes the same format back, omitting optional
fields that hold their defaults just as the predecessor's CLI does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from store.convert import plain
from store.errors import InvalidEndpoint
from store.rollout import RolloutPolicy
from store.spec_schema import (
    DEFAULT_LIMITS,
    DEFAULT_REQUESTS,
    FIELDS,
    AutoscalingSpec,
    Canary,
    Metric,
    Resources,
    dump_spec,
    parse_spec,
)
from store.validation import (
    ACCELERATORS,
    CAPACITY_TYPES,
    DESIRED_STATES,
    METRIC_TYPES,
    read_regions,
    validate_item,
)

__all__ = [
    "ACCELERATORS",
    "CAPACITY_TYPES",
    "DEFAULT_LIMITS",
    "DEFAULT_NAMESPACE",
    "DEFAULT_REQUESTS",
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
class EndpointSpec:
    """What to run for one endpoint (the item's `spec` map). Each attribute is declared,
    with its default, check, flags and item form, in `store.spec_schema.SPEC_FIELDS`."""

    image: str
    region_image_uris: dict[str, str] = field(
        default_factory=FIELDS["region_image_uris"].default_value
    )
    replicas: int = FIELDS["replicas"].default
    port: int = FIELDS["port"].default
    gpu_count: int = FIELDS["gpu_count"].default
    accelerator: str = FIELDS["accelerator"].default
    health_check_path: str = FIELDS["health_check_path"].default
    env: dict[str, str] = field(default_factory=FIELDS["env"].default_value)
    resources: Resources = field(default_factory=FIELDS["resources"].default_value)
    command: tuple[str, ...] | None = FIELDS["command"].default
    args: tuple[str, ...] | None = FIELDS["args"].default
    model_path: str | None = FIELDS["model_path"].default
    model_source: str | None = FIELDS["model_source"].default
    node_selector: dict[str, str] = field(default_factory=FIELDS["node_selector"].default_value)
    capacity_type: str | None = FIELDS["capacity_type"].default
    autoscaling: AutoscalingSpec = field(default_factory=FIELDS["autoscaling"].default_value)
    canary: Canary | None = FIELDS["canary"].default
    #: A GPU name (`a10g`) or instance type (`g5.xlarge`) for the node selector.
    gpu_type: str | None = FIELDS["gpu_type"].default
    #: Pod tolerations as the item gives them (API field names), after the accelerator's.
    tolerations: tuple[dict[str, Any], ...] = FIELDS["tolerations"].default
    #: How a change reaches the target regions (architecture section 12); None: every region at
    #: once.
    rollout: RolloutPolicy | None = FIELDS["rollout"].default

    def image_for(self, region: str) -> str:
        """Return the primary image for `region`: its override if any, else `image`."""
        return self.region_image_uris.get(region) or self.image

    def to_item(self) -> dict[str, Any]:
        """Return the `spec` map in the predecessor's format (optional defaults omitted)."""
        return dump_spec({f.name: getattr(self, f.name) for f in fields(self)})


#: Ends the `error` of a status written trimmed: the full one would take the item past
#: DynamoDB's 400 KB limit (`RegionStatus.trimmed`).
TRIMMED = "[status trimmed: the item is at DynamoDB's 400 KB item size limit]"
#: Characters of the original error a trimmed status keeps.
TRIMMED_ERROR_CHARS = 200


@dataclass(frozen=True)
class RegionStatus:
    """One region's observed status, the value of `region_status.<region>`.

    `epoch` and `holder` say which leader wrote it (the Lease's `leaseTransitions` and
    holder identity): extra attributes the predecessor's CLI ignores, absent from the
    entries the predecessor wrote. A write of a lower epoch is refused (architecture section 4).

    With a rollout policy (architecture section 12, `store.rollout`) the entry also says `revision`
    (hash of the spec the region serves), `rollout` (its phase, `store.rollout.PHASES`),
    `step` (index into the policy's steps; its length = the new revision is the primary)
    and `since` (ISO-8601, when revision, phase or step last changed: the durable clock
    of steps, deadlines and bakes). All absent without a policy. `gates` holds each rollout
    gate's last reading while the region steps or bakes a revision ({gate name: {state,
    detail, since}}, `store.gates`), for `rollout status`; absent without a gate.

    `seq` counts this region's status writes (each write carries the one before plus 1):
    the entry's version, so an endpoint actor tells a table state older than what it last
    wrote from a newer one (architecture section 12, "nothing moves backwards"). Absent
    from the predecessor's entries.
    """

    state: str
    replicas_ready: int = 0
    replicas_desired: int = 0
    last_sync: str = ""
    error: str | None = None
    epoch: int | None = None
    holder: str | None = None
    revision: str | None = None
    rollout: str | None = None
    step: int | None = None
    since: str | None = None
    seq: int | None = None
    gates: dict[str, dict[str, str]] | None = None

    def to_item(self) -> dict[str, Any]:
        """Return the map the predecessor writes (`error` only when set), plus `epoch` and
        `holder` when set, and the rollout fields that are set."""
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
        for key in ("revision", "rollout", "step", "since", "seq"):
            if getattr(self, key) is not None:
                item[key] = getattr(self, key)
        if self.gates:
            item["gates"] = {name: dict(reading) for name, reading in self.gates.items()}
        return item

    def trimmed(self) -> RegionStatus:
        """This status in the form written when the full one would take the item past
        DynamoDB's 400 KB limit: every field but `error`, which keeps its first
        `TRIMMED_ERROR_CHARS` characters and ends with `TRIMMED` (so it says so)."""
        kept = (self.error or "")[:TRIMMED_ERROR_CHARS]
        return replace(self, error=f"{kept} ... {TRIMMED}" if kept else TRIMMED)

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
            revision=_optional_text(item.get("revision")),
            rollout=_optional_text(item.get("rollout")),
            step=_optional_int(item.get("step")),
            since=_optional_text(item.get("since")),
            seq=_optional_int(item.get("seq")),
            gates=_gates(item.get("gates")),
        )


def _gates(value: Any) -> dict[str, dict[str, str]] | None:
    """A status entry's gate readings, leniently (an entry that is not a map is skipped)."""
    if not isinstance(value, Mapping):
        return None
    gates = {
        str(name): {str(k): str(v) for k, v in reading.items()}
        for name, reading in value.items()
        if isinstance(reading, Mapping)
    }
    return gates or None


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
        target_regions=read_regions(item.get("target_regions")) or (),
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
    return EndpointSpec(**parse_spec(spec))


def _optional_text(value: Any) -> str | None:
    """A non-empty string, else None."""
    return value if isinstance(value, str) and value else None


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
