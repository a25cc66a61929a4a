"""`inference-supervisor endpoints`: create, list, show, update, stop, start, delete,
canary, promote and rollback endpoints in the table, and see and steer a guarded
rollout (`rollout status|pause|resume|abort`, architecture section 12).

Writes the predecessor's item format. Every change is validated first (bad input:
one line per problem on stderr, exit status 2, nothing written) and is conditional
on the item not having changed since it was read (a lost race: exit status 1,
nothing overwritten). `--json` prints machine-readable output.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn

import yaml

from actors.app.alarm_names import unknown_alarms
from actors.app.config import table_region
from actors.app.live_view import LiveView
from actors.app.rollout_status import DEFAULT_SILENCE, RolloutView, duration
from actors.app.rollout_status import HEADER as ROLLOUT_HEADER
from k8s.naming import base_of_canary, canary_name
from store import commands, errors, rollout_commands
from store.dynamo import DynamoEndpointStore
from store.item import LoadedItem
from store.model import (
    DEFAULT_NAMESPACE,
    RegionStatus,
    default_ingress_path,
    parse_timestamp,
    utc_timestamp,
)
from store.spec_schema import (
    SPEC_FIELDS,
    FlagError,
    flag_changes,
    flags,
    integer,
    pair,
    region_image_uris,
)
from store.validation import DESIRED_STATES, read_regions, validate_new_item

PROG = "inference-supervisor endpoints"
DEFAULT_TABLE = "gco-inference-endpoints"
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
#: Seconds between two reads of the item by `rollout status --watch`.
WATCH_INTERVAL_SECONDS = 1.0


class BadInput(Exception):
    """Input the command refuses; each line of the message is one problem."""


class OneLineParser(argparse.ArgumentParser):
    """A parser whose usage errors (a bad flag value, a missing argument) are one line on
    stderr and exit status 2, not the whole usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: {message} (see --help)\n")


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
    sub = parser.add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=OneLineParser
    )

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
    create.add_argument(
        "--label",
        dest="labels",
        action="append",
        type=_flag_type(pair),
        default=[],
        metavar="KEY=VALUE",
        help="item label (repeatable; the key must be a Kubernetes label key)",
    )
    _add_spec_flags(create, creating=True)
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
    _add_spec_flags(update, creating=False)
    update.set_defaults(command=_update)

    for action, rule, summary in (
        ("add-region", commands.add_region, "serve an endpoint in one more region"),
        ("remove-region", commands.remove_region, "stop serving an endpoint in one region"),
    ):
        command = sub.add_parser(action, parents=[common], help=summary)
        command.add_argument("name")
        command.add_argument("region")
        command.set_defaults(command=_region_command(rule, action))

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
    canary.add_argument(
        "--weight", type=_flag_type(integer), default=10, help="percent of traffic, 1-99 (10)"
    )
    canary.add_argument(
        "--replicas", type=_flag_type(integer), default=1, help="canary replicas (1)"
    )
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

    retire = sub.add_parser(
        "retire-cluster",
        parents=[common],
        help="take a cluster out of a region it shared (its status entries go, so deletes "
        "it held back can finish); stop its daemon first",
    )
    retire.add_argument("cluster", help="the cluster's CLUSTER_NAME")
    retire.add_argument("--region", required=True, help="the region the cluster served")
    retire.add_argument(
        "--force",
        action="store_true",
        help="retire it even though it reported recently (its daemon may still run)",
    )
    retire.set_defaults(command=_retire_cluster)

    rollout = sub.add_parser(
        "rollout", help="see and steer a guarded rollout (waves of regions, canary steps)"
    )
    verbs = rollout.add_subparsers(
        dest="rollout_action", metavar="VERB", required=True, parser_class=OneLineParser
    )
    status = verbs.add_parser(
        "status", parents=[common], help="waves x regions: revision, phase, since, reason"
    )
    status.add_argument("name")
    status.add_argument(
        "--watch",
        action="store_true",
        help="follow changes until the rollout completes (exit 0) or is halted (exit 1)",
    )
    status.set_defaults(command=_rollout_status)
    for verb, summary in (
        ("pause", "hold every region at its current step"),
        ("resume", "continue a paused rollout"),
        ("abort", "halt the new revision as a failure does (rolls back with auto_rollback)"),
    ):
        command = verbs.add_parser(verb, parents=[common], help=summary)
        command.add_argument("name")
        command.set_defaults(command=_rollout_verb(verb))


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
    spec = item.get("spec")
    if isinstance(spec, dict):
        refused = unknown_alarms(spec.get("rollout"), list(item.get("target_regions") or ()))
        if refused:
            raise BadInput(refused)
    if store.endpoint_url:
        # A local table is created on first use; on AWS the table is infrastructure.
        store.create_table()
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
    for spec_field in SPEC_FIELDS:
        if spec_field.shown and spec_field.key != "image" and spec_field.key in spec:
            lines.append((spec_field.key, _compact(spec[spec_field.key])))
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
    now = time.time()
    for region in sorted(set(_regions(raw)) | set(entry.region_status)):
        status = entry.region_status.get(region)
        if status is None:
            rows.append((region, "-", "-", "-", ""))
            continue
        rows.append(_status_row(region, status, now=None))
        # Several clusters serve the region (a blue/green migration): one row each, under
        # the region's summary, a cluster that stopped reporting marked silent.
        shared = entry.cluster_status(region)
        if len(shared) > 1:
            rows += [_status_row(f"  {region}/{c}", s, now=now) for c, s in sorted(shared.items())]
    _print_table(rows)
    return 0


