"""API-level behaviours the daemon relies on (/work/shared/K8S-API-NOTES.md), asserted
through the real kubernetes client against both backends. k3s is the judge: where it
and `k8s.sim` disagree, the sim is wrong."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client

from tests.k3s.backends import REQUEST_TIMEOUT, Cluster
from tests.k3s.kit import rolled_out, wait_for

# The sim of this module keeps 200 watch events, so a few hundred writes make RV "1"
# too old (a real API server's watch cache starts well after RV 1 anyway).
SIM_HISTORY = 200
# Checks `k8s.sim` fails today (test name -> how it differs from a real server): run as
# strict expected failures on the sim only, so a fixed sim fails until the entry goes.
SIM_DEVIATIONS: dict[str, str] = {}
MODIFIED_MESSAGE = "the object has been modified; please apply your changes to the latest version"
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def _body(error: client.ApiException) -> dict[str, Any]:
    return json.loads(error.body or "{}")


def _failure(call: Any, *args: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    """The status code and Status body of a call that must fail."""
    with pytest.raises(client.ApiException) as caught:
        call(*args, _request_timeout=REQUEST_TIMEOUT, **kwargs)
    return caught.value.status, _body(caught.value)


def _code(call: Any, *args: Any, **kwargs: Any) -> int:
    """The HTTP status of a call, success or not."""
    try:
        call(*args, _preload_content=False, _request_timeout=REQUEST_TIMEOUT, **kwargs)
    except client.ApiException as error:
        return error.status
    return 200


def _raw(call: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """A successful call's JSON body as a dict (no model conversion)."""
    response = call(*args, _preload_content=False, _request_timeout=REQUEST_TIMEOUT, **kwargs)
    return json.loads(response.data)


def _send(
    cluster: Cluster, method: str, path: str, body: Any, *, content_type: str
) -> tuple[int, dict[str, Any]]:
    """One request exactly as given, through the client's own connection pool (TLS and
    client certificates from the kubeconfig): the 37.x client rewrites a json-patch
    content type to strategic merge when the body is not a list, so a typed call
    cannot send this."""
    configuration = cluster.api.configuration
    headers = {"Content-Type": content_type, "Accept": "application/json"}
    token = configuration.get_api_key_with_prefix("authorization")
    if token:
        headers["Authorization"] = token
    response = cluster.api.rest_client.pool_manager.request(
        method,
        configuration.host + path,
        body=json.dumps(body).encode(),
        headers=headers,
        timeout=REQUEST_TIMEOUT,
    )
    return response.status, json.loads(response.data or b"{}")


def _deployment(cluster: Cluster, name: str, *, replicas: int = 0) -> dict[str, Any]:
    """A Deployment of the model server; 0 replicas keeps real pods out of API checks."""
    template = cluster.pod_template("v1")
    template["metadata"] = {"labels": {"app": name}}
    template["spec"]["containers"][0]["env"] = [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "2"},
    ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": template,
        },
    }


def _lease(name: str, holder: str) -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15},
    }


def _service(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels},
        "spec": {"ports": [{"port": 80, "targetPort": 8000}], "selector": {"app": name}},
    }


def _assert_status(
    body: dict[str, Any], *, code: int, reason: str, details: dict[str, str], message: str
) -> None:
    """A failure `Status` as a real API server writes it."""
    assert body["kind"] == "Status", body
    assert body["apiVersion"] == "v1", body
    assert body["status"] == "Failure", body
    assert body["code"] == code, body
    assert body["reason"] == reason, body
    assert {k: body.get("details", {}).get(k) for k in details} == details, body
    assert message in body["message"], body


@pytest.fixture
def apps(backend: Cluster) -> client.AppsV1Api:
    return client.AppsV1Api(backend.api)


@pytest.fixture
def core(backend: Cluster) -> client.CoreV1Api:
    return client.CoreV1Api(backend.api)


@pytest.fixture
def leases(backend: Cluster) -> client.CoordinationV1Api:
    return client.CoordinationV1Api(backend.api)


