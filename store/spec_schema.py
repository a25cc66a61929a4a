"""The endpoint spec's fields, each declared once: `SPEC_FIELDS`.

One `SpecField` row says everything about one key of the item's `spec` map: its default,
how it is checked (architecture section 8), how the item's value becomes the `EndpointSpec`
attribute and back (`parse`, `dump`), its CLI flags and how they change the value
(`flags`, `merge`), whether the predecessor's CLI always writes it (`written`), whether
`endpoints show` prints it (`shown`), and a valid non-default `example`. From the table:
`store.validation` checks a spec, `store.model` parses and writes it (`to_item` omits a
value equal to the default unless `written`), `actors.app.endpoints` builds its flags,
change builder and `show` list, and `actors.desired.workload_for` copies every field
whose name is a `Workload` field.

Adding a spec field that reaches the Deployment is four edits:

1. a `SpecField(...)` row here (default, check, flags and help, example);
2. the typed attribute on `store.model.EndpointSpec`, its default `FIELDS["key"].default`
   (or `field(default_factory=FIELDS["key"].default_value)` for a map);
3. the attribute on `k8s.workload.Workload` (same name: `workload_for` copies it);
4. its use in the builder (`k8s/manifests/pod.py`).

`tests/unit/test_spec_schema.py` fails when one is missing: every declared field's
example must change the built objects, and `EndpointSpec` must have exactly these fields.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from store import checks
from store.checks import ACCELERATORS, CAPACITY_TYPES
from store.rollout import RolloutPolicy, parse_rollout

DEFAULT_REQUESTS: Mapping[str, str] = {"cpu": "1", "memory": "4Gi"}
DEFAULT_LIMITS: Mapping[str, str] = {"cpu": "4", "memory": "16Gi"}
DEFAULT_METRIC_TARGET = 70


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
    target: int = DEFAULT_METRIC_TARGET


@dataclass(frozen=True)
class AutoscalingSpec:
    """HorizontalPodAutoscaler settings; `enabled=False` means no HPA."""

    enabled: bool = False
    min_replicas: int = 1
    max_replicas: int = 10
    metrics: tuple[Metric, ...] = (Metric("cpu", DEFAULT_METRIC_TARGET),)


@dataclass(frozen=True)
class Canary:
    """A canary Deployment running `image` that receives `weight` percent of traffic."""

    image: str
    weight: int = 10
    replicas: int = 1


class FlagError(ValueError):
    """A flag's text is not a value of its field; the message says what was expected."""


@dataclass(frozen=True)
class Flag:
    """One CLI flag of a spec field.

    Attributes:
        name: the flag, e.g. "--replicas".
        help: its help text (the default is appended from the field for scalar flags).
        metavar: shown in the usage.
        parse: text -> value, raising `FlagError`; None makes a switch storing `const`.
        repeat: may be given several times (the values come as a list).
        update_only: only `endpoints update` has it (e.g. `--unset-env`).
    """

    name: str
    help: str
    metavar: str | None = None
    parse: Callable[[str], Any] | None = str
    repeat: bool = False
    const: Any = None
    update_only: bool = False

    @property
    def dest(self) -> str:
        """The argparse destination (prefixed, so no flag shadows a command's own)."""
        return "spec_" + self.name.lstrip("-").replace("-", "_")


def _same(value: Any) -> Any:
    return value


REQUIRED: Any = object()


