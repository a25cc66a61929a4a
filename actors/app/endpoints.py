"""`inference-supervisor endpoints`: create, list, show, update, stop, start, delete,
canary, promote and rollback endpoints in the table.

Writes the predecessor's item format. Every change is validated first (bad input:
one line per problem on stderr, exit status 2, nothing written) and is conditional
on the item not having changed since it was read (a lost race: exit status 1,
nothing overwritten). `--json` prints machine-readable output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from actors.app.config import table_region
from k8s.naming import base_of_canary, canary_name
from store import commands, errors
from store.dynamo import DynamoEndpointStore, LoadedItem
from store.model import (
    DEFAULT_LIMITS,
    DEFAULT_NAMESPACE,
    DEFAULT_REQUESTS,
    default_ingress_path,
    utc_timestamp,
)
from store.validation import ACCELERATORS, CAPACITY_TYPES, DESIRED_STATES, validate_item

PROG = "inference-supervisor endpoints"
DEFAULT_TABLE = "gco-inference-endpoints"
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class BadInput(Exception):
    """Input the command refuses; each line of the message is one problem."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Sub-commands and flags of `inference-supervisor endpoints`."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--table",
        default=os.environ.get("INFERENCE_ENDPOINTS_TABLE_NAME", DEFAULT_TABLE),
        help="table name (env INFERENCE_ENDPOINTS_TABLE_NAME, default gco-inference-endpoints)",
    )
    common.add_argument(
        "--aws-region",
        default=table_region(os.environ, os.environ.get("REGION")),
        help="AWS region of the table (default: DYNAMODB_REGION, else REGION, else AWS_REGION, "
        "else AWS_DEFAULT_REGION, else us-east-1)",
    )
    common.add_argument(
        "--endpoint-url",
        default=os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or None,
        help="DynamoDB endpoint, e.g. a local one (env AWS_ENDPOINT_URL_DYNAMODB)",
    )
    common.add_argument("--json", action="store_true", help="print JSON for scripts")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = sub.add_parser("create", parents=[common], help="create an endpoint")
    create.add_argument("name", nargs="?", help="endpoint name (or endpoint_name in --file)")
    create.add_argument("--file", type=Path, help="spec (or whole item) as JSON or YAML")
    create.add_argument(
        "--region",
        dest="regions",
        action="append",
        help="target region (repeatable; default env REGION)",
    )
    create.add_argument("--namespace", help=f"Kubernetes namespace ({DEFAULT_NAMESPACE})")
    create.add_argument("--label", dest="labels", action="append", type=_pair, default=[])
    _add_spec_flags(create)
    create.set_defaults(command=_create)

    listing = sub.add_parser("list", parents=[common], help="list endpoints")
    listing.add_argument("--state", choices=DESIRED_STATES, help="only this desired state")
    listing.add_argument("--target-region", help="only endpoints targeting this region")
    listing.set_defaults(command=_list)

    show = sub.add_parser("show", parents=[common], help="show one endpoint and its status")
    show.add_argument("name")
    show.set_defaults(command=_show)

    update = sub.add_parser("update", parents=[common], help="change an endpoint's spec")
    update.add_argument("name")
    _add_spec_flags(update)
    update.add_argument("--unset-env", action="append", default=[], metavar="KEY")
    update.add_argument(
        "--no-autoscaling", dest="autoscaling", action="store_false", help="disable the HPA"
    )
    update.set_defaults(command=_update)

    for action, state, summary in (
        ("stop", "stopped", "scale an endpoint to zero, keeping its objects"),
        ("start", "running", "start a stopped endpoint"),
        ("delete", "deleted", "delete an endpoint in every region"),
    ):
        command = sub.add_parser(action, parents=[common], help=summary)
        command.add_argument("name")
        command.set_defaults(command=_state_command(state))

    canary = sub.add_parser("canary", parents=[common], help="send a share of traffic to an image")
    canary.add_argument("name")
    canary.add_argument("--image", required=True)
    canary.add_argument("--weight", type=int, default=10, help="percent of traffic, 1-99 (10)")
    canary.add_argument("--replicas", type=int, default=1, help="canary replicas (1)")
    canary.set_defaults(command=_canary)

    promote = sub.add_parser("promote", parents=[common], help="make the canary the primary")
    promote.add_argument("name")
    promote.set_defaults(command=_promote)

    rollback = sub.add_parser("rollback", parents=[common], help="remove the canary")
    rollback.add_argument("name")
    rollback.set_defaults(command=_rollback)

    restart = sub.add_parser(
        "restart",
        parents=[common],
        help="roll the endpoint's pods once in every target region (kubectl rollout restart)",
    )
    restart.add_argument("name")
    restart.set_defaults(command=_restart)