def test_replace_with_a_stale_resource_version_is_409_conflict(
    backend: Cluster, apps: client.AppsV1Api
) -> None:
    ns = backend.namespace
    stale = _raw(apps.create_namespaced_deployment, ns, _deployment(backend, "f1"))
    _raw(
        apps.patch_namespaced_deployment,
        "f1",
        ns,
        {"metadata": {"labels": {"x": "1"}}},
        _content_type=MERGE,
    )
    stale["metadata"]["labels"]["y"] = "2"
    code, body = _failure(apps.replace_namespaced_deployment, "f1", ns, stale)
    assert code == 409
    _assert_status(
        body,
        code=409,
        reason="Conflict",
        details={"name": "f1", "group": "apps", "kind": "deployments"},
        message=f'Operation cannot be fulfilled on deployments.apps "f1": {MODIFIED_MESSAGE}',
    )


def test_create_of_an_existing_name_is_409_already_exists(
    backend: Cluster, apps: client.AppsV1Api
) -> None:
    ns = backend.namespace
    _raw(apps.create_namespaced_deployment, ns, _deployment(backend, "f1"))
    code, body = _failure(apps.create_namespaced_deployment, ns, _deployment(backend, "f1"))
    assert code == 409
    _assert_status(
        body,
        code=409,
        reason="AlreadyExists",
        details={"name": "f1", "group": "apps", "kind": "deployments"},
        message='deployments.apps "f1" already exists',
    )


