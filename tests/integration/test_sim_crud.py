"""The sim answers create/get/list/replace/delete like a real API server,
as the official kubernetes client sees it."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from k8s.sim import SimCluster
from tests.sim_aids import (
    NAMESPACE,
    api_client,
    deployment,
    lease,
    raw_request,
    service,
    wait_for,
)


@pytest.fixture
def api(sim: Any) -> Iterator[Any]:
    """An ApiClient for the per-test sim."""
    api_client_ = api_client(sim.url)
    try:
        yield api_client_
    finally:
        api_client_.close()


@pytest.fixture
def apps(api: Any) -> client.AppsV1Api:
    return client.AppsV1Api(api)


@pytest.fixture
def core(api: Any) -> client.CoreV1Api:
    return client.CoreV1Api(api)


def status_of(error: ApiException) -> dict[str, Any]:
    """The `Status` body of a failed call."""
    return json.loads(error.body)


def test_created_object_has_server_metadata(apps: client.AppsV1Api) -> None:
    """Create returns the object with uid, string resourceVersion, generation 1, timestamp."""
    created = apps.create_namespaced_deployment(NAMESPACE, deployment("m1"))
    assert created.metadata.namespace == NAMESPACE
    assert created.metadata.uid
    assert created.metadata.resource_version.isdigit()
    assert created.metadata.generation == 1
    assert created.metadata.creation_timestamp is not None
    assert created.spec.strategy.type == "RollingUpdate"  # server defaults are filled in


def test_fake_clock_stamps_creation_time() -> None:
    """Every timestamp the sim writes comes from the injected clock."""
    with SimCluster(clock=lambda: 1_767_323_045.0, validate=False) as cluster:
        api_ = api_client(cluster.url)
        try:
            created = client.CoreV1Api(api_).create_namespaced_service(NAMESPACE, service())
        finally:
            api_.close()
    assert created.metadata.creation_timestamp.isoformat() == "2026-01-02T03:04:05+00:00"


def test_create_existing_is_409_already_exists(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment(NAMESPACE, deployment("m1"))
    with pytest.raises(ApiException) as caught:
        apps.create_namespaced_deployment(NAMESPACE, deployment("m1"))
    assert caught.value.status == 409
    assert status_of(caught.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'deployments.apps "m1" already exists',
        "reason": "AlreadyExists",
        "details": {"name": "m1", "group": "apps", "kind": "deployments"},
        "code": 409,
    }


def test_create_with_resource_version_is_rejected(core: client.CoreV1Api) -> None:
    body = service()
    body["metadata"]["resourceVersion"] = "5"
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_service(NAMESPACE, body)
    assert caught.value.status == 400
    assert "resourceVersion should not be set" in status_of(caught.value)["message"]


def test_create_in_missing_namespace_is_404(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_service("nowhere", service())
    assert caught.value.status == 404
    assert status_of(caught.value)["message"] == 'namespaces "nowhere" not found'


def test_get_missing_is_404_not_found_status(apps: client.AppsV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        apps.read_namespaced_deployment("absent", NAMESPACE)
    assert caught.value.status == 404
    assert status_of(caught.value)["reason"] == "NotFound"
    assert status_of(caught.value)["details"] == {
        "name": "absent",
        "group": "apps",
        "kind": "deployments",
    }


def test_replace_with_stale_resource_version_is_409_conflict(apps: client.AppsV1Api) -> None:
    created = apps.create_namespaced_deployment(NAMESPACE, deployment("m1"))
    apps.patch_namespaced_deployment(
        "m1",
        NAMESPACE,
        {"metadata": {"labels": {"x": "1"}}},
        _content_type="application/merge-patch+json",
    )
    stale = created.to_dict()
    stale_body = api_client_body(created)
    stale_body["spec"]["replicas"] = 5
    with pytest.raises(ApiException) as caught:
        apps.replace_namespaced_deployment("m1", NAMESPACE, stale_body)
    assert stale["metadata"]["resource_version"] == stale_body["metadata"]["resourceVersion"]
    assert caught.value.status == 409
    body = status_of(caught.value)
    assert body["reason"] == "Conflict"
    assert body["message"] == (
        'Operation cannot be fulfilled on deployments.apps "m1": the object has been modified;'
        " please apply your changes to the latest version and try again"
    )


def api_client_body(obj: Any) -> dict[str, Any]:
    """The JSON body the client would send for a model object."""
    return client.ApiClient().sanitize_for_serialization(obj)


def test_replace_without_resource_version_is_unconditional(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment(NAMESPACE, deployment("m1"))
    apps.patch_namespaced_deployment(
        "m1",
        NAMESPACE,
        {"metadata": {"labels": {"x": "1"}}},
        _content_type="application/merge-patch+json",
    )
    body = deployment("m1", replicas=4)
    replaced = apps.replace_namespaced_deployment("m1", NAMESPACE, body)
    assert replaced.spec.replicas == 4


def test_resource_version_changes_on_every_write_across_kinds(
    apps: client.AppsV1Api, core: client.CoreV1Api
) -> None:
    first = apps.create_namespaced_deployment(NAMESPACE, deployment("m1"))
    second = core.create_namespaced_service(NAMESPACE, service("m1"))
    third = apps.patch_namespaced_deployment(
        "m1",
        NAMESPACE,
        {"metadata": {"annotations": {"a": "b"}}},
        _content_type="application/merge-patch+json",
    )
    versions = [int(o.metadata.resource_version) for o in (first, second, third)]
    assert versions == sorted(versions)
    assert len(set(versions)) == 3


def test_generation_bumps_on_spec_change_only(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment(NAMESPACE, deployment("m1"))
    relabelled = apps.patch_namespaced_deployment(
        "m1",
        NAMESPACE,
        {"metadata": {"labels": {"team": "a"}}},
        _content_type="application/merge-patch+json",
    )
    assert relabelled.metadata.generation == 1
    scaled = apps.patch_namespaced_deployment(
        "m1", NAMESPACE, {"spec": {"replicas": 3}}, _content_type="application/merge-patch+json"
    )
    assert scaled.metadata.generation == 2
    status_only = apps.patch_namespaced_deployment_status(
        "m1",
        NAMESPACE,
        {"status": {"observedGeneration": 2}},
        _content_type="application/merge-patch+json",
    )
    assert status_only.metadata.generation == 2


def test_identical_replace_is_not_a_write(apps: client.AppsV1Api) -> None:
    """Writing back an unchanged object keeps its resourceVersion (no event, no bump)."""
    created = apps.create_namespaced_deployment(NAMESPACE, deployment("m1", replicas=0))

    # Zero replicas: the controller writes status once, then the object stays put.
    def observed() -> Any:
        found = apps.read_namespaced_deployment("m1", NAMESPACE)
        return found if found.status is not None and found.status.observed_generation else None

    current = wait_for(observed, what="status written")
    again = apps.replace_namespaced_deployment("m1", NAMESPACE, api_client_body(current))
    assert again.metadata.resource_version == current.metadata.resource_version
    assert created.metadata.uid == again.metadata.uid


def test_main_resource_write_ignores_status(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment(NAMESPACE, deployment("m1"))
    body = deployment("m1")
    body["status"] = {"replicas": 99}
    replaced = apps.replace_namespaced_deployment("m1", NAMESPACE, body)
    assert replaced.status is None or replaced.status.replicas != 99


def test_deployment_delete_answers_a_success_status_then_404(apps: client.AppsV1Api) -> None:
    """Like a real server, a Deployment DELETE answers a `Status`, not the deleted object."""
    created = apps.create_namespaced_deployment(NAMESPACE, deployment("m1"))
    deleted = apps.delete_namespaced_deployment("m1", NAMESPACE, _preload_content=False)
    assert json.loads(deleted.data) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {
            "name": "m1",
            "group": "apps",
            "kind": "deployments",
            "uid": created.metadata.uid,
        },
    }
    with pytest.raises(ApiException) as on_get:
        apps.read_namespaced_deployment("m1", NAMESPACE)
    assert on_get.value.status == 404
    with pytest.raises(ApiException) as on_second_delete:
        apps.delete_namespaced_deployment("m1", NAMESPACE)
    assert on_second_delete.value.status == 404


def test_service_delete_returns_the_deleted_object(core: client.CoreV1Api) -> None:
    created = core.create_namespaced_service(NAMESPACE, service("s1"))
    deleted = core.delete_namespaced_service("s1", NAMESPACE, _preload_content=False)
    body = json.loads(deleted.data)
    assert (body["kind"], body["metadata"]["uid"]) == ("Service", created.metadata.uid)
    with pytest.raises(ApiException) as on_second_delete:
        core.delete_namespaced_service("s1", NAMESPACE)
    assert on_second_delete.value.status == 404


def test_list_has_kind_resource_version_and_bare_items(api: Any) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(NAMESPACE, deployment("m1"))
    raw = apps.list_namespaced_deployment(NAMESPACE, _preload_content=False)
    body = json.loads(raw.data)
    assert body["kind"] == "DeploymentList"
    assert body["apiVersion"] == "apps/v1"
    assert body["metadata"]["resourceVersion"].isdigit()
    assert [item["metadata"]["name"] for item in body["items"]] == ["m1"]
    assert "kind" not in body["items"][0]
    assert "apiVersion" not in body["items"][0]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        pytest.param("app=m1", ["m1"], id="equality"),
        pytest.param("app==m2", ["m2"], id="double-equals"),
        pytest.param("tier!=canary", ["m1", "m3"], id="inequality-includes-missing"),
        pytest.param("app in (m1,m2)", ["m1", "m2"], id="in"),
        pytest.param("app notin (m1, m2)", ["m3"], id="notin"),
        pytest.param("tier", ["m2", "m3"], id="exists"),
        pytest.param("!tier", ["m1"], id="not-exists"),
        pytest.param("app in (m1,m2),!tier", ["m1"], id="combined"),
    ],
)
def test_label_selectors(core: client.CoreV1Api, selector: str, expected: list[str]) -> None:
    for name, labels in (("m1", {}), ("m2", {"tier": "canary"}), ("m3", {"tier": "main"})):
        body = service(name)
        body["metadata"]["labels"].update(labels)
        core.create_namespaced_service(NAMESPACE, body)
    found = core.list_namespaced_service(NAMESPACE, label_selector=selector)
    assert [s.metadata.name for s in found.items] == expected


def test_bad_label_selector_is_400(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        core.list_namespaced_service(NAMESPACE, label_selector="app in (a")
    assert caught.value.status == 400


def test_field_selector_by_name(core: client.CoreV1Api) -> None:
    for name in ("m1", "m2"):
        core.create_namespaced_service(NAMESPACE, service(name))
    found = core.list_namespaced_service(NAMESPACE, field_selector="metadata.name=m2")
    assert [s.metadata.name for s in found.items] == ["m2"]
    everywhere = core.list_service_for_all_namespaces(
        field_selector="metadata.namespace!=gco-inference"
    )
    assert everywhere.items == []


def test_list_pages_with_limit_and_continue(core: client.CoreV1Api) -> None:
    for index in range(5):
        core.create_namespaced_service(NAMESPACE, service(f"s{index}"))
    first = core.list_namespaced_service(NAMESPACE, limit=2)
    second = core.list_namespaced_service(NAMESPACE, limit=2, _continue=first.metadata._continue)
    third = core.list_namespaced_service(NAMESPACE, limit=2, _continue=second.metadata._continue)
    names = [s.metadata.name for page in (first, second, third) for s in page.items]
    assert names == ["s0", "s1", "s2", "s3", "s4"]
    assert third.metadata._continue is None


def test_invalid_object_is_422_with_causes(sim: Any) -> None:
    """Sent raw: the client itself refuses such a body before sending it."""
    body = deployment("m1")
    body["spec"]["replicas"] = "two"
    body["spec"]["template"]["spec"]["containers"][0]["bogus"] = True
    code, _, status = raw_request(
        sim.url, "POST", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments", body
    )
    assert code == 422
    assert status["kind"] == "Status"
    assert status["reason"] == "Invalid"
    fields = {c["field"] for c in status["details"]["causes"]}
    assert {"spec.replicas", "spec.template.spec.containers[0].bogus"} <= fields


def test_invalid_name_is_422(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_service(NAMESPACE, service("Not_Valid"))
    assert caught.value.status == 422
    assert status_of(caught.value)["details"]["causes"][0]["field"] == "metadata.name"


def test_deployment_selector_is_immutable(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment(NAMESPACE, deployment("m1"))
    changed = deployment("m1", labels={"v": "2"})
    changed["spec"]["selector"]["matchLabels"]["v"] = "2"
    with pytest.raises(ApiException) as caught:
        apps.replace_namespaced_deployment("m1", NAMESPACE, changed)
    assert caught.value.status == 422
    assert status_of(caught.value)["details"]["causes"][0]["field"] == "spec.selector"


def test_scale_subresource_reads_and_writes_replicas(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment(NAMESPACE, deployment("m1", replicas=2))
    scale = apps.read_namespaced_deployment_scale("m1", NAMESPACE)
    assert scale.spec.replicas == 2
    assert scale.status.selector == "app=m1"
    apps.patch_namespaced_deployment_scale(
        "m1", NAMESPACE, {"spec": {"replicas": 5}}, _content_type="application/merge-patch+json"
    )
    assert apps.read_namespaced_deployment("m1", NAMESPACE).spec.replicas == 5


def test_lease_race_gives_one_success_and_one_conflict(api: Any) -> None:
    """Two candidates renewing from the same read: one 200, one 409."""
    leases = client.CoordinationV1Api(api)
    leases.create_namespaced_lease(NAMESPACE, lease("leader", holder="a"))
    read = leases.read_namespaced_lease("leader", NAMESPACE)
    outcomes: list[int] = []
    lock = threading.Lock()

    def take(holder: str) -> None:
        body = api_client_body(read)
        body["spec"]["holderIdentity"] = holder
        try:
            leases.replace_namespaced_lease("leader", NAMESPACE, body)
            code = 200
        except ApiException as error:
            code = error.status
        with lock:
            outcomes.append(code)

    threads = [threading.Thread(target=take, args=(h,)) for h in ("b", "c")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == [200, 409]


def test_namespaces_exist_and_can_be_created_and_deleted(core: client.CoreV1Api) -> None:
    names = {n.metadata.name for n in core.list_namespace().items}
    assert {"default", "gco-inference"} <= names
    core.create_namespace({"metadata": {"name": "extra"}})
    core.create_namespaced_service("extra", service("s1"))
    core.delete_namespace("extra")
    with pytest.raises(ApiException) as caught:
        core.read_namespace("extra")
    assert caught.value.status == 404
    assert (
        core.list_service_for_all_namespaces(field_selector="metadata.namespace=extra").items == []
    )


def test_ingress_and_hpa_round_trip(api: Any) -> None:
    ingress = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "m1",
            "annotations": {
                "alb.ingress.kubernetes.io/actions.weighted": json.dumps(
                    {
                        "type": "forward",
                        "forwardConfig": {
                            "targetGroups": [
                                {"serviceName": "m1", "servicePort": "80", "weight": 90},
                                {"serviceName": "m1-canary", "servicePort": "80", "weight": 10},
                            ]
                        },
                    }
                )
            },
        },
        "spec": {
            "ingressClassName": "alb",
            "rules": [
                {
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {
                                    "service": {
                                        "name": "weighted",
                                        "port": {"name": "use-annotation"},
                                    }
                                },
                            }
                        ]
                    }
                }
            ],
        },
    }
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "m1"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "m1"},
            "minReplicas": 1,
            "maxReplicas": 4,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
        },
    }
    created_ingress = client.NetworkingV1Api(api).create_namespaced_ingress(NAMESPACE, ingress)
    created_hpa = client.AutoscalingV2Api(api).create_namespaced_horizontal_pod_autoscaler(
        NAMESPACE, hpa
    )
    assert created_ingress.spec.rules[0].http.paths[0].backend.service.name == "weighted"
    assert created_hpa.spec.max_replicas == 4
    client.AutoscalingV2Api(api).delete_namespaced_horizontal_pod_autoscaler("m1", NAMESPACE)


def test_pods_follow_deployment_replicas(apps: client.AppsV1Api, core: client.CoreV1Api) -> None:
    apps.create_namespaced_deployment(NAMESPACE, deployment("m1", replicas=3))
    pods = wait_for(
        lambda: (
            [
                p
                for p in core.list_namespaced_pod(NAMESPACE, label_selector="app=m1").items
                if p.status.container_statuses[0].ready
            ]
            or None
        )
    )
    assert len(core.list_namespaced_pod(NAMESPACE, label_selector="app=m1").items) == 3
    one = core.read_namespaced_pod(pods[0].metadata.name, NAMESPACE)
    assert one.metadata.name.startswith("m1-")


def test_discovery_documents(api: Any) -> None:
    assert client.VersionApi(api).get_code().major == "1"
    groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
    assert {"apps", "networking.k8s.io", "autoscaling", "coordination.k8s.io"} <= groups
    resources = {r.name for r in client.AppsV1Api(api).get_api_resources().resources}
    assert {"deployments", "deployments/status", "deployments/scale"} <= resources


def test_kubectl_table_view(sim: Any, apps: client.AppsV1Api) -> None:
    """`kubectl get` asks for a server-side Table and gets its usual columns."""
    apps.create_namespaced_deployment(NAMESPACE, deployment("m1", replicas=2))
    request = urllib.request.Request(
        f"{sim.url}/apis/apps/v1/namespaces/{NAMESPACE}/deployments",
        headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        table = json.loads(response.read())
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name",
        "Ready",
        "Up-to-date",
        "Available",
        "Age",
    ]
    assert table["rows"][0]["cells"][0] == "m1"


def test_core_kind_status_details_omit_the_group(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_service("absent", NAMESPACE)
    assert status_of(caught.value)["details"] == {"name": "absent", "kind": "services"}


def test_lease_micro_times_are_stored_in_utc_with_z(sim: Any) -> None:
    body = lease("leader")
    body["spec"]["renewTime"] = "2026-01-02T04:04:05.123456+01:00"
    code, _, created = raw_request(
        sim.url, "POST", f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases", body
    )
    assert code == 201
    assert created["spec"]["renewTime"] == "2026-01-02T03:04:05.123456Z"
    assert created["spec"]["acquireTime"] == "2026-01-02T03:04:05.123456Z"


def _ingress(name: str = "inference-m1", finalizers: list[str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if finalizers:
        metadata["finalizers"] = finalizers
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata,
        "spec": {"defaultBackend": {"service": {"name": "m1", "port": {"number": 80}}}},
    }


def _watch_types(sim: SimCluster, path: str, resource_version: str) -> list[tuple[str, Any]]:
    request = urllib.request.Request(
        f"{sim.url}{path}?watch=1&resourceVersion={resource_version}&timeoutSeconds=1"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        lines = [json.loads(line) for line in response.read().splitlines() if line.strip()]
    return [
        (e["type"], e["object"]["metadata"].get("deletionTimestamp") is not None)
        for e in lines
        if e["type"] != "BOOKMARK"
    ]


def test_delete_with_finalizers_marks_the_object_until_they_are_emptied(sim: SimCluster) -> None:
    path = f"/apis/networking.k8s.io/v1/namespaces/{NAMESPACE}/ingresses"
    status, _, created = raw_request(sim.url, "POST", path, _ingress(finalizers=["x.io/keep"]))
    assert status == 201
    start = created["metadata"]["resourceVersion"]
    status, _, deleted = raw_request(sim.url, "DELETE", f"{path}/inference-m1")
    assert status == 200
    assert deleted["metadata"]["deletionTimestamp"]
    assert deleted["metadata"]["generation"] == 2
    # Still there, marked; a second DELETE changes nothing.
    status, _, again = raw_request(sim.url, "DELETE", f"{path}/inference-m1")
    assert (status, again["metadata"]["resourceVersion"]) == (
        200,
        deleted["metadata"]["resourceVersion"],
    )
    status, _, live = raw_request(sim.url, "GET", f"{path}/inference-m1")
    assert status == 200
    assert live["metadata"]["deletionTimestamp"]
    # No new finalizer while deleting.
    status, _, refused = raw_request(
        sim.url,
        "PATCH",
        f"{path}/inference-m1",
        {"metadata": {"finalizers": ["x.io/keep", "y.io/new"]}},
        content_type="application/merge-patch+json",
    )
    assert (status, refused["reason"]) == (422, "Invalid")
    status, _, _ = raw_request(
        sim.url,
        "PATCH",
        f"{path}/inference-m1",
        {"metadata": {"finalizers": None}},
        content_type="application/merge-patch+json",
    )
    assert status == 200
    assert raw_request(sim.url, "GET", f"{path}/inference-m1")[0] == 404
    assert _watch_types(sim, path, start) == [
        ("MODIFIED", True),
        ("MODIFIED", True),
        ("DELETED", True),
    ]


def test_the_simulated_alb_controller_finalizes_ingresses(sim: SimCluster) -> None:
    path = f"/apis/networking.k8s.io/v1/namespaces/{NAMESPACE}/ingresses"
    sim.set_ingress_finalizer(0.3)
    assert raw_request(sim.url, "POST", path, _ingress())[0] == 201
    wait_for(
        lambda: (
            raw_request(sim.url, "GET", f"{path}/inference-m1")[2]["metadata"].get("finalizers")
            == ["ingress.k8s.aws/resources"]
        ),
        what="the ALB finalizer",
    )
    status, _, deleted = raw_request(sim.url, "DELETE", f"{path}/inference-m1")
    assert status == 200
    assert deleted["metadata"]["deletionTimestamp"]
    assert raw_request(sim.url, "GET", f"{path}/inference-m1")[0] == 200
    wait_for(
        lambda: raw_request(sim.url, "GET", f"{path}/inference-m1")[0] == 404,
        what="the Ingress gone once its finalizer is removed",
    )
    # Off again: a new Ingress is left alone and deleted at once.
    sim.set_ingress_finalizer(None)
    assert raw_request(sim.url, "POST", path, _ingress("plain"))[0] == 201
    assert raw_request(sim.url, "DELETE", f"{path}/plain")[0] == 200
    assert raw_request(sim.url, "GET", f"{path}/plain")[0] == 404


def test_an_empty_env_value_is_dropped_like_omitempty(apps: client.AppsV1Api) -> None:
    body = deployment("m1")
    body["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "EMPTY", "value": ""},
        {"name": "SET", "value": "1"},
    ]
    created = apps.create_namespaced_deployment(NAMESPACE, body, _preload_content=False)
    env = json.loads(created.data)["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "EMPTY"}, {"name": "SET", "value": "1"}]
    # Writing it again with the empty value is no change to the spec.
    replaced = apps.replace_namespaced_deployment("m1", NAMESPACE, body, _preload_content=False)
    assert json.loads(replaced.data)["metadata"]["generation"] == 1


def test_writes_record_managed_fields_per_manager_as_a_real_server_does(
    apps: client.AppsV1Api,
) -> None:
    """Objects carry a real server's managedFields: the client's Update entry for what it
    last wrote, the controller's status entry beside it; a write that changes nothing
    records nothing (no new resourceVersion)."""
    apps.create_namespaced_deployment(NAMESPACE, deployment("m1"))

    def managers() -> dict[tuple[str, str | None], Any]:
        live = apps.read_namespaced_deployment("m1", NAMESPACE)
        return {(e.manager, e.subresource): e for e in live.metadata.managed_fields or []}

    entries = wait_for(
        lambda: (m := managers()) and ("kube-controller-manager", "status") in m and m,
        what="the controller's status entry",
    )
    client_entry = entries[("OpenAPI-Generator", None)]
    assert client_entry.operation == "Update"
    assert client_entry.fields_type == "FieldsV1"
    containers = client_entry.fields_v1["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert 'k:{"name":"server"}' in containers
    assert "f:status" in entries[("kube-controller-manager", "status")].fields_v1
    live = apps.read_namespaced_deployment("m1", NAMESPACE)
    live.metadata.managed_fields = None
    again = apps.replace_namespaced_deployment("m1", NAMESPACE, live)
    assert again.metadata.resource_version == live.metadata.resource_version
    assert len(again.metadata.managed_fields) == 2
    again.metadata.labels["tier"] = "gold"
    changed = apps.replace_namespaced_deployment("m1", NAMESPACE, again)
    [entry] = [e for e in changed.metadata.managed_fields if e.manager == "OpenAPI-Generator"]
    assert "f:tier" in entry.fields_v1["f:metadata"]["f:labels"]
