"""`SupervisorActor`: holds the leader lease and, only while leading, runs the poller
and one `EndpointActor` per endpoint.

It learns of every death of an endpoint actor (a failure in a message is
reported by the actor's `on_failure`; a failure in `on_start`, a silent stop or
a handler that runs its own code past `handler_timeout` is found by the periodic
sweep) and restarts that actor alone after an exponential backoff; too many
deaths park the endpoint with an `error` status, retried at the cap, until a
person changes its item. Time a handler spends waiting on the API or the table
is not "hung" (see `actors.permits`): a slow API is waited out, not restarted.
The poller is supervised the same way (a dead poller would leave a leader that
does nothing).

The lease is renewed on a thread of its own, so it never queues behind other
timers. Deletions are guarded against an implausible view of the table
(`actors.orphans`); an endpoint whose item exists but never targeted this
region is never touched.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pykka
import structlog

from actors import decisions, rollout
from actors.backoff import RestartPolicy
from actors.clock import Clock
from actors.desired import iso_now
from actors.endpoint import EndpointActor, EndpointContext, EndpointSlot
from actors.lease import LeaseClient, LeaseKeeper, LeaseSettings
from actors.messages import (
    ActorDied,
    CrashEndpoint,
    EventKind,
    InjectCrash,
    LeadershipChanged,
    OnEvent,
    ReadStream,
    RestartDue,
    Resync,
    Retire,
    Retired,
    ScanFailed,
    Scanned,
    Shutdown,
    Snapshot,
    SpecChanged,
    SupervisorView,
    Sweep,
)
from actors.namespaces import WatchedNamespaces
from actors.orphans import OrphanPlan, OrphanRules
from actors.permits import HandlerPermits
from actors.poller import PollerActor, request_poll
from actors.pool import WorkerPool
from actors.ports import ChangeFeed, Cluster, EndpointStore
from actors.scan_plan import plan_scan
from actors.scheduler import Scheduler, Timer
from actors.silence import silence_limit
from k8s.errors import NotSynced
from k8s.gateway import WatchEvent, endpoint_candidates
from store.errors import StoreError
from store.gates import Gate
from store.item import LoadedItem
from store.model import RegionStatus

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SupervisorConfig:
    """Where this daemon runs and its timings (seconds)."""

    region: str
    cluster: str
    namespace: str
    lease: LeaseSettings
    #: The namespaces whose endpoints are served, one watch set each (`INFERENCE_NAMESPACES`);
    #: `namespace` (home of the Lease) is always among them. Empty: `namespace` only.
    namespaces: tuple[str, ...] = ()
    reconcile_interval: float = 15.0
    unhealthy_threshold: float = 300.0
    handler_timeout: float = 60.0
    status_heartbeat: float = 300.0
    #: The per-pod metric an autoscaling metric `gpu` scales on (None: the builder's default).
    gpu_metric: str | None = None
    sweep_period: float = 1.0
    #: Every this many seconds each endpoint actor reconciles even without a change, like
    #: an informer's resync: costs no request (the gateway compares against its cache).
    resync_period: float = 300.0
    orphans: OrphanRules = field(default_factory=OrphanRules)
    #: Seconds between reads of the table's change feed (0: no feed, scans only) and
    #: between the resync scans while the feed is healthy.
    stream_poll: float = 0.0
    stream_resync: float = 300.0

    @property
    def watched(self) -> tuple[str, ...]:
        """Every namespace served, the home namespace first."""
        return (self.namespace, *(n for n in self.namespaces if n != self.namespace))


#: How long /readyz keeps saying that a write was refused by a newer leader's epoch.
SUPERSEDED_SHOWN_SECONDS = 60.0


class SupervisorActor(pykka.ThreadingActor):
    """Leader election, the poller, and one actor per endpoint with restarts."""

    def __init__(
        self,
        config: SupervisorConfig,
        *,
        store: EndpointStore,
        lease_client: LeaseClient,
        gateway_factory: Callable[..., Cluster],
        scheduler: Scheduler,
        clock: Clock,
        permits: HandlerPermits,
        pool: WorkerPool,
        actor_factory: type[EndpointActor] = EndpointActor,
        on_event: OnEvent | None = None,
        on_reconciled: Callable[[str, float], None] | None = None,
        gates: Sequence[Gate] = (),
        feed_factory: Callable[[], ChangeFeed] | None = None,
    ) -> None:
        super().__init__()
        #: Builds the table's change feed for each poller (None: scans only).
        self.feed_factory = feed_factory
        self.config = config
        self.store = store
        self.lease_client = lease_client
        self.gateway_factory = gateway_factory
        self.scheduler = scheduler
        self.clock = clock
        self.permits = permits
        #: The threads the endpoint actors run on (the daemon's: it outlives every term).
        self.pool = pool
        # The lease keeper's own timer thread: a renewal never waits behind another timer.
        self.lease_scheduler = Scheduler(clock, name="lease")
        self.actor_factory = actor_factory
        self._on_event = on_event
        self.on_reconciled = on_reconciled
        #: The rollout's gates (`store.gates`), given to every endpoint actor.
        self.gates = gates
        self.keeper = LeaseKeeper(lease_client, config.lease, clock, on_change=self._lease_changed)
        #: This term's gateways, one per watched namespace (None while not leading).
        self.gateway: WatchedNamespaces | None = None
        self.ctx: EndpointContext | None = None
        self.poller: pykka.ActorRef[Any] | None = None
        self.timers: list[Timer] = []
        self.poll_timer: Timer | None = None
        self.feed_timer: Timer | None = None
        self.resync_timer: Timer | None = None
        self.slots: dict[str, EndpointSlot] = {}
        self.items: dict[str, LoadedItem] = {}
        self.policies: dict[str, RestartPolicy] = {}
        # One counter for all: a generation is never reused, even by a re-added endpoint.
        self.generation_counter = itertools.count(1)
        self.restarts: dict[str, int] = {}
        #: Parked endpoint -> the content hash of the item it was parked on.
        self.parked: dict[str, str] = {}
        self.absent: dict[str, int] = {}
        #: The endpoints the deletion guard refused on the last scan.
        self.held: frozenset[str] = frozenset()
        self.refused_detail = ""
        #: The last write a newer leader's epoch refused: (clock time, count so far, error).
        #: Set on the endpoint actors' threads by `notify` (one tuple, replaced whole).
        self.superseded: tuple[float, int, str] | None = None
        #: The last scan's failure ("" once a scan succeeds), shown on /readyz.
        self.scan_detail = ""
        self.poller_policy = RestartPolicy()
        self.poller_restart_due = False
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
        self.lease_scheduler.start()
        self.timers.append(
            self.lease_scheduler.call_every(self.config.lease.retry_period, self.keeper.tick)
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

    def notify(self, kind: EventKind, fields: dict[str, Any]) -> None:
        """Tell the owner (metrics, the demo) of an event; its failure is logged, never
        the supervisor's death."""
        if kind == EventKind.STATUS_REFUSED:
            count = 1 if self.superseded is None else self.superseded[1] + 1
            self.superseded = (self.clock.time(), count, str(fields.get("error", "")))
        if self._on_event is None:
            return
        try:
            self._on_event(kind, fields)
        except Exception:
            self.log.exception("event listener failed", kind=str(kind))

    def _lease_changed(self, leading: bool) -> None:
        """Called on the scheduler thread by the keeper."""
        self._tell(LeadershipChanged(leading))()

    # -- messages ----------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, LeadershipChanged):
            self._on_leadership(message.leading)
        elif isinstance(message, Scanned):
            if not message.partial:
                self.scan_detail = ""
            self._on_scanned(message)
        elif isinstance(message, ScanFailed):
            self.scan_detail = f"table scan failed: {message.error}"
            self.notify(EventKind.SCAN_FAILED, {"reason": message.reason})
        elif isinstance(message, ActorDied):
            self._on_death(message.name, message.generation, message.error)
        elif isinstance(message, RestartDue):
            self._on_restart_due(message)
        elif isinstance(message, Retired):
            slot = self.slots.get(message.name)
            if slot is not None and slot.generation == message.generation:
                del self.slots[message.name]
                self._forget(message.name)
                self.notify(EventKind.RETIRED, {"endpoint": message.name})
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
        elif isinstance(message, _Run):
            message.action()
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
            detail="; ".join(
                part
                for part in (self.refused_detail, self.scan_detail, self._superseded_detail())
                if part
            ),
        )

    def _superseded_detail(self) -> str:
        """What /readyz says while a newer leader's epoch refuses our writes (for a
        minute after the last refusal): another daemon writes this region's entries."""
        if self.superseded is None:
            return ""
        at, count, error = self.superseded
        if self.clock.time() - at > SUPERSEDED_SHOWN_SECONDS:
            return ""
        return f"{count} status writes refused by a newer leader's epoch (last: {error})"

    # -- leadership --------------------------------------------------------

    def _on_leadership(self, leading: bool) -> None:
        if self.shutting_down:
            return
        if leading and self.gateway is None and self.keeper.leading:
            if not self._begin_term():
                return
            self.log.info(
                "leading: starting watches, poller and endpoint actors",
                namespaces=list(self.config.watched),
                epoch=self.keeper.epoch,
            )
            # One watch set per namespace, each fenced by the lease: nothing is sent past
            # the renew deadline (architecture section 4).
            gateway = WatchedNamespaces(
                {
                    namespace: self.gateway_factory(namespace=namespace, fence=self.keeper.fence)
                    for namespace in self.config.watched
                }
            )
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
                gateway=gateway[self.config.namespace],
                gateways=gateway,
                gpu_metric=self.config.gpu_metric,
                gates=self.gates,
                store=self.store,
                scheduler=self.scheduler,
                clock=self.clock,
                may_write=self.keeper.may_write,
                fence=self.keeper.fence,
                permits=self.permits,
                pool=self.pool,
                unhealthy_threshold=self.config.unhealthy_threshold,
                heartbeat=self.config.status_heartbeat,
                silence=silence_limit(self.config.status_heartbeat, self.config.reconcile_interval),
                on_reconciled=self.on_reconciled,
                on_event=self.notify,
            )
            self._start_poller()
            self.resync_timer = self.scheduler.call_every(
                self.config.resync_period, self._tell(Resync()), first=self.config.resync_period
            )
            self.notify(EventKind.LEADING, {})
        elif not leading and self.gateway is not None:
            self.log.warning("not leading: stopping every endpoint actor")
            self._stop_children()
            self.notify(EventKind.STANDBY, {})

    def _begin_term(self) -> bool:
        """Take this term's epoch from the table and open the lease's fence with it
        (architecture section 4). False when it cannot be had now: the table is
        unreachable (retried after a retry period; nothing is written meanwhile, since
        there is no fence) or leadership changed while it was taken."""
        term = self.keeper.transitions
        try:
            epoch = self.store.take_epoch(self.config.region, floor=self.keeper.lease_transitions)
        except Exception as error:
            self.log.error("cannot take a leader epoch from the table; retrying", error=str(error))
            self.scheduler.call_later(
                self.config.lease.retry_period, self._tell(LeadershipChanged(True))
            )
            return False
        return self.keeper.begin_term(epoch, term)

    def _start_poller(self) -> None:
        queued, read_queued = threading.Event(), threading.Event()
        feed = self.feed_factory() if self.feed_factory and self.config.stream_poll > 0 else None
        poller = PollerActor.start(
            self.store,
            self.config.region,
            self.actor_ref,
            queued,
            feed=feed,
            clock=self.clock,
            resync=self.config.stream_resync,
            confirmations=self.config.orphans.confirmations,
            read_queued=read_queued,
            cluster=self.config.cluster,
        )
        self.poller = poller
        self.poll_timer = self.scheduler.call_every(
            self.config.reconcile_interval, lambda: request_poll(poller, queued)
        )
        if feed is not None:
            self.feed_timer = self.scheduler.call_every(
                self.config.stream_poll,
                lambda: request_poll(poller, read_queued, ReadStream()),
            )

    def _check_poller(self) -> None:
        """Restart a dead poller (with backoff): without it a leader does nothing."""
        if self.poller is None or self.poller.is_alive() or self.poller_restart_due:
            return
        for timer in (self.poll_timer, self.feed_timer):
            if timer is not None:
                timer.cancel()
        decision = self.poller_policy.record_death(self.clock.monotonic())
        self.restarts["(poller)"] = self.restarts.get("(poller)", 0) + 1
        self.log.error("poller died: restarting", restart_in=round(decision.delay, 2))
        self.notify(EventKind.POLLER_DIED, {"restart_in": decision.delay})
        self.poller_restart_due = True

        def restart() -> None:
            self.poller_restart_due = False
            if self.gateway is not None and self.poller is not None:
                self._start_poller()

        self.scheduler.call_later(decision.delay, self._tell(_Run(restart)))

    def _stop_children(self) -> None:
        for timer in (self.poll_timer, self.feed_timer, self.resync_timer):
            if timer is not None:
                timer.cancel()
        self.poll_timer = self.feed_timer = self.resync_timer = None
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
        self.held = frozenset()
        self.refused_detail = self.scan_detail = ""
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
        # Nothing of this term is sent from now on, abandoned (hung) actors included.
        self.keeper.close_fence()
        gateway = self.gateway
        self._stop_children()
        # Release only after the guarded work has stopped (client-go's rule), and only
        # once no request of ours is in flight: each attempt's timeout ends by the lease's
        # expiry, so this wait is bounded by the lease duration.
        if release:
            if gateway is not None and not gateway.quiesce(self.config.lease.duration):
                self.log.warning("requests still in flight at release")
            self.keeper.release()
        self.lease_scheduler.stop()
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
        if not scan.partial:  # the change feed's few items say nothing of the region
            self._check_region(scan)
        try:
            in_cluster: set[str] | None = self.gateway.instances()
        except NotSynced:
            in_cluster = None  # a relisting cache cannot say what exists here
        plan = plan_scan(
            scan,
            actors={name: slot.death_handled for name, slot in self.slots.items()},
            parked=self.parked,
            absent=self.absent,
            held=self.held,
            in_cluster=in_cluster,
            rules=self.config.orphans,
        )
        # One copy of each item: an unchanged one keeps the object its actor already holds
        # (the scan's fresh copy is dropped with the message).
        self.items.update(
            (name, item)
            for name, item in scan.active.items()
            if name in scan.changed or name not in self.items
        )
        for name in plan.start:
            if name in plan.unpark:
                self.log.info("item changed: unparking", endpoint=name)
                del self.parked[name]
                self.policies.pop(name, None)
            self._start(name, self.items[name])
        for name in plan.changed:
            slot = self.slots[name]
            if slot.ref is not None:
                _safe_tell(slot.ref, SpecChanged(self.items[name]))
        if plan.orphans is not None:
            self._report_orphans(plan.orphans, empty_scan=scan.total == 0)
        for name, item in plan.retire.items():
            if item is None:
                self.log.warning(
                    "endpoint absent from the table: deleting its objects", endpoint=name
                )
            self._retire(name, item)
        for name in plan.stop:
            # Still in the table but not for this region, and no status here: not ours;
            # or gone from the table with nothing here (purged): nothing left to do.
            slot = self.slots.pop(name)
            if slot.ref is not None:
                _safe_stop(slot.ref)
            self._forget(name)
            if name in plan.gone:
                self.log.info("endpoint gone from the table, nothing left here", endpoint=name)
                self.notify(EventKind.RETIRED, {"endpoint": name})

    def _check_region(self, scan: Scanned) -> None:
        """Say once when a whole scan finds items but none for this region (a wrong REGION)."""
        if not scan.active and not self.warned_region and scan.total:
            self.warned_region = True
            self.log.error(
                "no endpoint in the table targets this region: check REGION",
                region=self.config.region,
                items=scan.total,
            )
        elif scan.active:
            self.warned_region = False

    def _report_orphans(self, plan: OrphanPlan, *, empty_scan: bool) -> None:
        self.absent = dict(plan.absent)
        self.held = plan.refused
        for name, count in plan.waiting.items():
            self.log.warning(
                "endpoint missing from the table: waiting for more scans to agree before "
                "deleting its objects",
                endpoint=name,
                scans=count,
                needed=self.config.orphans.confirmations,
                empty_scan=empty_scan,
            )
        if plan.refused and plan.reason != self.refused_detail:
            self.log.error(plan.reason, endpoints=sorted(plan.refused))
        self.refused_detail = plan.reason
        self.notify(EventKind.ORPHANS_REFUSED, {"count": len(plan.refused)})

    def _retire(self, name: str, item: LoadedItem | None) -> None:
        slot = self.slots.get(name)
        if slot is None:
            self.items.pop(name, None)
            self._start(name, item, retiring=True)
        elif slot.ref is not None and not slot.retiring:
            _safe_tell(slot.ref, Retire(item))

    def _forget(self, name: str) -> None:
        """Drop what the supervisor keeps about an endpoint it no longer serves."""
        self.items.pop(name, None)
        self.policies.pop(name, None)
        self.restarts.pop(name, None)
        self.parked.pop(name, None)
        self.absent.pop(name, None)

    def _start(self, name: str, item: LoadedItem | None, *, retiring: bool = False) -> None:
        assert self.ctx is not None
        generation = next(self.generation_counter)
        slot = EndpointSlot(name=name, generation=generation)
        self.slots[name] = slot
        # The actor asks for its first reconcile itself, in on_start.
        slot.ref = self.actor_factory.start(self.ctx, slot, item, self.actor_ref, retiring=retiring)

    # -- deaths and restarts -----------------------------------------------

    def _on_death(self, name: str, generation: int, error: str) -> None:
        slot = self.slots.get(name)
        if slot is None or slot.generation != generation or slot.death_handled:
            return
        slot.death_handled = True
        policy = self.policies.setdefault(name, RestartPolicy())
        decision = policy.record_death(self.clock.monotonic())
        self.restarts[name] = self.restarts.get(name, 0) + 1
        self.notify(
            EventKind.DIED, {"endpoint": name, "error": error, "restart_in": decision.delay}
        )
        if decision.parked:
            item = self.items.get(name)
            newly_parked = name not in self.parked
            self.parked[name] = item.content_hash if item is not None else ""
            self.log.error(
                "endpoint parked: too many restarts",
                endpoint=name,
                error=error,
                retry_in=decision.delay,
            )
            self._write_parked(name, len(policy.deaths), error)
            if newly_parked:
                self._announce_parked(name, item, len(policy.deaths), error)
        else:
            self.log.warning(
                "endpoint actor died: restarting",
                endpoint=name,
                error=error,
                restart_in=round(decision.delay, 2),
            )
        self.scheduler.call_later(decision.delay, self._tell(RestartDue(name, generation)))

    def _announce_parked(self, name: str, item: LoadedItem | None, deaths: int, error: str) -> None:
        """The park is a decision: an Event on the endpoint's Deployment, a metric."""
        self._announce(name, item, decisions.parked(deaths, error))

    def _announce(self, name: str, item: LoadedItem | None, decision: decisions.Decision) -> None:
        endpoint = item.endpoint if item is not None else None
        namespace = endpoint.namespace if endpoint is not None else self.config.namespace
        gateway = self.gateway.get(namespace) if self.gateway is not None else None
        fence = self.keeper.fence()
        decisions.announce(
            decision,
            endpoint=name,
            gateway=gateway,
            namespace=namespace,
            now=self.clock.time(),
            on_event=self.notify,
            logger=self.log,
            cluster=self.config.cluster,
            fenced=lambda: fence is None or not fence.open,
        )

    def _write_parked(self, name: str, deaths: int, error: str) -> None:
        fence = self.keeper.fence()
        if fence is None or not fence.open:
            return
        status = RegionStatus(
            state="error",
            last_sync=iso_now(self.clock.time()),
            error=f"parked after {deaths} restarts in 10 minutes; last error: {error}"[:500],
        )
        # architecture section 12: a region on a new revision reports it failed, and halts it (its
        # actor
        # supervises nothing while parked); elsewhere its rollout fields are kept.
        item = self.items.get(name)
        own = self.store.own_status(item, self.config.region) if item is not None else None
        if own is not None and own.seq is not None:
            status = dataclasses.replace(status, seq=own.seq + 1)
        status, halt = rollout.parked(item, self.config.region, status, self.clock.time(), own=own)
        if halt is not None and item is not None:
            try:
                if self.store.record_rollout_halt(
                    name,
                    halt,
                    expected_updated_at=item.updated_at,
                    region=self.config.region,
                    epoch=fence.epoch,
                    holder=fence.holder,
                ):
                    self._announce(name, item, decisions.halted(halt))
            except StoreError as write_error:
                # The next actor generation records it from the `failed` status.
                self.log.warning("halt not recorded", endpoint=name, error=str(write_error))
        try:
            if self.store.write_region_status(
                name, self.config.region, status, epoch=fence.epoch, holder=fence.holder
            ):
                self.notify(EventKind.STATUS_WRITTEN, {"endpoint": name})
        except StoreError as write_error:
            self.log.warning("parked status not written", endpoint=name, error=str(write_error))

    def _on_restart_due(self, message: RestartDue) -> None:
        slot = self.slots.get(message.name)
        if slot is None or slot.generation != message.generation or self.ctx is None:
            return
        item = self.items.get(message.name)
        self.parked.pop(message.name, None)
        self._start(message.name, item, retiring=slot.retiring)

    def _sweep(self) -> None:
        now = self.clock.monotonic()
        self._check_poller()
        for name, slot in list(self.slots.items()):
            if slot.death_handled or slot.retiring or slot.ref is None:
                continue
            permit = slot.permit
            busy = permit.busy_since if permit is not None else None
            if permit is not None and busy is not None and now - busy > self.config.handler_timeout:
                # Fence it off and take its slot back: the thread runs on, harmless.
                slot.revoked = True
                permit.reclaim()
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
            EventKind.GAUGES,
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


@dataclass(frozen=True)
class _Run:
    """Supervisor: run `action` on the supervisor's thread (a timer's follow-up)."""

    action: Callable[[], None]