def test_generation_moves_on_spec_and_deployment_annotation_changes_a_no_op_changes_nothing(
    backend: Cluster, apps: client.AppsV1Api, leases: client.CoordinationV1Api
) -> None:
    ns = backend.namespace
    created = _raw(apps.create_namespaced_deployment, ns, _deployment(backend, "f1"))
    assert created["metadata"]["generation"] == 1
    labelled = _raw(
        apps.patch_namespaced_deployment,
        "f1",
        ns,
        {"metadata": {"labels": {"x": "1"}}},
        _content_type=MERGE,
    )
    assert labelled["metadata"]["generation"] == 1
    assert labelled["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]
    # A Deployment's annotations are copied to its ReplicaSets, so the real server bumps
    # its generation on an annotation change too (apps/deployment strategy).
    annotated = _raw(
        apps.patch_namespaced_deployment,
        "f1",
        ns,
        {"metadata": {"annotations": {"note": "metadata only"}}},
        _content_type=MERGE,
    )
    assert annotated["metadata"]["generation"] == 2
    changed = _raw(
        apps.patch_namespaced_deployment,
        "f1",
        ns,
        {"spec": {"revisionHistoryLimit": 3}},
        _content_type=MERGE,
    )
    assert changed["metadata"]["generation"] == 3
    wait_for(
        lambda: (
            _raw(apps.read_namespaced_deployment, "f1", ns)
            .get("status", {})
            .get("observedGeneration")
            == 3
        ),
        timeout=backend.patience,
        what="observedGeneration to catch up",
    )
    # Leases have no controller writing behind the test's back.
    lease = _raw(leases.create_namespaced_lease, ns, _lease("l1", "a"))
    again = _raw(leases.replace_namespaced_lease, "l1", ns, lease)
    assert again["metadata"]["resourceVersion"] == lease["metadata"]["resourceVersion"]


def _watch_lines(
    call: Any, namespace: str, *, resource_version: str, seconds: int
) -> tuple[int, list[dict[str, Any]]]:
    """Watch from `resource_version` until the server ends it after `seconds`; the HTTP
    status and every event (an HTTP error gives its Status body as the one event)."""
    try:
        response = call(
            namespace,
            watch=True,
            resource_version=resource_version,
            timeout_seconds=seconds,
            _preload_content=False,
            _request_timeout=seconds + REQUEST_TIMEOUT,
        )
    except client.ApiException as error:
        return error.status, [_body(error)]
    try:
        lines = response.read().splitlines()
    finally:
        response.release_conn()
    return response.status, [json.loads(line) for line in lines if line.strip()]


def test_watch_resumes_after_a_resource_version_in_order(
    backend: Cluster, leases: client.CoordinationV1Api
) -> None:
    ns = backend.namespace
    first = _raw(leases.create_namespaced_lease, ns, _lease("l1", "a"))
    expected = []
    for holder in ("b", "c"):
        written = _raw(
            leases.patch_namespaced_lease,
            "l1",
            ns,
            {"spec": {"holderIdentity": holder}},
            _content_type=MERGE,
        )
        expected.append(("MODIFIED", "l1", holder, written["metadata"]["resourceVersion"]))
    second = _raw(leases.create_namespaced_lease, ns, _lease("l2", "z"))
    expected.append(("ADDED", "l2", "z", second["metadata"]["resourceVersion"]))
    status, events = _watch_lines(
        leases.list_namespaced_lease,
        ns,
        resource_version=first["metadata"]["resourceVersion"],
        seconds=2,
    )
    assert status == 200
    seen = [
        (
            e["type"],
            e["object"]["metadata"]["name"],
            e["object"]["spec"]["holderIdentity"],
            e["object"]["metadata"]["resourceVersion"],
        )
        for e in events
        if e["type"] != "BOOKMARK"
    ]
    assert seen == expected


def test_watch_from_a_too_old_resource_version_is_410_then_relist_and_watch_works(
    backend: Cluster, leases: client.CoordinationV1Api
) -> None:
    ns = backend.namespace
    _raw(leases.create_namespaced_lease, ns, _lease("l1", "a"))
    for i in range(SIM_HISTORY + 50):
        _raw(
            leases.patch_namespaced_lease,
            "l1",
            ns,
            {"spec": {"leaseTransitions": i}},
            _content_type=MERGE,
        )
    status, events = _watch_lines(leases.list_namespaced_lease, ns, resource_version="1", seconds=2)
    # Either form is the API's: an HTTP 410, or (what current servers send) an ERROR event.
    if status == 200:
        assert events, "no event at all"
        assert events[0]["type"] == "ERROR", events[0]
        error = events[0]["object"]
    else:
        error = events[0]
    assert status in (200, 410)
    assert error["kind"] == "Status", error
    assert error["code"] == 410, error
    assert error["reason"] in ("Expired", "Gone"), error
    # The client's recovery: list, then watch from the list's resourceVersion.
    listed = _raw(leases.list_namespaced_lease, ns)
    _raw(
        leases.patch_namespaced_lease,
        "l1",
        ns,
        {"spec": {"holderIdentity": "b"}},
        _content_type=MERGE,
    )
    status, events = _watch_lines(
        leases.list_namespaced_lease,
        ns,
        resource_version=listed["metadata"]["resourceVersion"],
        seconds=1,
    )
    assert status == 200
    changes = [e for e in events if e["type"] != "BOOKMARK"]
    assert [(e["type"], e["object"]["spec"]["holderIdentity"]) for e in changes] == [
        ("MODIFIED", "b")
    ]


def test_a_watch_from_a_compacted_resource_version_is_an_expired_error_event(
    compacting_backend: Cluster,
) -> None:
    """What a compaction itself shows a client. The real API server here has no watch
    cache, so etcd answers and compacts every second; the sim's compaction is its bounded
    history (`SIM_HISTORY` events), so the writes outnumber it. Once the list's
    resourceVersion is compacted, a watch from it is HTTP 200 with exactly one event, an
    ERROR whose object is a Status 410 Expired (nothing replayed before it); a new list
    and a watch from its resourceVersion then see the next change."""
    ns = compacting_backend.namespace
    leases = client.CoordinationV1Api(compacting_backend.api)
    _raw(leases.create_namespaced_lease, ns, _lease("l1", "a"))
    listed = _raw(leases.list_namespaced_lease, ns)["metadata"]["resourceVersion"]
    for i in range(SIM_HISTORY + 10):
        _raw(
            leases.patch_namespaced_lease,
            "l1",
            ns,
            {"spec": {"leaseTransitions": i}},
            _content_type=MERGE,
        )
    answers: list[tuple[int, list[dict[str, Any]]]] = []

    def compacted() -> bool:
        # Until etcd compacts (a few seconds), the watch replays the writes.
        answers.append(
            _watch_lines(leases.list_namespaced_lease, ns, resource_version=listed, seconds=1)
        )
        return any(e.get("type") == "ERROR" for e in answers[-1][1])

    wait_for(compacted, timeout=compacting_backend.patience, what="the list's version compacted")
    status, events = answers[-1]
    assert status == 200
    assert [e["type"] for e in events] == ["ERROR"], events
    error = events[0]["object"]
    # The message is the only difference: etcd's "The resourceVersion for the provided
    # watch is too old." on the real server, a watch cache's "too old resource version:
    # X (Y)" on the sim (real servers send both, from the two places).
    assert "too old" in error.pop("message"), error
    assert error == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "reason": "Expired",
        "code": 410,
    }
    relisted = _raw(leases.list_namespaced_lease, ns)["metadata"]["resourceVersion"]
    _raw(
        leases.patch_namespaced_lease,
        "l1",
        ns,
        {"spec": {"holderIdentity": "b"}},
        _content_type=MERGE,
    )
    status, events = _watch_lines(
        leases.list_namespaced_lease, ns, resource_version=relisted, seconds=1
    )
    assert status == 200
    changes = [e for e in events if e["type"] != "BOOKMARK"]
    assert [(e["type"], e["object"]["spec"]["holderIdentity"]) for e in changes] == [
        ("MODIFIED", "b")
    ]


