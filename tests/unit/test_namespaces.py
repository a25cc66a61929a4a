"""Several watched namespaces (`INFERENCE_NAMESPACES`): the supervisor's `WatchedNamespaces`
and the endpoint actor's choice of gateway, with the strict fakes of `tests/unit/fakes.py`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pykka
import pytest

from actors.clock import FakeClock
from actors.endpoint import EndpointActor, EndpointContext, EndpointSlot
from actors.messages import Reconcile
from actors.namespaces import WatchedNamespaces
from actors.permits import HandlerPermits
from actors.pool import WorkerPool
from actors.scheduler import Scheduler
from k8s.errors import ApiError, NotSynced
from store.item import LoadedItem
from store.model import RegionStatus
from tests.items import loaded
from tests.unit.fakes import FakeCluster, FakeStore

#: The endpoint actors' threads; idle workers end at once, so no thread outlives a test.
POOL = WorkerPool(2, idle_seconds=0.05, name="test-endpoint")

REGION = "us-east-1"
HOME = "gco-inference"


class Watches:
    """A gateway's watch side: start/stop/quiesce/instances, recorded in a shared journal."""

    def __init__(
        self,
        name: str,
        journal: list[str],
        *,
        names: set[str] | None = None,
        fail: bool = False,
        quiet: bool = True,
    ) -> None:
        self.name = name
        self.journal = journal
        self.names = names
        self.fail = fail
        self.quiet = quiet

    def start(self, on_event: Callable[[Any], None]) -> None:
        self.journal.append(f"start {self.name}")
        if self.fail:
            raise ApiError("list failed", reason="Forbidden")

    def stop(self) -> None:
        self.journal.append(f"stop {self.name}")

    def quiesce(self, timeout: float) -> bool:
        self.journal.append(f"quiesce {self.name} {timeout:g}")
        return self.quiet

    def instances(self) -> set[str]:
        if self.names is None:
            raise NotSynced("relisting", reason="NotSynced")
        return set(self.names)


def test_every_namespace_starts_and_stops_together() -> None:
    journal: list[str] = []
    watched = WatchedNamespaces({HOME: Watches(HOME, journal), "a": Watches("a", journal)})

    watched.start(lambda _event: None)
    watched.stop()

    assert list(watched) == [HOME, "a"]
    assert journal == [f"start {HOME}", "start a", f"stop {HOME}", "stop a"]


def test_a_namespace_that_cannot_start_stops_them_all() -> None:
    journal: list[str] = []
    watched = WatchedNamespaces(
        {HOME: Watches(HOME, journal), "a": Watches("a", journal, fail=True)}
    )

    with pytest.raises(ApiError):
        watched.start(lambda _event: None)

    assert journal == [f"start {HOME}", "start a", f"stop {HOME}", "stop a"]


def test_instances_are_the_union_and_never_guessed_while_a_namespace_relists() -> None:
    journal: list[str] = []
    home, other = Watches(HOME, journal, names={"m1"}), Watches("a", journal, names={"m2"})
    watched = WatchedNamespaces({HOME: home, "a": other})

    assert watched.instances() == {"m1", "m2"}
    other.names = None
    with pytest.raises(NotSynced):
        watched.instances()


def test_quiesce_waits_for_every_namespace_within_one_deadline() -> None:
    journal: list[str] = []
    clock = FakeClock()
    home = Watches(HOME, journal)
    other = Watches("a", journal, quiet=False)

    def slow_quiesce(timeout: float) -> bool:
        journal.append(f"quiesce {HOME} {timeout:g}")
        clock.advance(4)
        return True

    home.quiesce = slow_quiesce  # type: ignore[method-assign]
    watched = WatchedNamespaces({HOME: home, "a": other}, monotonic=clock.monotonic)

    assert watched.quiesce(10) is False
    assert journal == [f"quiesce {HOME} 10", "quiesce a 6"]


