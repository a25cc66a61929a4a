"""Drift: a live object equal to what we built (plus the server's defaults) needs no
write; any change to a field we own does; a replace keeps what is not ours."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from k8s.drift import is_adoptable, is_managed, needs_update, replacement
from k8s.manifests import build_objects, object_key
from k8s.workload import (
    INSTANCE_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    REPLICAS_OWNER_ANNOTATION,
    SPEC_HASH_ANNOTATION,
    Autoscaling,
    CanaryWorkload,
    Workload,
)

Obj = dict[str, Any]

PREDECESSOR_LABELS = {"app": "m1", "project": "gco", "gco.io/type": "inference"}


def workload(**changes: Any) -> Workload:
    base = Workload(
        name="m1",
        namespace="gco-inference",
        image="vllm/vllm-openai:v0.6.3",
        env=(("HF_HOME", "/models/cache"), ("MAX_BATCH", "8")),
        requests=(("cpu", "0.5"), ("memory", "4096Mi")),
        model_source="s3://models/llama-3",
        canary=CanaryWorkload(image="vllm/vllm-openai:v0.7.0"),
        autoscaling=Autoscaling(min_replicas=2, max_replicas=6),
    )
    return dataclasses.replace(base, **changes)


def desired(kind: str, name: str = "m1", **changes: Any) -> Obj:
    """The object `(kind, name)` of the test workload, as built."""
    objects = {object_key(obj): obj for obj in build_objects(workload(**changes))}
    return objects[kind, name]


def _default_container(container: Obj) -> None:
    container.setdefault("imagePullPolicy", "IfNotPresent")
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    for probe in ("livenessProbe", "readinessProbe"):
        if probe in container:
            container[probe]["httpGet"].setdefault("scheme", "HTTP")
            container[probe].setdefault("timeoutSeconds", 1)
            container[probe].setdefault("successThreshold", 1)
    # The server canonicalises quantities: 0.5 cpu is stored as 500m, 4096Mi as 4Gi.
    for group in container.get("resources", {}).values():
        for key, value in group.items():
            group[key] = {"0.5": "500m", "4096Mi": "4Gi"}.get(value, value)


def as_server_returns(obj: Obj, *, replicas: int | None = None) -> Obj:
    """`obj` as a real API server returns it after creating it: identity, defaults,
    status, another controller's annotation; `replicas` as an HPA may have set them."""
    live = copy.deepcopy(obj)
    meta = live["metadata"]
    meta.update(
        uid="0b1c6f3e-1111-2222-3333-444455556666",
        resourceVersion="4711",
        generation=1,
        creationTimestamp="2026-11-25T14:00:00Z",
        managedFields=[{"manager": "inference-supervisor", "operation": "Update"}],
    )
    spec = live["spec"]
    if live["kind"] == "Deployment":
        meta["annotations"]["deployment.kubernetes.io/revision"] = "1"
        spec.update(
            progressDeadlineSeconds=600,
            revisionHistoryLimit=10,
            strategy={
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
        )
        if replicas is not None:
            spec["replicas"] = replicas
        template = spec["template"]
        template["metadata"]["creationTimestamp"] = None
        pod = template["spec"]
        pod.update(
            restartPolicy="Always",
            dnsPolicy="ClusterFirst",
            schedulerName="default-scheduler",
            securityContext={},
            terminationGracePeriodSeconds=30,
            serviceAccount=pod["serviceAccountName"],
        )
        for container in pod["containers"] + pod.get("initContainers", []):
            _default_container(container)
        for volume in pod.get("volumes", []):
            volume["persistentVolumeClaim"].setdefault("readOnly", False)
        live["status"] = {"observedGeneration": 1, "replicas": 2, "readyReplicas": 2}
    elif live["kind"] == "Service":
        spec.update(
            clusterIP="10.100.7.9",
            clusterIPs=["10.100.7.9"],
            ipFamilies=["IPv4"],
            ipFamilyPolicy="SingleStack",
            sessionAffinity="None",
            internalTrafficPolicy="Cluster",
        )
        live["status"] = {"loadBalancer": {}}
    elif live["kind"] == "Ingress":
        meta["finalizers"] = ["ingress.k8s.aws/resources"]
        live["status"] = {"loadBalancer": {"ingress": [{"hostname": "k8s-alb.example.com"}]}}
    elif live["kind"] == "HorizontalPodAutoscaler":
        spec["behavior"] = {
            "scaleDown": {"stabilizationWindowSeconds": 300, "selectPolicy": "Max"},
            "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max"},
        }
        live["status"] = {"currentReplicas": 2, "desiredReplicas": 2}
    return live


