"""The daemon's configuration: defaults, then environment, then command-line flags.

The environment names and defaults are the predecessor's (GCO's inference
monitor), so the daemon is a drop-in: `CLUSTER_NAME`, `REGION`,
`INFERENCE_ENDPOINTS_TABLE_NAME`, `DYNAMODB_REGION`, `RECONCILE_INTERVAL_SECONDS`,
`INFERENCE_NAMESPACE`, `K8S_API_TIMEOUT`, `INFERENCE_UNHEALTHY_THRESHOLD_SECONDS`.
Everything else is our own documented addition. A bad value stops start-up with
one line naming the variable or flag it came from (`ConfigError`, exit status 2).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from actors.app.cli import UsageError
from k8s.manifests import GPU_METRIC_NAME

# DNS-1123 label: what Kubernetes accepts as a namespace name.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# DNS-1123 subdomain: what Kubernetes accepts as a Lease name.
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# DynamoDB table names: 3-255 of these characters.
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
LOG_FORMATS = ("auto", "json", "console")
# The predecessor's table client used us-east-1 when neither DYNAMODB_REGION nor REGION was set.
_FALLBACK_TABLE_REGION = "us-east-1"


class ConfigError(UsageError):
    """A bad configuration value; `str()` is one line naming the variable or flag."""


def default_identity() -> str:
    """Leader-election identity outside Kubernetes: `{hostname}-{pid}`, unique per process."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class _Rule:
    """How to read one setting from text and what a valid value looks like."""

    parse: Callable[[str], Any]
    valid: Callable[[Any], bool]
    requirement: str


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def _text(value: Any) -> bool:
    return isinstance(value, str) and value != "" and value.strip() == value


def _namespace_list(text: str) -> tuple[str, ...]:
    """`a, b,c` -> ('a', 'b', 'c'), duplicates dropped; an empty entry is an error."""
    names = [part.strip() for part in text.split(",")]
    if not all(names):
        raise ValueError(text)
    return tuple(dict.fromkeys(names))


def _namespaces(value: Any) -> bool:
    return isinstance(value, tuple) and all(
        isinstance(name, str) and bool(_DNS_LABEL.match(name)) for name in value
    )


def _metric_name(value: Any) -> bool:
    # What the HPA accepts as a Pods metric name (a path segment of the custom metrics
    # API); adapters name theirs like Prometheus series: DCGM_FI_DEV_GPU_UTIL.
    return (
        _text(value)
        and value not in (".", "..")
        and not any(c.isspace() or c in "/%" for c in value)
    )


def _url_or_none(value: Any) -> bool:
    if value is None:
        return True
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


_POSITIVE = _Rule(float, _positive, "must be a positive number")
_TEXT = _Rule(str, _text, "must be a non-empty value without surrounding spaces")
_OPTIONAL_TEXT = _Rule(str, lambda v: v is None or _text(v), "must be a non-empty path")
_URL = _Rule(str, _url_or_none, "must be an http(s) URL like http://127.0.0.1:8000")

RULES: dict[str, _Rule] = {
    "cluster_name": _TEXT,
    "region": _TEXT,
    "table_name": _Rule(
        str,
        lambda v: isinstance(v, str) and bool(_TABLE_NAME.match(v)),
        "must be a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -)",
    ),
    "table_region": _TEXT,
    "dynamodb_endpoint_url": _URL,
    "prometheus_url": _URL,
    "reconcile_interval": _POSITIVE,
    "namespace": _Rule(
        str,
        lambda v: isinstance(v, str) and bool(_DNS_LABEL.match(v)),
        "must be a DNS-1123 label (lower-case letters, digits and '-', at most 63)",
    ),
    "namespaces": _Rule(
        _namespace_list,
        _namespaces,
        "must be a comma-separated list of DNS-1123 labels (lower-case letters, digits and "
        "'-', at most 63 each)",
    ),
    "k8s_timeout": _POSITIVE,
    "unhealthy_threshold": _POSITIVE,
    "metrics_port": _Rule(
        int,
        lambda v: isinstance(v, int) and 0 <= v <= 65535,
        "must be an integer from 0 to 65535",
    ),
    "log_dir": _OPTIONAL_TEXT,
    "log_format": _Rule(str, lambda v: v in LOG_FORMATS, "must be one of auto, json, console"),
    "lease_name": _Rule(
        str,
        lambda v: isinstance(v, str) and len(v) <= 253 and bool(_DNS_SUBDOMAIN.match(v)),
        "must be a DNS-1123 subdomain (lower-case letters, digits, '-' and '.')",
    ),
    "lease_duration": _POSITIVE,
    "renew_deadline": _POSITIVE,
    "retry_period": _POSITIVE,
    "identity": _TEXT,
    "kubeconfig": _OPTIONAL_TEXT,
    "k8s_url": _URL,
    "k8s_qps": _POSITIVE,
    "k8s_burst": _Rule(int, lambda v: isinstance(v, int) and v >= 1, "must be an integer >= 1"),
    "handler_timeout": _POSITIVE,
    "stream_poll": _Rule(
        float,
        lambda v: isinstance(v, int | float) and math.isfinite(v) and v >= 0,
        "must be a number of seconds >= 0",
    ),
    "stream_resync": _POSITIVE,
    "status_heartbeat": _Rule(
        float,
        lambda v: isinstance(v, int | float) and math.isfinite(v) and v >= 0,
        "must be a number of seconds >= 0",
    ),
    "max_orphan_deletes": _Rule(
        int, lambda v: isinstance(v, int) and v >= 0, "must be an integer >= 0"
    ),
    "gpu_metric_name": _Rule(
        str,
        _metric_name,
        "must be a metric name (no spaces, '/' or '%'), like DCGM_FI_DEV_GPU_UTIL",
    ),
}


