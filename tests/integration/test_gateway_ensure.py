"""`ClusterGateway.ensure` and `remove` against the local API server with the real client.

Another writer (a second, plain kubernetes client) plays the operator or a
foreign controller changing objects behind the daemon's back.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from k8s import errors
from k8s.gateway import ClusterGateway, GatewaySettings, WatchEvent, make_api_client
from k8s.manifests import (
    build_canary_deployment,
    build_deployment,
    build_objects,
    build_service,
)
from k8s.workload import (
    INSTANCE_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    CanaryWorkload,
    Workload,
)
from tests.sim_aids import NAMESPACE, api_client, deployment, service, wait_for

WORKLOAD = Workload(name="m1", namespace=NAMESPACE, image="vllm/vllm-openai:v1")


@pytest.fixture
def other(sim: Any) -> Iterator[client.ApiClient]:
    """A second client: the other writer."""
    api = api_client(sim.url)
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def gateway(sim: Any) -> Iterator[ClusterGateway]:
    """A started gateway (watches running, cache synced) on the sim."""
    api = make_api_client(url=sim.url)
    gw = ClusterGateway(api, GatewaySettings(namespace=NAMESPACE))
    gw.start(lambda event: None)
    try:
        yield gw
    finally:
        gw.stop()
        api.close()


def _live_deployment(other: client.ApiClient, name: str) -> dict[str, Any] | None:
    try:
        return (
            client.AppsV1Api(other)
            .read_namespaced_deployment(name, NAMESPACE, _preload_content=False)
            .json()
        )
    except client.exceptions.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _image(obj: dict[str, Any] | None) -> str | None:
    if obj is None:
        return None
    return obj["spec"]["template"]["spec"]["containers"][0]["image"]


def _set_image(other: client.ApiClient, name: str, image: str) -> None:
    """The other writer changes the image (strategic merge patch, as kubectl set image)."""
    body = {"spec": {"template": {"spec": {"containers": [{"name": "inference", "image": image}]}}}}
    client.AppsV1Api(other).patch_namespaced_deployment(
        name,
        NAMESPACE,
        body,
        _content_type="application/strategic-merge-patch+json",
        _preload_content=False,
    ).read()


def _freeze_watches(sim: Any, gw: ClusterGateway) -> None:
    """Make the gateway's cache stale on purpose: its watches cannot reconnect (500s)
    after they are dropped, so later changes never reach it."""
    sim.set_faults(error_rate=1.0, error_status=500, verbs=["WATCH"])
    sim.drop_watches()
    wait_for(
        lambda: all(
            gw.request_counts().get(("watch", kind, "500"), 0) >= 1
            for kind in ("Deployment", "Service")
        ),
        what="watches failing to reconnect",
    )


def test_ensure_creates_every_object_of_a_workload(sim: Any, gateway: ClusterGateway) -> None:
    objects = build_objects(WORKLOAD)
    results = [gateway.ensure(obj) for obj in objects]
    assert results == ["created"] * len(objects)
    names = {obj["metadata"]["name"] for obj in sim.objects("deployments", NAMESPACE)}
    assert names == {"m1"}
    assert {obj["metadata"]["name"] for obj in sim.objects("ingresses", NAMESPACE)} == {
        "inference-m1"
    }


def test_ensuring_an_unchanged_object_makes_zero_requests(
    sim: Any, gateway: ClusterGateway
) -> None:
    objects = build_objects(WORKLOAD)
    for obj in objects:
        gateway.ensure(obj)
    sim.reset_counters()
    before = gateway.request_counts()
    results = [gateway.ensure(obj) for obj in objects]
    assert results == ["unchanged"] * len(objects)
    assert sim.counters().get("total", 0) == 0
    assert gateway.request_counts() == before


def test_ensure_right_after_a_create_sees_its_own_write_before_the_watch_does(
    sim: Any, other: client.ApiClient
) -> None:
    """The cache takes the server's answer to a write at once, so a second ensure
    costs nothing even when the watch has not delivered the event yet."""
    api = make_api_client(url=sim.url)
    gw = ClusterGateway(api, GatewaySettings(namespace=NAMESPACE))
    gw.start(lambda event: None)
    try:
        _freeze_watches(sim, gw)
        assert gw.ensure(build_service(WORKLOAD)) == "created"
        sim.reset_counters()
        assert gw.ensure(build_service(WORKLOAD)) == "unchanged"
        assert sim.counters().get("total", 0) == 0
    finally:
        sim.clear_faults()
        gw.stop()
        api.close()


def test_drift_made_by_another_writer_is_repaired(
    sim: Any, gateway: ClusterGateway, other: client.ApiClient
) -> None:
    desired = build_deployment(WORKLOAD)
    gateway.ensure(desired)
    _set_image(other, "m1", "attacker/image:latest")
    wait_for(
        lambda: _image(gateway.cached("Deployment", "m1")) == "attacker/image:latest",
        what="the watch to report the drift",
    )
    assert gateway.ensure(desired) == "updated"
    live = _live_deployment(other, "m1")
    assert _image(live) == "vllm/vllm-openai:v1"
    assert live["metadata"]["labels"][MANAGED_BY_LABEL] == MANAGED_BY_VALUE
    assert gateway.ensure(desired) == "unchanged"


def test_a_foreign_object_with_the_same_name_is_never_modified(
    sim: Any, gateway: ClusterGateway, other: client.ApiClient
) -> None:
    client.CoreV1Api(other).create_namespaced_service(
        NAMESPACE, service("m1"), _preload_content=False
    ).read()
    wait_for(lambda: gateway.cached("Service", "m1"), what="the foreign Service in the cache")
    sim.reset_counters()
    assert gateway.ensure(build_service(WORKLOAD)) == "unmanaged"
    assert sim.counters().get("total", 0) == 0
    live = next(iter(sim.objects("services", NAMESPACE)))
    assert MANAGED_BY_LABEL not in (live["metadata"].get("labels") or {})


def test_a_predecessor_object_is_adopted(
    sim: Any, gateway: ClusterGateway, other: client.ApiClient
) -> None:
    predecessor = deployment(
        "m1", image="old/image:1", labels={"project": "gco", "gco.io/type": "inference"}
    )
    client.AppsV1Api(other).create_namespaced_deployment(
        NAMESPACE, predecessor, _preload_content=False
    ).read()
    wait_for(lambda: gateway.cached("Deployment", "m1"), what="the predecessor's Deployment")
    assert gateway.instances() == {"m1"}
    assert gateway.ensure(build_deployment(WORKLOAD)) == "updated"
    live = _live_deployment(other, "m1")
    assert live["metadata"]["labels"][MANAGED_BY_LABEL] == MANAGED_BY_VALUE
    assert live["metadata"]["labels"][INSTANCE_LABEL] == "m1"
    assert _image(live) == "vllm/vllm-openai:v1"


def test_a_conflict_on_a_stale_cache_is_re_read_and_retried(
    sim: Any, gateway: ClusterGateway, other: client.ApiClient
) -> None:
    gateway.ensure(build_deployment(WORKLOAD))
    _freeze_watches(sim, gateway)
    _set_image(other, "m1", "someone/else:2")
    newer = build_deployment(Workload(name="m1", namespace=NAMESPACE, image="vllm/vllm-openai:v2"))
    assert gateway.ensure(newer) == "updated"
    assert _image(_live_deployment(other, "m1")) == "vllm/vllm-openai:v2"
    counts = gateway.request_counts()
    assert counts[("update", "Deployment", "409")] == 1
    assert counts[("get", "Deployment", "ok")] == 1
    sim.clear_faults()


def test_ensure_without_watches_reads_then_writes_only_on_difference(
    sim: Any, other: client.ApiClient
) -> None:
    """A gateway that is not watching (a CLI command) reads the object instead."""
    api = make_api_client(url=sim.url)
    gw = ClusterGateway(api, GatewaySettings(namespace=NAMESPACE))
    try:
        assert gw.ensure(build_service(WORKLOAD)) == "created"
        sim.reset_counters()
        assert gw.ensure(build_service(WORKLOAD)) == "unchanged"
        assert sim.counters() == {"GET services": 1, "total": 1}
    finally:
        api.close()


def test_an_object_in_another_namespace_is_refused(gateway: ClusterGateway) -> None:
    foreign = build_service(Workload(name="m1", namespace="elsewhere", image="x:1"))
    with pytest.raises(errors.Invalid, match="namespace 'elsewhere'"):
        gateway.ensure(foreign)


def test_remove_deletes_and_confirms(sim: Any, gateway: ClusterGateway) -> None:
    gateway.ensure(build_deployment(WORKLOAD))
    assert gateway.remove("Deployment", "m1", owner="m1") is True
    assert list(sim.objects("deployments", NAMESPACE)) == []
    assert gateway.cached("Deployment", "m1") is None
    counts = gateway.request_counts()
    assert counts[("delete", "Deployment", "ok")] == 1
    assert counts[("get", "Deployment", "404")] == 1


def test_remove_of_an_object_already_gone_is_done(
    sim: Any, gateway: ClusterGateway, other: client.ApiClient
) -> None:
    """The cache still shows the object; the server answers 404: that counts as deleted."""
    gateway.ensure(build_deployment(WORKLOAD))
    _freeze_watches(sim, gateway)
    client.AppsV1Api(other).delete_namespaced_deployment(
        "m1", NAMESPACE, _preload_content=False
    ).read()
    assert gateway.cached("Deployment", "m1") is not None
    assert gateway.remove("Deployment", "m1", owner="m1") is True
    assert gateway.request_counts()[("delete", "Deployment", "404")] == 1
    sim.clear_faults()


def test_remove_of_an_absent_object_costs_nothing_while_watching(
    sim: Any, gateway: ClusterGateway
) -> None:
    sim.reset_counters()
    assert gateway.remove("Service", "never-existed", owner="never-existed") is True
    assert sim.counters().get("total", 0) == 0


def test_remove_never_deletes_a_foreign_object(
    sim: Any, gateway: ClusterGateway, other: client.ApiClient
) -> None:
    client.CoreV1Api(other).create_namespaced_service(
        NAMESPACE, service("m1"), _preload_content=False
    ).read()
    wait_for(lambda: gateway.cached("Service", "m1"), what="the foreign Service in the cache")
    assert gateway.remove("Service", "m1", owner="m1") is False
    assert [s["metadata"]["name"] for s in sim.objects("services", NAMESPACE)] == ["m1"]


def test_an_object_of_another_endpoint_is_never_modified_nor_deleted(
    sim: Any, gateway: ClusterGateway
) -> None:
    """Endpoint `x-canary` and endpoint `x`'s canary share the name `x-canary`: the one that
    holds it keeps it; the other's ensure raises, its remove leaves it (architecture section 3)."""
    own = Workload(name="x-canary", namespace=NAMESPACE, image="vllm/vllm-openai:v1")
    gateway.ensure(build_deployment(own))
    before = _live_deployment_sim(sim, "x-canary")
    x = Workload(
        name="x", namespace=NAMESPACE, image="vllm/vllm-openai:v1", canary=CanaryWorkload("b:2")
    )
    sim.reset_counters()
    with pytest.raises(
        errors.OwnedElsewhere, match=r"^Deployment x-canary belongs to endpoint 'x-canary'$"
    ) as raised:
        gateway.ensure(build_canary_deployment(x))
    assert raised.value.owner == "x-canary"
    assert gateway.remove("Deployment", "x-canary", owner="x") is True
    assert sim.counters().get("total", 0) == 0, "nothing sent"
    assert _live_deployment_sim(sim, "x-canary") == before
    assert gateway.remove("Deployment", "x-canary", owner="x-canary") is True
    assert _live_deployment_sim(sim, "x-canary") is None


