"""The `inference-supervisor` command line: one sub-command per module of `actors.app`.

Each command module exposes `add_arguments(parser)` and `run(args) -> int`; the
module is imported only when its command runs, so `endpoints list` does not
pay for the daemon's imports.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("run", "actors.app.run", "run the daemon (leader election, poller, one actor per endpoint)"),
    (
        "demo",
        "actors.app.demo",
        "run the daemon against a local table and cluster and show it work",
    ),
    (
        "endpoints",
        "actors.app.endpoints",
        "create, list, show, update, stop, start, delete endpoints",
    ),
    ("render", "actors.app.render", "print the objects the daemon would apply for an endpoint"),
    (
        "render-manifests",
        "actors.app.render_manifests",
        "print the daemon's own Kubernetes manifests",
    ),
    ("logs", "actors.app.logs", "read one endpoint's log stream"),
    (
        "local-dynamodb",
        "actors.app.local_dynamodb",
        "run a local DynamoDB (moto server) in the foreground",
    ),
    (
        "local-cluster",
        "actors.app.local_cluster",
        "run the local Kubernetes API server in the foreground",
    ),
)


class UsageError(Exception):
    """A bad flag or environment value: printed as one line, exit status 2."""


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inference-supervisor", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, module_name, summary in COMMANDS:
        command = sub.add_parser(name, help=summary, description=summary)
        # Only the chosen command's module is imported; the others show in --help.
        if name == wanted:
            module = importlib.import_module(module_name)
            module.add_arguments(command)
            command.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` and run the chosen command; returns the process exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(args_list)
    args = parser.parse_args(args_list)
    try:
        return int(args.handler(args) or 0)
    except UsageError as error:
        print(f"inference-supervisor {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `... | head`: the reader left; nothing more to say, and no traceback.
        sys.stdout = None  # type: ignore[assignment]
        return 141


if __name__ == "__main__":
    sys.exit(main())
