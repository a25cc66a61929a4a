"""The table misbehaving (issue 22, cases 6 to 8), injected at the boto3 boundary with
botocore event hooks on the daemon's real client against moto: a scan whose pages never
end stops with an error that is logged, counted and shown on /readyz, and the next scan
tries again; a status too large for its item is written once, trimmed; /readyz answers
503 with the reason within its deadline when the table is throttled or slow."""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from actors.app.daemon import READY_TABLE_CHECK_SECONDS
from store import commands
from store.model import TRIMMED
from tests.integration.harness import (
    NAMESPACE,
    REGION,
    Harness,
    metric_total,
    scan_count,
    wait_for,
)


def _image(kit: Harness, name: str) -> str | None:
    deployment = kit.kube.get("Deployment", name)
    if deployment is None:
        return None
    return deployment["spec"]["template"]["spec"]["containers"][0]["image"]


@pytest.fixture
def broken() -> Iterator[threading.Event]:
    """Set while the fault is on; cleared at the end so no scan is left spinning."""
    flag = threading.Event()
    yield flag
    flag.clear()


def _repeated() -> Callable[[], dict[str, Any]]:
    return lambda: {"endpoint_name": {"S": "m1"}}


def _endless() -> Callable[[], dict[str, Any]]:
    counter = itertools.count()
    return lambda: {"endpoint_name": {"S": f"zz-{next(counter)}"}}


@pytest.mark.parametrize(
    ("make_key", "says"),
    [
        pytest.param(_repeated, "repeated", id="repeated-key"),
        pytest.param(_endless, "pages for", id="pages-past-the-table"),
    ],
)
def test_a_scan_whose_pages_never_end_stops_with_an_error_and_the_next_one_retries(
    kit: Harness, broken: threading.Event, make_key: Callable[[], Any], says: str
) -> None:
    kit.put("m1")
    kit.put("m2")
    daemon = kit.start_daemon()
    kit.wait_state("m1", "running")
    kit.wait_state("m2", "running")
    next_key = make_key()

    def rewrite(parsed: dict[str, Any], **_: Any) -> None:
        if broken.is_set():
            parsed["LastEvaluatedKey"] = next_key()

    daemon.store.events.register("after-call.dynamodb.Scan", rewrite)
    broken.set()
    failures = "inference_supervisor_scan_failures_total"
    wait_for(
        lambda: metric_total(daemon, failures, reason="ScanBroken") >= 2,
        what="two scans stopped and counted (the next scan tries again)",
    )
    detail = daemon.snapshot().detail
    assert "table scan failed" in detail, detail
    assert says in detail, detail
    broken.clear()
    kit.store.apply("m2", commands.update_spec, {"image": "repo/model:v2"})
    wait_for(lambda: _image(kit, "m2") == "repo/model:v2", what="a change applied once healed")
    wait_for(lambda: daemon.snapshot().detail == "", what="/readyz detail cleared")


#: DynamoDB refuses a write that takes an item past 400 KB; moto enforces that on PutItem
#: only, so the hook below applies it to UpdateItem for an item `HEADROOM` bytes under the
#: limit: a status entry larger than that (as JSON of the wire format) cannot be written.
ITEM_LIMIT = 400 * 1024
HEADROOM = 2048


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")))


