"""Faults: 10 % of Kubernetes calls fail (500 and 429 in turn) and every call takes an
extra 200 ms, from before the daemon starts until the end.

Phase 1 is a cold start of N endpoints under the faults; phase 2 updates every
endpoint's image and, half a poll later, half of them again, so each endpoint has a
final spec to reach. Figures: convergence times and the endpoints whose Deployment or
status did not end at the final spec (lost updates; target none).
"""

from __future__ import annotations

import threading
import time

from bench.change_latency import rolled_out
from bench.rig import Options, Rig, Section, names, rig, wait_until
from store import commands

TITLE = "faults"
INTERVAL = "2"
ERROR_RATE = 0.10
LATENCY = 0.2


class FaultFlipper(threading.Thread):
    """Keeps the sim's fault plan on, switching the error status 500 <-> 429 every 0.5 s."""

    def __init__(self, kit: Rig) -> None:
        super().__init__(name="bench-fault-flipper", daemon=True)
        self.kit = kit
        self.stopping = threading.Event()

    def run(self) -> None:
        status = 500
        while True:
            self.kit.sim.set_faults(latency=LATENCY, error_rate=ERROR_RATE, error_status=status)
            status = 429 if status == 500 else 500
            if self.stopping.wait(0.5):
                break
        self.kit.sim.clear_faults()

    def stop(self) -> None:
        """Clear the faults and join."""
        self.stopping.set()
        self.join()


def _lagging(kit: Rig, final: dict[str, str]) -> list[str]:
    """Endpoints whose Deployment is not rolled out at the final image or whose status
    is not `running`."""
    states = kit.states()
    return [
        name
        for name, image in final.items()
        if not rolled_out(kit.deployment(name), image) or states.get(name) != "running"
    ]


def run(options: Options) -> Section:
    """Cold start and an update wave under 10 % errors and 200 ms latency."""
    endpoints = options.count(30, 200)
    section = Section(
        TITLE,
        parameters={
            "endpoints": endpoints,
            "error rate": ERROR_RATE,
            "errors": "500 and 429 (Retry-After 1 s) alternating every 0.5 s",
            "added latency s": LATENCY,
            "RECONCILE_INTERVAL_SECONDS": INTERVAL,
        },
    )
    every = names(endpoints)
    final = dict.fromkeys(every, "repo/model:v1")
    timeout = 120 + endpoints * 0.3
    with rig() as kit:
        kit.fill(every)
        flipper = FaultFlipper(kit)
        flipper.start()
        try:
            started = time.monotonic()
            process = kit.spawn(RECONCILE_INTERVAL_SECONDS=INTERVAL)
            cold = _converge(kit, final, timeout)
            cold_seconds = time.monotonic() - started if cold == [] else None
            started = time.monotonic()
            for name in every:
                kit.store.apply(name, commands.update_spec, {"image": "repo/model:v2"})
                final[name] = "repo/model:v2"
            time.sleep(float(INTERVAL) / 2)
            for name in every[::2]:
                kit.store.apply(name, commands.update_spec, {"image": "repo/model:v3"})
                final[name] = "repo/model:v3"
            lost = _converge(kit, final, timeout)
            update_seconds = time.monotonic() - started if lost == [] else None
            errors = sum(1 for _, _, code in kit.sim.requests_log() if code in (429, 500))
            requests = kit.sim.counters().get("total", 0)
            alive = process.process is not None and process.process.poll() is None
        finally:
            flipper.stop()
    section.add(f"{endpoints} endpoints: cold start to all running", cold_seconds, "s")
    section.add(f"{endpoints} endpoints: update wave to all at final spec", update_seconds, "s")
    section.add(
        "lost updates (not at final spec)",
        len(lost),
        "",
        target="0",
        met=not lost,
        note=", ".join(lost[:5]),
    )
    section.add("cold start: endpoints not converged", len(cold), "", target="0", met=not cold)
    section.add("Kubernetes requests", requests, "", note=f"{errors} injected errors answered")
    section.add("daemon alive at the end", 1 if alive else 0, "", target="1", met=alive)
    return section


def _converge(kit: Rig, final: dict[str, str], timeout: float) -> list[str]:
    """Wait until nothing lags behind `final`; returns the laggards left at the timeout."""
    lagging: list[str] = []

    def done() -> bool:
        nonlocal lagging
        lagging = _lagging(kit, final)
        return not lagging

    try:
        wait_until(done, timeout=timeout, period=1.0, what="convergence under faults")
    except TimeoutError:
        return lagging
    return []
