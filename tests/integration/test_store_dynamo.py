"""The DynamoDB store against a local DynamoDB (moto server), with the real boto3 client."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest

from store import commands
from store.dynamo import DynamoEndpointStore
from store.errors import (
    ConditionFailed,
    InvalidEndpoint,
    ItemExists,
    ItemNotFound,
    OperationRefused,
    TableNotFound,
)
from store.item import LoadedItem
from store.model import Endpoint, EndpointSpec, RegionStatus, utc_timestamp

# Written by the predecessor's CLI (`datetime.now(UTC).isoformat()` timestamps, a
# `gpu_type` we do not model) plus an attribute another tool added.
PREDECESSOR_ITEM: dict[str, Any] = {
    "endpoint_name": "llama3",
    "desired_state": "running",
    "target_regions": ["us-east-1", "eu-west-1"],
    "namespace": "gco-inference",
    "spec": {
        "image": "vllm/vllm-openai:v0.8.0",
        "port": 8000,
        "replicas": 2,
        "gpu_count": 1,
        "health_check_path": "/health",
        "gpu_type": "g5.xlarge",
        "autoscaling": {"enabled": False, "target_cpu": Decimal("0.75")},
    },
    "ingress_path": "/inference/llama3",
    "created_at": "2025-06-01T10:00:00.123456+00:00",
    "updated_at": "2025-06-01T10:00:00.123456+00:00",
    "region_status": {
        "eu-west-1": {
            "state": "running",
            "replicas_ready": 2,
            "replicas_desired": 2,
            "last_sync": "2025-06-01T10:00:05.000000+00:00",
        }
    },
    "cost_center": "ml-platform",
}


@pytest.fixture
def new_store(dynamo_url: str, table_name: str) -> Iterator[Callable[..., DynamoEndpointStore]]:
    """Factory of stores on one fresh table (each store is closed after the test)."""
    stores: list[DynamoEndpointStore] = []

    def make(**options: Any) -> DynamoEndpointStore:
        store = DynamoEndpointStore(table_name, endpoint_url=dynamo_url, **options)
        stores.append(store)
        return store

    make().create_table()
    yield make
    for store in stores:
        store.close()


@pytest.fixture
def store(new_store: Callable[..., DynamoEndpointStore]) -> DynamoEndpointStore:
    return new_store()


@pytest.fixture
def raw_table(dynamo_url: str, table_name: str) -> Iterator[Any]:
    """The same table through boto3's resource API: writes items as another tool would."""
    resource = boto3.resource(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=dynamo_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    yield resource.Table(table_name)
    resource.meta.client.close()


def endpoint(name: str = "llama3", **spec: Any) -> Endpoint:
    now = utc_timestamp()
    return Endpoint(
        endpoint_name=name,
        desired_state="deploying",
        target_regions=("us-east-1", "eu-west-1"),
        spec=EndpointSpec(image=spec.pop("image", "vllm/vllm-openai:v0.8.0"), **spec),
        created_at=now,
        updated_at=now,
    )


class InterleavedStore(DynamoEndpointStore):
    """A store whose next `get` lets another writer commit right after the read, so a
    test can place a concurrent write between an operation's read and its write."""

    between_read_and_write: Callable[[], None] | None = None

    def get(self, name: str) -> LoadedItem | None:
        loaded = super().get(name)
        other_writer, self.between_read_and_write = self.between_read_and_write, None
        if other_writer is not None:
            other_writer()
        return loaded


def test_create_then_get_round_trips(store: DynamoEndpointStore) -> None:
    created = endpoint(replicas=3, env={"MODEL": "llama3"})
    store.create(created)
    loaded = store.get("llama3")
    assert loaded is not None
    assert loaded.endpoint == created
    assert loaded.problems == ()
    assert loaded.updated_at == created.updated_at
    assert store.get("missing") is None


def test_create_refuses_an_existing_name(store: DynamoEndpointStore) -> None:
    store.create(endpoint(replicas=1))
    with pytest.raises(ItemExists, match="endpoint 'llama3' already exists"):
        store.create(endpoint(replicas=7))
    loaded = store.get("llama3")
    assert loaded is not None
    assert loaded.endpoint is not None
    assert loaded.endpoint.spec.replicas == 1


def test_create_refuses_an_invalid_endpoint_and_writes_nothing(
    store: DynamoEndpointStore,
) -> None:
    with pytest.raises(InvalidEndpoint, match=r"spec.replicas must be between 0 and 1000"):
        store.create(endpoint(replicas=5000))
    assert store.scan() == []


def test_create_table_is_idempotent_and_reachable(store: DynamoEndpointStore) -> None:
    assert store.create_table() is False
    assert store.reachable() is True


def test_missing_table_is_reported(dynamo_url: str) -> None:
    with DynamoEndpointStore("no-such-table", endpoint_url=dynamo_url) as store:
        assert store.reachable() is False
        with pytest.raises(TableNotFound, match="table no-such-table does not exist"):
            store.scan()


def test_update_sets_and_removes_paths_and_bumps_updated_at(store: DynamoEndpointStore) -> None:
    store.create(endpoint(env={"A": "1"}))
    before = store.get("llama3")
    assert before is not None
    new_stamp = store.update(
        "llama3",
        set_={"spec.replicas": 4, "desired_state": "running"},
        remove=["spec.env"],
        expected_updated_at=before.updated_at,
    )
    after = store.get("llama3")
    assert after is not None
    assert after.endpoint is not None
    assert (after.endpoint.spec.replicas, after.endpoint.desired_state) == (4, "running")
    assert after.endpoint.spec.env == {}
    assert after.updated_at == new_stamp != before.updated_at


def test_conditional_update_loses_a_race_and_writes_nothing(
    new_store: Callable[..., DynamoEndpointStore],
) -> None:
    """Read, another writer commits, then the write based on the old read must fail."""
    mine, theirs = new_store(), new_store()
    mine.create(endpoint())
    read = mine.get("llama3")
    assert read is not None
    theirs.apply("llama3", commands.set_desired_state, "stopped")
    with pytest.raises(ConditionFailed, match="changed since it was read"):
        mine.update("llama3", set_={"spec.replicas": 9}, expected_updated_at=read.updated_at)
    with pytest.raises(ConditionFailed):
        mine.apply(
            "llama3", commands.update_spec, {"replicas": 9}, expected_updated_at=read.updated_at
        )
    final = mine.get("llama3")
    assert final is not None
    assert final.endpoint is not None
    assert (final.endpoint.desired_state, final.endpoint.spec.replicas) == ("stopped", 1)


def test_update_of_a_missing_item_is_not_found_and_creates_nothing(
    store: DynamoEndpointStore,
) -> None:
    with pytest.raises(ItemNotFound, match="endpoint 'ghost' not found"):
        store.update("ghost", set_={"desired_state": "stopped"})
    with pytest.raises(ItemNotFound):
        store.apply("ghost", commands.set_desired_state, "stopped")
    assert store.scan() == []


def test_update_spec_keeps_a_stopped_endpoint_stopped(store: DynamoEndpointStore) -> None:
    """Defect 9: a spec update must not restart a stopped endpoint."""
    store.create(endpoint())
    store.apply("llama3", commands.set_desired_state, "stopped")
    store.apply("llama3", commands.update_spec, {"replicas": 3})
    loaded = store.get("llama3")
    assert loaded is not None
    assert loaded.endpoint is not None
    assert (loaded.endpoint.desired_state, loaded.endpoint.spec.replicas) == ("stopped", 3)


def test_image_update_drops_region_overrides(store: DynamoEndpointStore) -> None:
    """Defect 2: a new image must not keep serving an old per-region override."""
    store.create(endpoint(region_image_uris={"eu-west-1": "eu.example.com/llm:1"}))
    store.apply("llama3", commands.update_spec, {"image": "vllm/vllm-openai:v0.9.0"})
    loaded = store.get("llama3")
    assert loaded is not None
    assert loaded.endpoint is not None
    assert loaded.endpoint.spec.image_for("eu-west-1") == "vllm/vllm-openai:v0.9.0"
    assert "region_image_uris" not in loaded.raw["spec"]


def test_update_spec_refuses_an_invalid_change(store: DynamoEndpointStore) -> None:
    store.create(endpoint())
    with pytest.raises(InvalidEndpoint, match=r"spec.port must be between 1 and 65535, got 0"):
        store.apply("llama3", commands.update_spec, {"port": 0})
    loaded = store.get("llama3")
    assert loaded is not None
    assert loaded.endpoint is not None
    assert loaded.endpoint.spec.port == 8000


def test_canary_promote_and_rollback(store: DynamoEndpointStore) -> None:
    store.create(endpoint(region_image_uris={"eu-west-1": "eu.example.com/llm:1"}))
    store.apply("llama3", commands.set_canary, "vllm/vllm-openai:v0.9.0", 25, replicas=2)
    loaded = store.get("llama3")
    assert loaded is not None
    assert loaded.endpoint is not None
    assert loaded.raw["spec"]["canary"] == {
        "image": "vllm/vllm-openai:v0.9.0",
        "weight": 25,
        "replicas": 2,
    }
    store.apply("llama3", commands.promote)
    promoted = store.get("llama3")
    assert promoted is not None
    assert promoted.endpoint is not None
    assert promoted.endpoint.spec.canary is None
    assert promoted.endpoint.spec.image_for("eu-west-1") == "vllm/vllm-openai:v0.9.0"
    assert "region_image_uris" not in promoted.raw["spec"]
    store.apply("llama3", commands.set_canary, "vllm/vllm-openai:v1.0.0", 10)
    store.apply("llama3", commands.rollback)
    rolled_back = store.get("llama3")
    assert rolled_back is not None
    assert rolled_back.endpoint is not None
    assert rolled_back.endpoint.spec.canary is None
    assert rolled_back.endpoint.spec.image == "vllm/vllm-openai:v0.9.0"
    with pytest.raises(OperationRefused, match="has no canary"):
        store.apply("llama3", commands.promote)


def test_promote_refused_after_a_concurrent_stop(
    dynamo_url: str, table_name: str, new_store: Callable[..., DynamoEndpointStore]
) -> None:
    """Defect 8: a stop that commits between promote's read and write wins."""
    operator = new_store()
    operator.create(endpoint())
    operator.apply("llama3", commands.set_canary, "vllm/vllm-openai:v0.9.0", 10)
    with InterleavedStore(table_name, endpoint_url=dynamo_url) as promoter:
        promoter.between_read_and_write = lambda: operator.apply(
            "llama3", commands.set_desired_state, "stopped"
        )
        with pytest.raises(ConditionFailed, match="desired_state now stopped"):
            promoter.apply("llama3", commands.promote)
    loaded = operator.get("llama3")
    assert loaded is not None
    assert loaded.endpoint is not None
    assert loaded.endpoint.desired_state == "stopped"
    assert loaded.endpoint.spec.image == "vllm/vllm-openai:v0.8.0"
    assert loaded.endpoint.spec.canary is not None


def test_start_of_a_deleted_endpoint_is_refused(store: DynamoEndpointStore) -> None:
    store.create(endpoint())
    store.apply("llama3", commands.set_desired_state, "deleted")
    with pytest.raises(OperationRefused, match="is being deleted"):
        store.apply("llama3", commands.set_desired_state, "running")


def test_region_status_writes_keep_each_others_entries(
    new_store: Callable[..., DynamoEndpointStore],
) -> None:
    us, eu = new_store(), new_store()
    us.create(endpoint())
    before = us.get("llama3")
    assert before is not None
    assert us.write_region_status("llama3", "us-east-1", RegionStatus("creating", 0, 1, "t1"))
    assert eu.write_region_status("llama3", "eu-west-1", RegionStatus("running", 1, 1, "t2"))
    assert us.write_region_status("llama3", "us-east-1", RegionStatus("running", 1, 1, "t3"))
    after = us.get("llama3")
    assert after is not None
    assert after.region_status == {
        "us-east-1": RegionStatus("running", 1, 1, "t3"),
        "eu-west-1": RegionStatus("running", 1, 1, "t2"),
    }
    # Status writes are not spec changes.
    assert (after.updated_at, after.content_hash) == (before.updated_at, before.content_hash)


def test_first_status_writes_on_an_item_without_region_status(
    new_store: Callable[..., DynamoEndpointStore], raw_table: Any
) -> None:
    item = {k: v for k, v in PREDECESSOR_ITEM.items() if k != "region_status"}
    raw_table.put_item(Item=item)
    us, eu = new_store(), new_store()
    assert us.write_region_status("llama3", "us-east-1", RegionStatus("creating", 0, 2, "t1"))
    assert eu.write_region_status("llama3", "eu-west-1", RegionStatus("creating", 0, 2, "t2"))
    loaded = us.get("llama3")
    assert loaded is not None
    assert set(loaded.region_status) == {"us-east-1", "eu-west-1"}


def test_concurrent_status_writers_from_two_regions(
    new_store: Callable[..., DynamoEndpointStore],
) -> None:
    """Real threads, one per region, each writing its own entry many times."""
    new_store().create(endpoint())
    failures: list[BaseException] = []

    def report(region: str) -> None:
        with_store = new_store()
        try:
            for ready in range(15):
                with_store.write_region_status("llama3", region, RegionStatus("running", ready, 15))
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=report, args=(r,)) for r in ("us-east-1", "eu-west-1")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert failures == []
    loaded = new_store().get("llama3")
    assert loaded is not None
    assert {r: s.replicas_ready for r, s in loaded.region_status.items()} == {
        "us-east-1": 14,
        "eu-west-1": 14,
    }


