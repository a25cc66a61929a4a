"""What the predecessor served is served (issue 13 item 2, architecture sections 2 and 8).

Each item below was accepted by GCO's inference monitor and refused by our first
version. Each one now validates, parses, maps to a workload and builds objects that
pass the strict schema; only what would give a broken object is still refused, with
one clear message.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import pytest

from actors.desired import workload_for
from k8s.manifests import GPU_METRIC_NAME, NAME_LIMITS, build_objects, object_key
from k8s.workload import Toleration
from store.convert import plain
from store.model import Metric, parse_endpoint
from store.validation import validate_item
from tests.unit.test_manifests import assert_valid

REGION = "us-east-1"
BASE: dict[str, Any] = {
    "endpoint_name": "llama3",
    "desired_state": "running",
    "target_regions": [REGION, "eu-west-1"],
    "namespace": "gco-inference",
    "spec": {
        "image": "vllm/vllm-openai:v0.8.0",
        "port": 8000,
        "replicas": 1,
        "gpu_count": 1,
        "health_check_path": "/health",
    },
    "ingress_path": "/inference/llama3",
    "created_at": "2025-06-01T10:00:00.123456+00:00",
    "updated_at": "2025-06-01T10:00:00.123456+00:00",
    "region_status": {},
}


def item(name: str = "llama3", labels: dict[str, Any] | None = None, **spec: Any) -> dict:
    """BASE with `spec` fields set (Decimals allowed, as boto3 returns them)."""
    result = copy.deepcopy(BASE)
    result["endpoint_name"] = name
    result["ingress_path"] = f"/inference/{name}"
    result["spec"].update(spec)
    if labels is not None:
        result["labels"] = labels
    return result


def served(raw: dict[str, Any], **options: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """Validate, parse, map and build `raw` as the daemon does; every object strictly valid."""
    assert validate_item(raw) == []
    objects = build_objects(workload_for(parse_endpoint(raw), REGION, **options))
    for obj in objects:
        assert_valid(obj)
        assert len(obj["metadata"]["name"]) <= NAME_LIMITS[obj["kind"]]
    return {object_key(obj): obj for obj in objects}


def pod(objects: dict[tuple[str, str], dict[str, Any]], name: str = "llama3") -> dict[str, Any]:
    return objects["Deployment", name]["spec"]["template"]["spec"]


# --- autoscaling -------------------------------------------------------------------------


def test_gpu_metric_as_the_predecessors_cli_writes_it_is_a_pods_metric() -> None:
    """`--autoscale-metric gpu:60` wrote this; the predecessor scaled on CPU 70 instead."""
    raw = item(
        autoscaling={
            "enabled": True,
            "min_replicas": Decimal(1),
            "max_replicas": Decimal(4),
            "metrics": [{"type": "gpu", "target": Decimal(60)}],
        }
    )
    assert parse_endpoint(raw).spec.autoscaling.metrics == (Metric("gpu", 60),)
    hpa = served(raw)["HorizontalPodAutoscaler", "llama3"]
    assert hpa["spec"]["metrics"] == [
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": GPU_METRIC_NAME},
                "target": {"type": "AverageValue", "averageValue": "60"},
            },
        }
    ]


def test_gpu_metric_name_is_what_workload_for_is_given() -> None:
    raw = item(autoscaling={"enabled": True, "metrics": [{"type": "gpu", "target": 50}]})
    hpa = served(raw, gpu_metric="nvidia_gpu_utilisation")["HorizontalPodAutoscaler", "llama3"]
    assert hpa["spec"]["metrics"][0]["pods"]["metric"] == {"name": "nvidia_gpu_utilisation"}


def test_targets_above_100_percent_are_accepted() -> None:
    raw = item(
        autoscaling={
            "enabled": True,
            "metrics": [{"type": "cpu", "target": 150}, {"type": "memory", "target": 120}],
        }
    )
    metrics = served(raw)["HorizontalPodAutoscaler", "llama3"]["spec"]["metrics"]
    assert [m["resource"]["target"]["averageUtilization"] for m in metrics] == [150, 120]


@pytest.mark.parametrize(
    "metrics",
    [pytest.param([], id="empty-list"), pytest.param([{"target": 80}], id="no-type")],
)
def test_the_predecessors_metric_defaults_apply(metrics: list[dict[str, Any]]) -> None:
    """No metric is CPU 70 and a metric without a type is cpu, as the predecessor did."""
    raw = item(autoscaling={"enabled": True, "metrics": metrics})
    (metric,) = served(raw)["HorizontalPodAutoscaler", "llama3"]["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["averageUtilization"] == (80 if metrics else 70)


def test_an_unknown_metric_type_stays_a_clear_error() -> None:
    raw = item(autoscaling={"enabled": True, "metrics": [{"type": "requests", "target": 10}]})
    assert validate_item(raw) == [
        "spec.autoscaling.metrics[0].type must be one of cpu, memory, gpu, got 'requests'"
    ]


# --- model source -------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["s3://models", "s3://models/", "s3://models/llama-3/"])
def test_an_s3_source_bucket_root_included_is_synced_by_an_argument_list(source: str) -> None:
    spec = pod(served(item(model_source=source)))
    (init,) = spec["initContainers"]
    assert init["command"] == [
        "aws", "s3", "sync", source, "/models/llama3", "--delete", "--no-progress"
    ]  # fmt: skip
    assert spec["volumes"][0]["persistentVolumeClaim"] == {"claimName": "efs-claim"}


@pytest.mark.parametrize(
    "source", ["meta-llama/Llama-3.1-8B-Instruct", "hf://org/model", "/models/llama3"]
)
def test_a_non_s3_source_mounts_the_model_volume_without_a_sync(source: str) -> None:
    spec = pod(served(item(model_source=source)))
    assert "initContainers" not in spec
    assert spec["containers"][0]["volumeMounts"] == [
        {"name": "model-storage", "mountPath": "/models"}
    ]
    assert parse_endpoint(item(model_source=source)).spec.to_item()["model_source"] == source


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        pytest.param(
            "s3://",
            "spec.model_source must name an S3 bucket, like s3://bucket or s3://bucket/path, "
            "got 's3://'",
            id="no-bucket",
        ),
        pytest.param(
            "s3://Bad Bucket/x",
            "spec.model_source must name an S3 bucket, like s3://bucket or s3://bucket/path, "
            "got 's3://Bad Bucket/x'",
            id="bad-bucket",
        ),
        pytest.param(
            " ",
            "spec.model_source must be an s3://bucket[/path] URI or a model id, got ' '",
            id="blank",
        ),
    ],
)
def test_a_source_the_sync_cannot_use_is_refused(source: str, problem: str) -> None:
    assert validate_item(item(model_source=source)) == [problem]


# --- fields the predecessor's daemon ignored -----------------------------------------------


def test_tolerations_are_merged_after_the_accelerators_own() -> None:
    tolerations = [
        {"key": "dedicated", "operator": "Equal", "value": "llm", "effect": "NoSchedule"},
        {"operator": "Exists"},
        {"key": "spot", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30},
    ]
    raw = item(tolerations=tolerations)
    assert workload_for(parse_endpoint(raw), REGION).tolerations[0] == Toleration(
        key="dedicated", operator="Equal", value="llm", effect="NoSchedule"
    )
    assert pod(served(raw))["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"},
        *tolerations,
    ]
    assert parse_endpoint(raw).spec.to_item()["tolerations"] == tolerations


@pytest.mark.parametrize(
    ("toleration", "problem"),
    [
        pytest.param(
            {"key": "a", "effect": "NoSchedul"},
            "spec.tolerations[0].effect must be one of NoSchedule, PreferNoSchedule, "
            "NoExecute, got 'NoSchedul'",
            id="effect",
        ),
        pytest.param(
            {"key": "a", "operator": "In"},
            "spec.tolerations[0].operator must be one of Exists, Equal, got 'In'",
            id="operator",
        ),
        pytest.param(
            {"value": "x"},
            "spec.tolerations[0] without a key must have operator Exists",
            id="no-key",
        ),
        pytest.param(
            {"key": "a", "operator": "Exists", "value": "x"},
            "spec.tolerations[0].value must be empty with operator Exists, got 'x'",
            id="exists-with-value",
        ),
        pytest.param(
            {"key": "a", "effect": "NoSchedule", "tolerationSeconds": 5},
            "spec.tolerations[0].tolerationSeconds needs effect NoExecute",
            id="seconds-without-noexecute",
        ),
        pytest.param(
            {"key": "a", "efect": "NoSchedule"},
            "spec.tolerations[0] has unknown fields efect "
            "(allowed: key, operator, value, effect, tolerationSeconds)",
            id="unknown-field",
        ),
        pytest.param(
            {"key": "bad key", "operator": "Exists"},
            "spec.tolerations[0].key must be a label key, got 'bad key'",
            id="key",
        ),
    ],
)
def test_a_toleration_the_api_server_would_refuse_is_refused(
    toleration: dict[str, Any], problem: str
) -> None:
    assert validate_item(item(tolerations=[toleration])) == [problem]


@pytest.mark.parametrize(
    ("gpu_type", "selector"),
    [
        pytest.param("g5.xlarge", {"node.kubernetes.io/instance-type": "g5.xlarge"}, id="type"),
        pytest.param("A10G", {"eks.amazonaws.com/instance-gpu-name": "a10g"}, id="gpu-name"),
    ],
)
def test_gpu_type_becomes_a_node_selector(gpu_type: str, selector: dict[str, str]) -> None:
    """The predecessor's CLI writes `gpu_type` (`--gpu-type g5.xlarge`); its daemon ignored it."""
    assert pod(served(item(gpu_type=gpu_type)))["nodeSelector"] == {
        "eks.amazonaws.com/instance-gpu-manufacturer": "nvidia",
        **selector,
    }
    assert parse_endpoint(item(gpu_type=gpu_type)).spec.to_item()["gpu_type"] == gpu_type


