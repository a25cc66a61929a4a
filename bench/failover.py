"""Failover: two daemon subprocesses with the default lease (15 s duration, 10 s renew
deadline, 2 s retry period); the leader gets SIGTERM (graceful: it releases the lease),
then - after a fresh standby has joined - SIGKILL (the lease must expire).

Right after each signal one item's image is updated; the figures are the seconds from
the signal to the standby holding the lease, to the Deployment carrying the new image,
and to the first status the standby writes for that item (the target's measure).
"""

from __future__ import annotations

import contextlib
import signal
import time

from bench.change_latency import image_of
from bench.rig import (
    REGION,
    DaemonProcess,
    Options,
    Rig,
    Section,
    at_most,
    names,
    rig,
    wait_until,
)
from store import commands

TITLE = "failover"
TARGETS = {"SIGTERM": 3.0, "SIGKILL": 20.0}


def _handover(
    kit: Rig, leader: DaemonProcess, standby: DaemonProcess, signum: signal.Signals, image: str
) -> dict[str, float | None]:
    """Signal the leader, update one item at once, time the standby's takeover."""
    name = names(1)[0]
    before = kit.store.get(name)
    assert before is not None
    old_status = before.region_status.get(REGION)
    started = time.monotonic()
    leader.signal(signum)
    kit.store.apply(name, commands.update_spec, {"image": image})
    times: dict[str, float | None] = {"lease": None, "image": None, "status": None}

    def progress() -> bool:
        now = time.monotonic() - started
        if times["lease"] is None and kit.lease_holder() == standby.identity:
            times["lease"] = now
        if times["image"] is None and image_of(kit.deployment(name)) == image:
            times["image"] = now
        if times["status"] is None and times["lease"] is not None:
            item = kit.store.get(name)
            if item is not None and item.region_status.get(REGION) != old_status:
                times["status"] = now
        return all(v is not None for v in times.values())

    with contextlib.suppress(TimeoutError):
        wait_until(progress, timeout=60, period=0.05, what=f"takeover after {signum.name}")
    leader.wait(30)
    return times


def run(options: Options) -> Section:
    """SIGTERM then SIGKILL, each with a standby ready."""
    endpoints = options.count(10, 20)
    section = Section(
        TITLE,
        parameters={
            "endpoints": endpoints,
            "lease": "15 s / 10 s / 2 s (defaults)",
            "RECONCILE_INTERVAL_SECONDS": "15 (default)",
        },
    )
    with rig() as kit:
        kit.fill(names(endpoints))
        first = kit.spawn()
        wait_until(lambda: kit.lease_holder() == first.identity, timeout=30, what="a leader")
        second = kit.spawn()
        kit.wait_all_running(timeout=60, what="convergence")
        results = {"SIGTERM": _handover(kit, first, second, signal.SIGTERM, "repo/model:v2")}
        third = kit.spawn()
        kit.wait_all_running(timeout=60, what="convergence again")
        time.sleep(2)
        results["SIGKILL"] = _handover(kit, second, third, signal.SIGKILL, "repo/model:v3")
    for how, times in results.items():
        target = TARGETS[how]
        section.add(f"{how}: standby holds the lease", times["lease"], "s")
        section.add(f"{how}: Deployment carries the new image", times["image"], "s")
        section.add(
            f"{how}: first status written by the standby",
            times["status"],
            "s",
            target=f"<= {target:g} s",
            met=at_most(times["status"], target),
            predecessor="45-60 s",
        )
    section.series["failover"] = results
    return section
