"""The simulated Deployment controller: status catches up with the spec, pods
become ready after the delay, a crash-looping image never does, rollouts keep
within maxSurge/maxUnavailable and, like scale-to-zero, show the status fields a
real controller writes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from k8s.sim import SimCluster
from k8s.sim.controller import rolling_bounds
from tests.sim_aids import NAMESPACE, api_client, deployment, wait_for

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"


@pytest.fixture
def apps(sim: Any) -> Iterator[client.AppsV1Api]:
    api = api_client(sim.url)
    try:
        yield client.AppsV1Api(api)
    finally:
        api.close()


def status(apps: client.AppsV1Api, name: str = "m1") -> dict[str, Any]:
    """The raw status dict (zero fields absent, as sent)."""
    obj = json.loads(apps.read_namespaced_deployment(name, NAMESPACE, _preload_content=False).data)
    return {"generation": obj["metadata"]["generation"], **obj.get("status", {})}


def status_when(apps: client.AppsV1Api, check: Any, name: str = "m1") -> dict[str, Any] | None:
    """The status when `check(status)` holds, else None (for `wait_for`)."""
    current = status(apps, name)
    return current if check(current) else None


def rollout_complete(s: dict[str, Any], replicas: int) -> bool:
    """`kubectl rollout status`'s test."""
    return (
        s.get("observedGeneration", 0) >= s["generation"]
        and s.get("updatedReplicas", 0) == replicas
        and s.get("availableReplicas", 0) == replicas
        and s.get("replicas", 0) == s.get("updatedReplicas", 0)
    )


def conditions(s: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in s.get("conditions", [])}


