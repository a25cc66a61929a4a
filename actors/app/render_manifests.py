"""`inference-supervisor render-manifests`: print the daemon's own Kubernetes manifests.

    inference-supervisor render-manifests --image IMG --region R | kubectl apply -f -

The output is one multi-document YAML stream (Namespace, ServiceAccount, Role,
RoleBinding, Deployment, PodDisruptionBudget, metrics Service; with `--namespaces`,
each further served namespace and a Role and RoleBinding in it), built by
`k8s.daemon_objects` so what is applied is what the tests validate.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TextIO

import yaml

from actors.app.cli import UsageError
from k8s.daemon_objects import DEFAULT_MEMORY_LIMIT, build_daemon_objects


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `render-manifests` flags to `parser`."""
    parser.add_argument("--image", required=True, help="the daemon's image reference")
    parser.add_argument("--region", required=True, help="the region this cluster serves (REGION)")
    parser.add_argument(
        "--cluster-name",
        default=os.environ.get("CLUSTER_NAME") or "unknown-cluster",
        help="this cluster's name (default $CLUSTER_NAME, else unknown-cluster)",
    )
    parser.add_argument(
        "--namespace", default="gco-inference", help="namespace (default gco-inference)"
    )
    parser.add_argument(
        "--namespaces",
        default="",
        metavar="NS[,NS...]",
        help="further namespaces whose endpoints the daemon serves (INFERENCE_NAMESPACES): "
        "each gets its Namespace, Role and RoleBinding (default: none)",
    )
    parser.add_argument(
        "--table",
        default="gco-inference-endpoints",
        help="endpoints table (default gco-inference-endpoints)",
    )
    parser.add_argument("--replicas", type=int, default=2, help="daemon pods (default 2)")
    parser.add_argument(
        "--memory-limit",
        default=DEFAULT_MEMORY_LIMIT,
        help=f"container memory limit (default {DEFAULT_MEMORY_LIMIT}; ~100 KiB per endpoint)",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment variable for the daemon, e.g. DYNAMODB_REGION=us-east-1 "
        "(repeatable)",
    )


def _parse_env(pairs: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--env must be NAME=VALUE, got {pair!r}")
        env[name] = value
    return env


def run(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """Print the manifests as a multi-document YAML stream; returns 0.

    Raises:
        UsageError: a flag value the builder rejects (exit status 2).
    """
    try:
        manifests = build_daemon_objects(
            image=args.image,
            region=args.region,
            cluster_name=args.cluster_name,
            namespace=args.namespace,
            namespaces=[name.strip() for name in args.namespaces.split(",") if name.strip()],
            table_name=args.table,
            replicas=args.replicas,
            memory_limit=args.memory_limit,
            extra_env=_parse_env(args.env),
        )
    except ValueError as error:
        raise UsageError(str(error)) from error
    sink = sys.stdout if out is None else out
    sink.write(yaml.safe_dump_all(manifests, sort_keys=False, explicit_start=True))
    return 0
