"""The daemon's wiring: the store, the gateway, the scheduler, the supervisor
and the health server, run by `inference-supervisor run` (`actors.app.run`).

`Daemon` is also what the demo, the tests and the benchmarks start in-process.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pykka
import structlog
from kubernetes.client import ApiClient

from actors.app.config import Settings
from actors.app.http_server import HealthServer
from actors.app.metrics import Metrics
from actors.app.table_probe import TableProbe
from actors.clock import Clock, SystemClock
from actors.endpoint import HANDLER_PERMITS, EndpointActor, endpoint_pool
from actors.lease import LeaseSettings
from actors.messages import EventKind, OnEvent, Shutdown, Snapshot, SupervisorView
from actors.orphans import OrphanRules
from actors.permits import HandlerPermits
from actors.scheduler import Scheduler
from actors.supervisor import SupervisorActor, SupervisorConfig
from k8s.fence import FenceSource
from k8s.gateway import ClusterGateway, GatewaySettings, make_api_client
from k8s.ratelimit import TokenBucket
from store.alarms import AlarmReader
from store.dynamo import DynamoEndpointStore
from store.gates import Gate
from store.gates.alb import AlbWeightsGate
from store.gates.cloudwatch import CloudWatchGate
from store.gates.prometheus import PrometheusGate
from store.stream import StreamReader, TableStream

log = structlog.get_logger(__name__)

#: Stack size of every thread started after start-up (watches, the endpoints' pool workers):
#: only the pages a thread touches are resident, so this bounds address space, not RSS.
THREAD_STACK_BYTES = 512 * 1024
#: How long /readyz reuses its table check (a DescribeTable): probes, scrapers and people
#: may ask often; a table that stops answering shows within this many seconds.
READY_TABLE_CHECK_SECONDS = 5.0
#: /readyz answers within about this many seconds, well under a kubelet probe's 3 s
#: default: the table check gets 1.5 s of it, the supervisor's view the rest.
READY_DEADLINE_SECONDS = 2.0
READY_TABLE_DEADLINE_SECONDS = 1.5
#: Connect and read timeout of the table check's one attempt (no retries): within its
#: deadline, so a throttled or unreachable table is answered with its own error.
READY_TABLE_TIMEOUT_SECONDS = 1.0


class Daemon:
    """One daemon process's worth of parts. `start()` returns at once; leadership,
    polling and reconciling happen on the scheduler and actor threads."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        actor_factory: type[EndpointActor] = EndpointActor,
        serve_http: bool = True,
        on_event: OnEvent | None = None,
        gateway_retries: tuple[int, float, float] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.metrics = Metrics()
        self.actor_factory = actor_factory
        self.serve_http = serve_http
        self.user_on_event = on_event
        self.view = SupervisorView(leading=False, alive=frozenset(), parked=frozenset())
        self.api_client = _api_client(settings)
        retries = {}
        if gateway_retries is not None:
            # (max retries, first delay, largest delay): tests shorten the real-time waits.
            retries = dict(
                zip(("max_retries", "backoff_base", "backoff_cap"), gateway_retries, strict=True)
            )
        self.gateway_settings = GatewaySettings(
            namespace=settings.namespace,
            timeout=settings.k8s_timeout,
            qps=settings.k8s_qps,
            burst=settings.k8s_burst,
            **retries,
        )
        # The endpoints' gateways (one per watched namespace) share one rate limit:
        # K8S_QPS / K8S_BURST are the process's budget, as client-go's are per client.
        self.limiter = TokenBucket(settings.k8s_qps, settings.k8s_burst)
        # The endpoint actors' threads (actors.pool): a few shared, not one per actor.
        self.pool = endpoint_pool()
        # One set of handler permits; the gateway and the store give a handler's permit
        # back while it waits on them (see actors.permits), and the pool its worker.
        self.permits = HandlerPermits(
            HANDLER_PERMITS, monotonic=self.clock.monotonic, pool=self.pool
        )
        self.store = _table(
            settings, on_request=self._count_dynamodb, cluster=settings.cluster_name
        )
        #: The table's stream, read by the poller as the change feed when the table has one.
        self.table_stream = TableStream(
            settings.table_name,
            region_name=settings.table_region or settings.region,
            endpoint_url=settings.dynamodb_endpoint_url,
            on_request=self._count_dynamodb,
        )
        self.store.waiting = self.permits.waiting
        # The lease has its own client and connection pool: a renewal must never queue
        # behind endpoint calls (fencing starts 10 s after the last renewal).
        self.lease_api_client = _api_client(settings)
        self.lease_gateway = ClusterGateway(
            self.lease_api_client, self.gateway_settings, on_request=self._count_k8s
        )
        # The rollout's gates (architecture section 12, `store.gates`), one registration line
        # each; a policy field asks for a gate. Their clients are built on first use: a daemon
        # whose items ask for no gate never calls CloudWatch, ELBv2 or Prometheus. boto3 finds
        # local endpoints in AWS_ENDPOINT_URL_CLOUDWATCH / AWS_ENDPOINT_URL_ELBV2 /
        # AWS_ENDPOINT_URL.
        alarms = AlarmReader(
            settings.region, monotonic=self.clock.monotonic, on_request=self._count_alarm_read
        )
        self.gates: list[Gate] = []
        self.gates.append(CloudWatchGate(alarms))
        self.gates.append(
            AlbWeightsGate(
                settings.region,
                monotonic=self.clock.monotonic,
                on_request=self._count_gate_read("weights"),
            )
        )
        self.gates.append(
            PrometheusGate(settings.prometheus_url, on_request=self._count_gate_read("analysis"))
        )
        self.scheduler = Scheduler(self.clock)
        self.supervisor: pykka.ActorRef[Any] | None = None
        self.health: HealthServer | None = None
        self.stopped = threading.Event()
        # /readyz's table check has a client of its own: one attempt, short timeouts. The
        # store's client retries a throttled table with jittered backoff for longer than
        # the check's deadline, which then could only say "slow", never why.
        self.probe_store = _table(
            settings,
            on_request=self._count_dynamodb,
            timeout=READY_TABLE_TIMEOUT_SECONDS,
            max_attempts=1,
        )
        self.table_probe = TableProbe(
            settings.table_name,
            self.probe_store.table_problem,
            monotonic=self.clock.monotonic,
            max_age=READY_TABLE_CHECK_SECONDS,
            deadline=READY_TABLE_DEADLINE_SECONDS,
        )

    # -- wiring ------------------------------------------------------------

    def _new_gateway(
        self, *, namespace: str | None = None, fence: FenceSource | None = None
    ) -> ClusterGateway:
        """The endpoints' gateway of one watched namespace (default: INFERENCE_NAMESPACE)
        for one term of leadership, fenced by the lease."""
        settings = self.gateway_settings
        if namespace is not None:
            settings = dataclasses.replace(settings, namespace=namespace)
        return ClusterGateway(
            self.api_client,
            settings,
            on_request=self._count_k8s,
            waiting=self.permits.waiting,
            fence=fence,
            limiter=self.limiter,
        )

    def _count_k8s(self, verb: str, kind: str, outcome: str) -> None:
        self.metrics.k8s_requests.labels(verb=verb, kind=kind, outcome=outcome).inc()

    def _count_dynamodb(self, operation: str, outcome: str) -> None:
        self.metrics.dynamodb_requests.labels(operation=operation, outcome=outcome).inc()
        if operation == "DescribeTable":
            self.table_probe.note_attempt(outcome)

    def _count_alarm_read(self, outcome: str) -> None:
        self._on_event(EventKind.ALARM_READ, {"outcome": outcome})

    def _count_gate_read(self, gate: str) -> Callable[[str], None]:
        return lambda outcome: self._on_event(
            EventKind.GATE_READ, {"gate": gate, "outcome": outcome}
        )

    def _on_event(self, kind: EventKind, fields: dict[str, Any]) -> None:
        if kind == EventKind.DIED:
            self.metrics.actor_restarts.labels(endpoint=fields["endpoint"]).inc()
        elif kind == EventKind.RETIRED:
            # The endpoint left this region: its per-endpoint series go with it.
            self.metrics.forget_endpoint(fields["endpoint"])
        elif kind in (EventKind.LEADING, EventKind.STANDBY):
            self.metrics.leader.set(1 if kind == EventKind.LEADING else 0)
            self.metrics.lease_transitions.inc()
        elif kind == EventKind.STATUS_WRITTEN:
            self.metrics.status_writes.inc()
        elif kind == EventKind.STATUS_REFUSED:
            self.metrics.status_writes_refused.inc()
        elif kind == EventKind.ORPHANS_REFUSED:
            self.metrics.orphan_deletes_refused.set(fields["count"])
        elif kind == EventKind.DECISION:
            self.metrics.decisions.labels(decision=fields["decision"]).inc()
        elif kind == EventKind.ALARM_READ:
            self.metrics.alarm_reads.labels(outcome=fields["outcome"]).inc()
        elif kind == EventKind.GATE_READ:
            self.metrics.gate_reads.labels(gate=fields["gate"], outcome=fields["outcome"]).inc()
        elif kind == EventKind.SCAN_FAILED:
            self.metrics.scan_failures.labels(reason=fields["reason"]).inc()
        elif kind == EventKind.GAUGES:
            self.metrics.actors_alive.set(fields["alive"])
            self.metrics.parked_endpoints.set(fields["parked"])
            self.metrics.mailbox_depth.set(fields["mailbox"])
        if self.user_on_event is not None:
            self.user_on_event(kind, fields)

    def _on_reconciled(self, _name: str, seconds: float) -> None:
        self.metrics.reconcile_duration.observe(seconds)

    # -- life --------------------------------------------------------------

    def start(self) -> Daemon:
        """Start the scheduler, the supervisor (which campaigns for the lease) and /metrics."""
        s = self.settings
        threading.stack_size(THREAD_STACK_BYTES)
        self.scheduler.start()
        config = SupervisorConfig(
            region=s.region,
            cluster=s.cluster_name,
            namespace=s.namespace,
            namespaces=s.watched_namespaces,
            lease=LeaseSettings(
                name=s.lease_name,
                namespace=s.namespace,
                identity=s.identity,
                duration=s.lease_duration,
                renew_deadline=s.renew_deadline,
                retry_period=s.retry_period,
            ),
            reconcile_interval=s.reconcile_interval,
            unhealthy_threshold=s.unhealthy_threshold,
            handler_timeout=s.handler_timeout,
            orphans=OrphanRules(max_deletes=s.max_orphan_deletes),
            status_heartbeat=s.status_heartbeat,
            gpu_metric=s.gpu_metric_name,
            stream_poll=s.stream_poll,
            stream_resync=s.stream_resync,
        )
        self.supervisor = SupervisorActor.start(
            config,
            store=self.store,
            lease_client=self.lease_gateway,
            gateway_factory=self._new_gateway,
            scheduler=self.scheduler,
            clock=self.clock,
            permits=self.permits,
            pool=self.pool,
            actor_factory=self.actor_factory,
            on_event=self._on_event,
            on_reconciled=self._on_reconciled,
            gates=self.gates,
            feed_factory=lambda: StreamReader(self.table_stream),
        )
        if self.serve_http:
            self.health = HealthServer(
                self.metrics, port=s.metrics_port, healthy=self._healthy, ready=self._ready
            ).start()
        log.info(
            "daemon started",
            region=s.region,
            cluster=s.cluster_name,
            table=s.table_name,
            namespace=s.namespace,
            namespaces=list(s.watched_namespaces),
            identity=s.identity,
        )
        return self

    def snapshot(self, timeout: float = 10.0) -> SupervisorView:
        """The supervisor's current view (leading, alive, parked, restarts)."""
        if self.supervisor is None or not self.supervisor.is_alive():
            return SupervisorView(leading=False, alive=frozenset(), parked=frozenset())
        return self.supervisor.ask(Snapshot(), timeout=timeout)

    def _healthy(self) -> tuple[bool, str]:
        if self.supervisor is None or not self.supervisor.is_alive():
            # A dead supervisor leads nothing and never will: let Kubernetes restart us.
            return False, "supervisor actor is not running"
        silent = self.clock.monotonic() - self.scheduler.last_tick
        if silent > 3 * max(self.settings.retry_period, 1.0):
            return False, f"scheduler has not ticked for {silent:.0f}s"
        return True, "ok"

    def _ready(self) -> tuple[bool, str]:
        """/readyz: the role, plus the supervisor's detail when it has one (e.g. a refused
        mass deletion: ready still, but an operator must look); 503 with the reason when
        the table is unreachable, throttled or slow, or the supervisor does not answer;
        within about READY_DEADLINE_SECONDS whatever the table does."""
        started = time.monotonic()
        problem = self.table_probe.answer()
        if problem is not None:
            return False, problem
        left = READY_DEADLINE_SECONDS - (time.monotonic() - started)
        try:
            view = self.snapshot(timeout=max(0.25, left))
        except Exception as error:
            return False, f"supervisor not answering: {error}"
        role = "leader" if view.leading else "standby"
        detail = getattr(view, "detail", "")
        return True, f"{role}: {detail}" if detail else role

    def stop(self, *, release: bool = True) -> None:
        """Stop every actor, release the lease (unless `release` is False: a simulated
        crash), and stop the timer thread and /metrics. Idempotent."""
        if self.stopped.is_set():
            return
        self.stopped.set()
        if self.supervisor is not None:
            try:
                self.supervisor.ask(Shutdown(release=release), timeout=30)
                self.supervisor.stop(timeout=30)
            except pykka.ActorDeadError:
                pass
        # The endpoint actors are stopped: their workers end (one still in a hung handler
        # is a daemon thread and ends with it, or with the process).
        if not self.pool.close(timeout=10):
            log.warning("endpoint workers still busy at stop", threads=self.pool.threads())
        self.scheduler.stop()
        if self.health is not None:
            self.health.stop()
        self.table_probe.stop(timeout=2)
        self.probe_store.close()
        self.store.close()
        self.table_stream.close()
        for gate in self.gates:
            gate.close()
        self.api_client.close()
        self.lease_api_client.close()
        log.info("daemon stopped")


