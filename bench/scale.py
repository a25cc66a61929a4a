"""One cold start of a subprocess daemon at N endpoints, shared by `cold_start` and `memory`.

The table is filled first, then `python -m actors run` starts; the run records the time
to every Deployment created and to every item reporting `running`, the requests spent
(the sim's counters for Kubernetes, the daemon's /metrics for the table), and the
daemon's RSS and threads once converged. Results are kept per N for the invocation,
so the memory benchmark reuses the cold starts it shares with the cold-start benchmark.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from bench.rig import (
    BENCH_BURST,
    BENCH_QPS,
    DaemonProcess,
    Rig,
    names,
    rig,
    table_split,
    wait_until,
)
from store.errors import StoreError

#: Settle time after convergence before RSS is read (late status writes, GC).
SETTLE_SECONDS = 3.0


@dataclass
class ScaleRun:
    """Figures of one cold start at `endpoints` endpoints (seconds from the process start)."""

    endpoints: int
    fill_seconds: float
    process_ready_seconds: float
    deployments_seconds: float | None = None
    running_seconds: float | None = None
    k8s_requests: dict[str, int] = field(default_factory=dict)
    table_reads: float = 0.0
    table_writes: float = 0.0
    rss_kib: int = 0
    hwm_kib: int = 0
    threads: int = 0
    actors_alive: float = 0.0
    lease_transitions: float = 0.0
    error: str = ""


_RUNS: dict[tuple[int, str, str, str], ScaleRun] = {}


def scale_run(
    endpoints: int,
    *,
    timeout: float,
    qps: str = BENCH_QPS,
    burst: str = BENCH_BURST,
    module: str = "actors",
) -> ScaleRun:
    """The cold start at `endpoints` with the given client rate limit, of the daemon (or
    of an experiment's `module`); measured once per invocation, then cached."""
    key = (endpoints, qps, burst, module)
    if key not in _RUNS:
        with rig() as kit:
            _RUNS[key] = _measure(
                kit, endpoints, timeout=timeout, qps=qps, burst=burst, module=module
            )
    return _RUNS[key]


def _all_ready(kit: Rig, wanted: list[str]) -> bool:
    for name in wanted:
        deployment = kit.deployment(name)
        if deployment is None or deployment.get("status", {}).get("readyReplicas", 0) < 1:
            return False
    return True


def _converge(
    kit: Rig, process: DaemonProcess, run: ScaleRun, wanted: list[str], *, timeout: float
) -> None:
    """Wait for every Deployment, every pod ready and every item `running` (one deadline
    for all three), then let late writes settle; fills the times in `run`."""
    deadline = time.monotonic() + timeout
    started = time.monotonic() - run.process_ready_seconds
    if not wanted:
        wait_until(lambda: kit.lease_holder() == process.identity, timeout=timeout, what="the lead")
        time.sleep(SETTLE_SECONDS)
        return
    wait_until(
        lambda: kit.deployment_count() >= len(wanted),
        timeout=deadline - time.monotonic(),
        period=0.1,
        what=f"{len(wanted)} Deployments",
    )
    run.deployments_seconds = time.monotonic() - started
    # Scans cost the moto server ~0.5 ms per item: only start once the cluster is ready.
    wait_until(
        lambda: _all_ready(kit, wanted),
        timeout=deadline - time.monotonic(),
        period=0.2,
        what="every Deployment ready in the sim",
    )
    kit.wait_all_running(
        timeout=deadline - time.monotonic(), what=f"{len(wanted)} items reporting running"
    )
    run.running_seconds = time.monotonic() - started
    time.sleep(SETTLE_SECONDS)


def _measure(
    kit: Rig, endpoints: int, *, timeout: float, qps: str, burst: str, module: str
) -> ScaleRun:
    wanted = names(endpoints)
    fill = kit.fill(wanted)
    kit.sim.reset_counters()
    started = time.monotonic()
    process = kit.spawn(module=module, K8S_QPS=qps, K8S_BURST=burst)
    run = ScaleRun(endpoints, fill, time.monotonic() - started)
    try:
        _converge(kit, process, run, wanted, timeout=timeout)
    except (TimeoutError, StoreError) as error:
        # A figure missing beats a benchmark lost: the moto server can time out at 5,000.
        run.error = f"{type(error).__name__}: {error}"
    try:
        # Read even after a timeout: the state the daemon was left in is a figure too.
        counts = process.counts()
        run.k8s_requests = kit.sim.counters()
        run.table_reads, run.table_writes = table_split(counts)
        run.actors_alive = counts.get("inference_supervisor_actors_alive", 0.0)
        run.lease_transitions = counts.get("inference_supervisor_lease_transitions_total", 0.0)
        status = process.status()
        run.rss_kib, run.hwm_kib, run.threads = status["VmRSS"], status["VmHWM"], status["Threads"]
    finally:
        process.stop()
    return run
