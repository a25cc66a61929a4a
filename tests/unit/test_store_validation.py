"""Validation of endpoint items (architecture section 8) and the model, on plain values."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

from store.convert import plain, to_dynamo
from store.errors import InvalidEndpoint
from store.item import content_hash, load_item
from store.model import (
    TRIMMED,
    TRIMMED_ERROR_CHARS,
    AutoscalingSpec,
    Canary,
    Endpoint,
    EndpointSpec,
    Metric,
    RegionStatus,
    Resources,
    parse_endpoint,
)
from store.validation import is_valid_image, read_regions, validate_item

# An item as the predecessor's CLI writes it, plus an attribute we do not know.
PREDECESSOR_ITEM: dict[str, Any] = {
    "endpoint_name": "llama3",
    "desired_state": "running",
    "target_regions": ["us-east-1", "eu-west-1"],
    "namespace": "gco-inference",
    "spec": {
        "image": "vllm/vllm-openai:v0.8.0",
        "port": 8000,
        "replicas": 2,
        "gpu_count": 1,
        "health_check_path": "/health",
        "gpu_type": "g5.xlarge",
    },
    "ingress_path": "/inference/llama3",
    "created_at": "2025-06-01T10:00:00.123456+00:00",
    "updated_at": "2025-06-01T10:00:00.123456+00:00",
    "region_status": {},
    "cost_center": "ml-platform",
}


def with_changes(**changes: Any) -> dict[str, Any]:
    """PREDECESSOR_ITEM with dotted paths set (value None deletes the path)."""
    item = copy.deepcopy(PREDECESSOR_ITEM)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        target = item
        for parent in parents:
            target = target.setdefault(parent, {})
        if value is None:
            target.pop(leaf, None)
        else:
            target[leaf] = value
    return item


def test_predecessor_item_is_valid() -> None:
    """An item written by the predecessor's CLI, unknown attributes included, has no problem."""
    assert validate_item(PREDECESSOR_ITEM) == []


