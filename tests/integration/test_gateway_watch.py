"""The gateway's watches against the local API server: initial list, events, resume
after a dropped connection, relist after 410 Gone, and a clean stop."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from k8s import errors, informer
from k8s.gateway import ClusterGateway, GatewaySettings, WatchEvent, make_api_client
from k8s.sim import SimCluster
from k8s.sim.testing import NAMESPACE, api_client, deployment, service, wait_for


class Recorder:
    """Collects watch events (called from the watch threads)."""

    def __init__(self) -> None:
        self.events: list[WatchEvent] = []
        self._lock = threading.Lock()

    def __call__(self, event: WatchEvent) -> None:
        with self._lock:
            self.events.append(event)

    def seen(self) -> list[tuple[str, str, str]]:
        with self._lock:
            return [(e.kind, e.type, e.obj["metadata"]["name"]) for e in self.events]


@pytest.fixture
def other(sim: Any) -> Iterator[client.ApiClient]:
    api = api_client(sim.url)
    try:
        yield api
    finally:
        api.close()


def _gateway(url: str, **settings: Any) -> ClusterGateway:
    return ClusterGateway(
        make_api_client(url=url), GatewaySettings(namespace=NAMESPACE, **settings)
    )


def _create_deployment(other: client.ApiClient, name: str) -> None:
    client.AppsV1Api(other).create_namespaced_deployment(
        NAMESPACE, deployment(name), _preload_content=False
    ).read()


def _scale(other: client.ApiClient, name: str, replicas: int) -> None:
    client.AppsV1Api(other).patch_namespaced_deployment(
        name,
        NAMESPACE,
        {"spec": {"replicas": replicas}},
        _content_type="application/merge-patch+json",
        _preload_content=False,
    ).read()


def _delete_deployment(other: client.ApiClient, name: str) -> None:
    client.AppsV1Api(other).delete_namespaced_deployment(
        name, NAMESPACE, _preload_content=False
    ).read()


def test_start_lists_existing_objects_as_added_and_returns_synced(
    sim: Any, other: client.ApiClient
) -> None:
    _create_deployment(other, "a")
    client.CoreV1Api(other).create_namespaced_service(
        NAMESPACE, service("a"), _preload_content=False
    ).read()
    recorder = Recorder()
    gw = _gateway(sim.url)
    gw.start(recorder)
    try:
        assert gw.has_synced()
        assert ("Deployment", "ADDED", "a") in recorder.seen()
        assert ("Service", "ADDED", "a") in recorder.seen()
        assert gw.cached("Deployment", "a")["spec"]["replicas"] == 2
        assert [o["metadata"]["name"] for o in gw.cached_objects("Service")] == ["a"]
        assert gw.cached("Deployment", "a")["kind"] == "Deployment"
        threads = {t.name for t in threading.enumerate()}
        assert {
            "watch-Deployment",
            "watch-Service",
            "watch-Ingress",
            "watch-HorizontalPodAutoscaler",
        } <= threads
    finally:
        gw.stop()


def test_changes_arrive_as_added_modified_deleted(sim: Any, other: client.ApiClient) -> None:
    recorder = Recorder()
    gw = _gateway(sim.url)
    gw.start(recorder)
    try:
        _create_deployment(other, "a")
        _scale(other, "a", 5)
        _delete_deployment(other, "a")
        wait_for(
            lambda: ("Deployment", "DELETED", "a") in recorder.seen(), what="the DELETED event"
        )
        types = [t for kind, t, name in recorder.seen() if kind == "Deployment" and name == "a"]
        assert types[0] == "ADDED"
        assert "MODIFIED" in types
        assert types[-1] == "DELETED"
        assert gw.cached("Deployment", "a") is None
    finally:
        gw.stop()


def test_a_dropped_watch_resumes_without_relisting(sim: Any, other: client.ApiClient) -> None:
    recorder = Recorder()
    gw = _gateway(sim.url)
    gw.start(recorder)
    try:
        _create_deployment(other, "a")
        wait_for(lambda: gw.cached("Deployment", "a"), what="a in the cache")
        sim.drop_watches()
        _create_deployment(other, "b")
        _scale(other, "a", 3)
        wait_for(
            lambda: (
                (gw.cached("Deployment", "a") or {}).get("spec", {}).get("replicas") == 3
                and gw.cached("Deployment", "b")
            ),
            what="changes made after the drop",
        )
        assert ("Deployment", "ADDED", "b") in recorder.seen()
        counts = gw.request_counts()
        assert counts[("list", "Deployment", "ok")] == 1
        assert counts[("watch", "Deployment", "ok")] >= 2
    finally:
        gw.stop()


def test_a_410_relists_and_reports_what_vanished_meanwhile() -> None:
    """With a tiny history, changes made while the watch is away expire its
    resourceVersion: the gateway lists again and reports the differences."""
    with SimCluster(port=0, ready_delay=0.2, history=5) as sim:
        other = api_client(sim.url)
        recorder = Recorder()
        gw = _gateway(sim.url)
        try:
            _create_deployment(other, "doomed")
            _create_deployment(other, "kept")
            gw.start(recorder)
            sim.set_faults(error_rate=1.0, verbs=["WATCH"])
            sim.drop_watches()
            wait_for(
                lambda: gw.request_counts().get(("watch", "Deployment", "500")),
                what="the watch failing to reconnect",
            )
            _delete_deployment(other, "doomed")
            for replicas in range(1, 8):
                _scale(other, "kept", replicas)
            _create_deployment(other, "newcomer")
            sim.clear_faults()
            wait_for(
                lambda: ("Deployment", "DELETED", "doomed") in recorder.seen(),
                timeout=15,
                what="DELETED for the object removed while the watch was away",
            )
            assert gw.cached("Deployment", "doomed") is None
            assert gw.cached("Deployment", "kept")["spec"]["replicas"] == 7
            assert ("Deployment", "ADDED", "newcomer") in recorder.seen()
            assert gw.request_counts()[("list", "Deployment", "ok")] >= 2
        finally:
            sim.clear_faults()
            gw.stop()
            other.close()


def test_a_failing_on_event_never_kills_the_watch(sim: Any, other: client.ApiClient) -> None:
    recorder = Recorder()

    def on_event(event: WatchEvent) -> None:
        recorder(event)
        raise RuntimeError("handler bug")

    gw = _gateway(sim.url)
    gw.start(on_event)
    try:
        _create_deployment(other, "a")
        _create_deployment(other, "b")
        wait_for(
            lambda: (
                {("Deployment", "ADDED", "a"), ("Deployment", "ADDED", "b")} <= set(recorder.seen())
            ),
            what="both events despite the failing handler",
        )
    finally:
        gw.stop()


def test_the_watch_reconnects_when_the_server_ends_it(sim: Any, other: client.ApiClient) -> None:
    """The server closes each watch after timeoutSeconds; the gateway carries on."""
    gw = _gateway(sim.url, watch_timeout=1)
    gw.start(lambda event: None)
    try:
        wait_for(
            lambda: gw.request_counts().get(("watch", "Service", "ok"), 0) >= 2,
            what="a second watch request",
        )
        _create_deployment(other, "late")
        wait_for(lambda: gw.cached("Deployment", "late"), what="an event after reconnecting")
    finally:
        gw.stop()


def test_start_fails_cleanly_when_the_initial_list_keeps_failing(sim: Any) -> None:
    slept: list[float] = []
    gw = ClusterGateway(
        make_api_client(url=sim.url),
        GatewaySettings(namespace=NAMESPACE, max_retries=2),
        sleep=slept.append,
    )
    sim.set_faults(error_rate=1.0, verbs=["LIST"], kinds=["ingresses"])
    with pytest.raises(errors.Retryable, match="list Ingress: HTTP 500"):
        gw.start(lambda event: None)
    assert not gw.has_synced()
    assert sim.counters()["LIST ingresses"] == 3
    gw.stop()


def test_stop_ends_every_watch_thread_and_is_idempotent(sim: Any) -> None:
    gw = _gateway(sim.url)
    gw.start(lambda event: None)
    gw.stop()
    gw.stop()
    assert not [t for t in threading.enumerate() if t.name.startswith("watch-")]
    assert gw.cached_objects("Deployment") == []
    assert not gw.has_synced()


def test_an_abruptly_broken_watch_reconnects(sim: Any, other: client.ApiClient) -> None:
    """A connection cut mid-stream (no chunked terminator) is a failure: back off, resume."""
    gw = _gateway(sim.url)
    gw.start(lambda event: None)
    try:
        sim.abrupt_drops = True
        sim.drop_watches()
        _create_deployment(other, "after-the-cut")
        wait_for(lambda: gw.cached("Deployment", "after-the-cut"), what="an event after the cut")
        assert gw.request_counts()[("list", "Deployment", "ok")] == 1
    finally:
        gw.stop()


def test_the_initial_list_is_paged(
    sim: Any, other: client.ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(informer, "LIST_PAGE_SIZE", 2)
    for index in range(5):
        _create_deployment(other, f"d{index}")
    gw = _gateway(sim.url)
    gw.start(lambda event: None)
    try:
        assert sorted(o["metadata"]["name"] for o in gw.cached_objects("Deployment")) == [
            f"d{index}" for index in range(5)
        ]
        assert gw.request_counts()[("list", "Deployment", "ok")] == 3
    finally:
        gw.stop()


def test_on_event_can_read_the_cache_during_the_initial_list(
    sim: Any, other: client.ApiClient
) -> None:
    _create_deployment(other, "a")
    gw = _gateway(sim.url)
    found: list[bool] = []
    gw.start(lambda event: found.append(gw.cached(event.kind, "a") is not None))
    try:
        assert found == [True]
    finally:
        gw.stop()
