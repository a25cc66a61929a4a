"""Steady state: after convergence, what the daemon spends per endpoint per minute.

N endpoints converge under a subprocess daemon with RECONCILE_INTERVAL_SECONDS=1 (15 in
production: the table figures scale with 1/interval, the Kubernetes ones do not, since
the daemon watches rather than polls the cluster). Then the sim's counters are zeroed
and read again after a window. Lease calls are counted with the rest and also shown on
their own: they are per daemon (one renewal per retry period), not per endpoint.

The status heartbeat stays at its default (STATUS_HEARTBEAT_SECONDS=300: each entry's
`last_sync` refreshed every 5 minutes with jitter), so table writes are measured with it
on; a window shorter than the heartbeat sees none of them, so the heartbeat re-run takes
`--duration 600` (two heartbeats).
"""

from __future__ import annotations

import time

from bench.rig import Options, Section, at_most, diff, names, rig, table_split
from bench.scale import SETTLE_SECONDS

TITLE = "steady state"
INTERVAL = "1"
K8S_TARGET = 0.05
#: The status heartbeat measured: the daemon's default.
HEARTBEAT = "300"
#: Table writes per endpoint per minute with the heartbeat on (issue 20): one per 5 minutes.
WRITE_TARGET = 0.2


def sizes(options: Options) -> list[int]:
    """Endpoint counts measured: --endpoints, else 100 (quick) or 100 and 1,000."""
    if options.endpoints is not None:
        return [options.endpoints]
    return [100] if options.quick else [100, 1000]


def run(options: Options) -> Section:
    """Converge, settle, then count every request over the window; per size."""
    window = options.duration or (15.0 if options.quick else 60.0)
    section = Section(
        TITLE,
        parameters={
            "window s": window,
            "RECONCILE_INTERVAL_SECONDS": INTERVAL,
            "STATUS_HEARTBEAT_SECONDS": HEARTBEAT,
        },
    )
    for endpoints in sizes(options):
        _measure(section, endpoints, window)
    return section


def _measure(section: Section, endpoints: int, window: float) -> None:
    with rig() as kit:
        wanted = names(endpoints)
        kit.fill(wanted)
        process = kit.spawn(RECONCILE_INTERVAL_SECONDS=INTERVAL, STATUS_HEARTBEAT_SECONDS=HEARTBEAT)
        kit.wait_all_running(timeout=60 + endpoints * 0.1, what="convergence")
        time.sleep(SETTLE_SECONDS)
        kit.sim.reset_counters()
        before = process.counts()
        started = time.monotonic()
        time.sleep(window)
        k8s = kit.sim.counters()
        daemon = diff(process.counts(), before)
        minutes = (time.monotonic() - started) / 60
    endpoint_minutes = endpoints * minutes
    lease = sum(v for k, v in k8s.items() if k.endswith(" leases"))
    total = k8s.get("total", 0)
    per_endpoint = total / endpoint_minutes
    without_lease = (total - lease) / endpoint_minutes
    label = f"{endpoints} endpoints: "
    section.add(
        f"{label}Kubernetes requests per endpoint per minute (all)",
        per_endpoint,
        "",
        target=f"<= {K8S_TARGET}",
        met=at_most(per_endpoint, K8S_TARGET),
        predecessor="~20",
    )
    section.add(
        f"{label}of which per-endpoint work (lease excluded)",
        without_lease,
        "",
        target=f"<= {K8S_TARGET}",
        met=at_most(without_lease, K8S_TARGET),
    )
    section.add(f"{label}lease calls per minute (per daemon)", lease / minutes, "/min")
    for key in sorted(k for k in k8s if k != "total"):
        section.add(f"{label}{key} per endpoint per minute", k8s[key] / endpoint_minutes, "")
    reads, writes = table_split(daemon)
    write_rate = writes / endpoint_minutes
    section.add(
        f"{label}table writes per endpoint per minute",
        write_rate,
        "",
        target=f"<= {WRITE_TARGET} (heartbeat {HEARTBEAT} s)",
        met=at_most(write_rate, WRITE_TARGET),
        predecessor="~4",
    )
    section.add(f"{label}table read requests per minute (Scan pages)", reads / minutes, "/min")
    section.add(
        f"{label}table items read per endpoint per minute",
        reads / minutes if endpoints else None,
        "",
        note="the table's stream carries changes; a whole scan only every "
        "STREAM_RESYNC_SECONDS (300 s); without a stream one scan per poll",
    )
    section.series.setdefault("steady_state", []).append(
        {
            "endpoints": endpoints,
            "k8s_per_endpoint_minute": per_endpoint,
            "k8s_without_lease": without_lease,
            "k8s": k8s,
            "daemon": daemon,
        }
    )