def test_status_write_never_recreates_a_purged_item(store: DynamoEndpointStore) -> None:
    assert store.write_region_status("ghost", "us-east-1", RegionStatus("deleted")) is False
    assert store.write_region_status("ghost", "us-east-1", None) is False
    assert store.scan() == []


def test_status_removal_touches_only_that_region(store: DynamoEndpointStore) -> None:
    store.create(endpoint())
    store.write_region_status("llama3", "us-east-1", RegionStatus("running", 1, 1, "t"))
    store.write_region_status("llama3", "eu-west-1", RegionStatus("running", 1, 1, "t"))
    assert store.write_region_status("llama3", "us-east-1", None) is True
    loaded = store.get("llama3")
    assert loaded is not None
    assert list(loaded.region_status) == ["eu-west-1"]


def test_empty_last_sync_is_stamped(store: DynamoEndpointStore) -> None:
    store.create(endpoint())
    store.write_region_status("llama3", "us-east-1", RegionStatus("error", error="bad spec"))
    loaded = store.get("llama3")
    assert loaded is not None
    status = loaded.region_status["us-east-1"]
    assert (status.state, status.error) == ("error", "bad spec")
    assert status.last_sync.endswith("+00:00")


def test_purge_only_when_every_listed_region_is_deleted(store: DynamoEndpointStore) -> None:
    store.create(endpoint())
    store.write_region_status("llama3", "us-east-1", RegionStatus("deleted"))
    store.write_region_status("llama3", "eu-west-1", RegionStatus("deleted"))
    assert store.purge_if_deleted("llama3", ["us-east-1", "eu-west-1"]) is False  # not deleted
    store.apply("llama3", commands.set_desired_state, "deleted")
    store.write_region_status("llama3", "eu-west-1", RegionStatus("deleting"))
    assert store.purge_if_deleted("llama3", ["us-east-1", "eu-west-1"]) is False
    store.write_region_status("llama3", "eu-west-1", RegionStatus("deleted"))
    assert store.purge_if_deleted("llama3", ["us-east-1", "eu-west-1"]) is True
    assert store.get("llama3") is None
    assert store.purge_if_deleted("llama3", ["us-east-1"]) is False