def _live_deployment_sim(sim: Any, name: str) -> dict[str, Any] | None:
    return next(
        (d for d in sim.objects("deployments", NAMESPACE) if d["metadata"]["name"] == name), None
    )


def test_instances_names_endpoints_with_objects_in_the_cache(
    gateway: ClusterGateway, other: client.ApiClient
) -> None:
    for obj in build_objects(WORKLOAD):
        gateway.ensure(obj)
    gateway.ensure(build_service(Workload(name="m2", namespace=NAMESPACE, image="x:1")))
    client.AppsV1Api(other).create_namespaced_deployment(
        NAMESPACE, deployment("stray"), _preload_content=False
    ).read()
    wait_for(lambda: gateway.cached("Deployment", "stray"), what="the stray Deployment")
    assert gateway.instances() == {"m1", "m2"}


def test_events_reach_on_event_after_the_cache_has_them(sim: Any) -> None:
    """on_event sees the object in the cache already (routing reads the cache)."""
    api = make_api_client(url=sim.url)
    gw = ClusterGateway(api, GatewaySettings(namespace=NAMESPACE))
    seen: list[bool] = []

    def on_event(event: WatchEvent) -> None:
        cached = gw.cached(event.kind, event.obj["metadata"]["name"])
        seen.append(cached is not None if event.type != "DELETED" else cached is None)

    gw.start(on_event)
    try:
        gw.ensure(build_service(WORKLOAD))
        wait_for(lambda: len(seen) >= 1, what="the ADDED event")
        gw.remove("Service", "m1", owner="m1")
        wait_for(lambda: len(seen) >= 2, what="the DELETED event")
        assert all(seen)
    finally:
        gw.stop()
        api.close()
