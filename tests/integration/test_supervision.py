"""Failure isolation and restarts (architecture section 4): every death of an endpoint actor is
noticed and that actor alone is restarted with backoff; too many deaths park it; an
API outage is retried inside the actors, not turned into a restart storm."""

from __future__ import annotations

import threading
from typing import Any

from actors.clock import FakeClock
from actors.endpoint import EndpointActor
from actors.messages import CrashEndpoint, SpecChanged
from store import commands
from tests.integration.harness import (
    FAKE_TIME_LEASE,
    Harness,
    drive,
    pass_time,
    scan_count,
    wait_for,
)

ENDPOINT_KINDS = ("deployments", "services", "ingresses", "horizontalpodautoscalers")


class CrashOnEveryMessage(EndpointActor):
    """Endpoints named bad-*: the handler raises on every message."""

    def on_receive(self, message: Any) -> None:
        if self.slot.name.startswith("bad"):
            raise RuntimeError(f"boom in {self.slot.name}")
        super().on_receive(message)


class CrashOnBoomImage(EndpointActor):
    """Raises while the endpoint's image contains 'boom' (a bug triggered by one spec)."""

    def on_receive(self, message: Any) -> None:
        item = message.item if isinstance(message, SpecChanged) else self.item
        if item is not None and item.endpoint and "boom" in item.endpoint.spec.image:
            raise RuntimeError("boom image")
        super().on_receive(message)


FAILED_START: set[str] = set()


class FailFirstStart(EndpointActor):
    """The first actor of every endpoint fails in on_start (pykka stops it silently)."""

    def on_start(self) -> None:
        if self.slot.name not in FAILED_START:
            FAILED_START.add(self.slot.name)
            raise RuntimeError("on_start failed")
        super().on_start()


HANG = threading.Event()
HUNG: set[str] = set()


class HangFirstGeneration(EndpointActor):
    """The first actor of each endpoint hangs in its own code (holding its handler permit,
    not waiting on any API) in its first handler, until released."""

    def _handle(self, message: Any) -> None:
        if self.slot.name not in HUNG:
            HUNG.add(self.slot.name)
            HANG.wait(timeout=30)
        super()._handle(message)


def test_actor_raising_on_every_message_is_restarted_while_twenty_others_converge(
    kit: Harness,
) -> None:
    for i in range(20):
        kit.put(f"ok-{i}")
    kit.put("bad-1")
    daemon = kit.start_daemon(actor_factory=CrashOnEveryMessage)
    for i in range(20):
        kit.wait_state(f"ok-{i}", "running", timeout=30)
    wait_for(lambda: daemon.snapshot().restarts.get("bad-1", 0) >= 2, what="bad-1 restarted")
    view = daemon.snapshot()
    assert all(view.restarts.get(f"ok-{i}", 0) == 0 for i in range(20))
    assert kit.kube.get("Deployment", "bad-1") is None


def test_crashed_actor_is_back_at_once_and_the_others_are_untouched(kit: Harness) -> None:
    kit.put("a")
    kit.put("b")
    daemon = kit.start_daemon()
    kit.wait_state("a", "running")
    kit.wait_state("b", "running")
    assert daemon.supervisor is not None
    before = daemon.snapshot().generations
    daemon.supervisor.tell(CrashEndpoint("a"))
    wait_for(
        lambda: (
            daemon.snapshot().generations.get("a") not in (None, before["a"])
            and "a" in daemon.snapshot().alive
        ),
        timeout=5,
        what="a restarted",
    )
    view = daemon.snapshot()
    assert view.generations["b"] == before["b"]
    assert view.restarts.get("b", 0) == 0
    # The new actor is a working one: it follows the next change.
    kit.store.apply("a", commands.update_spec, {"replicas": 3})
    wait_for(lambda: kit.kube.get("Deployment", "a")["spec"]["replicas"] == 3, what="a follows")


