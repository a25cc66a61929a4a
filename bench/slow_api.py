"""Slow API: every Kubernetes call takes twice `K8S_API_TIMEOUT` for a while, then the API
is healthy again (architecture section 4: "a slow API is an outage to wait out, not a reason
to restart actors"; section 11, defects 23 and 24).

N endpoints converge with `K8S_API_TIMEOUT=1`; then the sim holds every request for
2 s (leases and watches included) for the fault window, during which a quarter of the
endpoints get a new image and, halfway through, an eighth get another; then the fault
clears. Figures: actor restarts (target 0), lost updates (endpoints not at their final
spec once converged; target 0), Kubernetes writes that landed after the lease could
have moved (target 0) and time from the fault clearing to every endpoint at its final
spec.

Writes after lease loss are computed from the sim's side: the sim stamps each request's
arrival and finish (`SimCluster.request_records()`); a lease CREATE/UPDATE
that succeeded is a renewal at its completion. An endpoint write (create, update,
delete of a Deployment, Service, Ingress or HPA) that succeeded is counted when it was
applied more than `leaseDurationSeconds` (15 s) after the last renewal before it: a
standby could have taken the lease by then. Writes applied after the renew deadline
(10 s; the daemon's own fence) are shown too. DynamoDB writes are not timed here: they
are fenced by their epoch condition, which moto cannot be asked about afterwards.
"""

from __future__ import annotations

import bisect
import time

from bench.faults import _converge
from bench.rig import Options, Rig, Section, names, rig
from store import commands

TITLE = "slow API"
INTERVAL = "2"
API_TIMEOUT = 1.0
LATENCY = 2 * API_TIMEOUT
LEASE_DURATION = 15.0
RENEW_DEADLINE = 10.0
WRITE_VERBS = frozenset({"CREATE", "UPDATE", "PATCH", "DELETE"})


Timed = list[tuple[float, float, str, str, int]]


def timed_requests(kit: Rig) -> Timed:
    """The sim's finished requests as (arrived, finished, verb, path, status), by finish
    time (monotonic, this process)."""
    rows = [(r.arrived, r.finished, r.verb, r.path, r.status) for r in kit.sim.request_records()]
    return sorted(rows, key=lambda row: row[1])


def late_writes(timed: Timed, limit: float) -> tuple[int, list[str]]:
    """Endpoint writes that succeeded more than `limit` seconds after the last successful
    lease write before them (or before any), with a few examples."""
    renewals = [
        finished
        for _, finished, verb, path, status in timed
        if "/leases" in path and verb in ("CREATE", "UPDATE") and status < 400
    ]
    late: list[str] = []
    for _, finished, verb, path, status in timed:
        if verb not in WRITE_VERBS or "/leases" in path or status >= 400:
            continue
        index = bisect.bisect_right(renewals, finished)
        if index == 0 or finished - renewals[index - 1] > limit:
            late.append(f"{verb} {path.rsplit('/', 2)[-2]}/{path.rsplit('/', 1)[-1]}")
    return len(late), late[:3]