def run(args: argparse.Namespace) -> int:
    """Run the chosen sub-command; returns the exit status (0, 1 failed, 2 bad input)."""
    store = DynamoEndpointStore(
        args.table, region_name=args.aws_region, endpoint_url=args.endpoint_url
    )
    try:
        return int(args.command(store, args))
    except (BadInput, errors.InvalidEndpoint) as error:
        return _fail(str(error), EXIT_BAD_INPUT)
    except errors.TableNotFound as error:
        hint = "" if args.endpoint_url else " (or pass --endpoint-url for a local table)"
        return _fail(f"{error}{hint}", EXIT_FAILED)
    except errors.ConditionFailed as error:
        return _fail(f"{error}; run the command again to apply it to the new state", EXIT_FAILED)
    except errors.StoreError as error:
        return _fail(str(error), EXIT_FAILED)
    finally:
        store.close()


# -- sub-commands -----------------------------------------------------------------


def _create(store: DynamoEndpointStore, args: argparse.Namespace) -> int:
    item = _item_to_create(args)
    if store.endpoint_url:
        # A local table is created on first use; on AWS the table is infrastructure.
        store.create_table()
    spec = item.get("spec")
    _refuse_name_collision(
        store, item["endpoint_name"], canary=isinstance(spec, dict) and "canary" in spec
    )
    store.create_item(item)
    if args.json:
        _print_json(item)
    else:
        regions = ", ".join(item["target_regions"])
        print(f"created endpoint {item['endpoint_name']!r} for {regions}")
    return 0


def _list(store: DynamoEndpointStore, args: argparse.Namespace) -> int:
    loaded = [
        entry
        for entry in store.scan()
        if (args.state is None or entry.raw.get("desired_state") == args.state)
        and (args.target_region is None or args.target_region in _regions(entry.raw))
    ]
    loaded.sort(key=lambda entry: entry.name)
    if args.json:
        _print_json([entry.raw for entry in loaded])
        return 0
    rows = [("NAME", "STATE", "REGIONS", "IMAGE", "REPLICAS", "UPDATED")]
    for entry in loaded:
        spec = entry.raw.get("spec") if isinstance(entry.raw.get("spec"), dict) else {}
        state = str(entry.raw.get("desired_state", "")) if entry.endpoint else "invalid"
        rows.append(
            (
                entry.name,
                state,
                " ".join(
                    f"{r}:{entry.region_status[r].state if r in entry.region_status else '-'}"
                    for r in _regions(entry.raw)
                ),
                str(spec.get("image", "")),
                str(spec.get("replicas", 1)),
                str(entry.updated_at or ""),
            )
        )
    _print_table(rows)
    return 0


def _show(store: DynamoEndpointStore, args: argparse.Namespace) -> int:
    entry = _read(store, args.name)
    if args.json:
        _print_json(entry.raw)
        return 0
    raw = entry.raw
    spec = raw.get("spec") if isinstance(raw.get("spec"), dict) else {}
    lines = [
        ("name", entry.name),
        ("desired_state", raw.get("desired_state", "")),
        ("target_regions", ", ".join(_regions(raw))),
        ("namespace", raw.get("namespace", DEFAULT_NAMESPACE)),
        ("ingress_path", raw.get("ingress_path") or default_ingress_path(entry.name)),
        ("image", spec.get("image", "")),
    ]
    for key in (
        "region_image_uris",
        "replicas",
        "port",
        "gpu_count",
        "accelerator",
        "health_check_path",
        "env",
        "resources",
        "command",
        "args",
        "model_path",
        "model_source",
        "node_selector",
        "capacity_type",
        "autoscaling",
        "canary",
    ):
        if key in spec:
            lines.append((key, _compact(spec[key])))
    lines += [
        ("created_at", raw.get("created_at", "")),
        ("updated_at", raw.get("updated_at", "")),
        ("created_by", raw.get("created_by", "")),
    ]
    width = max(len(key) for key, _ in lines) + 2
    for key, value in lines:
        print(f"{key + ':':<{width}}{value}")
    for problem in (*entry.problems, *filter(None, [entry.status_problem])):
        print(f"problem: {problem}")
    print()
    rows = [("REGION", "STATE", "READY", "LAST SYNC", "ERROR")]
    for region in sorted(set(_regions(raw)) | set(entry.region_status)):
        status = entry.region_status.get(region)
        if status is None:
            rows.append((region, "-", "-", "-", ""))
        else:
            ready = f"{status.replicas_ready}/{status.replicas_desired}"
            rows.append((region, status.state, ready, status.last_sync, status.error or ""))
    _print_table(rows)
    return 0