def test_a_gpu_type_that_cannot_be_a_label_value_is_refused() -> None:
    assert validate_item(item(gpu_type="A10G x2")) == [
        "spec.gpu_type must be a GPU name (like a10g) or an instance type (like g5.xlarge), "
        "got 'A10G x2'"
    ]


# --- labels, names, env, region images ------------------------------------------------------


def test_label_values_kubernetes_refuses_are_kept_as_annotations() -> None:
    raw = item(labels={"owner": "alice@example.com", "team": "ml", "tier": Decimal(2)})
    for obj in served(raw).values():
        meta = obj["metadata"]
        assert (meta["labels"]["team"], meta["labels"]["tier"]) == ("ml", "2")
        assert "owner" not in meta["labels"]
        assert meta["annotations"]["inference-supervisor.io/label-owner"] == "alice@example.com"


@pytest.mark.parametrize("length", [54, 56, 63])
def test_names_up_to_63_characters_are_served(length: int) -> None:
    name = "m" * length
    objects = served(item(name=name))
    assert set(objects) == {
        ("Deployment", name),
        ("Service", name),
        ("Ingress", f"inference-{name}"),
    }


def test_a_canary_is_served_while_name_canary_fits_63() -> None:
    name = "m" * 56
    objects = served(item(name=name, canary={"image": "vllm/vllm-openai:v0.9.0", "weight": 10}))
    assert ("Service", f"{name}-canary") in objects


