"""The item-level rollout record's conditional writes against a local DynamoDB: a
completion is recorded only when every listed region reports the revision done, and a
halt once per revision - also on an item that has no `rollout` record yet."""

from __future__ import annotations

from store.dynamo import DynamoEndpointStore
from store.model import RegionStatus
from store.rollout import Halt, RolloutRecord
from tests.integration.harness import REGION, Harness

OTHER = "eu-west-1"


def _record(store: DynamoEndpointStore, name: str) -> RolloutRecord:
    loaded = store.get(name)
    assert loaded is not None
    return RolloutRecord.from_item(loaded.raw)


def test_completion_without_a_record_yet_still_needs_every_region_done(kit: Harness) -> None:
    kit.put("m1", regions=(REGION, OTHER))
    done = RegionStatus(state="running", revision="r2", rollout="done")
    kit.store.write_region_status("m1", REGION, done)
    kit.store.write_region_status("m1", OTHER, RegionStatus(state="running", revision="r1"))
    loaded = kit.item("m1")
    assert loaded is not None
    assert "rollout" not in loaded.raw
    recorded = kit.store.record_rollout_completion(
        "m1", "r2", {"image": "x"}, [REGION, OTHER], expected_updated_at=loaded.updated_at
    )
    assert not recorded, "recorded while eu-west-1 had not finished"
    assert _record(kit.store, "m1").completed_revision is None
    kit.store.write_region_status("m1", OTHER, done)
    assert kit.store.record_rollout_completion(
        "m1", "r2", {"image": "x"}, [REGION, OTHER], expected_updated_at=loaded.updated_at
    )
    assert _record(kit.store, "m1").completed_revision == "r2"


def test_a_halt_is_recorded_once_per_revision(kit: Harness) -> None:
    kit.put("m1")
    loaded = kit.item("m1")
    assert loaded is not None
    first = Halt("r2", REGION, "not ready within 600s", "2027-01-15T08:00:00Z")
    second = Halt("r2", OTHER, "alarm", "2027-01-15T08:01:00Z")
    updated = loaded.updated_at
    assert kit.store.record_rollout_halt("m1", first, expected_updated_at=updated)
    assert not kit.store.record_rollout_halt("m1", second, expected_updated_at=updated)
    assert _record(kit.store, "m1").halt == first
