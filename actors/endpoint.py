"""`EndpointActor`: everything about one endpoint in this region.

It holds the last table item, decides what should exist (pure functions in
`actors.desired` and `k8s.manifests`), applies the difference through the
gateway (which compares against its watch cache, so a steady state costs no
request), and writes this region's status entry only when it changes.

Errors from Kubernetes or DynamoDB are retried with per-endpoint exponential
backoff inside the actor (an outage must not become a restart storm); any
other exception kills the actor and the supervisor restarts it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pykka
import structlog

from actors import decisions, freshness, rollout
from actors.backoff import Backoff
from actors.clock import Clock
from actors.desired import (
    iso_now,
    observed_status,
    owned_names,
    same_report,
    workload_for,
)
from actors.messages import (
    ActorDied,
    EventKind,
    InjectCrash,
    OnEvent,
    Reconcile,
    Retire,
    Retired,
    SpecChanged,
)
from actors.permits import HandlerPermits, Permit
from actors.pool import WorkerPool
from actors.pooled import PooledActor
from actors.ports import Cluster, EndpointStore
from actors.scheduler import Scheduler, Timer
from actors.watchdog import says_traffic_was_cut, watchdog
from k8s.errors import ApiError, NotSynced
from k8s.errors import Fenced as RequestFenced
from k8s.errors import Retryable as ApiRetryable
from k8s.fence import Fence, FenceSource
from k8s.manifests import ManifestError, build_objects, object_key
from k8s.naming import canary_name, ingress_name
from store.errors import ItemTooLarge, StoreError, Superseded
from store.errors import Retryable as StoreRetryable
from store.gates import Gate
from store.item import LoadedItem
from store.model import Endpoint, RegionStatus, parse_timestamp
from store.rollout import Halt, RolloutRecord

log = structlog.get_logger(__name__)

#: Endpoint actors allowed to run a handler at the same time (see `actors.permits`).
HANDLER_PERMITS = 32
#: Threads the endpoint actors run on (`actors.pool`): one per permit, so a worker
#: never queues for one; workers that only wait, or run a hung handler, come on top,
#: up to ENDPOINT_WORKER_LIMIT in all.
ENDPOINT_WORKERS = HANDLER_PERMITS
ENDPOINT_WORKER_LIMIT = 256


def endpoint_pool() -> WorkerPool:
    """The pool every endpoint actor of a daemon runs on."""
    return WorkerPool(ENDPOINT_WORKERS, limit=ENDPOINT_WORKER_LIMIT, name="endpoint")


class Fenced(Exception):
    """A write was refused: leadership lost or this actor was abandoned by the supervisor."""


@dataclass
class EndpointSlot:
    """What the supervisor, the watch router and one actor generation share.

    `pending` coalesces watch events: one `Reconcile` in the mailbox at a time.
    `permit` is the running handler's (None between messages): its hang clock lets
    the supervisor spot a handler that hangs and take the slot back. `revoked` fences
    an abandoned generation off every write.
    """

    name: str
    generation: int
    ref: pykka.ActorRef[Any] | None = None
    pending: bool = False
    permit: Permit | None = None
    revoked: bool = False
    death_handled: bool = False
    retiring: bool = False
    #: Sweeps that found the actor dead without a report (a report normally follows).
    seen_dead: int = 0
    last_error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def alive(self) -> bool:
        """The actor of this generation is started and not stopped."""
        return self.ref is not None and self.ref.is_alive()

    def poke(self) -> None:
        """Ask the actor to reconcile, unless a request is already queued."""
        with self.lock:
            if self.pending or self.ref is None:
                return
            self.pending = True
        try:
            self.ref.tell(Reconcile())
        except pykka.ActorDeadError:
            self.pending = False


@dataclass(frozen=True)
class EndpointContext:
    """The dependencies every endpoint actor shares (thread-safe clients, timers, fence)."""

    region: str
    cluster: str
    namespace: str
    gateway: Cluster
    store: EndpointStore
    scheduler: Scheduler
    clock: Clock
    may_write: Callable[[], bool]
    #: Bounds how many endpoint actors run handler code at once (see `actors.permits`);
    #: the same object is the `waiting` hook of the gateway and the store.
    permits: HandlerPermits
    #: The threads endpoint actors run on (the one `permits` is told of; every term's).
    pool: WorkerPool
    unhealthy_threshold: float = 300.0
    #: `last_sync` is refreshed about this often even when nothing changes (0 = never).
    heartbeat: float = 300.0
    #: How long another region's daemon may go without writing its status entry before
    #: it counts as silent in a rollout (`actors.silence.silence_limit`; inf: never).
    silence: float = float("inf")
    retry_backoff: Backoff = field(default_factory=lambda: Backoff(base=1.0, cap=60.0))
    on_reconciled: Callable[[str, float], None] | None = None
    #: Told of notable events (`status_written`), for metrics; called on the actor's worker.
    on_event: OnEvent | None = None
    #: The lease's write window and epoch (`LeaseKeeper.fence`); table writes carry the
    #: epoch in their condition. None: only `may_write` is checked, writes carry no epoch.
    fence: FenceSource | None = None
    #: Every watched namespace's gateway (`INFERENCE_NAMESPACES`, `namespace`'s included).
    #: Empty: `namespace` alone is watched, through `gateway`.
    gateways: Mapping[str, Cluster] = field(default_factory=dict)
    #: The per-pod metric an autoscaling metric `gpu` scales on (None: the builder's default).
    gpu_metric: str | None = None
    #: The rollout's gates, read while a region steps or bakes (`store.gates`; the daemon
    #: registers them, architecture section 12); empty: none is read.
    gates: Sequence[Gate] = ()

    def watched(self) -> Mapping[str, Cluster]:
        """The gateway of each watched namespace."""
        return self.gateways or {self.namespace: self.gateway}

    def gateway_for(self, namespace: str) -> Cluster | None:
        """The gateway an item of `namespace` is applied through; None when not watched."""
        return self.watched().get(namespace)


class EndpointActor(PooledActor):
    """Owns one endpoint's objects, watchdog and status in this region; runs on
    `ctx.pool`, not on a thread of its own."""

    def __init__(
        self,
        ctx: EndpointContext,
        slot: EndpointSlot,
        item: LoadedItem | None,
        supervisor: pykka.ActorRef[Any],
        *,
        retiring: bool = False,
    ) -> None:
        super().__init__(pool=ctx.pool)
        self.ctx = ctx
        self.slot = slot
        self.item = item
        self.supervisor = supervisor
        self.retiring = retiring
        self.failures = 0
        # This cluster's own entry (one of several when clusters share the region).
        self.last_reported: RegionStatus | None = (
            ctx.store.own_status(item, ctx.region) if item is not None else None
        )
        # The record fields this actor wrote (a halt, a completion) and whether the table's
        # entry for this region was found older than ours (architecture section 12).
        self._recorded: freshness.Recorded | None = None
        self._repair = False
        self._retry_timer: Timer | None = None
        self._watchdog_timer: Timer | None = None
        self._heartbeat_timer: Timer | None = None
        self.log = log

    # -- lifecycle ---------------------------------------------------------

    def on_start(self) -> None:
        # Bound in the actor's own context: every line logged while it works (the gateway's
        # and the store's included) carries the endpoint and lands in its log stream.
        structlog.contextvars.bind_contextvars(
            endpoint=self.slot.name, region=self.ctx.region, cluster=self.ctx.cluster
        )
        self.log = log.bind(generation=self.slot.generation)
        self.log.info("endpoint actor started", retiring=self.retiring)
        # The supervisor sets `ref` when start() returns, which may be after this runs.
        if self.slot.ref is None:
            self.slot.ref = self.actor_ref
        self.slot.poke()

    def on_stop(self) -> None:
        self._cancel_timers()
        self.log.info("endpoint actor stopped")

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        self._cancel_timers()
        error = f"{getattr(exception_type, '__name__', 'Error')}: {exception_value}"
        self.log.error("endpoint actor died", error=error)
        try:
            self.supervisor.tell(ActorDied(self.slot.name, self.slot.generation, error))
        except pykka.ActorDeadError:
            self.log.warning("supervisor gone; death not reported")

    def on_receive(self, message: Any) -> None:
        with self.ctx.permits.held(self._set_permit):
            self._receive(message)

    def _set_permit(self, permit: Permit | None) -> None:
        self.slot.permit = permit

    def _receive(self, message: Any) -> None:
        try:
            self._handle(message)
        except Fenced as reason:
            if self.slot.revoked:
                self.log.info("abandoned by the supervisor: stopping")
                self.stop()
            else:
                # Leadership lapsed: write nothing now; the supervisor stops us if it is
                # really lost, else the next attempt goes through.
                self.log.warning("write fenced", reason=str(reason))
                self._schedule_retry(self.ctx.retry_backoff.delay(self.failures))
        except Exception as error:
            self.slot.last_error = f"{type(error).__name__}: {error}"
            raise

    def _handle(self, message: Any) -> None:
        if isinstance(message, Reconcile):
            self.slot.pending = False
        elif isinstance(message, SpecChanged):
            # A scan queued while this actor was busy may be older than its own last
            # writes: versions decide what is adopted, not arrival order.
            adopted = freshness.adopt(
                message.item,
                self.ctx.store.own_status(message.item, self.ctx.region),
                self.last_reported,
                self._recorded,
            )
            self.item, self.last_reported = adopted.item, adopted.own
            self._repair = self._repair or adopted.repair
            self.failures = 0
        elif isinstance(message, Retire):
            self.retiring = True
            self.item = message.item
            self.failures = 0
        elif isinstance(message, InjectCrash):
            raise RuntimeError(message.reason)
        else:
            self.log.warning("unexpected message", message=repr(message))
            return
        started = time.perf_counter()
        self._reconcile()
        if self.ctx.on_reconciled is not None:
            self.ctx.on_reconciled(self.slot.name, time.perf_counter() - started)

    # -- reconcile ---------------------------------------------------------

    def _reconcile(self) -> None:
        try:
            if self.retiring:
                self._retire()
            elif self.item is None:
                return
            elif self.item.endpoint is None:
                problems = "; ".join(self.item.problems) or "invalid item"
                self._report(RegionStatus(state="error", error=f"invalid item: {problems}"))
            elif self.item.endpoint.desired_state == "deleted":
                # Also in a namespace not watched: nothing of ours can be there.
                self._delete(self.item.endpoint)
            elif self.ctx.gateway_for(self.item.endpoint.namespace) is None:
                watched = ",".join(self.ctx.watched())
                self._report(
                    RegionStatus(
                        state="error",
                        error=(
                            f"namespace {self.item.endpoint.namespace!r} is not watched by this "
                            f"daemon (INFERENCE_NAMESPACES={watched})"
                        ),
                    )
                )
            else:
                self._converge(self.item.endpoint)
            self.failures = 0
        except RequestFenced as fenced:
            # The gateway refused to send (the lease's deadline passed): not a failure.
            raise Fenced(str(fenced)) from fenced
        except (ApiError, StoreError, ManifestError, _Permanent) as error:
            self._failed(error)

    def _converge(self, endpoint: Endpoint) -> None:
        gateway, name = self._gateway(endpoint), endpoint.endpoint_name
        now = self.ctx.clock.time()
        # What this region last reported: a decision is announced when it differs.
        before = self.last_reported
        # architecture section 12: with `spec.rollout`, the rollout decides which spec is served
        # here.
        step = self._rollout_plan(endpoint, gateway, now)
        if step is not None and step.endpoint is None:
            # Not due and nothing completed to serve yet: the objects are left as they are.
            primary = gateway.cached("Deployment", name)
            threshold = self.ctx.unhealthy_threshold
            self._report(
                step.stamp(observed_status(endpoint, primary, serving=True, threshold=threshold))
            )
            self._announce_rollout(before, step, endpoint, now)
            self._arm_watchdog(step.decision.next_check, now)
            return
        served = endpoint if step is None or step.endpoint is None else step.endpoint
        stepping = None if step is None else step.canary
        with_canary = served.spec.canary is not None or stepping is not None
        decision = watchdog(
            gateway.cached("Deployment", name),
            gateway.cached("Deployment", canary_name(name)) if with_canary else None,
            now=now,
            threshold=self.ctx.unhealthy_threshold,
        )
        workload = workload_for(
            served,
            self.ctx.region,
            serve_traffic=decision.serve_traffic,
            canary_healthy=decision.canary_healthy,
            gpu_metric=self.ctx.gpu_metric,
        )
        if stepping is not None:
            # The new revision's share of traffic; an unready canary gets 0, as any canary.
            weight = stepping.weight if decision.canary_healthy else 0
            workload = dataclasses.replace(
                workload, canary=dataclasses.replace(stepping, weight=weight)
            )
        desired = build_objects(workload)
        ingress = ingress_name(name)
        ingress_before = gateway.cached("Ingress", ingress)
        results: dict[tuple[str, str], str] = {}
        for obj in desired:
            self._fence()
            result = gateway.ensure(obj)
            results[object_key(obj)] = result
            if result == "unmanaged":
                kind, obj_name = object_key(obj)
                raise _Permanent(f"{kind} {obj_name} exists and is not managed by us: left alone")
            if result != "unchanged":
                self.log.info(
                    "object applied", kind=obj["kind"], name=obj["metadata"]["name"], result=result
                )
        self._remove_owned(
            name, keep={object_key(obj) for obj in desired}, namespace=endpoint.namespace
        )
        if not decision.serve_traffic:
            self.log.warning("watchdog: primary unready past threshold, Ingress removed")
        threshold = self.ctx.unhealthy_threshold
        if not decision.serve_traffic and ingress_before is not None:
            self._announce(decisions.traffic_cut(threshold), endpoint, now)
        elif (
            decision.serve_traffic
            and ingress_before is None
            and results.get(("Ingress", ingress)) == "created"
            and _traffic_was_cut(before)
        ):
            self._announce(decisions.traffic_restored(), endpoint, now)
        if (
            with_canary
            and not decision.canary_healthy
            and results.get(("Ingress", ingress)) in ("created", "updated")
        ):
            self._announce(decisions.canary_zeroed(threshold), endpoint, now)
        checks = [t for t in (decision.next_check, step and step.decision.next_check) if t]
        self._arm_watchdog(min(checks) if checks else None, now)
        status = observed_status(
            served,
            gateway.cached("Deployment", name),
            serving=decision.serve_traffic,
            threshold=self.ctx.unhealthy_threshold,
        )
        self._report(status if step is None else step.stamp(status))
        if status.state == "running":
            # An item whose `namespace` was edited moved: its objects in the new namespace
            # are ready, so those left in the old one go (architecture section 4).
            self._remove_elsewhere(name, endpoint.namespace)
        if step is not None:
            self._announce_rollout(before, step, endpoint, now)
        if step is not None and step.decision.complete:
            self._record_completion(endpoint, step.revision)
        self._mark_running(endpoint)

    def _rollout_plan(
        self, endpoint: Endpoint, gateway: Cluster, now: float
    ) -> rollout.Plan | None:
        """The rollout's decision for this region (None without `spec.rollout`); a halt it
        calls for is recorded on the item first, so the other regions stop at once."""
        if self.item is None:
            return None
        name = endpoint.endpoint_name
        primary = gateway.cached("Deployment", name)
        step = rollout.plan(
            self.item,
            endpoint,
            self.ctx.region,
            own=self.last_reported,
            primary=primary,
            canary=gateway.cached("Deployment", canary_name(name)),
            serving=watchdog(
                primary, None, now=now, threshold=self.ctx.unhealthy_threshold
            ).serve_traffic,
            gates=self.ctx.gates,
            ingress=gateway.cached("Ingress", ingress_name(name)),
            now=now,
            silence=self.ctx.silence,
            cluster=self.ctx.cluster,
        )
        if step is not None and step.decision.halt is not None:
            fence = self._fence()
            halt = Halt(step.revision, self.ctx.region, step.decision.halt, iso_now(now))
            if self.ctx.store.record_rollout_halt(
                name,
                halt,
                expected_updated_at=self.item.updated_at,
                region=self.ctx.region,
                **_epoch(fence),
            ):
                self._remember(self.item.updated_at, {"halt": halt.to_item()})
                self.log.warning("rollout halted", revision=halt.revision, reason=halt.reason)
                self._announce(decisions.halted(halt), endpoint, now)
        return step

    def _record_completion(self, endpoint: Endpoint, revision: str) -> None:
        """Every target region is done at `revision`: record it as the completed one."""
        if self.item is None:
            return
        fence = self._fence()
        spec = {k: v for k, v in self.item.raw["spec"].items() if k != "rollout"}
        if self.ctx.store.record_rollout_completion(
            endpoint.endpoint_name,
            revision,
            spec,
            list(endpoint.target_regions),
            expected_updated_at=self.item.updated_at,
            region=self.ctx.region,
            **_epoch(fence),
        ):
            self._remember(
                self.item.updated_at, {"completed_revision": revision, "completed_spec": spec}
            )
            self.log.info("rollout complete in every target region", revision=revision)
            self._announce(decisions.completed(revision), endpoint, self.ctx.clock.time())

    def _remember(self, updated_at: str | None, fields: dict[str, Any]) -> None:
        """Keep the record fields this actor wrote, so an older scan cannot hide them, and
        hold them at once: the next pass must not decide from the item read before them
        (seen: a halt written, then the next pass stepping the halted revision again)."""
        recorded = self._recorded or freshness.Recorded(updated_at)
        self._recorded = recorded.add(updated_at, fields)
        if self.item is not None:
            self.item = freshness.with_record(self.item, self._recorded)

    def _announce_rollout(
        self, before: RegionStatus | None, step: rollout.Plan, endpoint: Endpoint, now: float
    ) -> None:
        """Announce the rollout decision when this region's phase, revision or step moved
        from what it reported `before` (the table's entry: a restart announces nothing new)."""
        if self.item is None:
            return
        record = RolloutRecord.from_item(self.item.raw)
        found = decisions.rollout_decision(before, step, halt=record.halt)
        if found is not None:
            self._announce(found, endpoint, now)

    def _announce(self, decision: decisions.Decision, endpoint: Endpoint, now: float) -> None:
        """Log, count and record (as a Kubernetes Event on its Deployment) a decision."""
        decisions.announce(
            decision,
            endpoint=endpoint.endpoint_name,
            gateway=self.ctx.gateway_for(endpoint.namespace),
            namespace=endpoint.namespace,
            now=now,
            on_event=self.ctx.on_event,
            logger=self.log,
            cluster=self.ctx.cluster,
            fenced=self._write_closed,
        )

    def _write_closed(self) -> bool:
        """True when this actor may not write now (the Event is then not sent)."""
        try:
            self._fence()
        except Fenced:
            return True
        return False

    def _gateway(self, endpoint: Endpoint) -> Cluster:
        """The gateway of the endpoint's namespace (`_reconcile` checked it is watched)."""
        gateway = self.ctx.gateway_for(endpoint.namespace)
        if gateway is None:
            raise _Permanent(f"namespace {endpoint.namespace!r} is not watched by this daemon")
        return gateway

    def _remove_owned(
        self,
        name: str,
        *,
        keep: Collection[tuple[str, str]] = (),
        from_server: bool = False,
        namespace: str | None = None,
    ) -> tuple[list[str], list[str]]:
        """Delete the objects endpoint `name` owns in `namespace`, except those in `keep`
        (kind, name); with `namespace` None, in every watched namespace (a cleanup: an
        endpoint whose item moved leaves nothing behind). With `from_server`, each object
        is read from the API server first (not the cache), so nothing is deleted on a
        stale view.

        Returns:
            (terminating, left): objects whose deletion is under way (finalizers), and
            objects still present that could not be deleted.
        """
        watched = self.ctx.watched()
        terminating: list[str] = []
        left: list[str] = []
        for ns in list(watched) if namespace is None else [namespace]:
            gateway = watched[ns]
            where = "" if ns == self.ctx.namespace else f"{ns}/"
            for kind, obj_name in owned_names(name):
                if ns == namespace and (kind, obj_name) in keep:
                    continue
                live = (
                    gateway.read(kind, obj_name) if from_server else gateway.cached(kind, obj_name)
                )
                if live is None:
                    continue
                if _terminating(live):
                    terminating.append(f"{kind} {where}{obj_name}")
                    continue
                self._fence()
                if gateway.remove(kind, obj_name, owner=name):
                    self.log.info("object removed", kind=kind, name=obj_name, namespace=ns)
                elif _terminating(gateway.cached(kind, obj_name)):
                    terminating.append(f"{kind} {where}{obj_name}")
                else:
                    left.append(f"{kind} {where}{obj_name}")
        return terminating, left

    def _remove_elsewhere(self, name: str, namespace: str) -> None:
        """Delete endpoint `name`'s objects in every watched namespace but `namespace`
        (cached reads: nothing is asked of the API server unless something is there)."""
        for other in self.ctx.watched():
            if other != namespace:
                _, left = self._remove_owned(name, namespace=other)
                if left:
                    self.log.warning("objects left in the old namespace", objects=left)

    def _delete(self, endpoint: Endpoint) -> None:
        name = endpoint.endpoint_name
        if self.last_reported is None or self.last_reported.state not in ("deleted", "deleting"):
            self._report(RegionStatus(state="deleting"))
        terminating, left = self._remove_owned(name)
        if left:
            raise _Permanent(f"delete incomplete, still present: {', '.join(left)}")
        if terminating:
            # Finalizers (the ALB controller's on an Ingress) run; their DELETED event
            # brings us back. Until then the endpoint is deleting, not failing.
            self.log.info("waiting for objects to terminate", objects=terminating)
            self._schedule_retry(self.ctx.retry_backoff.delay(self.failures))
            return
        self._report(RegionStatus(state="deleted"))
        statuses = self._statuses_with_own()
        regions = list(endpoint.target_regions)
        # Every cluster of every target region must report `deleted` (a cluster sharing
        # this region still holds copies until it does): the purge's condition says so too.
        if regions and all(r in statuses and statuses[r].state == "deleted" for r in regions):
            fence = self._fence()
            if self.ctx.store.purge_if_deleted(
                name, regions, region=self.ctx.region, **_epoch(fence)
            ):
                self.log.info("every target region reports deleted: item removed")

    def _retire(self) -> None:
        name = self.slot.name
        # An endpoint gone from the table (no item) is judged on the server's view only.
        terminating, left = self._remove_owned(name, from_server=self.item is None)
        if left:
            raise _Permanent(f"cleanup incomplete, still present: {', '.join(left)}")
        if terminating:
            self.log.info("waiting for objects to terminate", objects=terminating)
            self._schedule_retry(self.ctx.retry_backoff.delay(self.failures))
            return
        if self.item is not None and self.ctx.region in self.item.region_status:
            fence = self._fence()
            try:
                self.ctx.store.write_region_status(name, self.ctx.region, None, **_epoch(fence))
            except Superseded as refused:
                self.log.warning(
                    "status entry not removed: a newer leader owns it", error=str(refused)
                )
                self._refused(refused)
        self.log.info("endpoint retired from this region")
        self.slot.retiring = True
        self.supervisor.tell(Retired(name, self.slot.generation))
        self.stop()

    # -- status, fencing, timers ------------------------------------------

    def _refused(self, refused: Superseded) -> None:
        """Tell the supervisor (metric, /readyz) that a newer leader's epoch refused a write."""
        if self.ctx.on_event is not None:
            self.ctx.on_event(
                EventKind.STATUS_REFUSED, {"endpoint": self.slot.name, "error": str(refused)}
            )

    def _report(self, status: RegionStatus) -> None:
        """Write this region's status entry, only when it says something new or its
        heartbeat is due (`last_sync` is refreshed every `heartbeat` seconds or so)."""
        if self.item is not None and rollout.policy_of(self.item) is not None:
            status = rollout.carry(status, self.last_reported)
        if (
            # The trimmed form is what lands when the full one does not fit the item.
            (
                same_report(status, self.last_reported)
                or same_report(status.trimmed(), self.last_reported)
            )
            and _rollout_fields(status) == _rollout_fields(self.last_reported)
            and not self._heartbeat_due()
            and not self._repair
        ):
            return
        fence = self._fence()
        last = self.last_reported
        stamped = dataclasses.replace(
            status,
            last_sync=iso_now(self.ctx.clock.time()),
            epoch=None,
            holder=None,
            seq=(last.seq or 0) + 1 if last is not None else 1,
        )
        try:
            written = self._write_fitting(stamped, fence)
        except Superseded as refused:
            # A fencing outcome, not a failure: a newer leader wrote this entry. Not
            # retried (this status is taken as reported); the lease decides what is next.
            self.log.warning("status write refused: a newer leader owns it", error=str(refused))
            self._refused(refused)
            written = False
        if written:
            if self.ctx.on_event is not None:
                self.ctx.on_event(EventKind.STATUS_WRITTEN, {"endpoint": self.slot.name})
            self.log.info(
                "status written",
                state=status.state,
                error=status.error,
                ready=status.replicas_ready,
                desired=status.replicas_desired,
            )
        self.last_reported = stamped
        self._repair = False
        self._arm_heartbeat()

    def _write_fitting(self, status: RegionStatus, fence: Fence | None) -> bool:
        """Write `status`; when it would take the item past DynamoDB's 400 KB limit, write
        it once trimmed (`RegionStatus.trimmed`, which says so). Either way it counts as
        reported, so a status that cannot fit is never retried in a loop."""
        write = self.ctx.store.write_region_status
        try:
            return write(self.slot.name, self.ctx.region, status, **_epoch(fence))
        except ItemTooLarge as too_large:
            self.log.error(
                "status too large for the item (DynamoDB's 400 KB limit): writing it trimmed",
                error=str(too_large),
            )
        try:
            return write(self.slot.name, self.ctx.region, status.trimmed(), **_epoch(fence))
        except ItemTooLarge as too_large:
            self.log.error(
                "status not written: the item is at DynamoDB's 400 KB limit even with the "
                "status trimmed; shrink the item",
                error=str(too_large),
            )
            return False

    def _heartbeat_period(self) -> float:
        """`heartbeat` seconds plus up to 20 % more, fixed per endpoint: the writes of
        many endpoints spread out instead of landing together."""
        digest = hashlib.sha256(self.slot.name.encode()).digest()
        return self.ctx.heartbeat * (1 + 0.2 * digest[0] / 255)

    def _heartbeat_due(self) -> bool:
        if self.ctx.heartbeat <= 0 or self.last_reported is None:
            return False
        written = parse_timestamp(self.last_reported.last_sync)
        if written is None:
            return True
        return self.ctx.clock.time() - written >= self._heartbeat_period()

    def _arm_heartbeat(self) -> None:
        if self._heartbeat_timer is not None:
            self._heartbeat_timer.cancel()
            self._heartbeat_timer = None
        if self.ctx.heartbeat > 0:
            # A margin past the period, so the poke finds the heartbeat due.
            self._heartbeat_timer = self.ctx.scheduler.call_later(
                self._heartbeat_period() + 0.01, self.slot.poke
            )

    def _mark_running(self, endpoint: Endpoint) -> None:
        """`deploying` becomes `running` once every target region reports `running`."""
        if endpoint.desired_state != "deploying" or self.item is None:
            return
        statuses = self._statuses_with_own()
        regions = list(endpoint.target_regions)
        if not regions or any(r not in statuses or statuses[r].state != "running" for r in regions):
            return
        fence = self._fence()
        if self.ctx.store.mark_running(
            endpoint.endpoint_name, regions, region=self.ctx.region, **_epoch(fence)
        ):
            self.log.info("every target region runs it: desired_state is now running")

    def _statuses_with_own(self) -> dict[str, RegionStatus]:
        """Every region's status as the item says, this region's as it stands with this
        cluster's last report (the summary over its clusters when several share it)."""
        statuses = dict(self.item.region_status if self.item is not None else {})
        if self.item is not None and self.last_reported is not None:
            view = self.ctx.store.region_view(self.item, self.ctx.region, self.last_reported)
            if view is not None:
                statuses[self.ctx.region] = view
        return statuses

    def _fence(self) -> Fence | None:
        """Raise `Fenced` unless this actor may write now; returns the lease's window
        (None without a fence source), whose epoch conditional table writes carry."""
        if self.slot.revoked:
            raise Fenced("abandoned by the supervisor")
        fence = self.ctx.fence() if self.ctx.fence is not None else None
        if (self.ctx.fence is not None and (fence is None or not fence.open)) or (
            not self.ctx.may_write()
        ):
            raise Fenced("not the leader (or lease not renewed in time)")
        return fence

    def _failed(self, error: Exception) -> None:
        delay = self.ctx.retry_backoff.delay(self.failures)
        self.failures += 1
        transient = isinstance(error, ApiRetryable | StoreRetryable)
        if isinstance(error, NotSynced):
            # Our own cache is relisting: nothing is wrong with the endpoint.
            self.log.info("cache not synced; retrying", retry_in=round(delay, 2))
            self._schedule_retry(delay)
            return
        self.log.warning(
            "reconcile failed",
            error=str(error),
            retry_in=round(delay, 2),
            transient=transient,
            attempt=self.failures,
        )
        if not transient or self.failures >= 3:
            try:
                self._report(RegionStatus(state="error", error=str(error)[:500]))
            except (ApiError, StoreError) as report_error:
                self.log.warning("status write failed", error=str(report_error))
        self._schedule_retry(delay)

    def _schedule_retry(self, delay: float) -> None:
        if self._retry_timer is not None:
            self._retry_timer.cancel()
        self._retry_timer = self.ctx.scheduler.call_later(delay, self.slot.poke)

    def _arm_watchdog(self, at: float | None, now: float) -> None:
        if self._watchdog_timer is not None:
            self._watchdog_timer.cancel()
            self._watchdog_timer = None
        if at is not None:
            self._watchdog_timer = self.ctx.scheduler.call_later(at - now + 0.01, self.slot.poke)

    def _cancel_timers(self) -> None:
        for timer in (self._retry_timer, self._watchdog_timer, self._heartbeat_timer):
            if timer is not None:
                timer.cancel()


def _rollout_fields(status: RegionStatus | None) -> tuple[Any, ...]:
    """What a status entry says of the rollout (architecture section 12)."""
    if status is None:
        return ()
    return (status.revision, status.rollout, status.step, status.since, status.gates)


def _traffic_was_cut(status: RegionStatus | None) -> bool:
    """The status reported says the watchdog stopped traffic (`observed_status`'s error)."""
    return status is not None and status.state == "error" and says_traffic_was_cut(status.error)


def _terminating(obj: dict[str, Any] | None) -> bool:
    return obj is not None and bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def _epoch(fence: Fence | None) -> dict[str, Any]:
    """The epoch arguments of a conditional table write (none without a fence)."""
    return {} if fence is None else {"epoch": fence.epoch, "holder": fence.holder}


class _Permanent(Exception):
    """A failure retrying alone will not fix (reported at once, still retried with backoff)."""