def _update(store: DynamoEndpointStore, args: argparse.Namespace) -> int:
    entry = _read(store, args.name)
    spec = entry.raw.get("spec") if isinstance(entry.raw.get("spec"), dict) else {}
    changes = _spec_changes(args, spec, creating=False)
    if not changes:
        raise BadInput("nothing to update: give at least one flag (see --help)")
    updated_at = store.apply(
        args.name, commands.update_spec, changes, expected_updated_at=entry.updated_at
    )
    return _report_change(args, f"updated endpoint {args.name!r}", updated_at)


def _state_command(state: str) -> Callable[[DynamoEndpointStore, argparse.Namespace], int]:
    def change_state(store: DynamoEndpointStore, args: argparse.Namespace) -> int:
        updated_at = store.apply(args.name, commands.set_desired_state, state)
        return _report_change(args, f"endpoint {args.name!r} is now {state}", updated_at)

    return change_state


def _canary(store: DynamoEndpointStore, args: argparse.Namespace) -> int:
    _refuse_name_collision(store, args.name, canary=True, creating=False)
    updated_at = store.apply(args.name, commands.set_canary, args.image, args.weight, args.replicas)
    message = f"canary of {args.name!r}: {args.image} takes {args.weight}% of traffic"
    return _report_change(args, message, updated_at)


def _promote(store: DynamoEndpointStore, args: argparse.Namespace) -> int:
    updated_at = store.apply(args.name, commands.promote)
    return _report_change(args, f"promoted the canary of {args.name!r}", updated_at)


def _restart(store: DynamoEndpointStore, args: argparse.Namespace) -> int:
    updated_at = store.apply(args.name, commands.request_restart)
    return _report_change(
        args,
        f"restart requested for {args.name!r}; pods roll once in each target region",
        updated_at,
    )


def _rollback(store: DynamoEndpointStore, args: argparse.Namespace) -> int:
    updated_at = store.apply(args.name, commands.rollback)
    return _report_change(args, f"removed the canary of {args.name!r}", updated_at)


def _refuse_name_collision(
    store: DynamoEndpointStore, name: str, *, canary: bool, creating: bool = True
) -> None:
    """Refuse what would make two endpoints claim one object name: endpoint `x-canary`
    and endpoint `x`'s canary both need the Deployment and Service `x-canary` (DESIGN
    section 3). A new `x-canary` is refused while `x` exists (it may start a canary at any
    time); a canary of `x` (new or started) while `x-canary` exists."""
    base = base_of_canary(name)
    if creating and base != name and base and store.get(base) is not None:
        raise BadInput(
            f"endpoint {name!r} would share the Deployment and Service {name!r} with the "
            f"canary of endpoint {base!r}; choose another name"
        )
    taken = canary_name(name)
    if canary and store.get(taken) is not None:
        raise BadInput(
            f"the canary of {name!r} needs the Deployment and Service {taken!r}, "
            f"which endpoint {taken!r} has; rename or delete that endpoint first"
        )


# -- building items and changes ----------------------------------------------------------


