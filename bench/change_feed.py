"""Change feed against scans (issue 20): the same table and cluster, one mode after the
other, with a 60 s scan interval as production might set it.

Per mode: N endpoints converge under a subprocess daemon; a steady window counts the
daemon's table reads (Scan pages and the items they return, GetRecords); then 50 image
updates written at random times over a window are timed from the start of each table
write to the Deployment carrying the new image (`change_latency.Watcher`). Modes:
`stream` (the table's stream read every STREAM_POLL_SECONDS = 0.5, resync 300 s) and
`scan only` (STREAM_POLL_SECONDS = 0: the predecessor's way, a scan per interval).
"""

from __future__ import annotations

import time

from bench.change_latency import NEW_IMAGE, UPDATES, update_at_random_times
from bench.rig import Options, Section, at_most, diff, names, percentile, rig
from bench.scale import SETTLE_SECONDS

TITLE = "change feed"
INTERVAL = "60"
MODES = {"stream": "0.5", "scan only": "0"}


def run(options: Options) -> Section:
    """Both modes, one after the other, at the same size."""
    endpoints = max(options.count(100, 1000), UPDATES)
    window = 15.0 if options.quick else 60.0
    updates_window = 10.0 if options.quick else 30.0
    section = Section(
        TITLE,
        parameters={
            "endpoints": endpoints,
            "updates": UPDATES,
            "steady window s": window,
            "updates window s": updates_window,
            "RECONCILE_INTERVAL_SECONDS": INTERVAL,
        },
    )
    for mode, poll in MODES.items():
        _measure(section, mode, poll, endpoints, window=window, updates_window=updates_window)
    return section


def _measure(
    section: Section,
    mode: str,
    poll: str,
    endpoints: int,
    *,
    window: float,
    updates_window: float,
) -> None:
    with rig() as kit:
        every = names(endpoints)
        kit.fill(every)
        process = kit.spawn(
            RECONCILE_INTERVAL_SECONDS=INTERVAL,
            STREAM_POLL_SECONDS=poll,
            STREAM_RESYNC_SECONDS="300",
        )
        kit.wait_all_running(timeout=120 + endpoints * 0.1, what="convergence")
        time.sleep(SETTLE_SECONDS)
        before = process.counts()
        started = time.monotonic()
        time.sleep(window)
        steady = diff(process.counts(), before)
        minutes = (time.monotonic() - started) / 60
        targets = every[:: max(1, endpoints // UPDATES)][:UPDATES]
        timings = update_at_random_times(kit, targets, updates_window, NEW_IMAGE)
    label = f"{mode}: "
    scans = steady.get("dynamodb Scan", 0) / minutes
    section.add(f"{label}Scan requests per minute, steady", scans, "/min")
    section.add(
        f"{label}items read by scans per minute, steady (~read units, items < 4 KB)",
        steady.get("dynamodb Scan", 0) / minutes * endpoints / max(1, _pages(endpoints)),
        "/min",
        target="O(changes): 0 with no change" if mode == "stream" else "",
        met=at_most(scans, 1.0 / 5) if mode == "stream" else None,
    )
    section.add(
        f"{label}GetRecords per minute, steady",
        steady.get("dynamodb GetRecords", 0) / minutes,
        "/min",
    )
    values = timings.latencies(timings.image)
    p95 = percentile(values, 0.95)
    section.add(f"{label}write -> Deployment updated, p50", percentile(values, 0.5), "s")
    section.add(
        f"{label}write -> Deployment updated, p95",
        p95,
        "s",
        target="<= 1 s" if mode == "stream" else "",
        met=at_most(p95, 1.0) if mode == "stream" else None,
    )
    section.add(f"{label}write -> Deployment updated, max", max(values) if values else None, "s")
    missing = len(timings.written) - len(values)
    if missing:
        section.add(f"{label}updates not applied within 60 s", missing, "updates")


def _pages(endpoints: int) -> int:
    """Scan pages per scan of `endpoints` bench items (~0.5 KB each; 1 MB pages)."""
    return max(1, endpoints * 512 // (1024 * 1024) + 1)