def test_deployment_becomes_ready_after_the_delay(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment(NAMESPACE, deployment("m1", replicas=2))
    done = wait_for(lambda: status_when(apps, lambda s: rollout_complete(s, 2)), what="rollout")
    assert done["readyReplicas"] == 2
    assert "unavailableReplicas" not in done
    assert conditions(done) == {
        "Available": ("True", "MinimumReplicasAvailable"),
        "Progressing": ("True", "NewReplicaSetAvailable"),
    }


def test_observed_generation_catches_up_before_pods_are_ready() -> None:
    with SimCluster(ready_delay=30, validate=False) as cluster:
        api = api_client(cluster.url)
        try:
            apps = client.AppsV1Api(api)
            apps.create_namespaced_deployment(NAMESPACE, deployment("m1", replicas=2))
            first = wait_for(lambda: status_when(apps, lambda s: s.get("observedGeneration")))
            assert first == {
                **first,
                "observedGeneration": 1,
                "replicas": 2,
                "unavailableReplicas": 2,
            }
            assert "readyReplicas" not in first
            assert conditions(first)["Available"] == ("False", "MinimumReplicasUnavailable")
            assert conditions(first)["Progressing"] == ("True", "NewReplicaSetCreated")
        finally:
            api.close()


def test_crashloop_image_never_becomes_ready(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment(
        NAMESPACE, deployment("bad", image="example.com/crashloop:1", replicas=2)
    )
    apps.create_namespaced_deployment(NAMESPACE, deployment("good", replicas=1))
    # Once the healthy one is ready (well past the delay), the bad one still has no ready pod.
    wait_for(lambda: rollout_complete(status(apps, "good"), 1), what="good rollout")
    bad = status(apps, "bad")
    assert bad["replicas"] == 2
    assert bad["unavailableReplicas"] == 2
    assert "readyReplicas" not in bad
    assert "availableReplicas" not in bad
    assert conditions(bad)["Available"] == ("False", "MinimumReplicasUnavailable")


def change_image(apps: client.AppsV1Api, image: str, name: str = "m1") -> Any:
    """Patches the server container's image (a template change); returns the Deployment."""
    return apps.patch_namespaced_deployment(
        name,
        NAMESPACE,
        {"spec": {"template": {"spec": {"containers": [{"name": "server", "image": image}]}}}},
        _content_type=STRATEGIC,
    )


def statuses_until(
    apps: client.AppsV1Api, resource_version: str, done: Any, name: str = "m1"
) -> list[dict[str, Any]]:
    """Every status of `name` watched from `resource_version` up to the first for which
    `done(status)` holds (each with `generation`, as `status()` gives)."""
    seen: list[dict[str, Any]] = []
    stream = apps.list_namespaced_deployment(
        NAMESPACE,
        watch=True,
        resource_version=resource_version,
        field_selector=f"metadata.name={name}",
        timeout_seconds=10,
        _preload_content=False,
    )
    try:
        for line in stream:
            obj = json.loads(line)["object"]
            seen.append({"generation": obj["metadata"]["generation"], **obj.get("status", {})})
            if done(seen[-1]):
                return seen
    finally:
        stream.release_conn()
    raise AssertionError(f"the watch ended before the rollout did: {seen}")


def test_template_change_rolls_within_max_surge_and_counts_unready_new_pods(
    apps: client.AppsV1Api,
) -> None:
    """2 replicas: maxSurge 25% rounds up to 1, maxUnavailable 25% down to 0."""
    apps.create_namespaced_deployment(NAMESPACE, deployment("m1", replicas=2))
    wait_for(lambda: rollout_complete(status(apps), 2), what="first rollout")
    patched = change_image(apps, "nginx:1.26")
    assert patched.metadata.generation == 2
    seen = statuses_until(apps, patched.metadata.resource_version, lambda s: rollout_complete(s, 2))
    during = [s for s in seen if s.get("observedGeneration") == 2 and not rollout_complete(s, 2)]
    assert during, "the rollout was never observed in progress"
    for s in during:
        assert s.get("replicas", 0) <= 3, s
        assert s.get("availableReplicas", 0) >= 2, s
        assert s.get("readyReplicas", 0) == s.get("availableReplicas", 0), s
        assert conditions(s)["Available"] == ("True", "MinimumReplicasAvailable"), s
    # The first new pod counts as updated while it is still starting.
    assert during[0] == {
        **during[0],
        "replicas": 3,
        "updatedReplicas": 1,
        "availableReplicas": 2,
        "unavailableReplicas": 1,
    }
    assert conditions(during[0])["Progressing"] == ("True", "ReplicaSetUpdated")
    assert seen[-1]["replicas"] == 2
    assert conditions(seen[-1])["Progressing"] == ("True", "NewReplicaSetAvailable")


def test_four_replicas_roll_one_surge_one_unavailable(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment(NAMESPACE, deployment("m1", replicas=4))
    wait_for(lambda: rollout_complete(status(apps), 4), what="first rollout")
    patched = change_image(apps, "nginx:1.26")
    seen = statuses_until(apps, patched.metadata.resource_version, lambda s: rollout_complete(s, 4))
    during = [s for s in seen if s.get("observedGeneration") == 2 and not rollout_complete(s, 4)]
    assert during
    for s in during:
        assert s.get("replicas", 0) <= 5, s
        assert s.get("availableReplicas", 0) >= 3, s
    # One old pod goes at once (maxUnavailable 1) so two new pods start together.
    assert during[0] == {**during[0], "replicas": 5, "updatedReplicas": 2, "availableReplicas": 3}


def test_rollout_to_a_never_ready_image_stalls_with_the_old_pods_serving(
    apps: client.AppsV1Api,
) -> None:
    core = client.CoreV1Api(apps.api_client)
    apps.create_namespaced_deployment(NAMESPACE, deployment("m1", replicas=2))
    wait_for(lambda: rollout_complete(status(apps), 2), what="first rollout")
    change_image(apps, "example.com/crashloop:2")
    stalled = {"replicas": 3, "updatedReplicas": 1, "availableReplicas": 2}
    wait_for(
        lambda: status_when(
            apps, lambda s: s.get("observedGeneration") == 2 and s == {**s, **stalled}
        )
    )
    # Well past the ready delay of another Deployment, nothing has moved.
    apps.create_namespaced_deployment(NAMESPACE, deployment("good", replicas=1))
    wait_for(lambda: rollout_complete(status(apps, "good"), 1), what="good rollout")
    after = status(apps)
    assert after == {**after, **stalled, "readyReplicas": 2, "unavailableReplicas": 1}
    assert conditions(after)["Available"] == ("True", "MinimumReplicasAvailable")
    pods = core.list_namespaced_pod(NAMESPACE, label_selector="app=m1").items
    by_image = sorted(
        (p.spec.containers[0].image, p.status.container_statuses[0].ready) for p in pods
    )
    assert by_image == [
        ("example.com/crashloop:2", False),
        ("nginx:1.25", True),
        ("nginx:1.25", True),
    ]


def test_recreate_removes_every_old_pod_before_the_new_ones(apps: client.AppsV1Api) -> None:
    body = deployment("m1", replicas=2)
    body["spec"]["strategy"] = {"type": "Recreate"}
    apps.create_namespaced_deployment(NAMESPACE, body)
    wait_for(lambda: rollout_complete(status(apps), 2), what="first rollout")
    patched = change_image(apps, "nginx:1.26")
    seen = statuses_until(apps, patched.metadata.resource_version, lambda s: rollout_complete(s, 2))
    during = [s for s in seen if s.get("observedGeneration") == 2 and not rollout_complete(s, 2)]
    assert during
    for s in during:
        assert s.get("replicas", 0) == s.get("updatedReplicas", 0) == 2, s
    assert "availableReplicas" not in during[0]
    assert conditions(during[0])["Available"] == ("False", "MinimumReplicasUnavailable")


@pytest.mark.parametrize(
    ("strategy", "replicas", "expected"),
    [
        ({}, 2, (1, 0)),
        ({}, 4, (1, 1)),
        ({}, 10, (3, 2)),
        ({"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "10%"}}, 5, (0, 1)),
        ({"rollingUpdate": {"maxSurge": "50%", "maxUnavailable": 3}}, 2, (1, 2)),
        ({"type": "Recreate"}, 4, (0, 0)),
    ],
)
def test_rolling_bounds_round_like_the_real_controller(
    strategy: dict[str, Any], replicas: int, expected: tuple[int, int]
) -> None:
    assert rolling_bounds({"strategy": strategy}, replicas) == expected


def test_scale_to_zero_keeps_available_true(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment(NAMESPACE, deployment("m1", replicas=1))
    wait_for(lambda: rollout_complete(status(apps), 1), what="rollout")
    apps.patch_namespaced_deployment(
        "m1", NAMESPACE, {"spec": {"replicas": 0}}, _content_type=MERGE
    )
    zero = wait_for(lambda: status_when(apps, lambda s: s.get("observedGeneration") == 2))
    assert {k for k in zero if k.endswith("eplicas")} == set()
    assert conditions(zero)["Available"] == ("True", "MinimumReplicasAvailable")


def test_status_writes_are_watch_events_without_generation_bump(apps: client.AppsV1Api) -> None:
    created = apps.create_namespaced_deployment(NAMESPACE, deployment("m1", replicas=1))
    wait_for(lambda: rollout_complete(status(apps), 1), what="rollout")
    now = apps.read_namespaced_deployment("m1", NAMESPACE)
    assert int(now.metadata.resource_version) > int(created.metadata.resource_version)
    assert now.metadata.generation == 1


def test_condition_times_come_from_the_clock() -> None:
    with SimCluster(ready_delay=0.05, clock=lambda: 1_767_323_045.0, validate=False) as cluster:
        api = api_client(cluster.url)
        try:
            apps = client.AppsV1Api(api)
            apps.create_namespaced_deployment(NAMESPACE, deployment("m1", replicas=1))
            done = wait_for(lambda: status_when(apps, lambda s: rollout_complete(s, 1)))
        finally:
            api.close()
    stamps = {
        c[key] for c in done["conditions"] for key in ("lastUpdateTime", "lastTransitionTime")
    }
    assert stamps == {"2026-01-02T03:04:05Z"}


def hpa(name: str, *, low: int, high: int) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": low,
            "maxReplicas": high,
        },
    }


def test_hpa_holds_replicas_within_its_bounds(sim: Any, apps: client.AppsV1Api) -> None:
    """An HPA writes its target's spec.replicas: another writer of replicas is overridden."""
    autoscaling = client.AutoscalingV2Api(apps.api_client)
    apps.create_namespaced_deployment(NAMESPACE, deployment("m1", replicas=1))
    autoscaling.create_namespaced_horizontal_pod_autoscaler(NAMESPACE, hpa("m1", low=2, high=4))
    wait_for(lambda: apps.read_namespaced_deployment("m1", NAMESPACE).spec.replicas == 2)
    apps.patch_namespaced_deployment(
        "m1", NAMESPACE, {"spec": {"replicas": 9}}, _content_type=MERGE
    )
    wait_for(lambda: apps.read_namespaced_deployment("m1", NAMESPACE).spec.replicas == 4)

    def hpa_status() -> Any:
        found = autoscaling.read_namespaced_horizontal_pod_autoscaler("m1", NAMESPACE).status
        return found if found is not None and found.desired_replicas == 4 else None

    status = wait_for(hpa_status, what="HPA status")
    assert {c.type: c.status for c in status.conditions} == {
        "AbleToScale": "True",
        "ScalingActive": "False",
    }
    autoscaling.delete_namespaced_horizontal_pod_autoscaler("m1", NAMESPACE)
    apps.patch_namespaced_deployment(
        "m1", NAMESPACE, {"spec": {"replicas": 7}}, _content_type=MERGE
    )
    assert apps.read_namespaced_deployment("m1", NAMESPACE).spec.replicas == 7