def test_deleted_object_is_404_with_a_status_body(
    backend: Cluster, apps: client.AppsV1Api, core: client.CoreV1Api
) -> None:
    ns = backend.namespace
    _raw(apps.create_namespaced_deployment, ns, _deployment(backend, "f1"))
    deleted = _raw(
        apps.delete_namespaced_deployment, "f1", ns, body={"propagationPolicy": "Background"}
    )
    # The API returns the object, or a Status with status Success.
    assert deleted["kind"] in ("Deployment", "Status"), deleted
    if deleted["kind"] == "Status":
        assert deleted["status"] == "Success", deleted
    wait_for(
        lambda: _code(apps.read_namespaced_deployment, "f1", ns) == 404,
        timeout=backend.patience,
        what="the Deployment gone",
    )
    for call in (apps.read_namespaced_deployment, apps.delete_namespaced_deployment):
        code, body = _failure(call, "f1", ns)
        assert code == 404
        _assert_status(
            body,
            code=404,
            reason="NotFound",
            details={"name": "f1", "group": "apps", "kind": "deployments"},
            message='deployments.apps "f1" not found',
        )
    code, body = _failure(core.read_namespaced_service, "nope", ns)
    assert code == 404
    _assert_status(
        body,
        code=404,
        reason="NotFound",
        details={"name": "nope", "kind": "services"},
        message='services "nope" not found',
    )


def test_delete_of_a_deployment_answers_a_success_status(
    backend: Cluster, apps: client.AppsV1Api
) -> None:
    """Deployment storage does not return the deleted object (no `ReturnDeletedObject`,
    unlike pods): an immediate delete answers a Status naming what was deleted."""
    ns = backend.namespace
    created = _raw(apps.create_namespaced_deployment, ns, _deployment(backend, "f1"))
    deleted = _raw(
        apps.delete_namespaced_deployment, "f1", ns, body={"propagationPolicy": "Background"}
    )
    assert (deleted["kind"], deleted["apiVersion"], deleted["status"]) == (
        "Status",
        "v1",
        "Success",
    ), deleted
    assert deleted["details"] == {
        "name": "f1",
        "group": "apps",
        "kind": "deployments",
        "uid": created["metadata"]["uid"],
    }


def test_status_details_of_a_core_kind_omit_the_group(
    backend: Cluster, core: client.CoreV1Api
) -> None:
    code, body = _failure(core.read_namespaced_service, "nope", backend.namespace)
    assert code == 404
    # Go's StatusDetails.Group is `omitempty`: the core group "" is not written.
    assert body["details"] == {"name": "nope", "kind": "services"}


def _env(deployment: dict[str, Any], container: str = "server") -> dict[str, str]:
    for c in deployment["spec"]["template"]["spec"]["containers"]:
        if c["name"] == container:
            return {e["name"]: e.get("value", "") for e in c.get("env", [])}
    raise AssertionError(f"no container {container}")