def _metric_sum(text: str, metric: str, **labels: str) -> float:
    """Sum of `metric`'s samples on a /metrics page whose labels include `labels`
    (named with or without the `inference_supervisor_` prefix)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        name, _, label_text = series.partition("{")
        if name.removeprefix("inference_supervisor_") != metric:
            continue
        if all(f'{key}="{wanted}"' in label_text for key, wanted in labels.items()):
            total += float(value)
    return total


def _spec_updates(kit: Rig, chosen: list[str], image: str, final: dict[str, str]) -> None:
    for name in chosen:
        kit.store.apply(name, commands.update_spec, {"image": image})
        final[name] = image


def run(options: Options) -> Section:
    """N endpoints converged, then every call at 2 x K8S_API_TIMEOUT for the window with
    updates, then healthy: restarts, lost updates, late writes, time to converge."""
    endpoints = options.count(30, 200)
    window = 20.0 if options.quick else 60.0
    section = Section(
        TITLE,
        parameters={
            "endpoints": endpoints,
            "K8S_API_TIMEOUT": API_TIMEOUT,
            "added latency s": LATENCY,
            "fault window s": window,
            "RECONCILE_INTERVAL_SECONDS": INTERVAL,
            "lease": f"{LEASE_DURATION:.0f}/{RENEW_DEADLINE:.0f}/2 s",
        },
    )
    every = names(endpoints)
    first, second = every[::4], every[::8]
    final = dict.fromkeys(every, "repo/model:v1")
    timeout = 120 + endpoints * 0.3
    with rig() as kit:
        kit.fill(every)
        process = kit.spawn(
            RECONCILE_INTERVAL_SECONDS=INTERVAL,
            K8S_API_TIMEOUT=str(API_TIMEOUT),
            LEASE_DURATION_SECONDS=str(LEASE_DURATION),
            LEASE_RENEW_DEADLINE_SECONDS=str(RENEW_DEADLINE),
            LEASE_RETRY_PERIOD_SECONDS="2",
        )
        started = time.monotonic()
        cold = _converge(kit, final, timeout)
        cold_seconds = time.monotonic() - started if not cold else None
        before = process.metrics_text()

        fault_start = time.monotonic()
        kit.sim.set_faults(latency=LATENCY)
        time.sleep(min(5.0, window / 4))
        _spec_updates(kit, first, "repo/model:v2", final)
        time.sleep(max(0.0, fault_start + window / 2 - time.monotonic()))
        _spec_updates(kit, second, "repo/model:v3", final)
        time.sleep(max(0.0, fault_start + window - time.monotonic()))
        kit.sim.clear_faults()
        cleared = time.monotonic()

        lost = _converge(kit, final, timeout)
        converge_seconds = time.monotonic() - cleared if not lost else None
        after = process.metrics_text()
        alive = process.process is not None and process.process.poll() is None
        timed = timed_requests(kit)

    restarts = _metric_sum(after, "actor_restarts_total") - _metric_sum(
        before, "actor_restarts_total"
    )
    transitions = _metric_sum(after, "lease_transitions_total") - _metric_sum(
        before, "lease_transitions_total"
    )
    timeouts = _metric_sum(after, "k8s_requests_total", outcome="timeout") - _metric_sum(
        before, "k8s_requests_total", outcome="timeout"
    )
    parked = _metric_sum(after, "parked_endpoints")
    in_fault = [row for row in timed if fault_start <= row[0] < cleared]
    late, late_examples = late_writes(timed, LEASE_DURATION)
    renewals = sum(
        1
        for _, finished, verb, path, status in timed
        if "/leases" in path
        and verb == "UPDATE"
        and status < 400
        and fault_start <= finished < cleared
    )
    conflicts = sum(
        1
        for _, finished, verb, path, status in timed
        if verb in WRITE_VERBS
        and "/leases" not in path
        and status == 409
        and finished >= fault_start
    )
    fenced_late, _ = late_writes(timed, RENEW_DEADLINE)
    updated = len(set(first) | set(second))

    section.add(f"{endpoints} endpoints: cold start to all running", cold_seconds, "s")
    section.add(
        "actor restarts (fault window and after)",
        restarts,
        "",
        target="0",
        met=restarts == 0,
    )
    section.add("parked endpoints at the end", parked, "", target="0", met=parked == 0)
    section.add(
        f"lost updates ({updated} endpoints updated during the fault)",
        len(lost),
        "",
        target="0",
        met=not lost,
        note=", ".join(lost[:5]),
    )
    section.add(
        "writes landed after the lease could have moved (last renewal + 15 s)",
        late,
        "",
        target="0",
        met=late == 0,
        note=", ".join(late_examples),
    )
    section.add(
        "writes landed after the renew deadline (last renewal + 10 s)",
        fenced_late,
        "",
        note="in flight when the fence fell; refused by resourceVersion if stale",
    )
    section.add(
        "fault cleared -> every endpoint at its final spec and running",
        converge_seconds,
        "s",
    )
    section.add("leadership changes (fault window and after)", transitions, "")
    section.add(
        "lease renewals landed during the fault",
        renewals,
        "",
        note="lease calls have their own timeout (actors/lease.py), not K8S_API_TIMEOUT",
    )
    section.add(
        "endpoint writes refused with 409 (fault window and after)",
        conflicts,
        "",
        note="a late retry or a stale resourceVersion, refused by the server",
    )
    section.add(
        "Kubernetes requests arriving during the fault",
        len(in_fault),
        "",
        note=f"{timeouts:.0f} timed out at the daemon",
    )
    section.add("daemon alive at the end", 1 if alive else 0, "", target="1", met=alive)
    return section
