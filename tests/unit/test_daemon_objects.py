"""The daemon's own manifests: strictly valid, least privilege, as `render-manifests` prints."""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from actors.app.cli import UsageError
from actors.app.render_manifests import add_arguments, run
from k8s.daemon_objects import build_daemon_objects
from k8s.workload import MANAGED_BY_LABEL

EXAMPLE = Path(__file__).resolve().parents[2] / "docker" / "manifests" / "example.yaml"
K8S_VERSION = kubernetes_validate.latest_version()


def manifests(**overrides: Any) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"image": "registry/sup:1.0", "region": "us-east-1"}
    params["cluster_name"] = "c1"
    params.update(overrides)
    return build_daemon_objects(**params)


def by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {obj["kind"]: obj for obj in objects}


def render(*argv: str) -> str:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    out = io.StringIO()
    assert run(parser.parse_args(list(argv)), out=out) == 0
    return out.getvalue()


def test_the_daemon_needs_these_objects_in_apply_order() -> None:
    assert [obj["kind"] for obj in manifests()] == [
        "Namespace",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "Deployment",
        "PodDisruptionBudget",
        "Service",
    ]


@pytest.mark.parametrize("replicas", [1, 2, 3])
def test_every_manifest_passes_strict_validation(replicas: int) -> None:
    for obj in manifests(replicas=replicas, extra_env={"DYNAMODB_REGION": "us-east-1"}):
        assert kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_role_grants_exactly_what_the_daemon_uses() -> None:
    role = by_kind(manifests())["Role"]
    grants = {
        (group, resource, verb, tuple(rule.get("resourceNames", ())))
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    # No patch (writes are conditional replaces) and no pods: tests/integration/
    # test_rbac_used.py proves these are the verbs the daemon sends.
    write = ("get", "list", "watch", "create", "update", "delete")

    assert grants == {
        *{("apps", "deployments", verb, ()) for verb in write},
        *{("", "services", verb, ()) for verb in write},
        *{("networking.k8s.io", "ingresses", verb, ()) for verb in write},
        *{("autoscaling", "horizontalpodautoscalers", verb, ()) for verb in write},
        # Decisions become Events on the Deployment: created only (architecture section 12).
        ("", "events", "create", ()),
        ("coordination.k8s.io", "leases", "create", ()),
        ("coordination.k8s.io", "leases", "get", ("inference-monitor-leader",)),
        ("coordination.k8s.io", "leases", "update", ("inference-monitor-leader",)),
    }
    assert role["metadata"]["namespace"] == "gco-inference"


def test_no_wildcards_and_nothing_cluster_wide() -> None:
    objects = manifests()

    assert not {"ClusterRole", "ClusterRoleBinding"} & {obj["kind"] for obj in objects}
    for rule in by_kind(objects)["Role"]["rules"]:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
    binding = by_kind(objects)["RoleBinding"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "inference-supervisor",
    }


def test_a_custom_lease_name_is_the_one_the_role_allows() -> None:
    role = by_kind(manifests(extra_env={"LEASE_NAME": "my-lease"}))["Role"]

    names = [rule.get("resourceNames") for rule in role["rules"] if "get" in rule["verbs"]]
    assert ["my-lease"] in names


def test_deployment_runs_two_locked_down_replicas_with_probes() -> None:
    deployment = by_kind(manifests())["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]

    assert deployment["spec"]["replicas"] == 2
    assert pod["serviceAccountName"] == "inference-supervisor"
    assert pod["terminationGracePeriodSeconds"] == 30
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert container["ports"] == [{"name": "metrics", "containerPort": 8080, "protocol": "TCP"}]
    assert container["resources"] == {
        "requests": {"cpu": "100m", "memory": "256Mi"},
        "limits": {"memory": "1Gi"},
    }


def test_deployment_environment_comes_from_the_settings() -> None:
    deployment = by_kind(manifests(namespace="serving", table_name="tbl"))["Deployment"]
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    values = {item["name"]: item.get("value") for item in env}

    assert values["CLUSTER_NAME"] == "c1"
    assert values["REGION"] == "us-east-1"
    assert values["INFERENCE_ENDPOINTS_TABLE_NAME"] == "tbl"
    assert values["INFERENCE_NAMESPACE"] == "serving"
    assert values["METRICS_PORT"] == "8080"
    pod_name = next(item for item in env if item["name"] == "POD_NAME")
    assert pod_name["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_daemon_objects_never_look_like_endpoint_objects() -> None:
    """The daemon deletes what it manages and no longer wants; it must not manage itself."""
    for obj in manifests():
        assert MANAGED_BY_LABEL not in obj["metadata"].get("labels", {})


def test_pdb_keeps_one_pod_and_the_service_exposes_metrics() -> None:
    objects = by_kind(manifests())

    assert objects["PodDisruptionBudget"]["spec"]["minAvailable"] == 1
    assert objects["Service"]["spec"]["ports"][0]["port"] == 8080
    selector = objects["Deployment"]["spec"]["selector"]["matchLabels"]
    assert objects["Service"]["spec"]["selector"] == selector
    assert objects["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == selector


@pytest.mark.parametrize(
    ("message", "overrides"),
    [
        pytest.param("image must be", {"image": ""}, id="image"),
        pytest.param("region must be", {"region": " "}, id="region"),
        pytest.param("namespace must be a DNS-1123 label", {"namespace": "Bad_NS"}, id="ns"),
        pytest.param("replicas must be at least 1", {"replicas": 0}, id="replicas"),
        pytest.param("not allowed: 'REGION'", {"extra_env": {"REGION": "x"}}, id="reserved-env"),
        pytest.param("not allowed: 'A B'", {"extra_env": {"A B": "x"}}, id="bad-env-name"),
    ],
)
def test_bad_parameters_are_refused(message: str, overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=message):
        manifests(**overrides)


def test_render_manifests_prints_a_kubectl_applyable_stream() -> None:
    text = render("--image", "img:2", "--region", "eu-west-1", "--replicas", "3")

    documents = list(yaml.safe_load_all(text))
    assert [doc["kind"] for doc in documents] == [obj["kind"] for obj in manifests()]
    assert text.startswith("---\n")
    deployment = by_kind(documents)["Deployment"]
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "img:2"
    for doc in documents:
        assert kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_render_manifests_passes_extra_environment() -> None:
    text = render("--image", "i:1", "--region", "r", "--env", "DYNAMODB_REGION=us-east-1")

    deployment = by_kind(list(yaml.safe_load_all(text)))["Deployment"]
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "DYNAMODB_REGION", "value": "us-east-1"} in env


@pytest.mark.parametrize(
    ("message", "argv"),
    [
        pytest.param("replicas must be at least 1", ("--replicas", "0"), id="replicas"),
        pytest.param("--env must be NAME=VALUE, got 'oops'", ("--env", "oops"), id="env"),
    ],
)
def test_render_manifests_bad_flags_are_usage_errors(message: str, argv: tuple[str, ...]) -> None:
    with pytest.raises(UsageError, match=message):
        render("--image", "i:1", "--region", "r", *argv)


def test_committed_example_is_the_current_rendering() -> None:
    """docker/manifests/example.yaml is generated, never edited by hand."""
    expected = render(
        "--image", "inference-supervisor:0.1.0", "--region", "us-east-1", "--cluster-name",
        "my-cluster",
    )  # fmt: skip

    assert EXAMPLE.read_text() == expected, (
        "regenerate: inference-supervisor render-manifests --image inference-supervisor:0.1.0 "
        "--region us-east-1 --cluster-name my-cluster > docker/manifests/example.yaml"
    )


def test_each_further_namespace_gets_its_namespace_and_a_role_for_endpoint_objects() -> None:
    objects = manifests(namespaces=["team-a", "gco-inference", "team-b", "team-a"])

    assert [(obj["kind"], obj["metadata"].get("namespace")) for obj in objects] == [
        ("Namespace", None),
        ("Namespace", None),
        ("Namespace", None),
        ("ServiceAccount", "gco-inference"),
        ("Role", "gco-inference"),
        ("RoleBinding", "gco-inference"),
        ("Role", "team-a"),
        ("RoleBinding", "team-a"),
        ("Role", "team-b"),
        ("RoleBinding", "team-b"),
        ("Deployment", "gco-inference"),
        ("PodDisruptionBudget", "gco-inference"),
        ("Service", "gco-inference"),
    ]
    names = [obj["metadata"]["name"] for obj in objects if obj["kind"] == "Namespace"]
    assert names == ["gco-inference", "team-a", "team-b"]
    home, *others = [obj for obj in objects if obj["kind"] == "Role"]
    write = ("get", "list", "watch", "create", "update", "delete")
    for role in others:
        # Endpoint objects only: the Lease lives in the daemon's own namespace.
        assert role["rules"] == [rule for rule in home["rules"] if rule["resources"] != ["leases"]]
        assert {verb for rule in role["rules"] for verb in rule["verbs"]} == set(write)
    for binding in [obj for obj in objects if obj["kind"] == "RoleBinding"]:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "inference-supervisor", "namespace": "gco-inference"}
        ]
    for obj in objects:
        assert kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    env = by_kind(objects)["Deployment"]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "INFERENCE_NAMESPACES", "value": "gco-inference,team-a,team-b"} in env


def test_without_further_namespaces_the_daemon_gets_no_namespace_list() -> None:
    env = by_kind(manifests())["Deployment"]["spec"]["template"]["spec"]["containers"][0]["env"]

    assert "INFERENCE_NAMESPACES" not in {item["name"] for item in env}


def test_render_manifests_namespaces_flag() -> None:
    text = render("--image", "i:1", "--region", "r", "--namespaces", "team-a, team-b")

    documents = list(yaml.safe_load_all(text))
    roles = [doc["metadata"]["namespace"] for doc in documents if doc["kind"] == "Role"]
    assert roles == ["gco-inference", "team-a", "team-b"]
    with pytest.raises(UsageError, match="namespaces must be DNS-1123 labels, got 'Team_A'"):
        render("--image", "i:1", "--region", "r", "--namespaces", "Team_A")
    with pytest.raises(ValueError, match="not allowed: 'INFERENCE_NAMESPACES'"):
        manifests(extra_env={"INFERENCE_NAMESPACES": "a"})