def test_a_status_too_large_for_the_item_is_written_once_trimmed_and_says_so(
    kit: Harness,
) -> None:
    """Issue 22, case 7: an item near the 400 KB limit made its status flap (204 UpdateItem
    calls in 40 s). Its status now lands once, trimmed, saying so; nothing is rewritten."""
    raw = kit.raw_table()
    client = raw.meta.client
    # Invalid (its error quotes the 4 KB value), padded near the limit.
    item = {
        "endpoint_name": "big",
        "desired_state": "running",
        "target_regions": [REGION],
        "namespace": NAMESPACE,
        "spec": {"image": "repo/model:v1", "replicas": "many" * 1000},
        "region_status": {},
        "notes": "",
    }
    raw.put_item(Item=item)
    stored = client.get_item(TableName=kit.table_name, Key={"endpoint_name": "big"})["Item"]
    item["notes"] = "x" * (ITEM_LIMIT - 32 * 1024 - _size(stored))
    raw.put_item(Item=item)
    kit.put("small")
    calls: list[int] = []

    def item_size_limit(params: dict[str, Any], **_: Any) -> Any:
        body = json.loads(params["body"])
        if body["Key"] != {"endpoint_name": {"S": "big"}}:
            return None
        calls.append(1)
        if _size(body.get("ExpressionAttributeValues", {})) <= HEADROOM:
            return None
        error = {
            "Error": {
                "Code": "ValidationException",
                "Message": "Item size to update has exceeded the maximum allowed size",
            },
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
        return AWSResponse(params["url"], 400, {}, None), error

    daemon = kit.start_daemon(start=False)
    daemon.store.events.register("before-call.dynamodb.UpdateItem", item_size_limit)
    daemon.start()
    status = kit.wait_state("big", "error")
    assert status.error is not None
    assert status.error.startswith("invalid item: spec.replicas must be an integer")
    assert status.error.endswith(TRIMMED), status.error
    assert len(status.error) < 1000
    written = len(calls)
    scans = scan_count(daemon)
    wait_for(lambda: scan_count(daemon) >= scans + 10, what="ten more scans")
    assert len(calls) == written, "no rewrite, no flapping"
    assert kit.state("small") == "running"


class _Body:
    """The raw body of an injected HTTP response (what botocore reads `.stream()` of)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


def _throttle(request: Any, **_: Any) -> AWSResponse:
    """Every attempt answered as a throttled table answers; botocore retries with backoff."""
    body = {
        "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
        "message": "Rate of requests exceeds the allowed throughput.",
    }
    return AWSResponse(request.url, 400, {}, _Body(json.dumps(body).encode()))


def _slow(request: Any, **_: Any) -> None:
    """Every attempt answered 4 s late."""
    time.sleep(4)


def _readyz(port: int) -> tuple[int, str, float]:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=30) as answer:
            status, text = answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    return status, text.strip(), time.monotonic() - started


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        pytest.param(_throttle, "ThrottlingException", id="throttled"),
        pytest.param(_slow, "did not answer within", id="slow"),
    ],
)
def test_readyz_answers_503_with_the_reason_within_its_deadline_when_the_table_misbehaves(
    kit: Harness, broken: threading.Event, fault: Callable[..., Any], says: str
) -> None:
    """Issue 22, case 8: a throttled table made /readyz take over 5 s (a probe's timeout
    is 3 s) instead of answering 503 with the reason."""
    daemon = kit.start_daemon(serve_http=True, start=False)

    def inject(request: Any, **kwargs: Any) -> Any:
        return fault(request, **kwargs) if broken.is_set() else None

    # Both clients: the store's, and the table check's own (one attempt, short timeouts).
    for store in (daemon.store, daemon.probe_store):
        store.events.register("before-send.dynamodb.DescribeTable", inject)
    daemon.start()
    assert daemon.health is not None
    port = daemon.health.port
    wait_for(lambda: _readyz(port)[:2] == (200, "leader"), what="/readyz leader")
    # Past the reuse window of the last table check, the fault on.
    broken.set()
    clock_past_cache = time.monotonic() + READY_TABLE_CHECK_SECONDS
    wait_for(lambda: time.monotonic() > clock_past_cache, timeout=10, what="the cache expired")
    status, text, took = _readyz(port)
    assert took < 2.5, f"/readyz took {took:.1f}s"
    assert status == 503, text
    assert says in text, text
    broken.clear()
    wait_for(lambda: _readyz(port)[:2] == (200, "leader"), timeout=30, what="ready again")