# -- the endpoint actor ------------------------------------------------------------------


def _item(namespace: str, **fields: Any) -> LoadedItem:
    return loaded(namespace=namespace, regions=(REGION,), **fields)


def _run(
    item: LoadedItem | None,
    gateways: dict[str, FakeCluster],
    store: FakeStore,
    scheduler: Scheduler,
    clock: FakeClock,
    *,
    retiring: bool = False,
) -> RegionStatus | None:
    ctx = EndpointContext(
        region=REGION,
        cluster="test",
        namespace=HOME,
        gateway=gateways[HOME],
        gateways=gateways,
        store=store,
        scheduler=scheduler,
        clock=clock,
        may_write=lambda: True,
        permits=HandlerPermits(1, monotonic=clock.monotonic, pool=POOL),
        pool=POOL,
        heartbeat=0,
    )
    slot = EndpointSlot(name="m1", generation=1)
    supervisor = pykka.ThreadingActor.start()
    try:
        ref = EndpointActor.start(ctx, slot, item, supervisor, retiring=retiring)
        slot.ref = ref
        ref.ask(Reconcile(), timeout=10)
        ref.stop(timeout=10)
    except pykka.ActorDeadError:
        pass  # a retiring actor stops itself once done
    finally:
        supervisor.stop(timeout=10)
    return store.statuses.get(("m1", REGION))


def _applied(cluster: FakeCluster) -> set[tuple[str, str]]:
    return {(kind, name) for verb, kind, name in cluster.calls if verb == "ensure"}


def test_an_item_is_applied_through_its_own_namespaces_gateway(scheduler, clock) -> None:
    gateways = {HOME: FakeCluster(), "team-a": FakeCluster()}

    status = _run(_item("team-a"), gateways, FakeStore(), scheduler, clock)

    assert _applied(gateways["team-a"]) == {
        ("Deployment", "m1"),
        ("Service", "m1"),
        ("Ingress", "inference-m1"),
    }
    assert gateways[HOME].calls == []
    assert status is not None
    assert status.state == "creating"


def test_an_item_in_a_namespace_not_watched_is_an_error_naming_the_list(scheduler, clock) -> None:
    gateways = {HOME: FakeCluster(), "team-a": FakeCluster()}

    status = _run(_item("team-b"), gateways, FakeStore(), scheduler, clock)

    assert gateways[HOME].calls == gateways["team-a"].calls == []
    assert status is not None
    assert status.state == "error"
    assert status.error == (
        "namespace 'team-b' is not watched by this daemon "
        "(INFERENCE_NAMESPACES=gco-inference,team-a)"
    )


def test_deleting_an_item_in_a_namespace_not_watched_reports_deleted_and_purges(
    scheduler, clock
) -> None:
    gateways = {HOME: FakeCluster(), "team-a": FakeCluster()}
    store = FakeStore(allow=frozenset({"purge_if_deleted"}))

    status = _run(_item("team-b", desired_state="deleted"), gateways, store, scheduler, clock)

    assert status is not None
    assert status.state == "deleted"
    assert ("purge_if_deleted", ("m1", (REGION,))) in store.calls


def test_an_endpoint_gone_from_the_table_is_looked_for_in_every_namespace(scheduler, clock) -> None:
    service = {"metadata": {"name": "m1"}}
    gateways = {HOME: FakeCluster(), "team-a": FakeCluster({("Service", "m1"): service})}
    store = FakeStore()

    _run(None, gateways, store, scheduler, clock, retiring=True)

    for cluster in gateways.values():
        reads = {(kind, name) for verb, kind, name in cluster.calls if verb == "read"}
        assert ("Deployment", "m1") in reads, "read from the server, not the cache"
    assert [c for c in gateways["team-a"].calls if c[0] == "remove"] == [
        ("remove", "Service", "m1")
    ]
    assert [c for c in gateways[HOME].calls if c[0] == "remove"] == []
    assert store.calls == []