def test_a_canary_whose_name_cannot_fit_is_refused_not_the_endpoint() -> None:
    name = "m" * 57
    served(item(name=name))
    raw = item(name=name, canary={"image": "vllm/vllm-openai:v0.9.0", "weight": 10})
    assert validate_item(raw) == [
        f"spec.canary cannot be served: its objects are named '{name}-canary', more than 63 "
        "characters; a canary needs an endpoint_name of at most 56 characters, got 57"
    ]


def test_non_string_env_values_are_stringified_as_the_predecessor_did() -> None:
    """The predecessor put `str(value)` in the pod (after turning Decimals into int/float)."""
    raw = item(env={"WORKERS": Decimal(4), "TEMP": Decimal("0.5"), "DEBUG": True, "A": "x"})
    assert parse_endpoint(raw).spec.env == {
        "WORKERS": "4",
        "TEMP": "0.5",
        "DEBUG": "True",
        "A": "x",
    }
    env = pod(served(raw))["containers"][0]["env"]
    assert env == [
        {"name": "A", "value": "x"},
        {"name": "DEBUG", "value": "True"},
        {"name": "TEMP", "value": "0.5"},
        {"name": "WORKERS", "value": "4"},
    ]


@pytest.mark.parametrize("value", [None, ["a"], {"k": "v"}], ids=["null", "list", "map"])
def test_env_values_that_are_not_scalars_are_refused(value: Any) -> None:
    assert validate_item(item(env={"X": value})) == [
        f"spec.env.X must be a string, number or boolean, got {value!r}"
    ]


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param("eu/model:1", id="not-a-map"),
        pytest.param(["eu/model:1"], id="a-list"),
        pytest.param({REGION: Decimal(5)}, id="number-value"),
        pytest.param({REGION: ""}, id="empty-value"),
        pytest.param({REGION: None}, id="null-value"),
    ],
)
def test_malformed_region_image_uris_fall_back_to_image(overrides: Any) -> None:
    raw = item(region_image_uris=overrides)
    assert pod(served(raw))["containers"][0]["image"] == "vllm/vllm-openai:v0.8.0"


def test_a_valid_region_image_beside_malformed_ones_is_used() -> None:
    raw = item(region_image_uris={REGION: "us/model:1", "eu-west-1": 7})
    assert pod(served(raw))["containers"][0]["image"] == "us/model:1"
    assert parse_endpoint(raw).spec.region_image_uris == {REGION: "us/model:1"}


def test_an_item_with_all_of_it_builds_valid_objects() -> None:
    raw = item(
        gpu_type="l40s",
        tolerations=[{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
        model_source="s3://models",
        env={"N": Decimal(2)},
        region_image_uris="oops",
        autoscaling={"enabled": True, "metrics": [{"type": "gpu", "target": 60}]},
        canary={"image": "vllm/vllm-openai:v0.9.0", "weight": 20},
        labels={"owner": "alice@example.com"},
    )
    objects = served(plain(raw))
    assert len(objects) == 6
    assert json.loads(
        objects["Ingress", "inference-llama3"]["metadata"]["annotations"][
            "alb.ingress.kubernetes.io/actions.weighted-routing"
        ]
    )["forwardConfig"]["targetGroups"][1]["serviceName"] == ("llama3-canary")
