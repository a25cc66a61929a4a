"""The table misbehaving (issue 22, cases 6 to 8), injected at the boto3 boundary with
botocore event hooks on the daemon's real client against moto: a scan whose pages never
end stops with an error that is logged, counted and shown on /readyz, and the next scan
tries again."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from store import commands
from tests.integration.harness import Harness, wait_for


def _metric(daemon: Any, name: str, **labels: str) -> float:
    return sum(
        sample.value
        for family in daemon.metrics.registry.collect()
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
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
        lambda: _metric(daemon, failures, reason="ScanBroken") >= 2,
        what="two scans stopped and counted (the next scan tries again)",
    )
    detail = daemon.snapshot().detail
    assert "table scan failed" in detail, detail
    assert says in detail, detail
    broken.clear()
    kit.store.apply("m2", commands.update_spec, {"image": "repo/model:v2"})
    wait_for(lambda: _image(kit, "m2") == "repo/model:v2", what="a change applied once healed")
    wait_for(lambda: daemon.snapshot().detail == "", what="/readyz detail cleared")
