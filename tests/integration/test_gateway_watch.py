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
from tests.sim_aids import NAMESPACE, api_client, deployment, service, wait_for


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
    # A stopped gateway's cache never answers (an empty answer would mean "absent").
    with pytest.raises(errors.NotSynced):
        gw.cached_objects("Deployment")
    with pytest.raises(errors.NotSynced):
        gw.cached("Deployment", "a")
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
        # Resumed, not relisted: after a failed watch only a one-item list checks that
        # the server did not go back in time.
        assert gw.relists()["Deployment"] == 0
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


def test_a_server_restarted_empty_is_relisted_and_vanished_objects_are_deleted(
    sim: Any, other: client.ApiClient
) -> None:
    """After an etcd restore the server's resourceVersions start over: the watch cannot
    resume from its old one, the gateway lists again and reports DELETED for objects
    that no longer exist, and its cache never answers from the stale state."""
    recorder = Recorder()
    gw = _gateway(sim.url)
    gw.start(recorder)
    try:
        for name in ("a", "b"):
            _create_deployment(other, name)
        wait_for(lambda: gw.cached("Deployment", "b"), what="b in the cache")
        sim.restart(empty=True)
        wait_for(
            lambda: (
                {("Deployment", "DELETED", "a"), ("Deployment", "DELETED", "b")}
                <= set(recorder.seen())
            ),
            what="DELETED for the objects the restart lost",
        )
        wait_for(gw.has_synced, what="synced again")
        assert gw.cached("Deployment", "a") is None
        assert gw.cached_objects("Deployment") == []
        assert gw.relists()["Deployment"] >= 1
        # The watch runs on the new server.
        _create_deployment(other, "c")
        wait_for(lambda: gw.cached("Deployment", "c"), what="an object made after the restart")
    finally:
        gw.stop()


def test_every_kind_relists_periodically(sim: Any, other: client.ApiClient) -> None:
    gw = _gateway(sim.url, resync_period=1.0)
    gw.start(lambda event: None)
    try:
        wait_for(
            lambda: all(count >= 2 for count in gw.relists().values()),
            timeout=8,
            what="two periodic relists of every kind",
        )
        _create_deployment(other, "late")
        wait_for(lambda: gw.cached("Deployment", "late"), what="the watch still running")
    finally:
        gw.stop()


def test_remove_is_false_while_finalizers_run_and_true_once_gone(sim: Any) -> None:
    """The ALB controller's finalizer keeps a deleted Ingress (deletionTimestamp set):
    remove() reports it pending (False) until the object is really gone."""
    sim.set_ingress_finalizer(0.5)
    gw = _gateway(sim.url)
    gw.start(lambda event: None)
    try:
        ingress = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {
                "name": "inference-m1",
                "labels": {
                    "app.kubernetes.io/managed-by": "inference-supervisor",
                    "app.kubernetes.io/instance": "m1",
                },
            },
            "spec": {"defaultBackend": {"service": {"name": "m1", "port": {"number": 80}}}},
        }
        assert gw.ensure(ingress) == "created"
        wait_for(
            lambda: (
                (gw.cached("Ingress", "inference-m1") or {}).get("metadata", {}).get("finalizers")
            ),
            what="the ALB finalizer in the cache",
        )
        assert gw.remove("Ingress", "inference-m1", owner="m1") is False
        pending = gw.cached("Ingress", "inference-m1")
        assert pending is not None
        assert pending["metadata"]["deletionTimestamp"]
        wait_for(
            lambda: gw.remove("Ingress", "inference-m1", owner="m1"), timeout=10, what="removed"
        )
        assert gw.cached("Ingress", "inference-m1") is None
    finally:
        gw.stop()


def test_a_server_gone_back_in_time_is_noticed_even_when_its_watch_stays_silent(
    sim: Any, other: client.ApiClient
) -> None:
    """A real watch cache answers a watch from a resourceVersion it has not reached with
    silence, not 410: after a failed watch the gateway compares the server's current
    resourceVersion with the newest it saw, and lists again when it went back."""
    sim.expire_future_watches = False
    recorder = Recorder()
    gw = _gateway(sim.url, resync_period=None)
    gw.start(recorder)
    try:
        _create_deployment(other, "lost")
        wait_for(lambda: gw.cached("Deployment", "lost"), what="lost in the cache")
        sim.restart(empty=True)
        wait_for(
            lambda: ("Deployment", "DELETED", "lost") in recorder.seen(),
            timeout=10,
            what="DELETED for the object the restart lost",
        )
        assert gw.cached("Deployment", "lost") is None
    finally:
        gw.stop()


def test_the_cache_keeps_no_managed_fields_from_lists_events_or_writes(
    sim: Any, other: client.ApiClient
) -> None:
    """managedFields (40-50 % of a Deployment on a real server, read by nothing in the
    daemon) never reach the cache, whether an object came by the list, a watch event or
    the gateway's own write; the server keeps them."""
    _create_deployment(other, "listed")
    recorder = Recorder()
    gw = _gateway(sim.url)
    gw.start(recorder)
    try:
        _create_deployment(other, "watched")
        wait_for(lambda: gw.cached("Deployment", "watched"), what="the watched Deployment")
        gw.ensure({**deployment("written"), "apiVersion": "apps/v1", "kind": "Deployment"})
        apps = client.AppsV1Api(other)
        for name in ("listed", "watched", "written"):
            assert apps.read_namespaced_deployment(name, NAMESPACE).metadata.managed_fields
            assert "managedFields" not in gw.cached("Deployment", name)["metadata"], name
        assert all("managedFields" not in e.obj["metadata"] for e in recorder.events)
    finally:
        gw.stop()
