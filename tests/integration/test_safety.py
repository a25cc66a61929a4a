"""Deletion safety (defect 11) and adoption of the predecessor's objects: a wrong REGION
deletes nothing; an item that vanishes from the table is cleaned up only after three
scans agree; objects the old reconciler created are adopted in place."""

from __future__ import annotations

from tests.integration.harness import NAMESPACE, Harness, scan_count, wait_for


def test_a_wrong_region_deletes_nothing(kit: Harness) -> None:
    kit.put("m1")
    kit.put("m2")
    right = kit.start_daemon(POD_NAME="right-region")
    kit.wait_state("m1", "running")
    kit.wait_state("m2", "running")
    right.stop()
    # The table itself is reachable (its region set apart): only the cluster's REGION is wrong.
    wrong = kit.start_daemon(
        POD_NAME="wrong-region", REGION="us-west-9", DYNAMODB_REGION="us-east-1"
    )
    wait_for(lambda: wrong.snapshot().leading, what="wrong-region daemon leads")
    scans = scan_count(wrong)
    wait_for(lambda: scan_count(wrong) >= scans + 5, what="five scans")
    for name in ("m1", "m2"):
        assert kit.kube.get("Deployment", name) is not None
        assert kit.kube.get("Ingress", f"inference-{name}") is not None
    assert kit.status("m1", "us-west-9") is None, "nothing written for a region no item targets"


def test_vanished_item_is_cleaned_up_only_after_three_scans_agree(kit: Harness) -> None:
    kit.put("m1")
    kit.put("m2")
    daemon = kit.start_daemon()
    kit.wait_state("m1", "running")
    kit.wait_state("m2", "running")
    table = kit.raw_table()
    scans_before = scan_count(daemon)
    table.delete_item(Key={"endpoint_name": "m1"})
    wait_for(
        lambda: kit.kube.get("Deployment", "m1") is None
        and kit.kube.get("Ingress", "inference-m1") is None,
        what="orphan removed",
    )
    assert scan_count(daemon) - scans_before >= 3
    assert kit.kube.get("Deployment", "m2") is not None


def test_predecessor_objects_are_adopted_in_place(kit: Harness) -> None:
    labels = {"app": "m1", "project": "gco", "gco.io/type": "inference"}
    old = kit.kube.create(
        "Deployment",
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "m1", "namespace": NAMESPACE, "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "m1"}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "inference", "image": "old:1"}]},
                },
            },
        },
    )
    kit.put("m1", image="repo/model:v1")
    kit.start_daemon()
    kit.wait_state("m1", "running")
    adopted = kit.kube.get("Deployment", "m1")
    assert adopted["metadata"]["uid"] == old["metadata"]["uid"], "adopted, not recreated"
    assert adopted["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "inference-supervisor"
    assert adopted["spec"]["template"]["spec"]["containers"][0]["image"] == "repo/model:v1"


def test_a_status_write_that_fails_for_one_endpoint_does_not_hold_up_the_others(
    kit: Harness,
) -> None:
    """Defect 16: an error writing one status aborted the whole cycle for everyone."""
    kit.put("m2")
    table = kit.raw_table()
    # An older writer left region_status as a string: no status can be written into it.
    table.put_item(
        Item={
            "endpoint_name": "m1",
            "desired_state": "running",
            "target_regions": ["us-east-1"],
            "namespace": NAMESPACE,
            "created_at": "2026-01-01T00:00:00+00:00",
            "updated_at": "2026-01-01T00:00:00+00:00",
            "spec": {"image": "repo/model:v1"},
            "region_status": "corrupt",
        }
    )
    kit.start_daemon()
    kit.wait_state("m2", "running")
    wait_for(lambda: kit.kube.get("Deployment", "m1"), what="m1 still applied")
    assert kit.item("m1").raw["region_status"] == "corrupt", "never rewritten"