def test_scan_reads_every_page(new_store: Callable[..., DynamoEndpointStore]) -> None:
    requests: list[tuple[str, str]] = []
    store = new_store(page_size=2, on_request=lambda op, outcome: requests.append((op, outcome)))
    names = [f"model-{i}" for i in range(7)]
    for name in names:
        store.create(endpoint(name))
    requests.clear()
    assert sorted(item.name for item in store.scan()) == names
    assert requests.count(("Scan", "ok")) >= 4  # 7 items, 2 per page


def test_on_request_reports_error_codes(new_store: Callable[..., DynamoEndpointStore]) -> None:
    requests: list[tuple[str, str]] = []
    store = new_store(on_request=lambda op, outcome: requests.append((op, outcome)))
    store.create(endpoint())
    with pytest.raises(ItemExists):
        store.create(endpoint())
    assert requests[-2:] == [("PutItem", "ok"), ("PutItem", "ConditionalCheckFailedException")]


def test_predecessor_item_loads_and_survives_our_writes(
    store: DynamoEndpointStore, raw_table: Any
) -> None:
    raw_table.put_item(Item=PREDECESSOR_ITEM)
    loaded = store.get("llama3")
    assert loaded is not None
    assert loaded.problems == ()
    assert loaded.endpoint is not None
    assert loaded.endpoint.spec.replicas == 2
    assert loaded.raw["cost_center"] == "ml-platform"
    assert loaded.raw["spec"]["autoscaling"]["target_cpu"] == 0.75

    store.write_region_status("llama3", "us-east-1", RegionStatus("running", 2, 2, "t"))
    store.apply("llama3", commands.update_spec, {"replicas": 3})
    store.apply("llama3", commands.set_desired_state, "stopped")

    after = raw_table.get_item(Key={"endpoint_name": "llama3"}, ConsistentRead=True)["Item"]
    changed = {"updated_at", "desired_state", "spec", "region_status"}
    assert {k: v for k, v in after.items() if k not in changed} == {
        k: v for k, v in PREDECESSOR_ITEM.items() if k not in changed
    }
    assert after["spec"] == {**PREDECESSOR_ITEM["spec"], "replicas": 3}
    assert after["region_status"] == {
        **PREDECESSOR_ITEM["region_status"],
        "us-east-1": {
            "state": "running",
            "replicas_ready": 2,
            "replicas_desired": 2,
            "last_sync": "t",
        },
    }
    assert after["desired_state"] == "stopped"