def test_strategic_patch_merges_containers_and_env_by_name_merge_patch_replaces_lists(
    backend: Cluster, apps: client.AppsV1Api
) -> None:
    ns = backend.namespace
    _raw(apps.create_namespaced_deployment, ns, _deployment(backend, "f1"))
    strategic = _raw(
        apps.patch_namespaced_deployment,
        "f1",
        ns,
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "server",
                                "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}],
                            },
                            {"name": "sidecar", "image": backend.image("v2")},
                        ]
                    }
                }
            }
        },
        _content_type=STRATEGIC,
    )
    containers = {c["name"]: c for c in strategic["spec"]["template"]["spec"]["containers"]}
    assert set(containers) == {"server", "sidecar"}
    assert _env(strategic) == {"A": "1", "B": "20", "C": "3"}
    assert containers["server"]["image"] == backend.image("v1"), "untouched fields stay"
    assert "readinessProbe" in containers["server"]

    merged = _raw(
        apps.patch_namespaced_deployment,
        "f1",
        ns,
        {
            "metadata": {"labels": {"app": None}},
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "server",
                                "image": backend.image("v3"),
                                "env": [{"name": "D", "value": "4"}],
                            }
                        ]
                    }
                }
            },
        },
        _content_type=MERGE,
    )
    (only,) = merged["spec"]["template"]["spec"]["containers"]
    assert only["image"] == backend.image("v3")
    assert only["env"] == [{"name": "D", "value": "4"}]
    assert "readinessProbe" not in only, "a merge patch replaces the list element whole"
    assert "app" not in merged["metadata"].get("labels", {}), "null deletes the key"


def test_json_patch_content_type_with_an_object_body_is_400(
    backend: Cluster, apps: client.AppsV1Api
) -> None:
    ns = backend.namespace
    _raw(apps.create_namespaced_deployment, ns, _deployment(backend, "f1"))
    code, body = _send(
        backend,
        "PATCH",
        f"/apis/apps/v1/namespaces/{ns}/deployments/f1",
        {"spec": {"revisionHistoryLimit": 3}},
        content_type=JSON_PATCH,
    )
    assert code == 400
    assert (body["kind"], body["status"], body["reason"], body["code"]) == (
        "Status",
        "Failure",
        "BadRequest",
        400,
    ), body
    patched = _raw(
        apps.patch_namespaced_deployment,
        "f1",
        ns,
        [{"op": "replace", "path": "/spec/revisionHistoryLimit", "value": 3}],
        _content_type=JSON_PATCH,
    )
    assert patched["spec"]["revisionHistoryLimit"] == 3


def _conditions(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in deployment.get("status", {}).get("conditions", [])}


def _watch_until(
    backend: Cluster, name: str, resource_version: str, done: Any
) -> list[dict[str, Any]]:
    """Every version of Deployment `name` after `resource_version`, until `done(obj)`."""
    apps = client.AppsV1Api(backend.api)
    response = apps.list_namespaced_deployment(
        backend.namespace,
        watch=True,
        resource_version=resource_version,
        field_selector=f"metadata.name={name}",
        timeout_seconds=int(backend.patience),
        _preload_content=False,
        _request_timeout=backend.patience + REQUEST_TIMEOUT,
    )
    seen: list[dict[str, Any]] = []
    try:
        for line in response:
            if not line.strip():
                continue
            event = json.loads(line)
            assert event["type"] in ("MODIFIED", "BOOKMARK"), event
            if event["type"] == "MODIFIED":
                seen.append(event["object"])
                if done(event["object"]):
                    break
    finally:
        response.close()
        response.release_conn()
    return seen