def _setting(default: Any, *, env: str, flag: str, doc: str, factory: Any = None) -> Any:
    """A dataclass field that knows its environment variable, its flag and its help text."""
    metadata = {"env": env, "flag": flag, "doc": doc}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Settings:
    """Everything the daemon is configured with; validated at construction.

    Construct it with `load_settings` (defaults < environment < flags); a direct
    construction validates the same way and names the field in its error.

    Raises:
        ConfigError: on the first invalid value, or when the lease timings break
            client-go's rule lease_duration > renew_deadline > 1.2 x retry_period > 0.
    """

    cluster_name: str = _setting(
        "unknown-cluster",
        env="CLUSTER_NAME",
        flag="--cluster-name",
        doc="name of this cluster, used in logs and status (default unknown-cluster)",
    )
    region: str = _setting(
        "unknown-region",
        env="REGION",
        flag="--region",
        doc="region this daemon serves: endpoints whose target_regions include it "
        "(default unknown-region)",
    )
    table_name: str = _setting(
        "gco-inference-endpoints",
        env="INFERENCE_ENDPOINTS_TABLE_NAME",
        flag="--table",
        doc="DynamoDB table of endpoints (default gco-inference-endpoints)",
    )
    table_region: str | None = _setting(
        None,
        env="DYNAMODB_REGION",
        flag="--table-region",
        doc="AWS region of the table (default: REGION if set, else AWS_REGION, "
        "else AWS_DEFAULT_REGION, else us-east-1)",
    )
    dynamodb_endpoint_url: str | None = _setting(
        None,
        env="AWS_ENDPOINT_URL_DYNAMODB",
        flag="--endpoint-url",
        doc="DynamoDB endpoint URL, e.g. a local moto server (default: AWS)",
    )
    prometheus_url: str | None = _setting(
        None,
        env="PROMETHEUS_URL",
        flag="--prometheus-url",
        doc="Prometheus server the rollout's `analysis` queries are sent to, e.g. "
        "http://prometheus.monitoring:9090 (default: none; a policy with analysis then holds "
        "its bake and says why)",
    )
    reconcile_interval: float = _setting(
        15.0,
        env="RECONCILE_INTERVAL_SECONDS",
        flag="--reconcile-interval",
        doc="seconds between table polls and periodic re-checks (default 15)",
    )
    namespace: str = _setting(
        "gco-inference",
        env="INFERENCE_NAMESPACE",
        flag="--namespace",
        doc="default namespace of endpoints and home of the leader Lease (default gco-inference)",
    )
    namespaces: tuple[str, ...] = _setting(
        (),
        env="INFERENCE_NAMESPACES",
        flag="--namespaces",
        doc="comma-separated namespaces whose endpoints are served, one set of watches each; "
        "INFERENCE_NAMESPACE is added when missing; an item in any other namespace gets an "
        "error status (default: INFERENCE_NAMESPACE only)",
    )
    k8s_timeout: float = _setting(
        30.0,
        env="K8S_API_TIMEOUT",
        flag="--k8s-timeout",
        doc="seconds before a Kubernetes API call times out (default 30)",
    )
    unhealthy_threshold: float = _setting(
        300.0,
        env="INFERENCE_UNHEALTHY_THRESHOLD_SECONDS",
        flag="--unhealthy-threshold",
        doc="seconds an endpoint may stay unready before its Ingress is removed (default 300)",
    )
    metrics_port: int = _setting(
        8080,
        env="METRICS_PORT",
        flag="--metrics-port",
        doc="port of /metrics, /healthz and /readyz; 0 picks a free port (default 8080)",
    )
    log_dir: str | None = _setting(
        None,
        env="LOG_DIR",
        flag="--log-dir",
        doc="directory for one JSONL log stream per endpoint plus supervisor.jsonl "
        "(default: none, logs go to stderr only)",
    )
    log_format: str = _setting(
        "auto",
        env="LOG_FORMAT",
        flag="--log-format",
        doc="auto (console on a terminal, JSON otherwise), json or console (default auto)",
    )
    lease_name: str = _setting(
        "inference-monitor-leader",
        env="LEASE_NAME",
        flag="--lease-name",
        doc="name of the leader-election Lease (default inference-monitor-leader)",
    )
    lease_duration: float = _setting(
        15.0,
        env="LEASE_DURATION_SECONDS",
        flag="--lease-duration",
        doc="seconds a standby waits after the last renewal before taking over (default 15)",
    )
    renew_deadline: float = _setting(
        10.0,
        env="LEASE_RENEW_DEADLINE_SECONDS",
        flag="--renew-deadline",
        doc="seconds the leader keeps trying to renew before it steps down (default 10)",
    )
    retry_period: float = _setting(
        2.0,
        env="LEASE_RETRY_PERIOD_SECONDS",
        flag="--retry-period",
        doc="seconds between lease acquire/renew attempts (default 2)",
    )
    identity: str = _setting(
        None,
        env="POD_NAME",
        flag="--identity",
        doc="leader-election identity (default: POD_NAME, else {hostname}-{pid})",
        factory=default_identity,
    )
    kubeconfig: str | None = _setting(
        None,
        env="KUBECONFIG",
        flag="--kubeconfig",
        doc="kubeconfig file (default: in-cluster configuration, else ~/.kube/config)",
    )
    k8s_url: str | None = _setting(
        None,
        env="K8S_API_URL",
        flag="--k8s-url",
        doc="explicit Kubernetes API server URL without credentials, e.g. the local "
        "simulator (default: none)",
    )
    k8s_qps: float = _setting(
        10.0,
        env="K8S_QPS",
        flag="--k8s-qps",
        doc="sustained Kubernetes requests per second (default 10)",
    )
    k8s_burst: int = _setting(
        100,
        env="K8S_BURST",
        flag="--k8s-burst",
        doc="Kubernetes requests allowed in a burst above the QPS (default 100)",
    )
    handler_timeout: float = _setting(
        60.0,
        env="HANDLER_TIMEOUT_SECONDS",
        flag="--handler-timeout",
        doc=(
            "seconds a message handler may run its own code before its actor counts as "
            "hung; time waiting on the Kubernetes API or the table does not count (default 60)"
        ),
    )
    stream_poll: float = _setting(
        0.5,
        env="STREAM_POLL_SECONDS",
        flag="--stream-poll",
        doc=(
            "seconds between reads of the table's stream, the change feed, when the table "
            "has one with new images; 0 = no feed, scan every RECONCILE_INTERVAL_SECONDS "
            "(default 0.5)"
        ),
    )
    stream_resync: float = _setting(
        300.0,
        env="STREAM_RESYNC_SECONDS",
        flag="--stream-resync",
        doc=(
            "seconds between full scans while the change feed is read without error: the "
            "resync that repairs anything the stream missed (default 300)"
        ),
    )
    status_heartbeat: float = _setting(
        300.0,
        env="STATUS_HEARTBEAT_SECONDS",
        flag="--status-heartbeat",
        doc=(
            "seconds between refreshes of a region's last_sync when nothing changes, plus "
            "up to 20 percent per endpoint so writes spread; 0 = only on change (default 300)"
        ),
    )
    max_orphan_deletes: int = _setting(
        5,
        env="MAX_ORPHAN_DELETES",
        flag="--max-orphan-deletes",
        doc=(
            "most endpoints absent from the table whose objects one scan may delete; more "
            "(or more than 20 percent of those present) deletes none and is reported (default 5)"
        ),
    )
    gpu_metric_name: str = _setting(
        GPU_METRIC_NAME,
        env="GPU_METRIC_NAME",
        flag="--gpu-metric-name",
        doc=(
            "per-pod metric an autoscaling metric `gpu` scales on, an HPA Pods metric served "
            "by a metrics adapter (e.g. prometheus-adapter over the DCGM exporter) "
            f"(default {GPU_METRIC_NAME})"
        ),
    )

    def __post_init__(self) -> None:
        if self.table_region is None:
            # A directly constructed Settings keeps its table in its own region.
            object.__setattr__(self, "table_region", self.region)
        names = {f.name: f.name for f in fields(self)}
        problem = first_problem({f.name: getattr(self, f.name) for f in fields(self)}, names)
        if problem is not None:
            raise ConfigError(problem)

    @property
    def watched_namespaces(self) -> tuple[str, ...]:
        """The namespaces served: INFERENCE_NAMESPACE (the Lease's) first, then
        INFERENCE_NAMESPACES."""
        return (self.namespace, *(name for name in self.namespaces if name != self.namespace))


