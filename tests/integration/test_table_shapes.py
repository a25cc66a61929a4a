"""Odd shapes of `target_regions` (issue 22, case 4): a DynamoDB string set is served
like a list (the predecessor's `region in target_regions` works on one), and a shape
that cannot be read gives the item an `error` status naming the field, never silence."""

from __future__ import annotations

from tests.integration.harness import REGION, Harness, wait_for


def _image(kit: Harness, name: str) -> str | None:
    deployment = kit.kube.get("Deployment", name)
    if deployment is None:
        return None
    return deployment["spec"]["template"]["spec"]["containers"][0]["image"]


def test_a_string_set_of_regions_is_served_like_a_list(kit: Harness) -> None:
    kit.put_raw("new-set")
    kit.raw_table().update_item(
        Key={"endpoint_name": "new-set"},
        UpdateExpression="SET target_regions = :regions",
        ExpressionAttributeValues={":regions": {REGION, "eu-west-1"}},
    )
    kit.put("was-list")
    kit.start_daemon()
    kit.wait_state("new-set", "running")
    assert kit.kube.get("Deployment", "new-set") is not None
    kit.wait_state("was-list", "running")
    # The list becomes a string set (an older tool rewrote it): still served, and a change
    # made after it is applied.
    kit.raw_table().update_item(
        Key={"endpoint_name": "was-list"},
        UpdateExpression="SET target_regions = :regions, spec.image = :image",
        ExpressionAttributeValues={":regions": {REGION}, ":image": "repo/model:v2"},
    )
    wait_for(
        lambda: _image(kit, "was-list") == "repo/model:v2",
        what="the change made with the set applied",
    )
    kit.wait_state("was-list", "running")
    assert kit.item("was-list").endpoint is not None


def test_target_regions_that_cannot_be_read_give_an_error_naming_the_field(
    kit: Harness,
) -> None:
    for name, regions in (("a-number", 7), ("a-map", {"region": REGION}), ("numbers", {1, 2})):
        kit.put_raw(name)
        kit.raw_table().update_item(
            Key={"endpoint_name": name},
            UpdateExpression="SET target_regions = :regions",
            ExpressionAttributeValues={":regions": regions},
        )
    kit.start_daemon()
    for name in ("a-number", "a-map", "numbers"):
        status = kit.wait_state(name, "error")
        assert "target_regions" in (status.error or ""), status.error
        assert kit.kube.get("Deployment", name) is None