def test_deployment_status_through_a_rollout(backend: Cluster, apps: client.AppsV1Api) -> None:
    ns = backend.namespace
    _raw(apps.create_namespaced_deployment, ns, _deployment(backend, "f1", replicas=2))
    ready = wait_for(
        lambda: (d := _raw(apps.read_namespaced_deployment, "f1", ns)) and rolled_out(d, 2) and d,
        timeout=backend.patience,
        what="the first rollout",
    )
    conditions = _conditions(ready)
    assert (conditions["Available"]["status"], conditions["Available"]["reason"]) == (
        "True",
        "MinimumReplicasAvailable",
    )
    assert (conditions["Progressing"]["status"], conditions["Progressing"]["reason"]) == (
        "True",
        "NewReplicaSetAvailable",
    )
    assert "unavailableReplicas" not in ready["status"], "zero fields are omitted"
    for condition in conditions.values():
        assert condition["lastUpdateTime"].endswith("Z")
        assert condition["lastTransitionTime"].endswith("Z")

    changed = _raw(
        apps.patch_namespaced_deployment,
        "f1",
        ns,
        {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "server", "image": backend.image("v2")}]}
                }
            }
        },
        _content_type=STRATEGIC,
    )
    assert changed["metadata"]["generation"] == 2
    assert changed["status"]["observedGeneration"] == 1, "a spec write leaves status alone"
    versions = _watch_until(
        backend, "f1", changed["metadata"]["resourceVersion"], lambda d: rolled_out(d, 2)
    )
    assert rolled_out(versions[-1], 2), versions[-1]["status"]
    during = [
        d["status"]
        for d in versions
        if d["status"].get("observedGeneration") == 2 and not rolled_out(d, 2)
    ]
    assert during, "the rollout was never observed in progress"
    assert any(
        s.get("updatedReplicas", 0) < s.get("replicas", 0)
        or s.get("availableReplicas", 0) < 2
        or _conditions({"status": s})["Progressing"]["reason"] == "ReplicaSetUpdated"
        for s in during
    ), during
    final = _conditions(versions[-1])
    assert final["Progressing"]["reason"] == "NewReplicaSetAvailable"
    assert final["Available"]["status"] == "True"


def test_rollout_keeps_within_max_surge_and_counts_updated_pods_before_they_are_ready(
    backend: Cluster, apps: client.AppsV1Api
) -> None:
    """Default RollingUpdate of 2 replicas: maxSurge 25 % rounds up to 1 and
    maxUnavailable 25 % rounds down to 0, so there are never more than 3 pods and never
    fewer than 2 available; `updatedReplicas` counts new pods whether ready or not."""
    ns = backend.namespace
    _raw(apps.create_namespaced_deployment, ns, _deployment(backend, "f1", replicas=2))
    wait_for(
        lambda: rolled_out(_raw(apps.read_namespaced_deployment, "f1", ns), 2),
        timeout=backend.patience,
        what="the first rollout",
    )
    changed = _raw(
        apps.patch_namespaced_deployment,
        "f1",
        ns,
        {"spec": {"template": {"metadata": {"annotations": {"restartedAt": "now"}}}}},
        _content_type=STRATEGIC,
    )
    versions = _watch_until(
        backend, "f1", changed["metadata"]["resourceVersion"], lambda d: rolled_out(d, 2)
    )
    during = [
        d["status"]
        for d in versions
        if d["status"].get("observedGeneration") == 2 and not rolled_out(d, 2)
    ]
    assert during, "the rollout was never observed in progress"
    for status in during:
        assert status.get("replicas", 0) <= 3, status
        assert status.get("availableReplicas", 0) >= 2, status
    assert any(
        s.get("updatedReplicas", 0) > 0 and s.get("readyReplicas", 0) < s.get("replicas", 0)
        for s in during
    ), during


def test_scaled_to_zero_deployment_stays_available_with_zero_fields_omitted(
    backend: Cluster, apps: client.AppsV1Api
) -> None:
    ns = backend.namespace
    _raw(apps.create_namespaced_deployment, ns, _deployment(backend, "f1", replicas=1))
    wait_for(
        lambda: rolled_out(_raw(apps.read_namespaced_deployment, "f1", ns), 1),
        timeout=backend.patience,
        what="one ready replica",
    )
    _raw(
        apps.patch_namespaced_deployment,
        "f1",
        ns,
        {"spec": {"replicas": 0}},
        _content_type=MERGE,
    )
    scaled = wait_for(
        lambda: (d := _raw(apps.read_namespaced_deployment, "f1", ns)) and rolled_out(d, 0) and d,
        timeout=backend.patience,
        what="zero replicas",
    )
    for field in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas"):
        assert field not in scaled["status"], f"{field} should be omitted at 0: {scaled['status']}"
    available = _conditions(scaled)["Available"]
    assert (available["status"], available["reason"]) == ("True", "MinimumReplicasAvailable")