def _add_spec_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image", help="container image")
    parser.add_argument("--replicas", type=int, help="replicas per region (1)")
    parser.add_argument("--port", type=int, help="container port (8000)")
    parser.add_argument("--gpu-count", type=int, help="GPUs per replica (1)")
    parser.add_argument("--accelerator", help=f"one of {', '.join(ACCELERATORS)} (nvidia)")
    parser.add_argument("--health-check-path", help="readiness/liveness path (/health)")
    parser.add_argument("--env", action="append", type=_pair, default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--region-image",
        action="append",
        type=_pair,
        default=[],
        metavar="REGION=IMAGE",
        help="image override for one region",
    )
    parser.add_argument("--cpu-request", help="e.g. 1 or 500m")
    parser.add_argument("--memory-request", help="e.g. 4Gi")
    parser.add_argument("--cpu-limit", help="e.g. 4")
    parser.add_argument("--memory-limit", help="e.g. 16Gi")
    parser.add_argument(
        "--command",
        dest="container_command",
        action="append",
        metavar="ARG",
        help="container command, one element per flag",
    )
    parser.add_argument(
        "--arg",
        dest="container_args",
        action="append",
        metavar="ARG",
        help="container argument, one element per flag",
    )
    parser.add_argument("--model-path", help="model path on the model volume")
    parser.add_argument("--model-source", help="s3://bucket/path synced to the model volume")
    parser.add_argument(
        "--node-selector", action="append", type=_pair, default=[], metavar="KEY=VALUE"
    )
    parser.add_argument("--capacity-type", help=f"one of {', '.join(CAPACITY_TYPES)}")
    parser.add_argument("--autoscaling", action="store_true", default=None, help="enable the HPA")
    parser.add_argument("--autoscaling-min", type=int, help="HPA min replicas (1)")
    parser.add_argument("--autoscaling-max", type=int, help="HPA max replicas (10)")
    parser.add_argument(
        "--autoscaling-metric",
        action="append",
        type=_pair_or_key,
        default=[],
        metavar="TYPE[=TARGET]",
        help="cpu or memory, target percent (70)",
    )


def _item_to_create(args: argparse.Namespace) -> dict[str, Any]:
    """The new item from --file and the flags (flags win), in the predecessor's format."""
    document = read_spec_file(args.file) if args.file else {}
    whole_item = "spec" in document
    spec = dict(document.get("spec") or {}) if whole_item else dict(document)
    name = args.name or document.get("endpoint_name")
    if not name:
        raise BadInput("endpoint_name is required (give NAME or endpoint_name in --file)")
    spec.update(_spec_changes(args, spec, creating=True))
    # The predecessor's CLI always writes these five spec fields.
    for key, default in (("port", 8000), ("replicas", 1), ("gpu_count", 1)):
        spec.setdefault(key, default)
    spec.setdefault("health_check_path", "/health")
    spec = {key: value for key, value in spec.items() if value is not None}
    regions = args.regions or document.get("target_regions")
    if regions is None and os.environ.get("REGION"):
        regions = [os.environ["REGION"]]
    if not regions:
        raise BadInput("target_regions is required: give --region (repeatable)")
    now = utc_timestamp()
    item: dict[str, Any] = {
        "endpoint_name": name,
        "desired_state": "deploying",
        "target_regions": regions,
        "namespace": args.namespace or document.get("namespace") or DEFAULT_NAMESPACE,
        "spec": spec,
        "ingress_path": default_ingress_path(name) if isinstance(name, str) else "",
        "created_at": now,
        "updated_at": now,
        "region_status": {},
    }
    labels = {**(document.get("labels") or {}), **dict(args.labels)}
    if labels:
        item["labels"] = labels
    item["created_by"] = os.environ.get("USER") or "cli"
    problems = validate_item(item)
    if problems:
        raise BadInput("\n".join(problems))
    return item


def _spec_changes(
    args: argparse.Namespace, spec: Mapping[str, Any], *, creating: bool
) -> dict[str, Any]:
    """Spec fields the flags change, merged with `spec` where a flag edits part of a map."""
    changes: dict[str, Any] = {}
    for flag, key in (
        ("image", "image"),
        ("replicas", "replicas"),
        ("port", "port"),
        ("gpu_count", "gpu_count"),
        ("accelerator", "accelerator"),
        ("health_check_path", "health_check_path"),
        ("model_path", "model_path"),
        ("model_source", "model_source"),
        ("capacity_type", "capacity_type"),
    ):
        value = getattr(args, flag)
        if value is not None:
            changes[key] = value
    if creating and changes.get("accelerator") == "nvidia":
        del changes["accelerator"]  # the predecessor omits the default accelerator
    if args.container_command is not None:
        changes["command"] = list(args.container_command)
    if args.container_args is not None:
        changes["args"] = list(args.container_args)
    unset_env = getattr(args, "unset_env", [])
    if args.env or unset_env:
        env = {**_map(spec.get("env")), **dict(args.env)}
        for key in unset_env:
            env.pop(key, None)
        changes["env"] = env or None
    if args.region_image:
        # A new primary image makes the old overrides stale (defect 2).
        kept = {} if args.image else _map(spec.get("region_image_uris"))
        changes["region_image_uris"] = {**kept, **dict(args.region_image)}
    if args.node_selector:
        changes["node_selector"] = {**_map(spec.get("node_selector")), **dict(args.node_selector)}
    resources = _resource_changes(args, spec.get("resources"))
    if resources is not None:
        changes["resources"] = resources
    autoscaling = _autoscaling_changes(args, spec.get("autoscaling"))
    if autoscaling is not None:
        changes["autoscaling"] = autoscaling
    return changes


