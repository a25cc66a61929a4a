"""Change latency: 50 image updates written to the table at random times, each timed
from the start of the table write to (a) the Deployment carrying the new image and
(b) the item reporting `running` again with the new pods ready.

The Deployment is read from the sim's memory every 20 ms (no API request); the status
with one GetItem per pending endpoint every 100 ms, so (b) has ~0.1 s resolution.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field

from bench.rig import (
    REGION,
    Options,
    Rig,
    Section,
    at_most,
    names,
    percentile,
    random_times,
    rig,
    wait_until,
)
from store import commands

TITLE = "change latency"
INTERVAL = 2.0
UPDATES = 50
NEW_IMAGE = "repo/model:v2"


@dataclass
class Timings:
    """Per-endpoint monotonic times of the write, the new image seen, and `running`."""

    written: dict[str, float] = field(default_factory=dict)
    image: dict[str, float] = field(default_factory=dict)
    running: dict[str, float] = field(default_factory=dict)

    def latencies(self, seen: dict[str, float]) -> list[float]:
        """Seconds from each write to its `seen` time."""
        return [seen[n] - self.written[n] for n in seen if n in self.written]


def image_of(deployment: dict | None) -> str | None:
    """The first container's image of a Deployment."""
    if deployment is None:
        return None
    return deployment["spec"]["template"]["spec"]["containers"][0]["image"]


def rolled_out(deployment: dict | None, image: str) -> bool:
    """True when the Deployment carries `image` and all its replicas are updated and ready."""
    if deployment is None or image_of(deployment) != image:
        return False
    status = deployment.get("status", {})
    wanted = deployment["spec"].get("replicas", 1)
    return (
        status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
        and status.get("updatedReplicas", 0) >= wanted
        and status.get("readyReplicas", 0) >= wanted
    )


class Watcher(threading.Thread):
    """Records when each written endpoint shows the new image, then reports `running`."""

    def __init__(self, kit: Rig, timings: Timings, image: str) -> None:
        super().__init__(name="bench-change-watcher", daemon=True)
        self.kit = kit
        self.timings = timings
        self.image = image
        self.stopping = threading.Event()

    def run(self) -> None:
        last_status_poll = 0.0
        while not self.stopping.wait(0.02):
            now = time.monotonic()
            for name in list(self.timings.written):
                if name not in self.timings.image and image_of(self.kit.deployment(name)) == (
                    self.image
                ):
                    self.timings.image[name] = now
            if now - last_status_poll < 0.1:
                continue
            last_status_poll = now
            for name in list(self.timings.image):
                if name in self.timings.running:
                    continue
                if not rolled_out(self.kit.deployment(name), self.image):
                    continue
                item = self.kit.store.get(name)
                status = None if item is None else item.region_status.get(REGION)
                if status is not None and status.state == "running":
                    self.timings.running[name] = time.monotonic()

    def stop(self) -> None:
        """Stop and join."""
        self.stopping.set()
        self.join()


def update_at_random_times(
    kit: Rig, targets: list[str], window: float, image: str, *, seed: int = 8
) -> Timings:
    """Write `image` to each target at a random time within `window`; wait for all to land.

    Returns the timings (targets not applied within the wait are missing from them).
    """
    timings = Timings()
    watcher = Watcher(kit, timings, image)
    watcher.start()
    try:
        start = time.monotonic()
        for name, offset in zip(
            targets, random_times(len(targets), window, seed=seed), strict=True
        ):
            delay = start + offset - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            timings.written[name] = time.monotonic()
            kit.store.apply(name, commands.update_spec, {"image": image})
        with contextlib.suppress(TimeoutError):
            wait_until(
                lambda: len(timings.running) == len(targets),
                timeout=60,
                period=0.1,
                what="every updated endpoint running",
            )
    finally:
        watcher.stop()
    return timings


def add_latency_figures(
    section: Section, label: str, timings: Timings, *, interval: float, predecessor: str = ""
) -> None:
    """p50/p95/max of write->image and write->running, p95 against interval + 1 s."""
    target = interval + 1.0
    for what, seen in (("Deployment updated", timings.image), ("running", timings.running)):
        values = timings.latencies(seen)
        p95 = percentile(values, 0.95)
        section.add(f"{label}write -> {what}, p50", percentile(values, 0.5), "s")
        section.add(
            f"{label}write -> {what}, p95",
            p95,
            "s",
            target=f"<= {target:g} s" if what == "Deployment updated" else "",
            met=at_most(p95, target) if what == "Deployment updated" else None,
            predecessor=predecessor if what == "Deployment updated" else "",
        )
        section.add(f"{label}write -> {what}, max", max(values) if values else None, "s")
        missing = len(timings.written) - len(values)
        if missing:
            section.add(f"{label}{what}: not seen within 60 s", missing, "updates")


def run(options: Options) -> Section:
    """Converge N endpoints, then update 50 of them at random times over the window."""
    endpoints = max(options.count(100, 1000), UPDATES)
    window = 10.0 if options.quick else 30.0
    section = Section(
        TITLE,
        parameters={
            "endpoints": endpoints,
            "updates": UPDATES,
            "window s": window,
            "RECONCILE_INTERVAL_SECONDS": INTERVAL,
        },
    )
    with rig() as kit:
        every = names(endpoints)
        kit.fill(every)
        kit.spawn(RECONCILE_INTERVAL_SECONDS=str(INTERVAL))
        kit.wait_all_running(timeout=60 + endpoints * 0.1, what="convergence")
        targets = every[:: max(1, endpoints // UPDATES)][:UPDATES]
        timings = update_at_random_times(kit, targets, window, NEW_IMAGE)
    add_latency_figures(
        section,
        "",
        timings,
        interval=INTERVAL,
        predecessor="1 interval + N endpoints x calls",
    )
    section.series["change_latency"] = {
        "image": sorted(timings.latencies(timings.image)),
        "running": sorted(timings.latencies(timings.running)),
    }
    return section
