"""Bad input in the table (architecture section 8) with the real daemon against moto and `k8s.sim`:
each problem is one clear message in this region's status, the item is never applied and
never rewritten, and nothing crashes or loops."""

from __future__ import annotations

from typing import Any

from tests.integration.harness import NAMESPACE, REGION, Harness, scan_count, wait_for


def put_item(kit: Harness, name: str, **attributes: Any) -> dict[str, Any]:
    """Write an item with plain boto3 (unvalidated), as a hand edit or an older writer leaves it."""
    item = {
        "endpoint_name": name,
        "desired_state": "running",
        "target_regions": [REGION],
        "namespace": NAMESPACE,
        "created_at": "2026-01-01T00:00:00+00:00",
        "updated_at": "2026-01-01T00:00:00+00:00",
        "spec": {"image": "repo/model:v1"},
        **attributes,
    }
    kit.raw_table().put_item(Item=item)
    return item


def without_status(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if k != "region_status"}


def update_items(daemon) -> float:
    """DynamoDB UpdateItem requests the daemon has made so far (its own /metrics counters)."""
    return sum(
        sample.value
        for family in daemon.metrics.registry.collect()
        for sample in family.samples
        if sample.name == "inference_supervisor_dynamodb_requests_total"
        and sample.labels.get("operation") == "UpdateItem"
    )


def test_ingress_path_that_is_not_a_string_is_an_error_never_applied(kit: Harness) -> None:
    """An `ingress_path` of 5 crashed the endpoint actor (restarted, then parked)."""
    put_item(kit, "m1", ingress_path=5)
    before = kit.item("m1").raw
    daemon = kit.start_daemon()
    status = kit.wait_state("m1", "error")
    assert status.error == (
        "invalid item: ingress_path must be a path like /inference/m1 "
        "(a string starting with '/'), got 5"
    )
    assert kit.kube.get("Deployment", "m1") is None
    assert kit.kube.get("Ingress", "inference-m1") is None
    assert without_status(kit.item("m1").raw) == without_status(before)
    assert daemon.snapshot().leading
    assert not any(
        sample.value
        for family in daemon.metrics.registry.collect()
        for sample in family.samples
        if sample.name == "inference_supervisor_actor_restarts_total"
    ), "no crash, no restart"


def test_target_regions_given_as_a_string_is_an_error_in_the_region_it_names(
    kit: Harness,
) -> None:
    """`target_regions: "us-east-1"` was silently ignored: no region served it or said why."""
    put_item(kit, "m1", target_regions=REGION)
    before = kit.item("m1").raw
    kit.start_daemon()
    status = kit.wait_state("m1", "error")
    assert status.error == (
        "invalid item: target_regions must be a list or a string set of region names, "
        f"got {REGION!r}"
    )
    assert kit.kube.get("Deployment", "m1") is None
    assert without_status(kit.item("m1").raw) == without_status(before)


def test_region_status_that_is_not_a_map_is_left_alone_and_not_retried_in_a_loop(
    kit: Harness,
) -> None:
    """A string `region_status` cost 176 failed status writes in a loop. The item is served
    (the predecessor served it); its status cannot be written without rewriting the user's
    attribute, so it is not written: one attempt per status change, never a retry loop."""
    put_item(kit, "m1", region_status="corrupt")
    daemon = kit.start_daemon()
    wait_for(
        lambda: (kit.kube.get("Deployment", "m1") or {}).get("status", {}).get("readyReplicas"),
        what="m1 applied and ready",
    )
    scans = scan_count(daemon)
    wait_for(lambda: scan_count(daemon) >= scans + 3, what="three scans")
    settled = update_items(daemon)
    # creating, then running: at most one refused attempt per status the actor has to say.
    assert settled <= 3, f"{settled} UpdateItem requests"
    scans = scan_count(daemon)
    wait_for(lambda: scan_count(daemon) >= scans + 10, timeout=30, what="ten more scans")
    assert update_items(daemon) == settled, "no status write retried while nothing changes"
    assert kit.item("m1").raw["region_status"] == "corrupt", "never rewritten"