def _retire_cluster(store: DynamoEndpointStore, args: argparse.Namespace) -> int:
    """`retire-cluster`: refused while the cluster still reports (a live daemon would
    write its entries again), unless `--force`."""
    now = time.time()
    recent = sorted(
        loaded.name
        for loaded in store.scan()
        if (status := loaded.cluster_status(args.region).get(args.cluster)) is not None
        and (written := parse_timestamp(status.last_sync)) is not None
        and now - written <= DEFAULT_SILENCE
    )
    if recent and not args.force:
        raise BadInput(
            f"cluster {args.cluster} reported in {args.region} less than "
            f"{duration(DEFAULT_SILENCE)} ago ({', '.join(recent[:5])}): stop its daemon "
            "first, or pass --force"
        )
    removed = store.retire_cluster(args.region, args.cluster)
    if args.json:
        _print_json({"cluster": args.cluster, "region": args.region, "removed": removed})
    else:
        print(
            f"cluster {args.cluster} retired from {args.region}: "
            f"status removed from {len(removed)} endpoint(s)"
        )
    return 0


def _status_row(
    where: str, status: RegionStatus, *, now: float | None
) -> tuple[str, str, str, str, str]:
    """One row of `show`'s status table; with `now`, a status older than a live daemon's
    heartbeat allows is marked silent (a cluster whose daemon is down)."""
    state = status.state
    written = parse_timestamp(status.last_sync)
    if now is not None and written is not None and now - written > DEFAULT_SILENCE:
        state = f"{state}, silent {duration(now - written)}"
    ready = f"{status.replicas_ready}/{status.replicas_desired}"
    return (where, state, ready, status.last_sync, status.error or "")


def _update(store: DynamoEndpointStore, args: argparse.Namespace) -> int:
    entry = _read(store, args.name)
    spec = entry.raw.get("spec") if isinstance(entry.raw.get("spec"), dict) else {}
    changes = _spec_changes(args, spec)
    if not changes:
        raise BadInput("nothing to update: give at least one flag (see --help)")
    if isinstance(changes.get("rollout"), dict):
        refused = unknown_alarms(
            changes["rollout"], _regions(entry.raw), before=spec.get("rollout")
        )
        if refused:
            raise BadInput(refused)
    # With a rollout policy, the same write records the current spec as the completed
    # revision when none is (regions not yet due keep serving it).
    updated_at = store.apply(
        args.name, rollout_commands.update_and_seed, changes, expected_updated_at=entry.updated_at
    )
    return _report_change(args, f"updated endpoint {args.name!r}", updated_at)