@pytest.mark.parametrize(
    ("expected", "item"),
    [
        pytest.param(["endpoint_name is required"], with_changes(endpoint_name=None), id="no-name"),
        pytest.param(
            [
                "endpoint_name must be a DNS-1035 label (lowercase letters, digits and '-', "
                "starting with a letter, ending with a letter or digit), got 'Llama_3'"
            ],
            with_changes(endpoint_name="Llama_3"),
            id="name-not-dns-1035",
        ),
        pytest.param(
            [
                "endpoint_name must be a DNS-1035 label (lowercase letters, digits and '-', "
                "starting with a letter, ending with a letter or digit), got '3llama'"
            ],
            with_changes(endpoint_name="3llama"),
            id="name-starts-with-digit",
        ),
        pytest.param(
            ["endpoint_name must be at most 63 characters (a DNS-1035 label), got 64"],
            with_changes(endpoint_name="a" * 64),
            id="name-too-long-for-a-dns-label",
        ),
        pytest.param(
            ["desired_state must be one of deploying, running, stopped, deleted, got 'paused'"],
            with_changes(desired_state="paused"),
            id="desired-state",
        ),
        pytest.param(
            ["target_regions must be a list or a string set of region names, got 'us-east-1'"],
            with_changes(target_regions="us-east-1"),
            id="target-regions-not-list",
        ),
        pytest.param(
            ["target_regions must be a list or a string set of region names, got ['us-east-1', 5]"],
            with_changes(target_regions=["us-east-1", 5]),
            id="target-regions-not-strings",
        ),
        pytest.param(
            [
                "ingress_path must be a path like /inference/llama3 "
                "(a string starting with '/'), got 5"
            ],
            with_changes(ingress_path=5),
            id="ingress-path-not-string",
        ),
        pytest.param(
            [
                "ingress_path must be a path like /inference/llama3 "
                "(a string starting with '/'), got 'inference/llama3'"
            ],
            with_changes(ingress_path="inference/llama3"),
            id="ingress-path-relative",
        ),
        pytest.param(["spec is required"], with_changes(spec=None), id="no-spec"),
        pytest.param(["spec.image is required"], with_changes(spec__image=None), id="no-image"),
        pytest.param(
            ["spec.image must be a valid image reference, got 'vllm openai'"],
            with_changes(spec__image="vllm openai"),
            id="image-invalid",
        ),
        pytest.param(
            ["spec.region_image_uris.eu-west-1 must be a valid image reference, got 'x:'"],
            with_changes(spec__region_image_uris={"eu-west-1": "x:"}),
            id="region-image-invalid",
        ),
        pytest.param(
            ["spec.replicas must be between 0 and 1000, got 5000"],
            with_changes(spec__replicas=5000),
            id="replicas-too-many",
        ),
        pytest.param(
            ["spec.replicas must be between 0 and 1000, got -1"],
            with_changes(spec__replicas=-1),
            id="replicas-negative",
        ),
        pytest.param(
            ["spec.replicas must be an integer, got '3'"],
            with_changes(spec__replicas="3"),
            id="replicas-string",
        ),
        pytest.param(
            ["spec.port must be between 1 and 65535, got 0"],
            with_changes(spec__port=0),
            id="port-zero",
        ),
        pytest.param(
            ["spec.port must be between 1 and 65535, got 70000"],
            with_changes(spec__port=70000),
            id="port-too-high",
        ),
        pytest.param(
            ["spec.gpu_count must be at least 0, got -1"],
            with_changes(spec__gpu_count=-1),
            id="gpu-count",
        ),
        pytest.param(
            ["spec.accelerator must be one of nvidia, neuron, got 'amd'"],
            with_changes(spec__accelerator="amd"),
            id="accelerator",
        ),
        pytest.param(
            ["spec.capacity_type must be one of spot, on-demand, got 'reserved'"],
            with_changes(spec__capacity_type="reserved"),
            id="capacity-type",
        ),
        pytest.param(
            ["spec.health_check_path must start with '/', got 'health'"],
            with_changes(spec__health_check_path="health"),
            id="health-check-path",
        ),
        pytest.param(
            ["spec.env key '1BAD' is not a valid environment variable name"],
            with_changes(spec__env={"1BAD": "x"}),
            id="env-key",
        ),
        pytest.param(
            ["spec.env.WORKERS must be a string, number or boolean, got None"],
            with_changes(spec__env={"WORKERS": None}),
            id="env-value",
        ),
        pytest.param(
            ["spec.resources.requests.cpu must be a Kubernetes quantity, got 'lots'"],
            with_changes(spec__resources={"requests": {"cpu": "lots"}}),
            id="resources-quantity",
        ),
        pytest.param(
            ["spec.args must be a list of strings, got 'serve --port 8000'"],
            with_changes(spec__args="serve --port 8000"),
            id="args-not-list",
        ),
        pytest.param(
            [
                "spec.model_source must name an S3 bucket, like s3://bucket or s3://bucket/path, "
                "got 's3://'"
            ],
            with_changes(spec__model_source="s3://"),
            id="model-source",
        ),
        pytest.param(
            ["spec.autoscaling.min_replicas must be at most max_replicas, got min 5 > max 2"],
            with_changes(spec__autoscaling={"enabled": True, "min_replicas": 5, "max_replicas": 2}),
            id="autoscaling-min-above-max",
        ),
        pytest.param(
            ["spec.autoscaling.min_replicas must be between 1 and 1000, got 0"],
            with_changes(spec__autoscaling={"enabled": True, "min_replicas": 0}),
            id="autoscaling-min-zero",
        ),
        pytest.param(
            ["spec.autoscaling.metrics[0].type must be one of cpu, memory, gpu, got 'rps'"],
            with_changes(spec__autoscaling={"metrics": [{"type": "rps", "target": 70}]}),
            id="metric-type-unsupported",
        ),
        pytest.param(
            ["spec.autoscaling.metrics[1].target must be at least 1, got 0"],
            with_changes(
                spec__autoscaling={"metrics": [{"type": "cpu"}, {"type": "memory", "target": 0}]}
            ),
            id="metric-target",
        ),
        pytest.param(
            ["spec.canary.weight must be between 1 and 99, got 100"],
            with_changes(spec__canary={"image": "vllm/vllm-openai:v0.9.0", "weight": 100}),
            id="canary-weight",
        ),
        pytest.param(
            ["spec.canary.image is required"],
            with_changes(spec__canary={"weight": 10}),
            id="canary-no-image",
        ),
        pytest.param(
            ["spec.canary.image must be a valid image reference, got 'Bad Image'"],
            with_changes(spec__canary={"image": "Bad Image"}),
            id="canary-image-invalid",
        ),
    ],
)
def test_each_rule_reports_one_message_naming_its_field(
    expected: list[str], item: dict[str, Any]
) -> None:
    assert validate_item(item) == expected