ALL_KEYS = [
    ("Deployment", "m1"),
    ("Deployment", "m1-canary"),
    ("Service", "m1"),
    ("Service", "m1-canary"),
    ("Ingress", "inference-m1"),
    ("HorizontalPodAutoscaler", "m1"),
]


@pytest.mark.parametrize(("kind", "name"), ALL_KEYS)
def test_server_defaulted_copy_of_desired_needs_no_update(kind: str, name: str) -> None:
    """Steady state writes nothing: defaults, identity, status and canonical quantities
    added by the server are not drift."""
    want = desired(kind, name)
    assert needs_update(as_server_returns(want), want) is False


def test_replicas_changed_by_the_hpa_are_not_drift() -> None:
    want = desired("Deployment")
    assert want["metadata"]["annotations"][REPLICAS_OWNER_ANNOTATION] == "hpa"
    assert needs_update(as_server_returns(want, replicas=5), want) is False


def _set_image(live: Obj) -> None:
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "vllm/vllm-openai:old"


def _drop_env(live: Obj) -> None:
    live["spec"]["template"]["spec"]["containers"][0]["env"].pop()


def _drop_all_env(live: Obj) -> None:
    del live["spec"]["template"]["spec"]["containers"][0]["env"]


def _add_env(live: Obj) -> None:
    env = live["spec"]["template"]["spec"]["containers"][0]["env"]
    env.append({"name": "DEBUG", "value": "1"})