def _state_command(state: str) -> Callable[[DynamoEndpointStore, argparse.Namespace], int]:
    def change_state(store: DynamoEndpointStore, args: argparse.Namespace) -> int:
        updated_at = store.apply(args.name, commands.set_desired_state, state)
        return _report_change(args, f"endpoint {args.name!r} is now {state}", updated_at)

    return change_state


def _region_command(
    rule: commands.Rule, action: str
) -> Callable[[DynamoEndpointStore, argparse.Namespace], int]:
    def change_regions(store: DynamoEndpointStore, args: argparse.Namespace) -> int:
        entry = _read(store, args.name)
        updated_at = store.apply(args.name, rule, args.region, expected_updated_at=entry.updated_at)
        done = "added to" if action == "add-region" else "removed from"
        return _report_change(args, f"{args.region} {done} endpoint {args.name!r}", updated_at)

    return change_regions


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


def _rollout_status(store: DynamoEndpointStore, args: argparse.Namespace) -> int:
    """Print the rollout once, or follow it with `--watch` (a LiveView: redrawn in place
    on a terminal, a line per change when piped; JSON: one document per change)."""
    if not args.watch:
        view = RolloutView.of(_read(store, args.name), time.time())
        if args.json:
            _print_json(view.to_json())
        else:
            print(view.title())
            _print_table([ROLLOUT_HEADER, *view.rows()])
        return 0
    live = sys.stdout.isatty() and not args.json
    out = None if args.json else LiveView(ROLLOUT_HEADER, live=live)
    last: Any = None
    wake = threading.Event()
    try:
        while True:
            # Elapsed bake times only where the table is redrawn: piped, time passing is
            # not a change worth a line.
            view = RolloutView.of(_read(store, args.name), time.time() if live else None)
            if out is None:
                document = view.to_json()
                if document != last:
                    print(json.dumps(document, sort_keys=True), flush=True)
                    last = document
            else:
                events = [view.title()] if view.title() != last else []
                last = view.title()
                out.update(f"rollout of {view.name}", view.rows(), events)
            if view.settled:
                return EXIT_FAILED if view.failed else 0
            wake.wait(WATCH_INTERVAL_SECONDS)
    finally:
        if out is not None:
            out.close()


def _rollout_verb(verb: str) -> Callable[[DynamoEndpointStore, argparse.Namespace], int]:
    def steer(store: DynamoEndpointStore, args: argparse.Namespace) -> int:
        if verb == "abort":
            who = f"{os.environ.get('USER') or 'someone'}@{socket.gethostname()}"
            updated_at = store.apply(args.name, rollout_commands.abort, who)
            message = f"aborted the rollout of {args.name!r} ({who})"
        else:
            updated_at = store.apply(args.name, rollout_commands.pause, verb == "pause")
            message = f"{verb}d the rollout of {args.name!r}"
        return _report_change(args, message, updated_at)

    return steer


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


def _add_spec_flags(parser: argparse.ArgumentParser, *, creating: bool) -> None:
    """Every spec field's flags, as `store.spec_schema` declares them."""
    for spec_field, flag in flags():
        if flag.update_only and creating:
            continue
        help_text = flag.help
        if not flag.repeat and flag.parse is not None and spec_field.written:
            help_text = f"{help_text} ({spec_field.default})"
        if flag.parse is None:
            parser.add_argument(
                flag.name, dest=flag.dest, action="store_const", const=flag.const, help=help_text
            )
        else:
            # Read as text and converted by `_given_flags`, so a bad value is one line
            # naming the flag (through `run`), like every other refusal.
            parser.add_argument(
                flag.name,
                dest=flag.dest,
                action="append" if flag.repeat else "store",
                metavar=flag.metavar,
                help=help_text,
            )