def test_every_problem_is_reported_not_only_the_first() -> None:
    item = with_changes(spec__replicas=5000, spec__port=0, spec__accelerator="amd")
    assert validate_item(item) == [
        "spec.replicas must be between 0 and 1000, got 5000",
        "spec.port must be between 1 and 65535, got 0",
        "spec.accelerator must be one of nvidia, neuron, got 'amd'",
    ]


@pytest.mark.parametrize(
    ("expected", "reference"),
    [
        pytest.param(True, "nginx", id="bare"),
        pytest.param(True, "vllm/vllm-openai:v0.8.0", id="docker-hub"),
        pytest.param(True, "localhost:5000/team/model-server:1.2", id="registry-port"),
        pytest.param(True, "123456789012.dkr.ecr.us-east-1.amazonaws.com/llm:latest", id="ecr"),
        pytest.param(True, "nginx@sha256:" + "a" * 64, id="digest"),
        pytest.param(False, "", id="empty"),
        pytest.param(False, "nginx:", id="empty-tag"),
        pytest.param(False, "team/Model", id="uppercase-path"),
        pytest.param(False, "nginx; rm -rf /", id="shell"),
    ],
)
def test_image_references(expected: bool, reference: str) -> None:
    assert is_valid_image(reference) is expected


def test_parse_applies_the_predecessor_defaults() -> None:
    endpoint = parse_endpoint(with_changes(ingress_path=None, namespace=None))
    assert endpoint.ingress_path == "/inference/llama3"
    assert endpoint.namespace == "gco-inference"
    assert endpoint.spec == EndpointSpec(
        image="vllm/vllm-openai:v0.8.0", replicas=2, gpu_type="g5.xlarge"
    )
    assert endpoint.spec.resources == Resources(
        requests={"cpu": "1", "memory": "4Gi"}, limits={"cpu": "4", "memory": "16Gi"}
    )
    assert endpoint.spec.autoscaling == AutoscalingSpec(metrics=(Metric("cpu", 70),))


def test_parse_refuses_an_invalid_item_with_every_problem() -> None:
    with pytest.raises(InvalidEndpoint) as caught:
        parse_endpoint(with_changes(spec__replicas=5000, spec__image=None))
    assert caught.value.name == "llama3"
    assert str(caught.value) == (
        "spec.image is required\nspec.replicas must be between 0 and 1000, got 5000"
    )


def test_parse_converts_decimals() -> None:
    item = with_changes(
        spec__replicas=Decimal(3),
        spec__autoscaling={"enabled": True, "metrics": [{"type": "memory", "target": Decimal(80)}]},
    )
    endpoint = parse_endpoint(item)
    assert endpoint.spec.replicas == 3
    assert type(endpoint.spec.replicas) is int
    assert endpoint.spec.autoscaling.metrics == (Metric("memory", 80),)


def test_image_for_prefers_the_region_override() -> None:
    spec = EndpointSpec(image="repo/model:2", region_image_uris={"eu-west-1": "eu/model:2"})
    assert (spec.image_for("eu-west-1"), spec.image_for("us-east-1")) == (
        "eu/model:2",
        "repo/model:2",
    )


def test_to_item_writes_the_predecessor_format_and_parses_back() -> None:
    endpoint = Endpoint(
        endpoint_name="llama3",
        desired_state="deploying",
        target_regions=("us-east-1",),
        spec=EndpointSpec(
            image="vllm/vllm-openai:v0.8.0",
            env={"A": "1"},
            autoscaling=AutoscalingSpec(enabled=True, max_replicas=4),
            canary=Canary(image="vllm/vllm-openai:v0.9.0", weight=20),
        ),
        created_at="2025-06-01T10:00:00+00:00",
        updated_at="2025-06-01T10:00:00+00:00",
        region_status={"us-east-1": RegionStatus("running", 1, 1, "2025-06-01T10:00:01+00:00")},
    )
    item = endpoint.to_item()
    assert item["spec"] == {
        "image": "vllm/vllm-openai:v0.8.0",
        "port": 8000,
        "replicas": 1,
        "gpu_count": 1,
        "health_check_path": "/health",
        "env": {"A": "1"},
        "autoscaling": {
            "enabled": True,
            "min_replicas": 1,
            "max_replicas": 4,
            "metrics": [{"type": "cpu", "target": 70}],
        },
        "canary": {"image": "vllm/vllm-openai:v0.9.0", "weight": 20, "replicas": 1},
    }
    assert item["ingress_path"] == "/inference/llama3"
    assert "labels" not in item
    assert parse_endpoint(item) == endpoint