def test_never_ready_deployment_is_unavailable_then_exceeds_its_progress_deadline(
    backend: Cluster, apps: client.AppsV1Api
) -> None:
    ns = backend.namespace
    deployment = _deployment(backend, "f1", replicas=1)
    deployment["spec"]["progressDeadlineSeconds"] = 2
    deployment["spec"]["template"] = {
        "metadata": {"labels": {"app": "f1"}},
        **backend.pod_template(healthy=False),
    }
    _raw(apps.create_namespaced_deployment, ns, deployment)

    def unavailable() -> dict[str, Any] | None:
        d = _raw(apps.read_namespaced_deployment, "f1", ns)
        status = d.get("status", {})
        # A real controller's first status for the generation can come before the
        # ReplicaSet has its pod (unavailableReplicas 1, no updatedReplicas yet): wait for
        # the pod to count rather than catch that intermediate status.
        ok = (
            status.get("observedGeneration") == 1
            and status.get("unavailableReplicas") == 1
            and status.get("updatedReplicas") == 1
        )
        return d if ok and "Available" in _conditions(d) else None

    found = wait_for(unavailable, timeout=backend.patience, what="an unavailable Deployment")
    available = _conditions(found)["Available"]
    assert (available["status"], available["reason"]) == ("False", "MinimumReplicasUnavailable")
    assert not found["status"].get("readyReplicas")
    assert not found["status"].get("availableReplicas")
    # Past progressDeadlineSeconds the controller marks the rollout as failed.
    stuck = wait_for(
        lambda: (
            (d := _raw(apps.read_namespaced_deployment, "f1", ns))
            and _conditions(d)["Progressing"]["status"] == "False"
            and d
        ),
        timeout=backend.patience,
        what="ProgressDeadlineExceeded",
    )
    assert _conditions(stuck)["Progressing"]["reason"] == "ProgressDeadlineExceeded"
    assert _conditions(stuck)["Available"]["status"] == "False"


# selector -> the Services it selects, of those created by `test_label_selectors`.
SELECTOR_CASES = {
    "app=a": {"s-a", "s-d"},
    "tier!=canary": {"s-a", "s-c", "s-d"},  # != matches objects without the label
    "env in (x,y)": {"s-a", "s-b"},
    "env notin (x)": {"s-b", "s-c", "s-d"},  # notin matches objects without the label
    "!legacy": {"s-a", "s-b", "s-d"},
    "tier": {"s-a", "s-b", "s-d"},
    "app=a,env": {"s-a"},
}


def test_label_selectors(backend: Cluster, core: client.CoreV1Api) -> None:
    ns = backend.namespace
    for name, labels in (
        ("s-a", {"app": "a", "tier": "web", "env": "x"}),
        ("s-b", {"app": "b", "tier": "canary", "env": "y"}),
        ("s-c", {"app": "c", "env": "z", "legacy": "true"}),
        ("s-d", {"app": "a", "tier": "web"}),
    ):
        _raw(core.create_namespaced_service, ns, _service(name, labels))
    selected = {
        selector: {
            i["metadata"]["name"]
            for i in _raw(core.list_namespaced_service, ns, label_selector=selector)["items"]
        }
        for selector in SELECTOR_CASES
    }
    assert selected == SELECTOR_CASES
    by_name = _raw(core.list_namespaced_service, ns, field_selector="metadata.name=s-c")
    assert [i["metadata"]["name"] for i in by_name["items"]] == ["s-c"]


def test_racing_lease_puts_one_wins_the_other_gets_409(
    backend: Cluster, leases: client.CoordinationV1Api
) -> None:
    ns = backend.namespace
    _raw(leases.create_namespaced_lease, ns, _lease("leader", ""))
    # Both candidates read the same version, then each PUTs its claim with it.
    claim_a = _raw(leases.read_namespaced_lease, "leader", ns)
    claim_b = json.loads(json.dumps(claim_a))
    claim_a["spec"]["holderIdentity"] = "a"
    claim_b["spec"]["holderIdentity"] = "b"
    won = _raw(leases.replace_namespaced_lease, "leader", ns, claim_a)
    assert won["spec"]["holderIdentity"] == "a"
    code, body = _failure(leases.replace_namespaced_lease, "leader", ns, claim_b)
    assert code == 409
    _assert_status(
        body,
        code=409,
        reason="Conflict",
        details={"name": "leader", "group": "coordination.k8s.io", "kind": "leases"},
        message=f'Operation cannot be fulfilled on leases.coordination.k8s.io "leader": '
        f"{MODIFIED_MESSAGE}",
    )
    assert _raw(leases.read_namespaced_lease, "leader", ns)["spec"]["holderIdentity"] == "a"