def test_invalid_item_scans_with_problems_and_raw_untouched(
    store: DynamoEndpointStore, raw_table: Any
) -> None:
    bad = {
        **PREDECESSOR_ITEM,
        "spec": {**PREDECESSOR_ITEM["spec"], "replicas": 5000, "accelerator": "amd"},
    }
    raw_table.put_item(Item=bad)
    (loaded,) = store.scan()
    assert loaded.endpoint is None
    assert loaded.name == "llama3"
    assert loaded.problems == (
        "spec.replicas must be between 0 and 1000, got 5000",
        "spec.accelerator must be one of nvidia, neuron, got 'amd'",
    )
    assert loaded.region_status["eu-west-1"].state == "running"
    assert loaded.raw["spec"]["replicas"] == 5000
    assert type(loaded.raw["spec"]["port"]) is int

    # This region reports the error; the item itself is not rewritten.
    assert store.write_region_status(
        "llama3", "us-east-1", RegionStatus("error", error="; ".join(loaded.problems))
    )
    after = raw_table.get_item(Key={"endpoint_name": "llama3"}, ConsistentRead=True)["Item"]
    assert {k: v for k, v in after.items() if k != "region_status"} == {
        k: v for k, v in bad.items() if k != "region_status"
    }


def test_create_stamps_missing_timestamps(store: DynamoEndpointStore) -> None:
    store.create(Endpoint("llama3", "deploying", ("us-east-1",), EndpointSpec(image="nginx:1.27")))
    loaded = store.get("llama3")
    assert loaded is not None
    assert loaded.raw["created_at"] == loaded.raw["updated_at"]
    assert loaded.raw["created_at"].endswith("+00:00")