def _resource_changes(args: argparse.Namespace, current: Any) -> dict[str, Any] | None:
    flags = {
        ("requests", "cpu"): args.cpu_request,
        ("requests", "memory"): args.memory_request,
        ("limits", "cpu"): args.cpu_limit,
        ("limits", "memory"): args.memory_limit,
    }
    if all(value is None for value in flags.values()):
        return None
    current = _map(current)
    # A section present in the item replaces the default section, so fill it whole.
    resources = {
        "requests": {**DEFAULT_REQUESTS, **_map(current.get("requests"))},
        "limits": {**DEFAULT_LIMITS, **_map(current.get("limits"))},
    }
    for (section, key), value in flags.items():
        if value is not None:
            resources[section][key] = value
    return resources


def _autoscaling_changes(args: argparse.Namespace, current: Any) -> dict[str, Any] | None:
    if (
        args.autoscaling is None
        and args.autoscaling_min is None
        and args.autoscaling_max is None
        and not args.autoscaling_metric
    ):
        return None
    autoscaling = {"enabled": False, "min_replicas": 1, "max_replicas": 10, **_map(current)}
    if args.autoscaling is not None:
        autoscaling["enabled"] = args.autoscaling
    if args.autoscaling_min is not None:
        autoscaling["min_replicas"] = args.autoscaling_min
    if args.autoscaling_max is not None:
        autoscaling["max_replicas"] = args.autoscaling_max
    if args.autoscaling_metric:
        autoscaling["metrics"] = [
            {"type": kind, "target": _int_flag("--autoscaling-metric target", target or "70")}
            for kind, target in args.autoscaling_metric
        ]
    autoscaling.setdefault("metrics", [{"type": "cpu", "target": 70}])
    return autoscaling


# -- small pieces ------------------------------------------------------------------


def _read(store: DynamoEndpointStore, name: str) -> LoadedItem:
    entry = store.get(name)
    if entry is None:
        raise errors.ItemNotFound(f"endpoint {name!r} not found")
    return entry


def read_spec_file(path: Path) -> dict[str, Any]:
    """The map in a JSON (by its `.json` suffix) or YAML file: a spec, or a whole item.

    Raises:
        BadInput: the file cannot be read or parsed, or holds no map.
    """
    try:
        text = path.read_text()
        document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as error:
        raise BadInput(f"cannot read {path}: {error}") from error
    if not isinstance(document, dict):
        raise BadInput(f"{path} must hold a map (a spec, or an item with a 'spec' key)")
    return document


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _pair_or_key(text: str) -> tuple[str, str]:
    key, _, value = text.partition("=")
    return key, value


def _int_flag(flag: str, text: str) -> int:
    try:
        return int(text)
    except ValueError as error:
        raise BadInput(f"{flag} must be an integer, got {text!r}") from error


def _map(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def _regions(raw: Mapping[str, Any]) -> list[str]:
    regions = raw.get("target_regions")
    return [str(r) for r in regions] if isinstance(regions, list) else []


def _compact(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _report_change(args: argparse.Namespace, message: str, updated_at: str) -> int:
    if args.json:
        _print_json({"endpoint_name": args.name, "updated_at": updated_at})
    else:
        print(message)
    return 0


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    return str(value)


def _print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def _fail(message: str, status: int) -> int:
    for line in message.splitlines() or [message]:
        print(f"{PROG}: {line}", file=sys.stderr)
    return status