def _show(value: Any) -> str:
    """A number as an operator wrote it (15, not 15.0)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def first_problem(
    values: Mapping[str, Any],
    names: Mapping[str, str],
    written: Mapping[str, Any] | None = None,
) -> str | None:
    """The first invalid value in `values` as one line, or None when all are valid.

    Args:
        values: typed setting values by field name.
        names: how to name each field in the message (its variable, flag or field name).
        written: the text each value was parsed from, shown instead of the parsed value.
    """
    for name, rule in RULES.items():
        value = values[name]
        # bool is an int to Python, never a valid port or count here.
        if isinstance(value, bool) or not rule.valid(value):
            shown = (written or {}).get(name, value)
            return f"{names[name]} {rule.requirement}, got {shown!r}"
    duration, deadline, retry = (
        values["lease_duration"],
        values["renew_deadline"],
        values["retry_period"],
    )
    if not duration > deadline:
        return (
            f"{names['lease_duration']} ({_show(duration)}) must be greater than "
            f"{names['renew_deadline']} ({_show(deadline)})"
        )
    if not deadline > 1.2 * retry:
        return (
            f"{names['renew_deadline']} ({_show(deadline)}) must be greater than 1.2 x "
            f"{names['retry_period']} ({_show(retry)})"
        )
    return None


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag per setting to `parser`; each defaults to None so env and defaults apply.

    The attribute of each flag on the parsed namespace is the field name
    (`--table` -> `args.table_name`, `--endpoint-url` -> `args.dynamodb_endpoint_url`).
    """
    group = parser.add_argument_group("configuration (flags override environment variables)")
    for spec in fields(Settings):
        group.add_argument(
            spec.metadata["flag"],
            dest=spec.name,
            default=None,
            metavar=spec.metadata["env"],
            help=f"{spec.metadata['doc']}; env {spec.metadata['env']}",
        )