def _api_client(settings: Settings) -> ApiClient:
    """A Kubernetes client from the settings: an explicit URL, a kubeconfig, or the pod's
    in-cluster configuration."""
    in_cluster = (
        settings.k8s_url is None
        and settings.kubeconfig is None
        and bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
    )
    api_client = make_api_client(
        url=settings.k8s_url, kubeconfig=settings.kubeconfig, in_cluster=in_cluster
    )
    # Which daemon sent a request, in the API server's audit log (and the sim's request log).
    api_client.user_agent = f"inference-supervisor/{settings.identity}"
    return api_client


def _table(
    settings: Settings,
    *,
    on_request: Callable[[str, str], None] | None = None,
    timeout: float = 10.0,
    max_attempts: int = 5,
    cluster: str | None = None,
) -> DynamoEndpointStore:
    """The endpoints table the settings name (`timeout` and `max_attempts` as the store's;
    `cluster`: whose status the store writes)."""
    return DynamoEndpointStore(
        settings.table_name,
        region_name=settings.table_region or settings.region,
        endpoint_url=settings.dynamodb_endpoint_url,
        timeout=timeout,
        max_attempts=max_attempts,
        on_request=on_request,
        cluster=cluster,
    )


def check(settings: Settings) -> int:
    """`run --check`: the configuration parsed; now reach the table, list and watch every kind
    in every watched namespace (proves those RBAC verbs) and read the Lease in the home
    namespace. Exit 0 when all work."""
    problems: list[str] = []
    with _table(settings) as store:
        if not store.reachable():
            problems.append(f"table {settings.table_name} is not reachable")
    try:
        api_client = _api_client(settings)
    except Exception as error:
        problems.append(f"Kubernetes API: {error}")
    else:
        try:
            for namespace in settings.watched_namespaces:
                gateway = ClusterGateway(
                    api_client,
                    GatewaySettings(
                        namespace=namespace, timeout=settings.k8s_timeout, max_retries=1
                    ),
                )
                try:
                    gateway.start(lambda _event: None)
                    if namespace == settings.namespace:
                        gateway.get_lease(settings.lease_name, timeout=settings.k8s_timeout)
                except Exception as error:
                    problems.append(f"Kubernetes API in namespace {namespace}: {error}")
                finally:
                    gateway.stop()
        finally:
            api_client.close()
    for problem in problems:
        print(f"check failed: {problem}")
    if not problems:
        watched = settings.watched_namespaces
        where = f"namespace{'s' if len(watched) > 1 else ''} {', '.join(watched)}"
        print(
            f"ok: table {settings.table_name} reachable; list/watch allowed in {where}; "
            f"Lease read allowed in namespace {settings.namespace}"
        )
    return 1 if problems else 0