def test_lease_micro_time_is_written_back_in_utc_with_z(
    backend: Cluster, leases: client.CoordinationV1Api
) -> None:
    lease = _lease("leader", "a")
    lease["spec"]["renewTime"] = "2026-01-02T04:04:05.123456+01:00"
    lease["spec"]["acquireTime"] = "2026-01-02T03:04:05.123456Z"
    created = _raw(leases.create_namespaced_lease, backend.namespace, lease)
    # MicroTime is serialised as RFC 3339 in UTC with six fractional digits and "Z".
    assert created["spec"]["renewTime"] == "2026-01-02T03:04:05.123456Z"
    assert created["spec"]["acquireTime"] == "2026-01-02T03:04:05.123456Z"


def test_watch_from_a_resource_version_the_server_has_not_reached_never_replays(
    backend: Cluster, leases: client.CoordinationV1Api
) -> None:
    """A resourceVersion from another history (as after an etcd restore) cannot be
    resumed from. The sim answers 410 Expired (an ERROR event); a real watch cache may
    instead stay silent until it reaches it, or answer "Too large resource version"
    (504) - which is why the informer also compares the server's list resourceVersion
    with the newest it saw. What must never happen is an event at or below it."""
    ns = backend.namespace
    _raw(leases.create_namespaced_lease, ns, _lease("l1", "a"))
    listed = _raw(leases.list_namespaced_lease, ns)["metadata"]["resourceVersion"]
    future = int(listed) + 1_000_000
    status, events = _watch_lines(
        leases.list_namespaced_lease, ns, resource_version=str(future), seconds=2
    )
    changes = [e for e in events if e.get("type") not in ("BOOKMARK", "ERROR")]
    if status != 200:
        changes = []
        errors = events
    else:
        errors = [e["object"] for e in events if e.get("type") == "ERROR"]
    assert changes == [], changes
    for error in errors:
        assert error["kind"] == "Status", error
        assert (error["code"], error["reason"]) in (
            (410, "Expired"),
            (410, "Gone"),
            (504, "Timeout"),
        )
    if backend.name == "sim":
        assert [(e["code"], e["reason"]) for e in errors] == [(410, "Expired")]


def test_an_empty_env_value_is_not_stored(backend: Cluster, apps: client.AppsV1Api) -> None:
    """EnvVar.value is `omitempty`: sent empty, it comes back absent (so a drift check
    comparing with what it sent must treat the two alike)."""
    ns = backend.namespace
    body = _deployment(backend, "f-env")
    body["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "EMPTY", "value": ""},
        {"name": "SET", "value": "1"},
    ]
    created = _raw(apps.create_namespaced_deployment, ns, body)
    env = created["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "EMPTY"}, {"name": "SET", "value": "1"}]


def test_delete_with_a_finalizer_sets_deletion_timestamp_then_the_object_goes(
    backend: Cluster, core: client.CoreV1Api
) -> None:
    ns = backend.namespace
    body = _service("f-fin", {"app": "f-fin"})
    body["metadata"]["finalizers"] = ["example.com/hold"]
    _raw(core.create_namespaced_service, ns, body)
    deleted = _raw(core.delete_namespaced_service, "f-fin", ns)
    assert deleted["kind"] == "Service", deleted
    assert deleted["metadata"]["deletionTimestamp"], deleted
    live = _raw(core.read_namespaced_service, "f-fin", ns)
    assert live["metadata"]["deletionTimestamp"]
    assert live["metadata"]["finalizers"] == ["example.com/hold"]
    _raw(
        core.patch_namespaced_service,
        "f-fin",
        ns,
        {"metadata": {"finalizers": None}},
        _content_type=MERGE,
    )
    wait_for(
        lambda: _code(core.read_namespaced_service, "f-fin", ns) == 404,
        timeout=backend.patience,
        what="the Service gone once its finalizer is removed",
    )