def _given_flags(args: argparse.Namespace) -> dict[str, Any]:
    """{flag name: value} of the spec flags given on the command line."""
    given = {}
    for _, flag in flags():
        value = getattr(args, flag.dest, None)
        if value is None or flag.parse is None:
            if value is not None:
                given[flag.name] = value
            continue
        try:
            given[flag.name] = [flag.parse(v) for v in value] if flag.repeat else flag.parse(value)
        except FlagError as error:
            raise BadInput(f"{flag.name}: {error}") from None
    return given


def _item_to_create(args: argparse.Namespace) -> dict[str, Any]:
    """The new item from --file and the flags (flags win), in the predecessor's format."""
    document = read_spec_file(args.file) if args.file else {}
    whole_item = "spec" in document
    if whole_item and not isinstance(document["spec"], dict):
        raise BadInput(f"{args.file}: spec must be a map, got {document['spec']!r}")
    spec = dict(document.get("spec") or {}) if whole_item else dict(document)
    name = args.name or document.get("endpoint_name")
    if not name:
        raise BadInput("endpoint_name is required (give NAME or endpoint_name in --file)")
    spec.update(_spec_changes(args, spec))
    # The predecessor's CLI always writes the `written` fields (image, port, replicas...).
    for spec_field in SPEC_FIELDS:
        if spec_field.written and spec_field.key != "image":
            spec.setdefault(spec_field.key, spec_field.dump(spec_field.default_value()))
    spec = {key: value for key, value in spec.items() if value is not None}
    regions = args.regions or document.get("target_regions")
    if regions is None and os.environ.get("REGION"):
        regions = [os.environ["REGION"]]
    if not regions:
        raise BadInput("target_regions is required: give --region (repeatable)")
    if isinstance(spec.get("image"), str) and isinstance(regions, list):
        # An ECR image is pulled from each region's own registry, as the predecessor's
        # CLI writes it; --region-image and the file's own overrides win.
        rewritten = region_image_uris(spec["image"], [str(r) for r in regions])
        given = spec.get("region_image_uris")
        overrides = {**rewritten, **(given if isinstance(given, dict) else {})}
        if overrides:
            spec["region_image_uris"] = overrides
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
    labels = document.get("labels")
    if isinstance(labels, dict) or labels is None:
        labels = {**(labels or {}), **dict(args.labels)}
    if labels:
        item["labels"] = labels  # not a map: validation says so
    item["created_by"] = os.environ.get("USER") or "cli"
    problems = validate_new_item(item)
    if problems:
        raise BadInput("\n".join(problems))
    return item


def _spec_changes(args: argparse.Namespace, spec: Mapping[str, Any]) -> dict[str, Any]:
    """Spec fields the flags change, merged with `spec` where a flag edits part of a map
    (None: remove the field)."""
    try:
        return flag_changes(_given_flags(args), spec)
    except FlagError as error:
        raise BadInput(str(error)) from None


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
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise BadInput(f"cannot read {path}: {where}{error.problem}") from error
    except (OSError, ValueError, yaml.YAMLError) as error:
        reason = " ".join(str(error).split())
        raise BadInput(f"cannot read {path}: {reason}") from error
    if not isinstance(document, dict):
        raise BadInput(f"{path} must hold a map (a spec, or an item with a 'spec' key)")
    return document


def _flag_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse `type` from a schema parser: its `FlagError` becomes argparse's one-line
    error naming the flag."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except FlagError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    convert.__name__ = parse.__name__
    return convert


def _map(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def _regions(raw: Mapping[str, Any]) -> list[str]:
    return list(read_regions(raw.get("target_regions")) or ())


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
