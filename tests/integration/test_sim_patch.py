"""PATCH content types give the results a real API server gives: RFC 7386 merge
patch replaces lists, strategic merge merges containers/env/ports by key, RFC
6902 json-patch applies operations, and a mismatched body is a 400."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.sim_aids import NAMESPACE, api_client, deployment, raw_request, service

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"


@pytest.fixture
def apps(sim: Any) -> Iterator[client.AppsV1Api]:
    api = api_client(sim.url)
    try:
        api_ = client.AppsV1Api(api)
        api_.create_namespaced_deployment(NAMESPACE, deployment("m1"))
        yield api_
    finally:
        api.close()


ENV_PATCH = {
    "spec": {
        "template": {
            "spec": {"containers": [{"name": "server", "env": [{"name": "EXTRA", "value": "1"}]}]}
        }
    }
}


def container(obj: Any) -> Any:
    return obj.spec.template.spec.containers[0]


def test_merge_patch_replaces_lists_whole(apps: client.AppsV1Api) -> None:
    """Merge patch: the container list becomes exactly the patch's list (image lost -> 422)."""
    with pytest.raises(ApiException) as caught:
        apps.patch_namespaced_deployment("m1", NAMESPACE, ENV_PATCH, _content_type=MERGE)
    assert caught.value.status == 422


def test_merge_patch_null_deletes_a_key(apps: client.AppsV1Api) -> None:
    apps.patch_namespaced_deployment(
        "m1", NAMESPACE, {"metadata": {"labels": {"x": "1"}}}, _content_type=MERGE
    )
    patched = apps.patch_namespaced_deployment(
        "m1", NAMESPACE, {"metadata": {"labels": {"x": None}}}, _content_type=MERGE
    )
    assert "x" not in patched.metadata.labels


def test_strategic_merge_merges_containers_and_env_by_name(apps: client.AppsV1Api) -> None:
    patched = apps.patch_namespaced_deployment("m1", NAMESPACE, ENV_PATCH, _content_type=STRATEGIC)
    assert container(patched).image == "nginx:1.25"
    assert [(e.name, e.value) for e in container(patched).env] == [("MODEL", "m1"), ("EXTRA", "1")]


def test_strategic_merge_merges_container_ports_by_container_port(
    apps: client.AppsV1Api,
) -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "server",
                            "ports": [
                                {"containerPort": 8000, "name": "web"},
                                {"containerPort": 9000, "name": "metrics"},
                            ],
                        }
                    ]
                }
            }
        }
    }
    patched = apps.patch_namespaced_deployment("m1", NAMESPACE, patch, _content_type=STRATEGIC)
    assert [(p.container_port, p.name) for p in container(patched).ports] == [
        (8000, "web"),
        (9000, "metrics"),
    ]


def test_strategic_merge_merges_service_ports_by_port(sim: Any) -> None:
    api = api_client(sim.url)
    try:
        core = client.CoreV1Api(api)
        core.create_namespaced_service(NAMESPACE, service("s1", port=80))
        patched = core.patch_namespaced_service(
            "s1",
            NAMESPACE,
            {"spec": {"ports": [{"port": 443, "name": "https", "targetPort": 8443}]}},
            _content_type=STRATEGIC,
        )
    finally:
        api.close()
    assert [p.port for p in patched.spec.ports] == [80, 443]


def test_strategic_delete_directive_removes_an_env_entry(apps: client.AppsV1Api) -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "server", "env": [{"name": "MODEL", "$patch": "delete"}]}
                    ]
                }
            }
        }
    }
    patched = apps.patch_namespaced_deployment("m1", NAMESPACE, patch, _content_type=STRATEGIC)
    assert container(patched).env is None


def test_json_patch_applies_operations(apps: client.AppsV1Api) -> None:
    operations = [
        {"op": "replace", "path": "/spec/replicas", "value": 4},
        {"op": "add", "path": "/metadata/annotations", "value": {"a/b": "c"}},
        {
            "op": "add",
            "path": "/spec/template/spec/containers/0/env/-",
            "value": {"name": "X", "value": "y"},
        },
    ]
    patched = apps.patch_namespaced_deployment(
        "m1", NAMESPACE, operations, _content_type=JSON_PATCH
    )
    assert patched.spec.replicas == 4
    assert patched.metadata.annotations == {"a/b": "c"}
    assert [e.name for e in container(patched).env] == ["MODEL", "X"]


def test_json_patch_failed_test_op_is_422(apps: client.AppsV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        apps.patch_namespaced_deployment(
            "m1",
            NAMESPACE,
            [{"op": "test", "path": "/spec/replicas", "value": 7}],
            _content_type=JSON_PATCH,
        )
    assert caught.value.status == 422


def test_object_body_sent_as_json_patch_is_400(sim: Any, apps: client.AppsV1Api) -> None:
    """A JSON object sent as json-patch is rejected like a real server does (sent raw: the
    installed client rewrites that combination to a strategic merge patch itself)."""
    code, _, status = raw_request(
        sim.url,
        "PATCH",
        f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/m1",
        {"spec": {"replicas": 3}},
        content_type=JSON_PATCH,
    )
    assert code == 400
    assert "jsonpatch.Patch" in status["message"]


def test_list_body_sent_as_merge_patch_is_400(sim: Any, apps: client.AppsV1Api) -> None:
    code, _, status = raw_request(
        sim.url,
        "PATCH",
        f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/m1",
        [{"op": "replace", "path": "/spec/replicas", "value": 3}],
        content_type=MERGE,
    )
    assert code == 400
    assert status["reason"] == "BadRequest"


def test_unknown_patch_type_is_415(sim: Any, apps: client.AppsV1Api) -> None:
    code, _, status = raw_request(
        sim.url,
        "PATCH",
        f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/m1",
        {"spec": {"replicas": 3}},
        content_type="application/json",
    )
    assert code == 415
    assert status["reason"] == "UnsupportedMediaType"


def test_patch_with_stale_resource_version_is_409(apps: client.AppsV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        apps.patch_namespaced_deployment(
            "m1",
            NAMESPACE,
            {"metadata": {"resourceVersion": "1"}, "spec": {"replicas": 3}},
            _content_type=MERGE,
        )
    assert caught.value.status == 409


def test_patch_of_missing_object_is_404(apps: client.AppsV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        apps.patch_namespaced_deployment(
            "absent", NAMESPACE, {"spec": {"replicas": 3}}, _content_type=MERGE
        )
    assert caught.value.status == 404


def test_status_patch_changes_only_status(apps: client.AppsV1Api) -> None:
    patched = apps.patch_namespaced_deployment_status(
        "m1",
        NAMESPACE,
        {"spec": {"replicas": 9}, "status": {"observedGeneration": 1}},
        _content_type=MERGE,
    )
    assert patched.spec.replicas == 2


def test_apply_patch_needs_field_manager_and_creates_when_absent(sim: Any) -> None:
    path = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/applied"
    manifest = json.dumps(deployment("applied")).encode()
    code, _, status = raw_request(
        sim.url, "PATCH", path, manifest, content_type="application/apply-patch+yaml"
    )
    assert code == 400
    assert "fieldManager" in status["message"]
    code, _, created = raw_request(
        sim.url,
        "PATCH",
        f"{path}?fieldManager=test",
        manifest,
        content_type="application/apply-patch+yaml",
    )
    assert code == 201
    assert created["metadata"]["name"] == "applied"