def table_region(env: Mapping[str, str], region: str | None = None) -> str:
    """The AWS region of the endpoints table: one rule for the daemon and every command.

    `DYNAMODB_REGION`, else the cluster's region (`region`: the daemon's REGION, from its
    environment or `--region`), else the AWS SDK's `AWS_REGION` and `AWS_DEFAULT_REGION`,
    else us-east-1 (the predecessor's rule, with the SDK's variables in between).
    """
    for candidate in (
        env.get("DYNAMODB_REGION"),
        region,
        env.get("AWS_REGION"),
        env.get("AWS_DEFAULT_REGION"),
    ):
        if candidate:
            return candidate
    return _FALLBACK_TABLE_REGION


# Optional settings where an empty environment variable means "not set" (as
# Kubernetes manifests often write `value: ""`).
_EMPTY_MEANS_UNSET = frozenset(
    {
        "table_region",
        "dynamodb_endpoint_url",
        "prometheus_url",
        "log_dir",
        "identity",
        "kubeconfig",
        "k8s_url",
        "namespaces",
    }
)


def load_settings(env: Mapping[str, str], args: argparse.Namespace | None = None) -> Settings:
    """Build `Settings` from defaults, overridden by `env`, overridden by flags in `args`.

    Args:
        env: environment variables, usually `os.environ`.
        args: the parsed command line of `add_run_arguments` flags, or None.

    Returns:
        validated settings.

    Raises:
        ConfigError: on the first bad value; the message names the flag when the
            value came from a flag, else the environment variable.
    """
    values: dict[str, Any] = {}
    names: dict[str, str] = {}
    written: dict[str, Any] = {}
    explicit: set[str] = set()
    for spec in fields(Settings):
        flag_value = getattr(args, spec.name, None) if args is not None else None
        env_value = env.get(spec.metadata["env"])
        if env_value == "" and spec.name in _EMPTY_MEANS_UNSET:
            env_value = None
        names[spec.name] = spec.metadata["env"]
        if flag_value is not None:
            names[spec.name] = spec.metadata["flag"]
            raw: Any = flag_value
        elif env_value is not None:
            raw = env_value
        else:
            has_factory = spec.default_factory is not MISSING
            values[spec.name] = spec.default_factory() if has_factory else spec.default
            continue
        explicit.add(spec.name)
        written[spec.name] = raw
        rule = RULES[spec.name]
        if isinstance(raw, str):
            try:
                values[spec.name] = rule.parse(raw)
            except ValueError:
                raise ConfigError(f"{names[spec.name]} {rule.requirement}, got {raw!r}") from None
        else:
            values[spec.name] = raw
    if values["table_region"] is None:
        values["table_region"] = table_region(
            env, values["region"] if "region" in explicit else None
        )
    problem = first_problem(values, names, written)
    if problem is not None:
        raise ConfigError(problem)
    return Settings(**values)
