"""Watch streams behave like a real API server's: initial ADDED events, resume
from a resourceVersion, 410 when too old, bookmarks, timeouts, selectors, and
prompt ends on drop_watches() and stop()."""

from __future__ import annotations

import http.client
import json
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from k8s.sim import SimCluster
from tests.sim_aids import NAMESPACE, api_client, service, wait_for


@pytest.fixture
def core(sim: Any) -> Iterator[client.CoreV1Api]:
    api = api_client(sim.url)
    try:
        yield client.CoreV1Api(api)
    finally:
        api.close()


def events(core: client.CoreV1Api, **kwargs: Any) -> list[tuple[str, str]]:
    """(type, name or resourceVersion) of every event of one watch that ends by timeout."""
    seen = []
    for event in watch.Watch().stream(core.list_namespaced_service, NAMESPACE, **kwargs):
        meta = event["raw_object"].get("metadata", {})
        seen.append((event["type"], meta.get("name") or meta.get("resourceVersion")))
    return seen


def test_watch_without_resource_version_starts_with_added_for_existing(
    core: client.CoreV1Api,
) -> None:
    core.create_namespaced_service(NAMESPACE, service("a"))
    core.create_namespaced_service(NAMESPACE, service("b"))
    assert events(core, timeout_seconds=1) == [("ADDED", "a"), ("ADDED", "b")]


def test_watch_resume_delivers_only_later_events_in_order(core: client.CoreV1Api) -> None:
    core.create_namespaced_service(NAMESPACE, service("before"))
    listed = core.list_namespaced_service(NAMESPACE)
    core.create_namespaced_service(NAMESPACE, service("after"))
    core.patch_namespaced_service(
        "after",
        NAMESPACE,
        {"metadata": {"labels": {"x": "1"}}},
        _content_type="application/merge-patch+json",
    )
    core.delete_namespaced_service("before", NAMESPACE)
    seen = events(core, resource_version=listed.metadata.resource_version, timeout_seconds=1)
    assert seen == [("ADDED", "after"), ("MODIFIED", "after"), ("DELETED", "before")]


def test_too_old_resource_version_gives_410_and_relist_recovers() -> None:
    with SimCluster(history=3, validate=False) as cluster:
        api = api_client(cluster.url)
        try:
            core = client.CoreV1Api(api)
            old = core.create_namespaced_service(NAMESPACE, service("s0")).metadata
            for index in range(1, 6):
                core.create_namespaced_service(NAMESPACE, service(f"s{index}"))
            with pytest.raises(ApiException) as caught:
                events(core, resource_version=old.resource_version)
            assert caught.value.status == 410
            # The raw stream carries an ERROR event with an Expired Status.
            raw = core.list_namespaced_service(
                NAMESPACE, watch=True, resource_version=old.resource_version, _preload_content=False
            )
            first = json.loads(raw.readline())
            raw.release_conn()
            assert first["type"] == "ERROR"
            assert first["object"]["code"] == 410
            assert first["object"]["reason"] == "Expired"
            relisted = core.list_namespaced_service(NAMESPACE)
            core.create_namespaced_service(NAMESPACE, service("s6"))
            assert events(
                core, resource_version=relisted.metadata.resource_version, timeout_seconds=1
            ) == [("ADDED", "s6")]
        finally:
            api.close()


def test_bookmarks_carry_only_the_resource_version() -> None:
    with SimCluster(validate=False, bookmark_interval=0.1) as cluster:
        api = api_client(cluster.url)
        try:
            core = client.CoreV1Api(api)
            created = core.create_namespaced_service(NAMESPACE, service("a"))
            raw = core.list_namespaced_service(
                NAMESPACE,
                watch=True,
                allow_watch_bookmarks=True,
                timeout_seconds=1,
                resource_version=created.metadata.resource_version,
                _preload_content=False,
            )
            lines = [json.loads(line) for line in raw.read().splitlines() if line.strip()]
        finally:
            api.close()
    bookmarks = [e for e in lines if e["type"] == "BOOKMARK"]
    assert bookmarks
    assert bookmarks[0]["object"] == {
        "kind": "Service",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": created.metadata.resource_version},
    }


def test_no_bookmarks_unless_asked(core: client.CoreV1Api) -> None:
    assert events(core, resource_version="1", timeout_seconds=1) == []


def test_watch_label_selector_sees_objects_enter_and_leave(core: client.CoreV1Api) -> None:
    listed = core.list_namespaced_service(NAMESPACE)
    core.create_namespaced_service(NAMESPACE, service("a"))
    core.patch_namespaced_service(
        "a",
        NAMESPACE,
        {"metadata": {"labels": {"tier": "x"}}},
        _content_type="application/merge-patch+json",
    )
    core.patch_namespaced_service(
        "a",
        NAMESPACE,
        {"metadata": {"labels": {"tier": None}}},
        _content_type="application/merge-patch+json",
    )
    core.create_namespaced_service(NAMESPACE, service("b"))
    seen = events(
        core,
        resource_version=listed.metadata.resource_version,
        label_selector="tier=x",
        timeout_seconds=1,
    )
    assert seen == [("ADDED", "a"), ("DELETED", "a")]