def _probe_path(live: Obj) -> None:
    probe = live["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    probe["httpGet"]["path"] = "/"


def _memory(live: Obj) -> None:
    live["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] = "8Gi"


def _replicas(live: Obj) -> None:
    live["spec"]["replicas"] = 0


def _our_label_removed(live: Obj) -> None:
    del live["metadata"]["labels"][INSTANCE_LABEL]


def _hash(live: Obj) -> None:
    live["metadata"]["annotations"][SPEC_HASH_ANNOTATION] = "0000000000000000"


def _target_port(live: Obj) -> None:
    live["spec"]["ports"][0]["targetPort"] = 9000


def _selector(live: Obj) -> None:
    live["spec"]["selector"] = {"app": "someone-else"}


def _weight(live: Obj) -> None:
    key = "alb.ingress.kubernetes.io/actions.weighted-routing"
    live["metadata"]["annotations"][key] = live["metadata"]["annotations"][key].replace(
        '"weight":90', '"weight":50'
    )


def _max_replicas(live: Obj) -> None:
    live["spec"]["maxReplicas"] = 3


DRIFTS: list[Any] = [
    pytest.param(("Deployment", "m1"), _set_image, id="image-changed"),
    pytest.param(("Deployment", "m1"), _drop_env, id="env-var-removed"),
    pytest.param(("Deployment", "m1"), _drop_all_env, id="env-removed"),
    pytest.param(("Deployment", "m1"), _add_env, id="env-var-added"),
    pytest.param(("Deployment", "m1"), _probe_path, id="probe-changed"),
    pytest.param(("Deployment", "m1"), _memory, id="limit-changed"),
    pytest.param(("Deployment", "m1"), _our_label_removed, id="our-label-removed"),
    pytest.param(("Deployment", "m1"), _hash, id="spec-hash-differs"),
    pytest.param(("Deployment", "m1-canary"), _replicas, id="canary-replicas"),
    pytest.param(("Deployment", "m1-canary"), _set_image, id="canary-image"),
    pytest.param(("Service", "m1"), _target_port, id="service-port"),
    pytest.param(("Service", "m1"), _selector, id="service-selector"),
    pytest.param(("Ingress", "inference-m1"), _weight, id="canary-weight"),
    pytest.param(("HorizontalPodAutoscaler", "m1"), _max_replicas, id="hpa-max"),
]


@pytest.mark.parametrize(("key", "change"), DRIFTS)
def test_change_to_a_field_we_own_needs_update(
    key: tuple[str, str], change: Callable[[Obj], None]
) -> None:
    want = desired(*key)
    live = as_server_returns(want)
    change(live)
    assert needs_update(live, want) is True


@pytest.mark.parametrize(("key", "change"), DRIFTS)
def test_replacement_of_a_drifted_object_needs_no_further_update(
    key: tuple[str, str], change: Callable[[Obj], None]
) -> None:
    """What replacement() writes, once stored by the server, is the steady state."""
    want = desired(*key)
    live = as_server_returns(want)
    change(live)
    body = replacement(live, want)
    assert body["metadata"]["resourceVersion"] == "4711"
    assert "status" not in body
    assert needs_update(as_server_returns(body), want) is False


def test_replicas_are_drift_when_no_hpa_owns_them() -> None:
    """Start after stop must scale back up (0 live replicas is not 'already set')."""
    want = desired("Deployment", autoscaling=None, replicas=3)
    live = as_server_returns(desired("Deployment", autoscaling=None, stopped=True))
    assert needs_update(live, want) is True
    assert replacement(live, want)["spec"]["replicas"] == 3


def test_stopping_an_autoscaled_deployment_writes_zero_and_drops_the_hpa_annotation() -> None:
    live = as_server_returns(desired("Deployment"), replicas=5)
    want = desired("Deployment", stopped=True)
    assert needs_update(live, want) is True
    body = replacement(live, want)
    assert body["spec"]["replicas"] == 0
    assert REPLICAS_OWNER_ANNOTATION not in body["metadata"]["annotations"]


def test_replacement_keeps_hpa_owned_replicas_from_live() -> None:
    want = desired("Deployment", image="vllm/vllm-openai:v0.6.4")
    live = as_server_returns(desired("Deployment"), replicas=5)
    assert needs_update(live, want) is True
    assert replacement(live, want)["spec"]["replicas"] == 5


def test_replacement_keeps_foreign_labels_annotations_and_finalizers() -> None:
    want = desired("Ingress", "inference-m1")
    live = as_server_returns(want)
    live["metadata"]["labels"]["team"] = "ml"
    live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = "{}"
    body = replacement(live, want)
    assert body["metadata"]["labels"]["team"] == "ml"
    assert body["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] == (
        "{}"
    )
    assert body["metadata"]["finalizers"] == ["ingress.k8s.aws/resources"]
    assert body["metadata"]["labels"][MANAGED_BY_LABEL] == MANAGED_BY_VALUE


def test_foreign_label_alone_is_not_drift() -> None:
    want = desired("Service")
    live = as_server_returns(want)
    live["metadata"]["labels"]["team"] = "ml"
    assert needs_update(live, want) is False


def test_replacement_drops_our_keys_we_no_longer_set() -> None:
    """Canary removed: the weighted action annotation and the canary label go with it."""
    live = as_server_returns(desired("Ingress", "inference-m1"))
    want = desired("Ingress", "inference-m1", canary=None)
    assert needs_update(live, want) is True
    body = replacement(live, want)
    assert (
        "alb.ingress.kubernetes.io/actions.weighted-routing" not in body["metadata"]["annotations"]
    )
    assert "gco.io/canary" not in body["metadata"]["labels"]
    assert body["spec"]["rules"][0]["http"]["paths"][0]["backend"] == {
        "service": {"name": "m1", "port": {"number": 80}}
    }


def test_replacement_keeps_the_service_cluster_ip() -> None:
    want = desired("Service", port=9000)
    live = as_server_returns(desired("Service"))
    body = replacement(live, want)
    assert (body["spec"]["clusterIP"], body["spec"]["clusterIPs"]) == (
        "10.100.7.9",
        ["10.100.7.9"],
    )
    assert body["spec"]["ports"][0]["targetPort"] == 9000


def test_replacement_does_not_modify_its_arguments() -> None:
    want = desired("Service", port=9000)
    live = as_server_returns(desired("Service"))
    want_before, live_before = copy.deepcopy(want), copy.deepcopy(live)
    replacement(live, want)
    assert (want, live) == (want_before, live_before)


def _predecessor_deployment() -> Obj:
    """A Deployment as GCO's inference monitor created it (no labels of ours)."""
    ours = desired("Deployment", autoscaling=None)
    live = as_server_returns(ours)
    live["metadata"]["labels"] = dict(PREDECESSOR_LABELS)
    live["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "3"}
    live["spec"]["template"]["metadata"]["labels"] = dict(PREDECESSOR_LABELS)
    return live


def test_predecessor_object_is_adoptable_and_needs_update() -> None:
    live = _predecessor_deployment()
    want = desired("Deployment", autoscaling=None)
    assert (is_adoptable(live), is_managed(live)) == (True, False)
    assert needs_update(live, want) is True


def test_adoption_replacement_adds_our_labels_and_keeps_the_selector() -> None:
    live = _predecessor_deployment()
    want = desired("Deployment", autoscaling=None)
    body = replacement(live, want)
    assert body["metadata"]["labels"][MANAGED_BY_LABEL] == MANAGED_BY_VALUE
    assert body["metadata"]["labels"][INSTANCE_LABEL] == "m1"
    assert body["spec"]["selector"] == live["spec"]["selector"]
    assert body["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    adopted = as_server_returns(body)
    assert (is_managed(adopted), is_adoptable(adopted)) == (True, False)
    assert needs_update(adopted, want) is False


@pytest.mark.parametrize(
    ("labels", "managed", "adoptable"),
    [
        pytest.param({MANAGED_BY_LABEL: MANAGED_BY_VALUE, **PREDECESSOR_LABELS}, True, False),
        pytest.param(PREDECESSOR_LABELS, False, True, id="predecessor"),
        pytest.param({"project": "gco"}, False, False, id="gco-but-not-inference"),
        pytest.param({MANAGED_BY_LABEL: "helm", "app": "m1"}, False, False, id="helm"),
        pytest.param({}, False, False, id="unlabelled"),
    ],
)
def test_ownership_is_read_from_labels(
    labels: dict[str, str], managed: bool, adoptable: bool
) -> None:
    obj = {"kind": "Service", "metadata": {"name": "m1", "labels": labels}}
    assert (is_managed(obj), is_adoptable(obj)) == (managed, adoptable)


def test_objects_without_labels_are_neither_managed_nor_adoptable() -> None:
    obj: Obj = {"kind": "Service", "metadata": {"name": "m1"}}
    assert (is_managed(obj), is_adoptable(obj)) == (False, False)


@pytest.mark.parametrize(
    ("live_value", "expected"),
    [
        pytest.param("500m", False, id="canonical-form"),
        pytest.param("0.5", False, id="same-text"),
        pytest.param("1", True, id="different-value"),
    ],
)
def test_resource_quantities_compare_by_value(live_value: str, expected: bool) -> None:
    want = desired("Deployment")
    live = as_server_returns(want)
    live["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] = live_value
    assert needs_update(live, want) is expected


def test_quantity_lookalikes_outside_resources_compare_as_text() -> None:
    """An env value `0.5` is not a quantity: `500m` there is drift."""
    want = desired("Deployment", env=(("RATIO", "0.5"),))
    live = as_server_returns(want)
    live["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = "500m"
    assert needs_update(live, want) is True


def test_starting_an_autoscaled_deployment_from_zero_writes_the_min_replicas() -> None:
    """Defect 1 with an HPA: no HPA scales up from 0, so a live 0 is not the HPA's count."""
    want = desired("Deployment")
    live = as_server_returns(want, replicas=0)
    assert needs_update(live, want) is True
    assert replacement(live, want)["spec"]["replicas"] == want["spec"]["replicas"] > 0


def _pod(live: Obj) -> Obj:
    return live["spec"]["template"]["spec"]


def _container(live: Obj) -> Obj:
    return _pod(live)["containers"][0]


def _set(place: Callable[[Obj], Obj], key: str, value: Any) -> Callable[[Obj], None]:
    def change(live: Obj) -> None:
        place(live)[key] = value

    return change


# (change to the server's copy of what we built, is it drift)
HAND_EDITS: list[Any] = [
    pytest.param(_set(_pod, "hostNetwork", True), True, id="host-network-added"),
    pytest.param(_set(_pod, "hostPID", True), True, id="host-pid-added"),
    pytest.param(
        _set(_pod, "securityContext", {"runAsUser": 0}), True, id="pod-security-context-filled"
    ),
    pytest.param(_set(_pod, "nodeName", "node-7"), True, id="node-name-added"),
    pytest.param(_set(_pod, "dnsPolicy", "Default"), True, id="default-changed"),
    pytest.param(
        _set(_container, "securityContext", {"privileged": True}),
        True,
        id="container-privileged-added",
    ),
    pytest.param(_set(_container, "command", ["/bin/sh", "-c", "sleep 1d"]), True, id="command"),
    pytest.param(_set(_container, "workingDir", "/tmp"), True, id="working-dir-added"),
    pytest.param(
        _set(_container, "volumeMounts", [{"name": "host", "mountPath": "/host"}]),
        True,
        id="mount-added",
    ),
    pytest.param(
        _set(_container, "terminationMessagePath", "/tmp/x"), True, id="container-default-changed"
    ),
    # What the API server itself adds is never drift.
    pytest.param(_set(_pod, "securityContext", {}), False, id="server-security-context"),
    pytest.param(_set(_pod, "enableServiceLinks", True), False, id="server-service-links"),
    pytest.param(_set(_container, "imagePullPolicy", "Always"), False, id="pull-policy"),
    # What the server omits is no field at all.
    pytest.param(_set(_container, "args", []), False, id="empty-list"),
    pytest.param(_set(_pod, "priorityClassName", ""), False, id="empty-string"),
    # Outside the places we own entirely, someone else's keys stay theirs.
    pytest.param(
        lambda live: live["spec"].__setitem__("paused", False), False, id="deployment-level-key"
    ),
]


@pytest.mark.parametrize(("change", "drifted"), HAND_EDITS)
def test_keys_added_by_hand_in_places_we_own_entirely_are_drift(
    change: Callable[[Obj], None], drifted: bool
) -> None:
    want = desired("Deployment", image="repo/model:v1", model_source=None)
    live = as_server_returns(want)
    change(live)
    assert needs_update(live, want) is drifted
    if drifted:
        # The repair writes what we built: the foreign key is gone once stored.
        body = replacement(live, want)
        assert needs_update(as_server_returns(body), want) is False


def test_a_command_of_ours_is_compared_not_flagged() -> None:
    want = desired("Deployment", command=("python", "serve.py"))
    live = as_server_returns(want)
    assert needs_update(live, want) is False
    _container(live)["command"] = ["python", "other.py"]
    assert needs_update(live, want) is True


def test_privileged_init_container_is_drift() -> None:
    want = desired("Deployment")
    live = as_server_returns(want)
    _pod(live)["initContainers"][0]["securityContext"] = {"privileged": True}
    assert needs_update(live, want) is True


@pytest.mark.parametrize(
    ("live_env", "drifted"),
    [
        pytest.param([{"name": "EMPTY"}], False, id="value-omitted-by-the-server"),
        pytest.param([{"name": "EMPTY", "value": ""}], False, id="value-kept"),
        pytest.param([{"name": "EMPTY", "value": "x"}], True, id="value-set-by-hand"),
    ],
)
def test_an_empty_env_value_matches_the_servers_omission(
    live_env: list[Obj], drifted: bool
) -> None:
    want = desired("Deployment", env=(("EMPTY", ""),))
    assert _container(want)["env"] == [{"name": "EMPTY", "value": ""}]
    live = as_server_returns(want)
    _container(live)["env"] = live_env
    assert needs_update(live, want) is drifted