@dataclass(frozen=True)
class SpecField:
    """One key of the `spec` map, declared once (see the module docstring).

    Attributes:
        key: the item's key, and the `EndpointSpec` (and `Workload`) attribute name.
        default: the `EndpointSpec` value when the item has none (`REQUIRED`: none).
        check: (item value or None, problems) appends one message per problem.
        example: a valid item value that is not the default (the schema test uses it).
        parse: validated item value (None when absent) -> `EndpointSpec` value.
        dump: `EndpointSpec` value -> item value.
        flags: its CLI flags.
        merge: (current item value or None, {flag name: given value}) -> new item value;
            None: the value of the field's one flag.
        written: the predecessor's CLI always writes it, default or not.
        shown: `endpoints show` prints it.
        builds: its value reaches the built objects (the schema test checks it); False
            only for a field that says how a change reaches the regions, not what runs.
    """

    key: str
    default: Any
    check: Callable[[Any, list[str]], None]
    example: Any
    parse: Callable[[Any], Any] = _same
    dump: Callable[[Any], Any] = _same
    flags: tuple[Flag, ...] = ()
    merge: Callable[[Any, Mapping[str, Any]], Any] | None = None
    written: bool = False
    shown: bool = True
    builds: bool = True

    @property
    def where(self) -> str:
        return f"spec.{self.key}"

    def default_value(self) -> Any:
        """A fresh copy of the default (maps are mutable)."""
        return copy.deepcopy(self.default)


# -- parsing flag text --------------------------------------------------------------


def integer(text: str) -> int:
    """A whole number, e.g. "3" (not "three", not "1.5")."""
    try:
        return int(text.strip())
    except ValueError:
        raise FlagError(f"must be an integer, got {text!r}") from None