def test_watch_sees_live_changes(core: client.CoreV1Api) -> None:
    listed = core.list_namespaced_service(NAMESPACE)
    seen: list[tuple[str, str]] = []
    stream = watch.Watch()

    def consume() -> None:
        for event in stream.stream(
            core.list_namespaced_service,
            NAMESPACE,
            resource_version=listed.metadata.resource_version,
            timeout_seconds=5,
        ):
            seen.append((event["type"], event["object"].metadata.name))
            if len(seen) == 2:
                stream.stop()

    reader = threading.Thread(target=consume)
    reader.start()
    core.create_namespaced_service(NAMESPACE, service("live"))
    core.delete_namespaced_service("live", NAMESPACE)
    reader.join(timeout=5)
    assert seen == [("ADDED", "live"), ("DELETED", "live")]


def _open_stream(cluster: SimCluster) -> Any:
    return urllib.request.urlopen(
        f"{cluster.url}/api/v1/namespaces/{NAMESPACE}/services?watch=1&resourceVersion=1", timeout=5
    )


def test_drop_watches_ends_open_streams(sim: Any) -> None:
    response = _open_stream(sim)
    wait_for(lambda: sim.counters().get("WATCH services"), what="watch open")
    sim.drop_watches()
    assert response.read() == b""  # the stream ends (no event was pending)
    response.close()


def test_stop_ends_open_watches_and_leaves_no_thread() -> None:
    before = set(threading.enumerate())
    cluster = SimCluster(validate=False).start()
    response = _open_stream(cluster)
    wait_for(lambda: cluster.counters().get("WATCH services"), what="watch open")
    cluster.stop()
    assert response.read() == b""
    response.close()
    assert [t for t in threading.enumerate() if t not in before and t.is_alive()] == []


def test_admin_endpoint_drops_watches(sim: Any) -> None:
    response = _open_stream(sim)
    wait_for(lambda: sim.counters().get("WATCH services"), what="watch open")
    request = urllib.request.Request(f"{sim.url}/_sim/drop-watches", data=b"{}", method="POST")
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status == 200
    assert response.read() == b""
    response.close()


def test_abrupt_drop_cuts_the_stream_mid_response(sim: Any) -> None:
    """An abrupt drop looks like a lost connection: the chunked body never completes."""
    response = _open_stream(sim)
    wait_for(lambda: sim.counters().get("WATCH services"), what="watch open")
    sim.drop_watches(abrupt=True)
    with pytest.raises(http.client.IncompleteRead):
        response.read()
    response.close()


def test_send_initial_events_ends_with_a_marked_bookmark(core: client.CoreV1Api) -> None:
    core.create_namespaced_service(NAMESPACE, service("a"))
    raw = core.list_namespaced_service(
        NAMESPACE,
        watch=True,
        send_initial_events=True,
        resource_version_match="NotOlderThan",
        resource_version="",
        allow_watch_bookmarks=True,
        timeout_seconds=1,
        _preload_content=False,
    )
    lines = [json.loads(line) for line in raw.read().splitlines() if line.strip()]
    assert [e["type"] for e in lines[:2]] == ["ADDED", "BOOKMARK"]
    assert lines[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def _first_event(core: client.CoreV1Api, resource_version: str) -> dict[str, Any]:
    raw = core.list_namespaced_service(
        NAMESPACE,
        watch=True,
        resource_version=resource_version,
        timeout_seconds=2,
        _preload_content=False,
    )
    try:
        return json.loads(raw.readline())
    finally:
        # The rest of the stream is unread: the connection must not go back to the pool,
        # or the next request on it reads the stream's end as its status line.
        raw.close()
        raw.release_conn()


def test_a_resource_version_newer_than_the_servers_gives_410_expired(
    core: client.CoreV1Api,
) -> None:
    listed = core.list_namespaced_service(NAMESPACE)
    future = str(int(listed.metadata.resource_version) + 1000)
    first = _first_event(core, future)
    assert first["type"] == "ERROR"
    assert (first["object"]["code"], first["object"]["reason"]) == (410, "Expired")


def test_restart_empty_forgets_everything_and_starts_the_resource_version_over(
    sim: SimCluster, core: client.CoreV1Api
) -> None:
    """As after an etcd restore: the objects are gone, resourceVersions start low
    again, and a watch resuming from the old server's resourceVersion gets 410."""
    for index in range(5):
        core.create_namespaced_service(NAMESPACE, service(f"s{index}"))
    before = core.list_namespaced_service(NAMESPACE).metadata.resource_version
    sim.restart(empty=True)
    after = core.list_namespaced_service(NAMESPACE)
    assert after.items == []
    assert int(after.metadata.resource_version) < int(before)
    first = _first_event(core, before)
    assert (first["type"], first["object"]["code"]) == ("ERROR", 410)
    core.create_namespaced_service(NAMESPACE, service("new"))
    assert [s.metadata.name for s in core.list_namespaced_service(NAMESPACE).items] == ["new"]


def test_restart_keeping_the_objects_keeps_their_resource_versions(
    sim: SimCluster, core: client.CoreV1Api
) -> None:
    created = core.create_namespaced_service(NAMESPACE, service("kept")).metadata
    sim.restart(empty=False)
    kept = core.read_namespaced_service("kept", NAMESPACE).metadata
    assert (kept.uid, kept.resource_version) == (created.uid, created.resource_version)


def test_admin_endpoint_restarts_the_server_empty(sim: SimCluster, core: client.CoreV1Api) -> None:
    core.create_namespaced_service(NAMESPACE, service("gone"))
    request = urllib.request.Request(
        f"{sim.url}/_sim/restart", data=b'{"empty": true}', method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 202

    def restarted() -> bool:
        try:
            return core.list_namespaced_service(NAMESPACE).items == []
        except Exception:
            return False

    wait_for(restarted, what="the restarted, empty server")
