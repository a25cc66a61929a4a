"""The table's stream as the change feed (architecture section 4, issue 20).

A daemon whose table has a stream of new images takes a change a person writes at once,
not at the next scan (here the scan interval is a minute: only the feed can deliver in
the test's deadline); the scan becomes a resync; the daemon's own status writes, which
come back on the stream, cost no reconcile; a removed item deletes nothing by itself but
makes the next polls scan, so the guard's confirmations come at the scan interval; a
lost position (trimmed data) is answered with a full scan; an expired iterator is
re-acquired after the last record read, and nothing is lost. Faults are injected at the
boto3 boundary (a botocore `before-call` hook answering with the service's error), since
moto's stream has one shard that never expires or is trimmed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from actors.app.daemon import Daemon
from store import commands
from tests.integration.harness import Harness, metric_total, wait_for

#: A scan a minute and a resync far away: in these tests only the feed is quick.
FEED = {
    "RECONCILE_INTERVAL_SECONDS": "60",
    "STREAM_POLL_SECONDS": "0.2",
    "STREAM_RESYNC_SECONDS": "600",
}


@pytest.fixture
def streamed(kit: Harness) -> Harness:
    """The harness's table, recreated with a stream of new images."""
    kit.raw_table().delete()
    kit.raw_table().wait_until_not_exists()
    assert kit.store.create_table(stream=True)
    return kit


def _requests(daemon: Daemon, operation: str) -> float:
    return metric_total(daemon, "inference_supervisor_dynamodb_requests_total", operation=operation)


def _reconciles(daemon: Daemon) -> float:
    return metric_total(daemon, "inference_supervisor_reconcile_duration_seconds_count")


def _image(kit: Harness, name: str) -> str | None:
    deployment = kit.kube.get("Deployment", name)
    if deployment is None:
        return None
    return deployment["spec"]["template"]["spec"]["containers"][0]["image"]


def _answer_with_error(code: str, times: int) -> Callable[..., Any]:
    """A `before-call.dynamodbstreams.GetRecords` hook: the next `times` calls get the
    service's error `code` instead of reaching the server."""
    left = [times]

    def hook(**_: Any) -> Any:
        if left[0] <= 0:
            return None
        left[0] -= 1
        response = AWSResponse("http://local", 400, {}, None)
        return response, {"Error": {"Code": code, "Message": f"injected {code}"}}

    return hook


def test_a_change_reaches_the_cluster_at_once_and_scans_become_a_resync(
    streamed: Harness,
) -> None:
    kit = streamed
    daemon = kit.start_daemon(**FEED)
    wait_for(lambda: daemon.snapshot().leading, what="the daemon leads")
    wait_for(lambda: _requests(daemon, "Scan") >= 1, what="the start-up scan")
    kit.put("m1", replicas=1)
    kit.wait_state("m1", "running", timeout=10)
    kit.store.apply("m1", commands.update_spec, {"image": "repo/model:v2"})
    wait_for(lambda: _image(kit, "m1") == "repo/model:v2", timeout=10, what="v2 applied")
    kit.wait_state("m1", "running", timeout=10)
    assert _requests(daemon, "Scan") == 1, "only the start-up scan: the feed delivered"
    assert _requests(daemon, "GetRecords") > 0

    # Steady state: the daemon's own status writes come back on the stream, yet cost no
    # reconcile; table reads are stream reads, not scans.
    reconciles = _reconciles(daemon)
    reads = _requests(daemon, "GetRecords")
    wait_for(lambda: _requests(daemon, "GetRecords") >= reads + 10, what="ten feed reads")
    assert _reconciles(daemon) == reconciles
    assert _requests(daemon, "Scan") == 1


def test_a_removed_item_is_deleted_through_the_guard_at_the_scan_interval(
    streamed: Harness,
) -> None:
    kit = streamed
    daemon = kit.start_daemon(**{**FEED, "RECONCILE_INTERVAL_SECONDS": "0.3"})
    kit.put("m1", replicas=1)
    kit.put("m2", replicas=1)
    kit.wait_state("m1", "running", timeout=10)
    kit.wait_state("m2", "running", timeout=10)
    wait_for(lambda: _requests(daemon, "GetRecords") > 0, what="the feed read")
    # With a healthy feed, polls stop scanning (the resync is 10 minutes away).
    scans = _requests(daemon, "Scan")
    wait_for(lambda: _requests(daemon, "GetRecords") > 20, what="feed reads")
    assert _requests(daemon, "Scan") <= scans + 1
    kit.raw_table().delete_item(Key={"endpoint_name": "m1"})
    wait_for(lambda: kit.kube.get("Deployment", "m1") is None, timeout=15, what="m1's objects gone")
    assert _requests(daemon, "Scan") >= scans + 3, "the guard's confirmations were scans"
    assert kit.kube.get("Deployment", "m2") is not None


def test_an_expired_iterator_loses_nothing_and_trimmed_data_brings_a_scan(
    streamed: Harness,
) -> None:
    kit = streamed
    daemon = kit.start_daemon(**FEED)
    kit.put("m1", replicas=1)
    kit.wait_state("m1", "running", timeout=10)
    scans = _requests(daemon, "Scan")
    events = daemon.table_stream.client.meta.events

    # Expired: re-acquired after the last record read; the change written meanwhile arrives.
    expired = _answer_with_error("ExpiredIteratorException", 1)
    events.register_first("before-call.dynamodbstreams.GetRecords", expired)
    kit.store.apply("m1", commands.update_spec, {"image": "repo/model:v2"})
    wait_for(lambda: _image(kit, "m1") == "repo/model:v2", timeout=10, what="v2 applied")
    assert _requests(daemon, "Scan") == scans, "an expired iterator needs no scan"
    events.unregister("before-call.dynamodbstreams.GetRecords", expired)

    # Trimmed: the position is gone; a full scan repairs what the stream lost.
    trimmed = _answer_with_error("TrimmedDataAccessException", 3)
    events.register_first("before-call.dynamodbstreams.GetRecords", trimmed)
    kit.store.apply("m1", commands.update_spec, {"image": "repo/model:v3"})
    wait_for(lambda: _image(kit, "m1") == "repo/model:v3", timeout=10, what="v3 applied")
    assert _requests(daemon, "Scan") > scans, "trimmed data was answered with a scan"


def test_a_table_without_a_stream_is_scanned_as_before(kit: Harness) -> None:
    daemon = kit.start_daemon(**{**FEED, "RECONCILE_INTERVAL_SECONDS": "0.3"})
    kit.put("m1", replicas=1)
    kit.wait_state("m1", "running", timeout=10)
    scans = _requests(daemon, "Scan")
    wait_for(lambda: _requests(daemon, "Scan") >= scans + 3, what="scans at the interval")
    assert _requests(daemon, "GetRecords") == 0
