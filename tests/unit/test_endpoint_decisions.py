"""The endpoint actor's decisions, with strict fakes of its two doors (`tests/unit/fakes.py`)
and a fake clock: what it applies, what it deletes, what it reports. Real pykka actors;
the real clients are exercised by the integration tests."""

from __future__ import annotations

from typing import Any

import pykka
import pytest

from actors.clock import FakeClock
from actors.endpoint import EndpointActor, EndpointContext, EndpointSlot
from actors.messages import Reconcile
from actors.permits import HandlerPermits
from actors.pool import WorkerPool
from actors.scheduler import Scheduler
from store.errors import StoreError, Throttled
from tests.items import loaded
from tests.unit.fakes import FakeCluster, FakeStore

#: The endpoint actors' threads; idle workers end at once, so no thread outlives a test.
POOL = WorkerPool(2, idle_seconds=0.05, name="test-endpoint")

REGION = "us-east-1"


def _item(**fields: Any):
    return loaded(regions=(REGION,), **fields)


def _context(
    cluster: FakeCluster, store: FakeStore, scheduler: Scheduler, clock: FakeClock
) -> EndpointContext:
    return EndpointContext(
        region=REGION,
        cluster="test",
        namespace="gco-inference",
        gateway=cluster,
        store=store,
        scheduler=scheduler,
        clock=clock,
        may_write=lambda: True,
        permits=HandlerPermits(1, monotonic=clock.monotonic, pool=POOL),
        pool=POOL,
        heartbeat=0,
    )


def _run(item, cluster: FakeCluster, store: FakeStore, scheduler: Scheduler, clock: FakeClock):
    """Start one actor on `item`, let it reconcile twice (the one it asks for itself on
    start, then ours, which returns when both are done), stop it."""
    ctx = _context(cluster, store, scheduler, clock)
    slot = EndpointSlot(name="m1", generation=1)
    supervisor = pykka.ThreadingActor.start()
    try:
        ref = EndpointActor.start(ctx, slot, item, supervisor)
        slot.ref = ref
        ref.ask(Reconcile(), timeout=10)
        ref.stop(timeout=10)
    finally:
        supervisor.stop(timeout=10)
    return store.statuses.get(("m1", REGION))


def test_an_invalid_item_is_reported_and_nothing_is_applied(scheduler, clock) -> None:
    cluster, store = FakeCluster(), FakeStore()
    status = _run(_item(ingress_path=5), cluster, store, scheduler, clock)
    assert cluster.calls == []
    assert status is not None
    assert status.state == "error"
    assert "ingress_path" in (status.error or "")


def test_a_new_endpoint_gets_its_objects_and_reports_creating(scheduler, clock) -> None:
    cluster, store = FakeCluster(), FakeStore()
    status = _run(_item(), cluster, store, scheduler, clock)
    applied = {(kind, name) for verb, kind, name in cluster.calls if verb == "ensure"}
    assert applied == {("Deployment", "m1"), ("Service", "m1"), ("Ingress", "inference-m1")}
    assert status is not None
    assert status.state == "creating"


def test_objects_still_terminating_make_the_endpoint_deleting_not_failed(scheduler, clock) -> None:
    terminating = {
        "metadata": {"name": "inference-m1", "deletionTimestamp": "2026-01-01T00:00:00Z"}
    }
    cluster = FakeCluster({("Ingress", "inference-m1"): terminating, ("Service", "m1"): {}})
    store = FakeStore()
    status = _run(_item(desired_state="deleted"), cluster, store, scheduler, clock)
    assert ("remove", "Service", "m1") in cluster.calls
    assert ("remove", "Ingress", "inference-m1") not in cluster.calls, (
        "asked again while terminating"
    )
    assert status is not None
    assert status.state == "deleting"


def test_an_endpoint_gone_from_the_table_is_deleted_on_the_servers_word(scheduler, clock) -> None:
    # The cache would say the objects exist; the server says only the Service does.
    cluster = FakeCluster({("Service", "m1"): {"metadata": {"name": "m1"}}})
    store = FakeStore()
    ctx_item = None
    ctx = _context(cluster, store, scheduler, clock)
    slot = EndpointSlot(name="m1", generation=1)
    supervisor = pykka.ThreadingActor.start()
    try:
        ref = EndpointActor.start(ctx, slot, ctx_item, supervisor, retiring=True)
        slot.ref = ref
        ref.ask(Reconcile(), timeout=10)
    except pykka.ActorDeadError:
        pass
    finally:
        supervisor.stop(timeout=10)
    reads = [(kind, name) for verb, kind, name in cluster.calls if verb == "read"]
    assert ("Deployment", "m1") in reads
    assert [c for c in cluster.calls if c[0] == "remove"] == [("remove", "Service", "m1")]
    assert store.calls == [], "no status for an item that is gone"


class _FailingStore(FakeStore):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def write_region_status(self, name, region, status, *, epoch=None, holder=""):
        self.calls.append(("write_region_status", (name, region, status)))
        raise self.error


@pytest.mark.parametrize(
    ("error", "attempts"),
    [
        pytest.param(StoreError("no AWS credentials found"), 2, id="permanent-reported-at-once"),
        pytest.param(Throttled("throttled"), 1, id="temporary-retried-quietly"),
    ],
)
def test_a_permanent_store_error_is_reported_at_once_a_temporary_one_retried(
    scheduler, clock, error: Exception, attempts: int
) -> None:
    store = _FailingStore(error)
    _run(_item(), FakeCluster(), store, scheduler, clock)
    written = [status for _, (_, _, status) in store.calls]
    assert len(written) == 2 * attempts  # two reconciles (see _run)
    if attempts == 2:
        assert written[-1].state == "error"
        assert "no AWS credentials" in (written[-1].error or "")
