"""`SupervisorActor`: holds the leader lease and, only while leading, runs the poller
and one `EndpointActor` per endpoint.

It learns of every death of an endpoint actor (a failure in a message is
reported by the actor's `on_failure`; a failure in `on_start`, a silent stop or
a handler that hangs past `handler_timeout` is found by the periodic sweep) and
restarts that actor alone after an exponential backoff; too many deaths park
the endpoint with an `error` status, retried at the cap.

Deletions are guarded against an implausible view of the table (DESIGN 11.11):
objects of an endpoint that is absent from the table are removed only after two
consecutive scans agree, and an endpoint whose item exists but never targeted
this region is never touched.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka
import structlog

from actors.backoff import RestartPolicy
from actors.clock import Clock
from actors.desired import iso_now
from actors.endpoint import EndpointActor, EndpointContext, EndpointSlot
from actors.lease import LeaseClient, LeaseKeeper, LeaseSettings
from actors.messages import (
    ActorDied,
    CrashEndpoint,
    InjectCrash,
    LeadershipChanged,
    RestartDue,
    Resync,
    Retire,
    Retired,
    Scanned,
    Shutdown,
    Snapshot,
    SpecChanged,
    SupervisorView,
    Sweep,
)
from actors.poller import PollerActor, request_poll
from actors.scheduler import Scheduler, Timer
from k8s.gateway import ClusterGateway, WatchEvent, endpoint_candidates
from store.dynamo import DynamoEndpointStore, LoadedItem
from store.errors import StoreError
from store.model import RegionStatus

log = structlog.get_logger(__name__)

#: Scans in a row that must agree an endpoint is gone before its objects are deleted.
ABSENCE_CONFIRMATIONS = 2


@dataclass(frozen=True)
class SupervisorConfig:
    """Where this daemon runs and its timings (seconds)."""

    region: str
    cluster: str
    namespace: str
    lease: LeaseSettings
    reconcile_interval: float = 15.0
    unhealthy_threshold: float = 300.0
    handler_timeout: float = 60.0
    sweep_period: float = 1.0
    #: Every this many seconds each endpoint actor reconciles even without a change, like
    #: an informer's resync: costs no request (the gateway compares against its cache).
    resync_period: float = 300.0


class SupervisorActor(pykka.ThreadingActor):
    """Leader election, the poller, and one actor per endpoint with restarts."""

    def __init__(
        self,
        config: SupervisorConfig,
        *,
        store: DynamoEndpointStore,
        lease_client: LeaseClient,
        gateway_factory: Callable[[], ClusterGateway],
        scheduler: Scheduler,
        clock: Clock,
        actor_factory: type[EndpointActor] = EndpointActor,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
        on_reconciled: Callable[[str, float], None] | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.store = store
        self.lease_client = lease_client
        self.gateway_factory = gateway_factory
        self.scheduler = scheduler
        self.clock = clock
        self.actor_factory = actor_factory
        self.notify = on_event or (lambda _kind, _fields: None)
        self.on_reconciled = on_reconciled
        self.keeper = LeaseKeeper(lease_client, config.lease, clock, on_change=self._lease_changed)
        self.gateway: ClusterGateway | None = None
        self.ctx: EndpointContext | None = None
        self.poller: pykka.ActorRef[Any] | None = None
        self.timers: list[Timer] = []
        self.poll_timer: Timer | None = None
        self.resync_timer: Timer | None = None
        self.slots: dict[str, EndpointSlot] = {}
        self.items: dict[str, LoadedItem] = {}
        self.policies: dict[str, RestartPolicy] = {}
        self.generations: dict[str, int] = {}
        self.restarts: dict[str, int] = {}
        self.parked: set[str] = set()
        self.absent: dict[str, int] = {}
        self.warned_region = False
        self.shutting_down = False
        self.log = log

    # -- lifecycle ---------------------------------------------------------

    def on_start(self) -> None:
        self.log = log.bind(
            region=self.config.region,
            cluster=self.config.cluster,
            identity=self.config.lease.identity,
        )
        self.timers.append(
            self.scheduler.call_every(self.config.lease.retry_period, self.keeper.tick)
        )
        self.timers.append(
            self.scheduler.call_every(
                self.config.sweep_period, self._tell(Sweep()), first=self.config.sweep_period
            )
        )
        self.log.info("supervisor started")

    def on_stop(self) -> None:
        self._shutdown()

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        self.log.error("supervisor failed: stepping down", error=str(exception_value))
        self._shutdown()

    def _tell(self, message: Any) -> Callable[[], None]:
        def send() -> None:
            try:
                self.actor_ref.tell(message)
            except pykka.ActorDeadError:
                return

        return send

    def _lease_changed(self, leading: bool) -> None:
        """Called on the scheduler thread by the keeper."""
        self._tell(LeadershipChanged(leading))()

    # -- messages ----------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, LeadershipChanged):
            self._on_leadership(message.leading)
        elif isinstance(message, Scanned):
            self._on_scanned(message)
        elif isinstance(message, ActorDied):
            self._on_death(message.name, message.generation, message.error)
        elif isinstance(message, RestartDue):
            self._on_restart_due(message)
        elif isinstance(message, Retired):
            slot = self.slots.get(message.name)
            if slot is not None and slot.generation == message.generation:
                del self.slots[message.name]
                self.items.pop(message.name, None)
                self.notify("retired", {"endpoint": message.name})
        elif isinstance(message, CrashEndpoint):
            slot = self.slots.get(message.name)
            if slot is not None and slot.ref is not None:
                _safe_tell(slot.ref, InjectCrash(message.reason))
        elif isinstance(message, Sweep):
            self._sweep()
        elif isinstance(message, Resync):
            for slot in self.slots.values():
                slot.poke()
        elif isinstance(message, Snapshot):
            return self._view()
        elif isinstance(message, Shutdown):
            self._shutdown(release=message.release)
        else:
            self.log.warning("unexpected message", message=repr(message))
        return None

    def _alive(self) -> frozenset[str]:
        return frozenset(name for name, slot in self.slots.items() if slot.alive)

    def _view(self) -> SupervisorView:
        return SupervisorView(
            leading=self.keeper.leading,
            alive=self._alive(),
            parked=frozenset(self.parked),
            restarts=dict(self.restarts),
            generations={n: s.generation for n, s in self.slots.items()},
        )

    # -- leadership --------------------------------------------------------

    def _on_leadership(self, leading: bool) -> None:
        if self.shutting_down:
            return
        if leading and self.gateway is None and self.keeper.leading:
            self.log.info("leading: starting watches, poller and endpoint actors")
            gateway = self.gateway_factory()
            try:
                gateway.start(self._route)
            except Exception as error:
                gateway.stop()
                self.log.error("cannot start watches; retrying", error=str(error))
                self.scheduler.call_later(
                    self.config.lease.retry_period, self._tell(LeadershipChanged(True))
                )
                return
            self.gateway = gateway
            self.ctx = EndpointContext(
                region=self.config.region,
                cluster=self.config.cluster,
                namespace=self.config.namespace,
                gateway=gateway,
                store=self.store,
                scheduler=self.scheduler,
                clock=self.clock,
                may_write=self.keeper.may_write,
                unhealthy_threshold=self.config.unhealthy_threshold,
                on_reconciled=self.on_reconciled,
                on_event=self.notify,
            )
            queued = threading.Event()
            poller = PollerActor.start(self.store, self.config.region, self.actor_ref, queued)
            self.poller = poller
            self.poll_timer = self.scheduler.call_every(
                self.config.reconcile_interval, lambda: request_poll(poller, queued)
            )
            self.resync_timer = self.scheduler.call_every(
                self.config.resync_period, self._tell(Resync()), first=self.config.resync_period
            )
            self.notify("leading", {})
        elif not leading and self.gateway is not None:
            self.log.warning("not leading: stopping every endpoint actor")
            self._stop_children()
            self.notify("standby", {})

    def _stop_children(self) -> None:
        for timer in (self.poll_timer, self.resync_timer):
            if timer is not None:
                timer.cancel()
        self.poll_timer = self.resync_timer = None
        if self.poller is not None:
            _safe_stop(self.poller)
            self.poller = None
        futures = []
        for slot in self.slots.values():
            if slot.ref is not None and slot.alive:
                futures.append((slot, slot.ref.stop(block=False)))
        for slot, future in futures:
            try:
                future.get(timeout=10)
            except Exception:  # a hung actor: fence it off, its thread ends when it returns
                slot.revoked = True
                self.log.error("endpoint actor did not stop in time", endpoint=slot.name)
        self.slots.clear()
        self.items.clear()
        self.absent.clear()
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None
        self.ctx = None

    def _shutdown(self, *, release: bool = True) -> None:
        if self.shutting_down:
            return
        self.shutting_down = True
        for timer in self.timers:
            timer.cancel()
        self._stop_children()
        # Release only after the guarded work has stopped (client-go's rule).
        if release:
            self.keeper.release()
        self.log.info("supervisor shut down")

    # -- routing -----------------------------------------------------------

    def _route(self, event: WatchEvent) -> None:
        """Called on watch threads: poke the owning endpoint actor(s)."""
        for name in endpoint_candidates(event.kind, event.obj):
            slot = self.slots.get(name)
            if slot is not None:
                slot.poke()

    # -- scans -------------------------------------------------------------

    def _on_scanned(self, scan: Scanned) -> None:
        if self.ctx is None or self.gateway is None:
            return
        region = self.config.region
        if not scan.active and not self.warned_region and scan.total:
            self.warned_region = True
            self.log.error(
                "no endpoint in the table targets this region: check REGION",
                region=region,
                items=scan.total,
            )
        elif scan.active:
            self.warned_region = False
        for name, item in scan.active.items():
            self.absent.pop(name, None)
            self.items[name] = item
            slot = self.slots.get(name)
            if name in self.parked and name in scan.changed:
                self.log.info("spec changed: unparking", endpoint=name)
                self.parked.discard(name)
                self.policies.pop(name, None)
                self._start(name, item)
            elif slot is None:
                if name not in self.parked and not self._restart_pending(name):
                    self._start(name, item)
            elif name in scan.changed and slot.ref is not None:
                _safe_tell(slot.ref, SpecChanged(item))
        for name, item in scan.retiring.items():
            self.absent.pop(name, None)
            self._retire(name, item)
        gone = (set(self.slots) | self.gateway.instances()) - set(scan.present)
        for name in gone:
            self.absent[name] = self.absent.get(name, 0) + 1
            if self.absent[name] >= ABSENCE_CONFIRMATIONS:
                self._retire(name, None)
            else:
                self.log.warning(
                    "endpoint missing from the table: confirming on the next scan before "
                    "deleting its objects",
                    endpoint=name,
                    empty_scan=scan.total == 0,
                )
        for name in set(self.absent) - gone:
            del self.absent[name]
        for name in set(self.slots) - set(scan.active) - set(scan.retiring) - gone:
            # Still in the table but not for this region, and no status here: not ours.
            slot = self.slots.pop(name)
            if slot.ref is not None:
                _safe_stop(slot.ref)

    def _retire(self, name: str, item: LoadedItem | None) -> None:
        slot = self.slots.get(name)
        if slot is None:
            self.items.pop(name, None)
            self._start(name, item, retiring=True)
        elif slot.ref is not None and not slot.retiring:
            _safe_tell(slot.ref, Retire(item))

    def _start(self, name: str, item: LoadedItem | None, *, retiring: bool = False) -> None:
        assert self.ctx is not None
        generation = self.generations.get(name, 0) + 1
        self.generations[name] = generation
        slot = EndpointSlot(name=name, generation=generation)
        self.slots[name] = slot
        # The actor asks for its first reconcile itself, in on_start.
        slot.ref = self.actor_factory.start(self.ctx, slot, item, self.actor_ref, retiring=retiring)

    # -- deaths and restarts -----------------------------------------------

    def _restart_pending(self, name: str) -> bool:
        slot = self.slots.get(name)
        return slot is not None and slot.death_handled

    def _on_death(self, name: str, generation: int, error: str) -> None:
        slot = self.slots.get(name)
        if slot is None or slot.generation != generation or slot.death_handled:
            return
        slot.death_handled = True
        policy = self.policies.setdefault(name, RestartPolicy())
        decision = policy.record_death(self.clock.monotonic())
        self.restarts[name] = self.restarts.get(name, 0) + 1
        self.notify("died", {"endpoint": name, "error": error, "restart_in": decision.delay})
        if decision.parked:
            self.parked.add(name)
            self.log.error(
                "endpoint parked: too many restarts",
                endpoint=name,
                error=error,
                retry_in=decision.delay,
            )
            self._write_parked(name, len(policy.deaths), error)
        else:
            self.log.warning(
                "endpoint actor died: restarting",
                endpoint=name,
                error=error,
                restart_in=round(decision.delay, 2),
            )
        self.scheduler.call_later(decision.delay, self._tell(RestartDue(name, generation)))

    def _write_parked(self, name: str, deaths: int, error: str) -> None:
        if not self.keeper.may_write():
            return
        status = RegionStatus(
            state="error",
            last_sync=iso_now(self.clock.time()),
            error=f"parked after {deaths} restarts in 10 minutes; last error: {error}"[:500],
        )
        try:
            if self.store.write_region_status(name, self.config.region, status):
                self.notify("status_written", {"endpoint": name})
        except StoreError as write_error:
            self.log.warning("parked status not written", endpoint=name, error=str(write_error))

    def _on_restart_due(self, message: RestartDue) -> None:
        slot = self.slots.get(message.name)
        if slot is None or slot.generation != message.generation or self.ctx is None:
            return
        item = self.items.get(message.name)
        self.parked.discard(message.name)
        self._start(message.name, item, retiring=slot.retiring)

    def _sweep(self) -> None:
        now = time.monotonic()
        for name, slot in list(self.slots.items()):
            if slot.death_handled or slot.retiring or slot.ref is None:
                continue
            busy = slot.busy_since
            if busy is not None and now - busy > self.config.handler_timeout:
                slot.revoked = True
                _safe_stop(slot.ref)
                limit = self.config.handler_timeout
                self._on_death(name, slot.generation, f"message handler hung for over {limit:g}s")
            elif not slot.alive:
                # A failing handler reports itself from on_failure just after it dies;
                # only a death still unreported one sweep later is a silent one.
                slot.seen_dead += 1
                if slot.seen_dead >= 2:
                    error = slot.last_error or "actor stopped unexpectedly"
                    self._on_death(name, slot.generation, error)
        self.notify(
            "gauges",
            {
                "alive": len(self._alive()),
                "parked": len(self.parked),
                "mailbox": self.actor_inbox.qsize(),  # type: ignore[attr-defined]
            },
        )


def _safe_tell(ref: pykka.ActorRef[Any], message: Any) -> None:
    try:
        ref.tell(message)
    except pykka.ActorDeadError:
        return


def _safe_stop(ref: pykka.ActorRef[Any]) -> None:
    try:
        ref.stop(block=False)
    except pykka.ActorDeadError:
        return
