"""The daemon's Prometheus metrics, in a registry of their own.

Each `Metrics` owns its `CollectorRegistry`, so several daemons can run in one
process (the tests do) without their series colliding in the global registry.
Actors and gateways update the public metric attributes directly
(`metrics.k8s_requests.labels(verb="patch", kind="Deployment", outcome="ok").inc()`).
"""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# The text exposition format Prometheus has scraped since 2014; every scraper reads it.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# A reconcile is a few API calls (milliseconds) but may wait on a slow API server or
# a rollout check (tens of seconds); the buckets cover both ends.
RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


#: Every series' name starts with the application's name (Prometheus' naming guide):
#: `inference_supervisor_actor_restarts_total`, `inference_supervisor_k8s_requests_total`...
PREFIX = "inference_supervisor"


class Metrics:
    """All series the daemon exports; `render()` gives the Prometheus text for /metrics.
    Every name below is served with the `inference_supervisor_` prefix (`PREFIX`).

    Attributes:
        registry: the registry holding exactly these series.
        actors_alive: gauge, endpoint actors currently running.
        actor_restarts: counter `actor_restarts_total{endpoint}`, endpoint actors restarted
            by the supervisor after a crash or hang; an endpoint's series is dropped when
            it is retired (`forget_endpoint`).
        parked_endpoints: gauge, endpoints whose actor crashed too often and is parked
            (not restarted until its item changes).
        reconcile_duration: histogram `reconcile_duration_seconds`, one endpoint reconcile.
        k8s_requests: counter `k8s_requests_total{verb,kind,outcome}`, Kubernetes API calls
            (verb get/list/watch/create/replace/patch/delete; outcome ok or the error class).
        dynamodb_requests: counter `dynamodb_requests_total{operation,outcome}`, table calls.
        leader: gauge, 1 while this process holds the leader lease, else 0.
        lease_transitions: counter `lease_transitions_total`, times this process gained or
            lost leadership.
        mailbox_depth: gauge, messages waiting in actor mailboxes (sampled).
        status_writes: counter `status_writes_total`, region status writes to the table.
        status_writes_refused: counter `status_writes_refused_total`, status writes refused
            because a newer leader's epoch is on the entry.
        orphan_deletes_refused: gauge, endpoints whose deletion the mass-deletion guard holds.
        decisions: counter `decisions_total{decision}`, decisions about an endpoint, each
            counted once when made (`actors.decisions`; decision = the Kubernetes Event's
            reason: RolloutStarted, RolloutStepped, RolloutPromoted, RolloutBaking,
            RolloutDone, RolloutCompleted, RolloutHalted, RolloutRolledBack, RolloutPaused,
            RolloutResumed, RolloutWaiting, TrafficCut, TrafficRestored,
            CanaryWeightZeroed, EndpointParked). Not per endpoint: the Events and the
            endpoint's log stream say which.
        alarm_reads: counter `alarm_reads_total{outcome}`, CloudWatch `describe_alarms`
            answers used by the rollout's alarm gate (outcome ok or the error).
        gate_reads: counter `gate_reads_total{gate,outcome}`, reads of the other rollout
            gates' sources (gate weights: one ELBv2 read-back, outcome verified, pending,
            no-lb, no-rule or unreadable; gate analysis: one Prometheus query, outcome ok
            or the error).
        scan_failures: counter `scan_failures_total{reason}`, table scans that failed
            (reason: the error code, or ScanBroken for a scan whose pages never end).
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.actors_alive = Gauge(
            "actors_alive",
            "Endpoint actors currently running.",
            namespace=PREFIX,
            registry=self.registry,
        )
        self.actor_restarts = Counter(
            "actor_restarts",
            "Endpoint actors restarted after a crash or hang.",
            ["endpoint"],
            namespace=PREFIX,
            registry=self.registry,
        )
        self.parked_endpoints = Gauge(
            "parked_endpoints",
            "Endpoints parked after too many restarts (waiting for their item to change).",
            namespace=PREFIX,
            registry=self.registry,
        )
        self.reconcile_duration = Histogram(
            "reconcile_duration_seconds",
            "Time to reconcile one endpoint.",
            buckets=RECONCILE_BUCKETS,
            namespace=PREFIX,
            registry=self.registry,
        )
        self.k8s_requests = Counter(
            "k8s_requests",
            "Kubernetes API requests by verb, kind and outcome.",
            ["verb", "kind", "outcome"],
            namespace=PREFIX,
            registry=self.registry,
        )
        self.dynamodb_requests = Counter(
            "dynamodb_requests",
            "DynamoDB requests by operation and outcome.",
            ["operation", "outcome"],
            namespace=PREFIX,
            registry=self.registry,
        )
        self.leader = Gauge(
            "leader",
            "1 while this process holds the leader lease, else 0.",
            namespace=PREFIX,
            registry=self.registry,
        )
        self.lease_transitions = Counter(
            "lease_transitions",
            "Times this process gained or lost leadership.",
            namespace=PREFIX,
            registry=self.registry,
        )
        self.mailbox_depth = Gauge(
            "mailbox_depth",
            "Messages waiting in actor mailboxes.",
            namespace=PREFIX,
            registry=self.registry,
        )
        self.status_writes = Counter(
            "status_writes",
            "Region status writes to the table.",
            namespace=PREFIX,
            registry=self.registry,
        )
        self.status_writes_refused = Counter(
            "status_writes_refused",
            "Region status writes the table refused because a newer leader's epoch is on the "
            "entry (non-zero and growing: another daemon writes this region; /readyz says more).",
            namespace=PREFIX,
            registry=self.registry,
        )
        self.orphan_deletes_refused = Gauge(
            "orphan_deletes_refused",
            "Endpoints absent from the table whose deletion the mass-deletion guard holds "
            "back (non-zero: check the table and REGION; /readyz says more).",
            namespace=PREFIX,
            registry=self.registry,
        )
        self.decisions = Counter(
            "decisions",
            "Decisions about an endpoint (rollout steps, halts, watchdog), by decision.",
            ["decision"],
            namespace=PREFIX,
            registry=self.registry,
        )
        self.alarm_reads = Counter(
            "alarm_reads",
            "CloudWatch alarm reads of the rollout's alarm gate, by outcome.",
            ["outcome"],
            namespace=PREFIX,
            registry=self.registry,
        )
        self.gate_reads = Counter(
            "gate_reads",
            "Reads of the rollout gates' sources (ELBv2, Prometheus), by gate and outcome.",
            ["gate", "outcome"],
            namespace=PREFIX,
            registry=self.registry,
        )
        self.scan_failures = Counter(
            "scan_failures",
            "Table scans that failed (the next poll retries), by reason.",
            ["reason"],
            namespace=PREFIX,
            registry=self.registry,
        )

    def forget_endpoint(self, name: str) -> None:
        """Drop every series labelled with endpoint `name` (called when the endpoint is
        retired from this region), so label sets do not grow with endpoint churn. A name
        with no series is a no-op. Should the endpoint come back, its counters start
        again from 0, which Prometheus reads as a counter reset."""
        for metric in (self.actor_restarts,):
            with contextlib.suppress(KeyError):
                metric.remove(name)

    def render(self) -> bytes:
        """All series in the Prometheus text format (version 0.0.4), as served on /metrics."""
        return generate_latest(self.registry)
