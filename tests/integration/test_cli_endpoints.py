"""`inference-supervisor endpoints` against a local DynamoDB, through the real CLI entry."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from actors.app.cli import main
from store.dynamo import DynamoEndpointStore
from store.model import RegionStatus
from tests.integration.harness import CliResult

PREFIX = "inference-supervisor endpoints: "
IMAGE = "vllm/vllm-openai:v0.8.0"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")


def create_llama(cli: Callable[..., CliResult], *extra: str) -> None:
    result = cli("create", "llama3", "--image", IMAGE, "--region", "us-east-1", *extra)
    assert (result.status, result.err) == (0, "")


def test_create_writes_the_predecessor_item_format(cli: Callable[..., CliResult]) -> None:
    result = cli(
        "create", "llama3", "--image", IMAGE, "--region", "us-east-1", "--region", "eu-west-1",
        "--env", "MODEL=llama3", "--label", "team=ml",
    )  # fmt: skip
    assert (result.status, result.out, result.err) == (
        0,
        "created endpoint 'llama3' for us-east-1, eu-west-1\n",
        "",
    )
    item = cli("show", "llama3", "--json").json()
    assert TIMESTAMP.match(item.pop("created_at"))
    assert TIMESTAMP.match(item.pop("updated_at"))
    assert item == {
        "endpoint_name": "llama3",
        "desired_state": "deploying",
        "target_regions": ["us-east-1", "eu-west-1"],
        "namespace": "gco-inference",
        "spec": {
            "image": IMAGE,
            "port": 8000,
            "replicas": 1,
            "gpu_count": 1,
            "health_check_path": "/health",
            "env": {"MODEL": "llama3"},
        },
        "ingress_path": "/inference/llama3",
        "region_status": {},
        "labels": {"team": "ml"},
        "created_by": "alice",
    }


def test_list_shows_a_table_and_json(cli: Callable[..., CliResult]) -> None:
    create_llama(cli)
    cli("create", "mistral", "--image", "mistral/server:1", "--region", "eu-west-1")
    cli("stop", "mistral")
    lines = cli("list").out.splitlines()
    assert lines[0].split() == ["NAME", "STATE", "REGIONS", "IMAGE", "REPLICAS", "UPDATED"]
    assert [line.split()[:5] for line in lines[1:]] == [
        ["llama3", "deploying", "us-east-1:-", IMAGE, "1"],
        ["mistral", "stopped", "eu-west-1:-", "mistral/server:1", "1"],
    ]
    assert [item["endpoint_name"] for item in cli("list", "--json").json()] == [
        "llama3",
        "mistral",
    ]
    assert [
        item["endpoint_name"] for item in cli("list", "--state", "stopped", "--json").json()
    ] == ["mistral"]


def test_show_reports_status_per_region(
    cli: Callable[..., CliResult], store: DynamoEndpointStore
) -> None:
    create_llama(cli, "--region", "eu-west-1")
    store.write_region_status("llama3", "us-east-1", RegionStatus("running", 1, 1, "t1"))
    store.write_region_status(
        "llama3", "eu-west-1", RegionStatus("error", 0, 1, "t2", error="ImagePullBackOff")
    )
    out = cli("show", "llama3").out
    assert "desired_state:     deploying" in out
    assert f"image:             {IMAGE}" in out
    table = out.split("\n\n")[1].splitlines()
    assert [row.split() for row in table] == [
        ["REGION", "STATE", "READY", "LAST", "SYNC", "ERROR"],
        ["eu-west-1", "error", "0/1", "t2", "ImagePullBackOff"],
        ["us-east-1", "running", "1/1", "t1"],
    ]


def test_update_changes_only_the_given_fields(cli: Callable[..., CliResult]) -> None:
    create_llama(cli, "--env", "A=1", "--env", "B=2")
    result = cli(
        "update", "llama3", "--replicas", "3", "--env", "C=3", "--unset-env", "A",
        "--cpu-request", "2", "--autoscaling", "--autoscaling-max", "4",
        "--autoscaling-metric", "memory=80",
    )  # fmt: skip
    assert (result.status, result.out) == (0, "updated endpoint 'llama3'\n")
    spec = cli("show", "llama3", "--json").json()["spec"]
    assert spec == {
        "image": IMAGE,
        "port": 8000,
        "replicas": 3,
        "gpu_count": 1,
        "health_check_path": "/health",
        "env": {"B": "2", "C": "3"},
        "resources": {
            "requests": {"cpu": "2", "memory": "4Gi"},
            "limits": {"cpu": "4", "memory": "16Gi"},
        },
        "autoscaling": {
            "enabled": True,
            "min_replicas": 1,
            "max_replicas": 4,
            "metrics": [{"type": "memory", "target": 80}],
        },
    }


def test_update_image_drops_region_overrides(cli: Callable[..., CliResult]) -> None:
    create_llama(cli, "--region-image", "us-east-1=registry.example.com/llm:1")
    assert cli("update", "llama3", "--image", "vllm/vllm-openai:v0.9.0").status == 0
    spec = cli("show", "llama3", "--json").json()["spec"]
    assert spec["image"] == "vllm/vllm-openai:v0.9.0"
    assert "region_image_uris" not in spec


def test_stop_start_delete(cli: Callable[..., CliResult]) -> None:
    create_llama(cli)
    states = []
    for action in ("stop", "start", "delete"):
        result = cli(action, "llama3")
        assert result.status == 0, result.err
        states.append(cli("show", "llama3", "--json").json()["desired_state"])
    assert states == ["stopped", "running", "deleted"]
    result = cli("start", "llama3")
    assert (result.status, result.err) == (
        1,
        f"{PREFIX}endpoint 'llama3' is being deleted; it cannot become running\n",
    )


def test_update_of_a_stopped_endpoint_keeps_it_stopped(cli: Callable[..., CliResult]) -> None:
    create_llama(cli)
    cli("stop", "llama3")
    assert cli("update", "llama3", "--replicas", "2").status == 0
    assert cli("show", "llama3", "--json").json()["desired_state"] == "stopped"


def test_canary_promote_rollback(cli: Callable[..., CliResult]) -> None:
    create_llama(cli)
    result = cli("canary", "llama3", "--image", "vllm/vllm-openai:v0.9.0", "--weight", "20")
    assert (result.status, result.out) == (
        0,
        "canary of 'llama3': vllm/vllm-openai:v0.9.0 takes 20% of traffic\n",
    )
    assert cli("show", "llama3", "--json").json()["spec"]["canary"] == {
        "image": "vllm/vllm-openai:v0.9.0",
        "weight": 20,
        "replicas": 1,
    }
    assert cli("promote", "llama3").status == 0
    spec = cli("show", "llama3", "--json").json()["spec"]
    assert (spec["image"], "canary" in spec) == ("vllm/vllm-openai:v0.9.0", False)
    cli("canary", "llama3", "--image", "vllm/vllm-openai:v1.0.0", "--weight", "5")
    assert cli("rollback", "llama3").status == 0
    spec = cli("show", "llama3", "--json").json()["spec"]
    assert (spec["image"], "canary" in spec) == ("vllm/vllm-openai:v0.9.0", False)
    result = cli("promote", "llama3")
    assert (result.status, result.err) == (
        1,
        f"{PREFIX}endpoint 'llama3' has no canary to promote\n",
    )


def test_promote_of_a_stopped_endpoint_is_refused(cli: Callable[..., CliResult]) -> None:
    create_llama(cli)
    cli("canary", "llama3", "--image", "vllm/vllm-openai:v0.9.0", "--weight", "20")
    cli("stop", "llama3")
    result = cli("promote", "llama3")
    assert (result.status, result.err) == (
        1,
        f"{PREFIX}endpoint 'llama3' is stopped; not promoting\n",
    )
    assert cli("show", "llama3", "--json").json()["spec"]["image"] == IMAGE


def test_json_output_of_a_change(cli: Callable[..., CliResult]) -> None:
    create_llama(cli)
    answer = cli("stop", "llama3", "--json").json()
    assert answer["endpoint_name"] == "llama3"
    assert answer["updated_at"] == cli("show", "llama3", "--json").json()["updated_at"]


@pytest.mark.parametrize(
    "suffix", [pytest.param(".yaml", id="yaml"), pytest.param(".json", id="json")]
)
def test_create_from_a_file_keeps_fields_we_do_not_model(
    cli: Callable[..., CliResult], tmp_path: Path, suffix: str
) -> None:
    document = {
        "endpoint_name": "llama3",
        "target_regions": ["us-east-1"],
        "spec": {"image": IMAGE, "replicas": 2, "gpu_type": "g5.xlarge"},
    }
    path = tmp_path / f"spec{suffix}"
    path.write_text(json.dumps(document))  # JSON is valid YAML too
    result = cli("create", "--file", str(path), "--replicas", "3")
    assert result.status == 0, result.err
    spec = cli("show", "llama3", "--json").json()["spec"]
    assert (spec["replicas"], spec["gpu_type"], spec["port"]) == (3, "g5.xlarge", 8000)


def test_create_makes_the_local_table_when_missing(
    dynamo_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    table = "t-created-by-cli"
    argv = ["--endpoint-url", dynamo_url, "--table", table]
    assert main(["endpoints", "create", "llama3", "--image", IMAGE, "--region", "r1", *argv]) == 0
    assert main(["endpoints", "list", "--json", *argv]) == 0
    assert [i["endpoint_name"] for i in json.loads(capsys.readouterr().out.split("\n", 1)[1])] == [
        "llama3"
    ]


def test_missing_table_is_one_line(dynamo_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["endpoints", "list", "--endpoint-url", dynamo_url, "--table", "no-such-table"])
    assert (status, capsys.readouterr().err) == (
        1,
        f"{PREFIX}table no-such-table does not exist\n",
    )


def test_not_found_and_already_exists(cli: Callable[..., CliResult]) -> None:
    assert cli("show", "ghost").err == f"{PREFIX}endpoint 'ghost' not found\n"
    assert cli("stop", "ghost").status == 1
    create_llama(cli)
    result = cli("create", "llama3", "--image", "other/image:1", "--region", "us-east-1")
    assert (result.status, result.err) == (1, f"{PREFIX}endpoint 'llama3' already exists\n")
    assert cli("show", "llama3", "--json").json()["spec"]["image"] == IMAGE


CREATE = ("create", "llama3", "--region", "us-east-1")


@pytest.mark.parametrize(
    ("message", "argv"),
    [
        pytest.param(
            "endpoint_name must be a DNS-1035 label (lowercase letters, digits and '-', "
            "starting with a letter, ending with a letter or digit), got 'Llama_3'",
            ("create", "Llama_3", "--image", IMAGE, "--region", "us-east-1"),
            id="name-dns-1035",
        ),
        pytest.param(
            "endpoint_name must be at most 63 characters (a DNS-1035 label), got 64",
            ("create", "a" * 64, "--image", IMAGE, "--region", "us-east-1"),
            id="name-length",
        ),
        pytest.param("spec.image is required", CREATE, id="image-required"),
        pytest.param(
            "spec.image must be a valid image reference, got 'vllm openai'",
            (*CREATE, "--image", "vllm openai"),
            id="image-reference",
        ),
        pytest.param(
            "spec.replicas must be between 0 and 1000, got 5000",
            (*CREATE, "--image", IMAGE, "--replicas", "5000"),
            id="replicas-high",
        ),
        pytest.param(
            "spec.replicas must be between 0 and 1000, got -1",
            (*CREATE, "--image", IMAGE, "--replicas=-1"),
            id="replicas-negative",
        ),
        pytest.param(
            "spec.port must be between 1 and 65535, got 0",
            (*CREATE, "--image", IMAGE, "--port", "0"),
            id="port-zero",
        ),
        pytest.param(
            "spec.port must be between 1 and 65535, got 65536",
            (*CREATE, "--image", IMAGE, "--port", "65536"),
            id="port-high",
        ),
        pytest.param(
            "spec.gpu_count must be at least 0, got -1",
            (*CREATE, "--image", IMAGE, "--gpu-count=-1"),
            id="gpu-count",
        ),
        pytest.param(
            "spec.accelerator must be one of nvidia, neuron, got 'amd'",
            (*CREATE, "--image", IMAGE, "--accelerator", "amd"),
            id="accelerator",
        ),
        pytest.param(
            "spec.capacity_type must be one of spot, on-demand, got 'reserved'",
            (*CREATE, "--image", IMAGE, "--capacity-type", "reserved"),
            id="capacity-type",
        ),
        pytest.param(
            "spec.health_check_path must start with '/', got 'health'",
            (*CREATE, "--image", IMAGE, "--health-check-path", "health"),
            id="health-check-path",
        ),
        pytest.param(
            "spec.env key '1BAD' is not a valid environment variable name",
            (*CREATE, "--image", IMAGE, "--env", "1BAD=x"),
            id="env-name",
        ),
        pytest.param(
            "spec.resources.requests.cpu must be a Kubernetes quantity, got 'lots'",
            (*CREATE, "--image", IMAGE, "--cpu-request", "lots"),
            id="resources",
        ),
        pytest.param(
            "spec.model_source must name an S3 bucket, like s3://bucket or s3://bucket/path, "
            "got 's3://'",
            (*CREATE, "--image", IMAGE, "--model-source", "s3://"),
            id="model-source",
        ),
        pytest.param(
            "spec.autoscaling.min_replicas must be at most max_replicas, got min 5 > max 2",
            (
                *CREATE,
                "--image",
                IMAGE,
                "--autoscaling",
                "--autoscaling-min",
                "5",
                "--autoscaling-max",
                "2",
            ),
            id="autoscaling-min-above-max",
        ),
        pytest.param(
            "spec.autoscaling.min_replicas must be between 1 and 1000, got 0",
            (*CREATE, "--image", IMAGE, "--autoscaling", "--autoscaling-min", "0"),
            id="autoscaling-min-zero",
        ),
        pytest.param(
            "spec.autoscaling.metrics[0].type must be one of cpu, memory, gpu, got 'rps'",
            (*CREATE, "--image", IMAGE, "--autoscaling", "--autoscaling-metric", "rps=50"),
            id="metric-type",
        ),
        pytest.param(
            "spec.autoscaling.metrics[0].target must be at least 1, got 0",
            (*CREATE, "--image", IMAGE, "--autoscaling", "--autoscaling-metric", "cpu=0"),
            id="metric-target",
        ),
        pytest.param(
            "namespace must be a DNS-1123 label, got 'Team_NS'",
            (*CREATE, "--image", IMAGE, "--namespace", "Team_NS"),
            id="namespace",
        ),
        pytest.param(
            "target_regions is required: give --region (repeatable)",
            ("create", "llama3", "--image", IMAGE),
            id="no-region",
        ),
    ],
)
def test_create_refuses_bad_input_with_one_line_and_writes_nothing(
    cli: Callable[..., CliResult], message: str, argv: tuple[str, ...]
) -> None:
    result = cli(*argv)
    assert (result.status, result.err, result.out) == (2, f"{PREFIX}{message}\n", "")
    assert cli("list", "--json").json() == []


@pytest.mark.parametrize(
    ("message", "document"),
    [
        pytest.param(
            "target_regions must be a list or a string set of region names, got 'us-east-1'",
            {"spec": {"image": IMAGE}, "target_regions": "us-east-1"},
            id="target-regions-not-a-list",
        ),
        pytest.param(
            "spec.env.WORKERS must be a string, number or boolean, got None",
            {"image": IMAGE, "env": {"WORKERS": None}},
            id="env-value-not-a-string",
        ),
        pytest.param(
            "spec.canary.weight must be between 1 and 99, got 0",
            {"image": IMAGE, "canary": {"image": IMAGE, "weight": 0}},
            id="canary-weight-in-file",
        ),
    ],
)
def test_create_from_file_refuses_bad_input(
    cli: Callable[..., CliResult], tmp_path: Path, message: str, document: dict[str, Any]
) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(json.dumps(document))
    regions = () if "target_regions" in document else ("--region", "us-east-1")
    result = cli("create", "llama3", "--file", str(path), *regions)
    assert (result.status, result.err) == (2, f"{PREFIX}{message}\n")
    assert cli("list", "--json").json() == []


@pytest.mark.parametrize(
    ("message", "argv"),
    [
        pytest.param(
            "spec.canary.weight must be between 1 and 99, got 0",
            ("canary", "llama3", "--image", "vllm/vllm-openai:v0.9.0", "--weight", "0"),
            id="canary-weight-zero",
        ),
        pytest.param(
            "spec.canary.weight must be between 1 and 99, got 100",
            ("canary", "llama3", "--image", "vllm/vllm-openai:v0.9.0", "--weight", "100"),
            id="canary-weight-100",
        ),
        pytest.param(
            "spec.canary.image must be a valid image reference, got 'Not An Image'",
            ("canary", "llama3", "--image", "Not An Image", "--weight", "10"),
            id="canary-image",
        ),
        pytest.param(
            "spec.replicas must be between 0 and 1000, got 5000",
            ("update", "llama3", "--replicas", "5000"),
            id="update-replicas",
        ),
        pytest.param(
            "spec.autoscaling.min_replicas must be at most max_replicas, got min 20 > max 10",
            ("update", "llama3", "--autoscaling-min", "20"),
            id="update-autoscaling-min-above-default-max",
        ),
        pytest.param(
            "nothing to update: give at least one flag (see --help)",
            ("update", "llama3"),
            id="update-without-changes",
        ),
    ],
)
def test_changes_refuse_bad_input_and_leave_the_item_unchanged(
    cli: Callable[..., CliResult], message: str, argv: tuple[str, ...]
) -> None:
    create_llama(cli)
    before = cli("show", "llama3", "--json").json()
    result = cli(*argv)
    assert (result.status, result.err) == (2, f"{PREFIX}{message}\n")
    assert cli("show", "llama3", "--json").json() == before


def test_create_and_canary_refuse_a_name_collision_and_write_nothing(
    cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    """Endpoint `x-canary` and endpoint `x`'s canary would share the Deployment and Service
    `x-canary` (architecture section 3): each side of the collision is refused, naming the other."""
    assert cli("create", "x", "--image", IMAGE, "--region", "us-east-1").status == 0
    before = cli("list", "--json").json()
    result = cli("create", "x-canary", "--image", IMAGE, "--region", "us-east-1")
    assert (result.status, result.out, result.err) == (
        2,
        "",
        f"{PREFIX}endpoint 'x-canary' would share the Deployment and Service 'x-canary' "
        "with the canary of endpoint 'x'; choose another name\n",
    )
    assert cli("list", "--json").json() == before

    assert cli("create", "y-canary", "--image", IMAGE, "--region", "us-east-1").status == 0
    before = cli("list", "--json").json()
    refused = (
        f"{PREFIX}the canary of 'y' needs the Deployment and Service 'y-canary', which "
        "endpoint 'y-canary' has; rename or delete that endpoint first\n"
    )
    spec = tmp_path / "y.json"
    spec.write_text(json.dumps({"image": IMAGE, "canary": {"image": IMAGE, "weight": 10}}))
    result = cli("create", "y", "--file", str(spec), "--region", "us-east-1")
    assert (result.status, result.out, result.err) == (2, "", refused)
    assert cli("list", "--json").json() == before

    assert cli("create", "y", "--image", IMAGE, "--region", "us-east-1").status == 0
    before = cli("list", "--json").json()
    result = cli("canary", "y", "--image", "vllm/vllm-openai:v0.9.0")
    assert (result.status, result.out, result.err) == (2, "", refused)
    assert cli("list", "--json").json() == before


def test_restart_asks_every_region_to_roll_the_pods_once(
    cli: Callable[..., CliResult], store: DynamoEndpointStore
) -> None:
    create_llama(cli)
    result = cli("restart", "llama3")
    assert (result.status, result.out, result.err) == (
        0,
        "restart requested for 'llama3'; pods roll once in each target region\n",
        "",
    )
    first = store.get("llama3").raw["restart_requested_at"]
    assert cli("restart", "llama3").status == 0
    assert store.get("llama3").raw["restart_requested_at"] > first
    cli("delete", "llama3")
    result = cli("restart", "llama3")
    assert (result.status, result.err) == (
        1,
        f"{PREFIX}endpoint 'llama3' is being deleted; nothing to restart\n",
    )


ECR_EAST = "123456789012.dkr.ecr.us-east-1.amazonaws.com/llm:1"


def ecr(region: str, tag: str = "1") -> str:
    return f"123456789012.dkr.ecr.{region}.amazonaws.com/llm:{tag}"


def test_create_rewrites_an_ecr_image_for_each_target_region(cli: Callable[..., CliResult]) -> None:
    result = cli("create", "llama3", "--image", ECR_EAST, "--region", "us-east-1",
                 "--region", "eu-west-1")  # fmt: skip
    assert result.status == 0
    assert cli("show", "llama3", "--json").json()["spec"]["region_image_uris"] == {
        "us-east-1": ECR_EAST,
        "eu-west-1": ecr("eu-west-1"),
    }


def test_update_of_an_ecr_image_rewrites_it_per_region(cli: Callable[..., CliResult]) -> None:
    cli("create", "llama3", "--image", ECR_EAST, "--region", "us-east-1", "--region", "eu-west-1")
    assert cli("update", "llama3", "--image", ecr("us-east-1", "2")).status == 0
    assert cli("show", "llama3", "--json").json()["spec"]["region_image_uris"] == {
        "us-east-1": ecr("us-east-1", "2"),
        "eu-west-1": ecr("eu-west-1", "2"),
    }


def test_add_region_and_remove_region(cli: Callable[..., CliResult]) -> None:
    cli("create", "llama3", "--image", ECR_EAST, "--region", "us-east-1")
    result = cli("add-region", "llama3", "eu-west-1")
    assert (result.status, result.out, result.err) == (
        0,
        "eu-west-1 added to endpoint 'llama3'\n",
        "",
    )
    item = cli("show", "llama3", "--json").json()
    assert item["target_regions"] == ["us-east-1", "eu-west-1"]
    assert item["spec"]["region_image_uris"] == {
        "us-east-1": ECR_EAST,
        "eu-west-1": ecr("eu-west-1"),
    }
    assert cli("remove-region", "llama3", "us-east-1").status == 0
    item = cli("show", "llama3", "--json").json()
    assert item["target_regions"] == ["eu-west-1"]
    assert item["spec"]["region_image_uris"] == {"eu-west-1": ecr("eu-west-1")}
    result = cli("remove-region", "llama3", "eu-west-1")
    assert (result.status, result.err) == (
        1,
        f"{PREFIX}eu-west-1 is the last region of endpoint 'llama3'; delete the endpoint instead\n",
    )


def test_an_autoscaling_metric_alone_enables_autoscaling(cli: Callable[..., CliResult]) -> None:
    create_llama(cli, "--autoscaling-metric", "cpu=60")
    assert cli("show", "llama3", "--json").json()["spec"]["autoscaling"] == {
        "enabled": True,
        "min_replicas": 1,
        "max_replicas": 10,
        "metrics": [{"type": "cpu", "target": 60}],
    }


def test_autoscaling_metric_help_names_cpu_memory_and_gpu(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["endpoints", "create", "--help"])
    assert "cpu, memory or gpu" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(
    ("message", "argv"),
    [
        pytest.param("--replicas: must be an integer, got 'three'", ("--replicas", "three"),
                     id="replicas-word"),
        pytest.param("--replicas: must be an integer, got '1.5'", ("--replicas", "1.5"),
                     id="replicas-fraction"),
        pytest.param("--env: expected KEY=VALUE, got 'NOEQUALS'", ("--env", "NOEQUALS"),
                     id="env-no-equals"),
        pytest.param(
            "labels: 'bad key' is not a Kubernetes label key ([prefix/]name: letters, digits, "
            "'-', '_', '.', at most 63, starting and ending alphanumeric)",
            ("--label", "bad key=a b"),
            id="label-key",
        ),
    ],
)  # fmt: skip
def test_bad_flags_are_one_line_and_write_nothing(
    cli: Callable[..., CliResult], store: DynamoEndpointStore, message: str, argv: tuple[str, ...]
) -> None:
    result = cli("create", "llama3", "--image", IMAGE, "--region", "us-east-1", *argv)
    assert (result.status, result.err, result.out) == (2, f"{PREFIX}{message}\n", "")
    assert store.get("llama3") is None


@pytest.mark.parametrize(
    ("message", "text"),
    [
        pytest.param(
            "{path}: spec must be a map, got 'notamap'",
            "endpoint_name: llama3\nspec: notamap\n",
            id="spec-not-a-map",
        ),
        pytest.param(
            "cannot read {path}: line 2, column 7: mapping values are not allowed here",
            "spec:\n  a: b: c\n",
            id="yaml-syntax",
        ),
    ],
)
def test_bad_files_are_one_line_and_write_nothing(
    cli: Callable[..., CliResult],
    store: DynamoEndpointStore,
    tmp_path: Path,
    message: str,
    text: str,
) -> None:
    path = tmp_path / "llama3.yaml"
    path.write_text(text)
    result = cli("create", "llama3", "--file", str(path), "--region", "us-east-1")
    assert (result.status, result.err, result.out) == (
        2,
        f"{PREFIX}{message.format(path=path)}\n",
        "",
    )
    assert store.get("llama3") is None