def pair(text: str) -> tuple[str, str]:
    """KEY=VALUE (the value may be empty or contain '=')."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise FlagError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def names(text: str) -> list[str]:
    """NAME[,NAME...], e.g. "eu-west-1,ap-south-1" (no empty name)."""
    parts = [part.strip() for part in text.split(",")]
    if not all(parts):
        raise FlagError(f"expected NAME[,NAME...], got {text!r}")
    return parts


def integers(text: str) -> list[int]:
    """N[,N...], e.g. "10,50"."""
    return [integer(part) for part in text.split(",")]


def metric(text: str) -> dict[str, Any]:
    """TYPE[=TARGET] (or the predecessor's TYPE:TARGET); the type is checked with the
    item (`checks.check_autoscaling`), as any item's is."""
    kind, _, target = text.replace(":", "=", 1).partition("=")
    return {
        "type": kind.strip(),
        "target": DEFAULT_METRIC_TARGET if not target.strip() else integer(target),
    }


#: The settings of an `--analysis` flag's compact form, and the policy key of each.
_ANALYSIS_OPTIONS = {"max": "max", "min": "min", "for": "for_seconds", "on_no_data": "on_no_data"}


def analysis(text: str) -> dict[str, Any]:
    """One rollout analysis query: a JSON map ({"name", "query", "max"...}), or
    NAME:QUERY:max=X[:min=Y][:for=S][:on_no_data=halt] (the settings may also come
    before the query; the query keeps any ':' of its own). The map is checked with the
    policy (`store.rollout.check_rollout`), as any item's is."""
    if text.lstrip().startswith("{"):
        try:
            entry = json.loads(text)
        except ValueError as error:
            raise FlagError(f"not a JSON map: {error}") from None
        if not isinstance(entry, dict):
            raise FlagError(f"expected a JSON map, got {text!r}")
        return entry
    name, _, rest = text.partition(":")
    parts = rest.split(":")
    options: dict[str, Any] = {}

    def option(part: str) -> bool:
        key, sep, value = part.partition("=")
        if not sep or key not in _ANALYSIS_OPTIONS:
            return False
        if key == "on_no_data":
            options[key] = value
        elif key == "for":
            try:
                options[_ANALYSIS_OPTIONS[key]] = integer(value)
            except FlagError as error:
                raise FlagError(f"for {error}") from None
        else:
            try:
                number = float(value)
            except ValueError:
                raise FlagError(f"{key} must be a number, got {value!r}") from None
            options[key] = int(number) if number.is_integer() else number
        return True

    while parts and option(parts[0]):
        parts.pop(0)
    while parts and option(parts[-1]):
        parts.pop()
    query = ":".join(parts)
    if not name.strip() or not query.strip():
        raise FlagError(f"expected NAME:QUERY:max=X[:min=Y][:for=S] or a JSON map, got {text!r}")
    return {"name": name.strip(), "query": query.strip(), **options}


# -- item value <-> EndpointSpec value ------------------------------------------------


def _or(default: Any, convert: Callable[[Any], Any] = _same) -> Callable[[Any], Any]:
    return lambda value: copy.deepcopy(default) if value is None else convert(value)


def _env_text(value: Any) -> str:
    """An env value as the predecessor's daemon put it in the pod: `str(value)` after its
    Decimal conversion (8 -> "8", 1.5 -> "1.5", True -> "True")."""
    return value if isinstance(value, str) else str(value)


def _region_images(value: Any) -> dict[str, str]:
    # Malformed overrides fall back to `image`, as the predecessor's daemon did.
    if not isinstance(value, Mapping):
        return {}
    return {str(region): uri for region, uri in value.items() if isinstance(uri, str) and uri}


def _quantities(values: Mapping[str, Any] | None, default: Mapping[str, str]) -> dict[str, str]:
    # A section given in the item replaces the default section as a whole, like the
    # predecessor's `resources.get("requests", ...)`.
    if values is None:
        return dict(default)
    return {str(key): str(value) for key, value in values.items()}


def _parse_resources(value: Any) -> Resources:
    value = value or {}
    return Resources(
        requests=_quantities(value.get("requests"), DEFAULT_REQUESTS),
        limits=_quantities(value.get("limits"), DEFAULT_LIMITS),
    )


def _dump_resources(value: Resources) -> dict[str, Any]:
    return {"requests": dict(value.requests), "limits": dict(value.limits)}


def _int_or(values: Mapping[str, Any], key: str, default: int) -> int:
    value = values.get(key)
    return default if value is None else int(value)


def _parse_autoscaling(value: Any) -> AutoscalingSpec:
    value = value or {}
    metrics = value.get("metrics")
    return AutoscalingSpec(
        enabled=bool(value.get("enabled", False)),
        min_replicas=_int_or(value, "min_replicas", 1),
        max_replicas=_int_or(value, "max_replicas", 10),
        # No metric (absent or an empty list) is CPU 70 and a metric without a type is
        # cpu: the predecessor's defaults.
        metrics=(
            tuple(
                Metric(m.get("type") or "cpu", _int_or(m, "target", DEFAULT_METRIC_TARGET))
                for m in metrics
            )
            if metrics
            else AutoscalingSpec().metrics
        ),
    )


def _dump_autoscaling(value: AutoscalingSpec) -> dict[str, Any]:
    return {
        "enabled": value.enabled,
        "min_replicas": value.min_replicas,
        "max_replicas": value.max_replicas,
        "metrics": [{"type": m.type, "target": m.target} for m in value.metrics],
    }


def _parse_canary(value: Any) -> Canary | None:
    if value is None:
        return None
    return Canary(
        image=value["image"],
        weight=_int_or(value, "weight", 10),
        replicas=_int_or(value, "replicas", 1),
    )


def _dump_canary(value: Canary | None) -> dict[str, Any] | None:
    return None if value is None else dataclasses.asdict(value)


def _tuple_or_none(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


def _list_or_none(value: Any) -> list[Any] | None:
    return None if value is None else list(value)


# -- flags -> new item value ------------------------------------------------------------


def _map(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _merge_pairs(name: str, *, unset: str | None = None) -> Callable[[Any, Mapping[str, Any]], Any]:
    """KEY=VALUE flags add to (or replace keys of) the current map; `unset` removes keys."""

    def merge(current: Any, given: Mapping[str, Any]) -> dict[str, Any]:
        merged = {**_map(current), **dict(given.get(name) or ())}
        for key in given.get(unset or "", ()) or ():
            merged.pop(key, None)
        return merged

    return merge


def _merge_resources(current: Any, given: Mapping[str, Any]) -> dict[str, Any]:
    current = _map(current)
    # A section present in the item replaces the default section, so fill it whole.
    merged = {
        "requests": {**DEFAULT_REQUESTS, **_map(current.get("requests"))},
        "limits": {**DEFAULT_LIMITS, **_map(current.get("limits"))},
    }
    for flag, value in given.items():
        section, key = _RESOURCE_FLAGS[flag]
        merged[section][key] = value
    return merged


_RESOURCE_FLAGS = {
    "--cpu-request": ("requests", "cpu"),
    "--memory-request": ("requests", "memory"),
    "--cpu-limit": ("limits", "cpu"),
    "--memory-limit": ("limits", "memory"),
}


def _merge_autoscaling(current: Any, given: Mapping[str, Any]) -> dict[str, Any]:
    merged = {**_dump_autoscaling(AutoscalingSpec()), **_map(current)}
    if "--autoscaling-min" in given:
        merged["min_replicas"] = given["--autoscaling-min"]
    if "--autoscaling-max" in given:
        merged["max_replicas"] = given["--autoscaling-max"]
    if "--autoscaling-metric" in given:
        merged["metrics"] = list(given["--autoscaling-metric"])
        # Naming a metric asks for autoscaling, as the predecessor's `--metric` did.
        merged["enabled"] = True
    for switch in ("--autoscaling", "--no-autoscaling"):
        if switch in given:
            merged["enabled"] = given[switch]
    return merged


_ROLLOUT_FLAGS = {
    "--waves": "waves",
    "--bake": "bake_seconds",
    "--steps": "steps",
    "--step-seconds": "step_seconds",
    "--deadline": "progress_deadline_seconds",
    "--alarm": "alarms",
    "--verify-weights": "verify_weights",
    "--no-verify-weights": "verify_weights",
    "--analysis": "analysis",
    "--no-analysis": "analysis",
    "--no-auto-rollback": "auto_rollback",
    "--auto-rollback": "auto_rollback",
}


def _merge_rollout(current: Any, given: Mapping[str, Any]) -> dict[str, Any] | None:
    """The flags set their keys of the policy map (a list flag replaces the whole list);
    `--no-rollout` removes the policy."""
    if given.get("--no-rollout"):
        others = sorted(flag for flag in given if flag != "--no-rollout")
        if others:
            raise FlagError(f"--no-rollout removes the policy; it cannot go with {others[0]}")
        return None
    merged = _map(current)
    for flag, value in given.items():
        if flag in _ROLLOUT_FLAGS:
            merged[_ROLLOUT_FLAGS[flag]] = value
    return merged


def _parse_rollout(value: Any) -> RolloutPolicy | None:
    return parse_rollout({"rollout": value})


def _dump_rollout(value: RolloutPolicy | None) -> dict[str, Any] | None:
    return None if value is None else value.to_item()


def _rollout_checked_with_the_spec(value: Any, problems: list[str]) -> None:
    """`spec.rollout` is checked by `store.validation` with the whole spec
    (`store.rollout.check_rollout`), since its `steps` exclude a `canary`."""


# -- the table ----------------------------------------------------------------------------


def _check(check: Callable[..., Any], where: str, *extra: Any) -> Callable[[Any, list[str]], None]:
    return lambda value, problems: check(value, where, *extra, problems)


SPEC_FIELDS: tuple[SpecField, ...] = (
    SpecField(
        "image",
        REQUIRED,
        lambda value, problems: checks.check_image(value, "spec.image", problems, required=True),
        example="registry.example.com/team/server:2",
        flags=(Flag("--image", "container image"),),
        written=True,
    ),
    SpecField(
        "region_image_uris",
        {},
        checks.check_region_images,
        example={"us-east-1": "registry.example.com/team/server:1-east"},
        parse=_region_images,
        dump=dict,
        flags=(
            Flag(
                "--region-image",
                "image override for one region (an ECR image is rewritten for each target "
                "region's registry without it)",
                "REGION=IMAGE",
                pair,
                repeat=True,
            ),
        ),
        merge=_merge_pairs("--region-image"),
    ),
    SpecField(
        "replicas",
        1,
        _check(checks.check_int, "spec.replicas", 0, 1000),
        example=3,
        parse=_or(1, int),
        flags=(Flag("--replicas", "replicas per region", "N", integer),),
        written=True,
    ),
    SpecField(
        "port",
        8000,
        _check(checks.check_int, "spec.port", 1, 65535),
        example=9000,
        parse=_or(8000, int),
        flags=(Flag("--port", "container port", "PORT", integer),),
        written=True,
    ),
    SpecField(
        "gpu_count",
        1,
        _check(checks.check_int, "spec.gpu_count", 0, None),
        example=2,
        parse=_or(1, int),
        flags=(Flag("--gpu-count", "GPUs per replica", "N", integer),),
        written=True,
    ),
    SpecField(
        "accelerator",
        "nvidia",
        _check(checks.check_choice, "spec.accelerator", ACCELERATORS),
        example="neuron",
        parse=lambda value: value or "nvidia",
        flags=(Flag("--accelerator", f"one of {', '.join(ACCELERATORS)}", "KIND"),),
    ),
    SpecField(
        "capacity_type",
        None,
        _check(checks.check_choice, "spec.capacity_type", CAPACITY_TYPES),
        example="spot",
        flags=(
            Flag(
                "--capacity-type",
                f"one of {', '.join(CAPACITY_TYPES)}",
                "TYPE",
            ),
        ),
    ),
    SpecField(
        "health_check_path",
        "/health",
        _check(checks.check_http_path, "spec.health_check_path"),
        example="/ready",
        parse=lambda value: value or "/health",
        flags=(Flag("--health-check-path", "readiness/liveness path", "PATH"),),
        written=True,
    ),
    SpecField(
        "env",
        {},
        checks.check_env,
        example={"MODEL": "llama3"},
        parse=lambda value: {str(k): _env_text(v) for k, v in (value or {}).items()},
        dump=dict,
        flags=(
            Flag("--env", "environment variable (repeatable)", "KEY=VALUE", pair, repeat=True),
            Flag(
                "--unset-env",
                "remove an environment variable",
                "KEY",
                repeat=True,
                update_only=True,
            ),
        ),
        merge=_merge_pairs("--env", unset="--unset-env"),
    ),
    SpecField(
        "resources",
        Resources(),
        checks.check_resources,
        example={
            "requests": {"cpu": "2", "memory": "8Gi"},
            "limits": {"cpu": "8", "memory": "32Gi"},
        },
        parse=_parse_resources,
        dump=_dump_resources,
        flags=(
            Flag("--cpu-request", f"e.g. 1 or 500m ({DEFAULT_REQUESTS['cpu']})", "QUANTITY"),
            Flag("--memory-request", f"e.g. 4Gi ({DEFAULT_REQUESTS['memory']})", "QUANTITY"),
            Flag("--cpu-limit", f"e.g. 4 ({DEFAULT_LIMITS['cpu']})", "QUANTITY"),
            Flag("--memory-limit", f"e.g. 16Gi ({DEFAULT_LIMITS['memory']})", "QUANTITY"),
        ),
        merge=_merge_resources,
    ),
    SpecField(
        "command",
        None,
        _check(checks.check_text_list, "spec.command"),
        example=["python", "serve.py"],
        parse=_tuple_or_none,
        dump=_list_or_none,
        flags=(Flag("--command", "container command, one element per flag", "ARG", repeat=True),),
        merge=lambda current, given: list(given["--command"]),
    ),
    SpecField(
        "args",
        None,
        _check(checks.check_text_list, "spec.args"),
        example=["--max-model-len", "4096"],
        parse=_tuple_or_none,
        dump=_list_or_none,
        flags=(Flag("--arg", "container argument, one element per flag", "ARG", repeat=True),),
        merge=lambda current, given: list(given["--arg"]),
    ),
    SpecField(
        "model_path",
        None,
        _check(checks.check_text, "spec.model_path"),
        example="/models/llama3",
        flags=(Flag("--model-path", "model path on the model volume", "PATH"),),
    ),
    SpecField(
        "model_source",
        None,
        checks.check_model_source,
        example="s3://models-bucket/llama3",
        flags=(
            Flag(
                "--model-source",
                "s3://bucket[/path] synced to the model volume, or a model id (mounts it only)",
                "SOURCE",
            ),
        ),
    ),
    SpecField(
        "gpu_type",
        None,
        checks.check_gpu_type,
        example="a10g",
        parse=lambda value: value or None,
        flags=(
            Flag("--gpu-type", "GPU name (a10g) or instance type (g5.xlarge) to run on", "TYPE"),
        ),
    ),
    SpecField(
        "tolerations",
        (),
        checks.check_tolerations,
        example=[{"key": "team", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}],
        parse=lambda value: tuple(dict(t) for t in value or ()),
        dump=lambda value: [dict(t) for t in value],
        # Given in --file only (a list of maps).
    ),
    SpecField(
        "node_selector",
        {},
        _check(checks.check_text_map, "spec.node_selector"),
        example={"pool": "gpu"},
        parse=lambda value: dict(value or {}),
        dump=dict,
        flags=(
            Flag(
                "--node-selector",
                "node label to require (repeatable)",
                "KEY=VALUE",
                pair,
                repeat=True,
            ),
        ),
        merge=_merge_pairs("--node-selector"),
    ),
    SpecField(
        "autoscaling",
        AutoscalingSpec(),
        checks.check_autoscaling,
        example={
            "enabled": True,
            "min_replicas": 2,
            "max_replicas": 5,
            "metrics": [{"type": "cpu", "target": 60}],
        },
        parse=_parse_autoscaling,
        dump=_dump_autoscaling,
        flags=(
            Flag("--autoscaling", "enable the HPA", parse=None, const=True),
            Flag("--no-autoscaling", "disable the HPA", parse=None, const=False, update_only=True),
            Flag("--autoscaling-min", "HPA min replicas (1)", "N", integer),
            Flag("--autoscaling-max", "HPA max replicas (10)", "N", integer),
            Flag(
                "--autoscaling-metric",
                "cpu, memory or gpu, with a target (percent for cpu and memory, "
                f"default {DEFAULT_METRIC_TARGET}); enables the HPA; repeatable",
                "TYPE[=TARGET]",
                metric,
                repeat=True,
            ),
        ),
        merge=_merge_autoscaling,
    ),
    SpecField(
        "canary",
        None,
        checks.check_canary,
        example={"image": "registry.example.com/team/server:3", "weight": 20, "replicas": 1},
        parse=_parse_canary,
        dump=_dump_canary,
        # Set by the `canary`, `promote` and `rollback` commands, not by flags.
    ),
    SpecField(
        "rollout",
        None,
        _rollout_checked_with_the_spec,
        example={
            "waves": [["us-east-1"], ["eu-west-1", "ap-south-1"]],
            "bake_seconds": 120,
            "steps": [10, 50],
            "alarms": ["chat-5xx"],
            "auto_rollback": False,
        },
        parse=_parse_rollout,
        dump=_dump_rollout,
        flags=(
            Flag(
                "--waves",
                "regions rolled out together, in order (repeatable, one flag per wave; target "
                "regions not named form a last wave); sets a rollout policy",
                "REGION[,REGION...]",
                names,
                repeat=True,
            ),
            Flag(
                "--bake", "seconds a wave runs the new revision before the next (300)", "S", integer
            ),
            Flag(
                "--steps",
                "canary weights the new revision serves in each region first, e.g. 10,50",
                "W[,W...]",
                integers,
            ),
            Flag("--step-seconds", "seconds per canary step (60)", "S", integer),
            Flag(
                "--deadline",
                "seconds a region has to make the new revision ready, else it fails (600)",
                "S",
                integer,
            ),
            Flag(
                "--alarm",
                "CloudWatch alarm read in each region while it steps or bakes; ALARM fails "
                "the revision (repeatable)",
                "NAME",
                repeat=True,
            ),
            Flag(
                "--verify-weights",
                "a region moves on from a canary step, and ends its bake, only once its ALB "
                "carries the Ingress's weights (read back from ELBv2)",
                parse=None,
                const=True,
            ),
            Flag(
                "--no-verify-weights",
                "stop verifying the load balancer's weights",
                parse=None,
                const=False,
                update_only=True,
            ),
            Flag(
                "--analysis",
                "Prometheus query checked in each region while it steps or bakes: past max "
                "(under min) for S seconds fails the revision; no data passes unless "
                "on_no_data=halt (repeatable; a JSON map works too)",
                "NAME:QUERY:max=X[:min=Y][:for=S][:on_no_data=halt]",
                analysis,
                repeat=True,
            ),
            Flag(
                "--no-analysis",
                "remove the policy's analysis queries",
                parse=None,
                const=[],
                update_only=True,
            ),
            Flag(
                "--no-auto-rollback",
                "on a failure, hold every region where it is instead of returning to the "
                "last completed revision",
                parse=None,
                const=False,
            ),
            Flag(
                "--auto-rollback",
                "roll back every region on a failure (the default)",
                parse=None,
                const=True,
                update_only=True,
            ),
            Flag(
                "--no-rollout",
                "remove the rollout policy: later changes reach every region at once",
                parse=None,
                const=True,
                update_only=True,
            ),
        ),
        merge=_merge_rollout,
        # How a change reaches the regions, not what runs: the policy changes no object
        # (and no revision, `store.rollout.revision`), so the schema test exempts it.
        builds=False,
    ),
)

FIELDS: Mapping[str, SpecField] = {f.key: f for f in SPEC_FIELDS}


def spec_problems(spec: Mapping[str, Any]) -> list[str]:
    """Every problem of the `spec` map's declared fields (unknown keys are allowed)."""
    problems: list[str] = []
    for spec_field in SPEC_FIELDS:
        spec_field.check(spec.get(spec_field.key), problems)
    return problems


def parse_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """{attribute: value} of `EndpointSpec` for a validated `spec` map, defaults applied."""
    return {f.key: f.parse(spec.get(f.key)) for f in SPEC_FIELDS}


def dump_spec(values: Mapping[str, Any]) -> dict[str, Any]:
    """The `spec` map in the predecessor's format for {attribute: value}: the `written`
    fields always, the others when they differ from their default."""
    return {
        f.key: f.dump(values[f.key]) for f in SPEC_FIELDS if f.written or values[f.key] != f.default
    }


def flag_changes(given: Mapping[str, Any], spec: Mapping[str, Any]) -> dict[str, Any]:
    """{key: new item value} for the fields whose flags were given (`given`: {flag name:
    value}, absent flags left out); a value equal to the default is None (remove it), as
    the predecessor omits defaults, except for the `written` fields."""
    changes: dict[str, Any] = {}
    for spec_field in SPEC_FIELDS:
        mine = {f.name: given[f.name] for f in spec_field.flags if f.name in given}
        if not mine:
            continue
        if spec_field.merge is None:
            (value,) = mine.values()
        else:
            value = spec_field.merge(spec.get(spec_field.key), mine)
        if not spec_field.written and spec_field.parse(value) == spec_field.default:
            value = None
        changes[spec_field.key] = value
    return changes


def flags() -> Iterable[tuple[SpecField, Flag]]:
    """Every (field, flag) pair, in the table's order."""
    return ((f, flag) for f in SPEC_FIELDS for flag in f.flags)


# -- ECR image per region -------------------------------------------------------------------

# `<account>.dkr.ecr.<region>.amazonaws.com`, the predecessor's `_ECR_HOST_RE`.
_ECR_HOST = re.compile(r"^(?P<account>\d+)\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com$")


def image_for_region(image: str, region: str) -> str:
    """An ECR image moved to `region`'s registry of the same account (a replica); any other
    image unchanged (the predecessor's `rewrite_image_uri_for_region`)."""
    if "://" in image:
        return image
    host, sep, rest = image.partition("/")
    match = _ECR_HOST.match(host)
    if match is None:
        return image
    return f"{match['account']}.dkr.ecr.{region}.amazonaws.com{sep}{rest}"


def region_image_uris(image: str, regions: Iterable[str]) -> dict[str, str]:
    """The predecessor's `region_image_uris` for `image` in `regions`: every region's ECR
    rewrite when at least one differs from `image`, else empty (no map written)."""
    rewritten = {region: image_for_region(image, region) for region in regions}
    return rewritten if any(uri != image for uri in rewritten.values()) else {}