def test_region_status_parses_leniently() -> None:
    status = RegionStatus.from_item({"state": "error", "replicas_ready": "x", "error": "boom"})
    assert status == RegionStatus(state="error", replicas_ready=0, error="boom")
    assert RegionStatus("running", 2, 2, "t").to_item() == {
        "state": "running",
        "replicas_ready": 2,
        "replicas_desired": 2,
        "last_sync": "t",
    }


def test_decimal_conversion_both_ways() -> None:
    assert plain({"a": [Decimal(1), Decimal("0.5")], "b": "x"}) == {"a": [1, 0.5], "b": "x"}
    assert type(plain(Decimal("2.0"))) is int
    assert to_dynamo({"t": 0.5, "n": 3, "flag": True, "xs": (1, 2)}) == {
        "t": Decimal("0.5"),
        "n": 3,
        "flag": True,
        "xs": [1, 2],
    }


def test_content_hash_ignores_status_and_timestamp_but_not_spec() -> None:
    base = content_hash(PREDECESSOR_ITEM)
    status_written = with_changes(
        region_status={"us-east-1": {"state": "running"}}, updated_at="2026-01-01T00:00:00+00:00"
    )
    assert content_hash(status_written) == base
    assert content_hash(with_changes(spec__replicas=3)) != base


def test_custom_or_absent_ingress_paths_are_valid() -> None:
    """The predecessor put any string path into the Ingress; absent or empty is the default."""
    for path in ("/api/v1/llama3", "", None):
        assert validate_item(with_changes(ingress_path=path)) == []


def test_an_invalid_item_names_the_regions_that_must_report_it() -> None:
    """An invalid item's target_regions are read leniently, so its problem is never silent."""
    for regions, expected in (
        ("us-east-1", ("us-east-1",)),
        ("us-east-1, eu-west-1", ("us-east-1", "eu-west-1")),
        (["us-east-1", 5], ("us-east-1",)),
        ({"us-east-1", 5}, ("us-east-1",)),
        (5, ()),
    ):
        loaded = load_item(with_changes(target_regions=regions))
        assert loaded.endpoint is None
        assert loaded.target_regions == expected
        assert loaded.targets_unreadable == (expected == ())
    assert load_item(PREDECESSOR_ITEM).target_regions == ("us-east-1", "eu-west-1")


def test_region_status_that_is_not_a_map_loads_the_endpoint_and_names_the_problem() -> None:
    """The predecessor served such an item; only its status cannot be written."""
    loaded = load_item(with_changes(region_status="corrupt"))
    assert loaded.endpoint is not None
    assert loaded.problems == ()
    assert loaded.region_status == {}
    assert loaded.status_problem == (
        "region_status must be a map of region to status, got 'corrupt'; "
        "no region's status can be written until it is fixed"
    )
    assert load_item(PREDECESSOR_ITEM).status_problem is None


def test_a_string_set_of_regions_is_served_like_a_list() -> None:
    """Issue 22: the predecessor's `region in target_regions` served a DynamoDB string set."""
    loaded = load_item(with_changes(target_regions={"us-west-2", "eu-west-1"}))
    assert loaded.endpoint is not None
    assert loaded.target_regions == ("eu-west-1", "us-west-2"), "sorted: every region agrees"
    assert not loaded.targets_unreadable
    assert read_regions(["b", "a"]) == ("b", "a"), "a list keeps its order"
    assert read_regions(None) == ()
    for unreadable in (7, {"region": "us-east-1"}, {1, 2}, "", [""], {True}):
        assert read_regions(unreadable) is None


def test_a_trimmed_status_keeps_every_field_but_cuts_the_error_and_says_so() -> None:
    """Issue 22, case 7: the form written when the full status would not fit the item."""
    status = RegionStatus(state="error", replicas_ready=1, error="x" * 5000, epoch=3, holder="h")
    trimmed = status.trimmed()
    assert trimmed.error == "x" * TRIMMED_ERROR_CHARS + " ... " + TRIMMED
    assert (trimmed.state, trimmed.replicas_ready, trimmed.epoch) == ("error", 1, 3)
    assert RegionStatus(state="running").trimmed().error == TRIMMED
