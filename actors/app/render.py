"""`inference-supervisor render`: print, as YAML, the objects the daemon would apply for
one endpoint in one region - the operator's dry run. Nothing is written anywhere.

    inference-supervisor render m1 --region us-east-1            # item from the table
    inference-supervisor render --file m1.yaml --region us-east-1  # item or spec from a file
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from actors.app.cli import UsageError
from actors.app.config import table_region
from actors.app.endpoints import BadInput, read_spec_file
from actors.desired import workload_for
from k8s.manifests import ManifestError, build_objects
from store.dynamo import DynamoEndpointStore
from store.errors import InvalidEndpoint, StoreError
from store.model import parse_endpoint


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="endpoint name (read from the table)")
    parser.add_argument("--file", type=Path, help="a JSON/YAML item or spec instead of the table")
    parser.add_argument(
        "--region", default=os.environ.get("REGION"), help="region to render for (default $REGION)"
    )
    parser.add_argument(
        "--table",
        default=os.environ.get("INFERENCE_ENDPOINTS_TABLE_NAME", "gco-inference-endpoints"),
    )
    parser.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"))
    parser.add_argument(
        "--aws-region",
        default=table_region(os.environ, os.environ.get("REGION")),
        help="AWS region of the table (default: DYNAMODB_REGION, else REGION, else AWS_REGION, "
        "else AWS_DEFAULT_REGION, else us-east-1)",
    )


def run(args: argparse.Namespace) -> int:
    """Print the endpoint's objects as a multi-document YAML stream; exit 2 on bad input."""
    if not args.region:
        raise UsageError("--region (or REGION) is required")
    if (args.name is None) == (args.file is None):
        raise UsageError("give either an endpoint NAME or --file PATH")
    item = _from_file(args.file, args.name) if args.file else _from_table(args)
    try:
        endpoint = parse_endpoint(item)
        objects = build_objects(workload_for(endpoint, args.region))
    except (InvalidEndpoint, ManifestError) as error:
        raise UsageError(str(error).replace("\n", "; ")) from error
    yaml.safe_dump_all(objects, sys.stdout, sort_keys=False)
    return 0


def _from_table(args: argparse.Namespace) -> dict[str, Any]:
    with DynamoEndpointStore(
        args.table, region_name=args.aws_region, endpoint_url=args.endpoint_url
    ) as store:
        try:
            loaded = store.get(args.name)
        except StoreError as error:
            raise UsageError(f"cannot read {args.name} from {args.table}: {error}") from error
    if loaded is None:
        raise UsageError(f"no endpoint named {args.name!r} in {args.table}")
    return loaded.raw


def _from_file(path: Path, name: str | None) -> dict[str, Any]:
    try:
        document = read_spec_file(path)
    except BadInput as error:
        raise UsageError(str(error)) from error
    if "spec" in document:
        return document
    endpoint_name = name or path.stem
    return {
        "endpoint_name": endpoint_name,
        "desired_state": "running",
        "target_regions": [],
        "spec": document,
    }