def test_failure_in_on_start_is_noticed_and_restarted(kit: Harness) -> None:
    FAILED_START.clear()
    kit.put("a")
    daemon = kit.start_daemon(actor_factory=FailFirstStart)
    kit.wait_state("a", "running")
    assert daemon.snapshot().restarts["a"] == 1


def test_hung_handler_is_abandoned_and_a_new_actor_takes_over(kit: Harness) -> None:
    HANG.clear()
    HUNG.clear()
    kit.put("a")
    try:
        daemon = kit.start_daemon(actor_factory=HangFirstGeneration, HANDLER_TIMEOUT_SECONDS="1")
        kit.wait_state("a", "running")
        assert daemon.snapshot().restarts["a"] == 1
    finally:
        HANG.set()


def test_too_many_deaths_park_the_endpoint_until_its_spec_changes(kit: Harness) -> None:
    clock = FakeClock()
    kit.put("good")
    kit.put("bad", image="repo/boom:1")
    daemon = kit.start_daemon(
        clock=clock,
        actor_factory=CrashOnBoomImage,
        RECONCILE_INTERVAL_SECONDS="5",
        **FAKE_TIME_LEASE,
    )
    drive(clock, lambda: kit.state("good") == "running", what="good running")
    status = drive(
        clock, lambda: (s := kit.status("bad")) and s.state == "error" and s, what="bad parked"
    )
    assert "parked after 6 restarts" in (status.error or "")
    assert "boom image" in (status.error or "")
    assert daemon.snapshot().parked == frozenset({"bad"})
    restarts = daemon.snapshot().restarts["bad"]
    # Parked means retried at the cap (5 min) only: ten scans later - each of which sees
    # the parked status the daemon itself wrote - nothing has restarted it.
    scans = scan_count(daemon)
    drive(clock, lambda: scan_count(daemon) >= scans + 10, what="ten more scans")
    assert daemon.snapshot().restarts["bad"] == restarts
    assert daemon.snapshot().parked == frozenset({"bad"})
    kit.store.apply("bad", commands.update_spec, {"image": "repo/fixed:2"})
    drive(clock, lambda: kit.state("bad") == "running", what="bad unparked and running")
    assert daemon.snapshot().parked == frozenset()


def test_api_outage_heals_without_restarts(kit: Harness, sim) -> None:
    clock = FakeClock()
    names = [f"m{i}" for i in range(3)]
    for name in names:
        kit.put(name)
    daemon = kit.start_daemon(clock=clock, RECONCILE_INTERVAL_SECONDS="5", **FAKE_TIME_LEASE)
    for name in names:
        drive(clock, lambda n=name: kit.state(n) == "running", what=f"{name} running")
    sim.set_faults(error_rate=1.0, error_status=500, kinds=ENDPOINT_KINDS)
    for name in names:
        kit.store.apply(name, commands.update_spec, {"image": "repo/model:v2"})
    drive(clock, lambda: all(kit.state(n) == "error" for n in names), what="outage reported")
    pass_time(clock, 60)
    assert daemon.snapshot().restarts == {}, "an outage must not kill actors"
    sim.clear_faults()

    def healed() -> bool:
        return all(
            kit.state(n) == "running"
            and kit.kube.get("Deployment", n)["spec"]["template"]["spec"]["containers"][0]["image"]
            == "repo/model:v2"
            for n in names
        )

    drive(clock, healed, what="every endpoint at its final spec")
    assert daemon.snapshot().restarts == {}


def test_a_failing_event_listener_never_stops_the_daemon(kit: Harness) -> None:
    def broken_listener(_kind: Any, _fields: dict[str, Any]) -> None:
        raise RuntimeError("listener bug")

    kit.put("a")
    daemon = kit.start_daemon(on_event=broken_listener)
    kit.wait_state("a", "running")
    assert daemon.supervisor is not None
    assert daemon.supervisor.is_alive()
    assert daemon.snapshot().restarts == {}
