"""Isolation and restart: one endpoint actor raising on every message while the others
are updated.

Two in-process daemons run in turn on one table: the first with the plain endpoint
actor (baseline), the second with `CrashingActor`, whose `bad-0` endpoint raises on
every message. Both update the same N good endpoints at random times, so the change
latencies compare like for like. Restart times come from the actor itself: the
monotonic time it raised and the time its next generation started, minus the backoff
the supervisor announced. The restart count over 10 minutes is the restart policy
replayed on fake time (deaths arriving as soon as each restart is due).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from actors.backoff import RestartPolicy
from actors.endpoint import EndpointActor
from actors.messages import EventKind
from bench.change_latency import add_latency_figures, update_at_random_times
from bench.rig import Options, Section, at_most, names, percentile, rig, wait_until

TITLE = "isolation and restart"
INTERVAL = 2.0
BAD = "bad-0"
RESTART_TARGET = 1.0


class CrashLog:
    """Monotonic times of each generation's start and crash, shared with the actor threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started: dict[int, float] = {}
        self.crashed: dict[int, float] = {}
        self.delays: list[float] = []

    def on_event(self, kind: EventKind, fields: dict[str, Any]) -> None:
        """Daemon event hook: keep the backoff delay of every death of the bad endpoint."""
        if kind == EventKind.DIED and fields.get("endpoint") == BAD:
            with self.lock:
                self.delays.append(float(fields["restart_in"]))


CRASHES = CrashLog()


class CrashingActor(EndpointActor):
    """The real endpoint actor, except that `bad-0` raises on every message."""

    def on_start(self) -> None:
        if self.slot.name == BAD:
            with CRASHES.lock:
                CRASHES.started.setdefault(self.slot.generation, time.monotonic())
        super().on_start()

    def on_receive(self, message: Any) -> None:
        if self.slot.name == BAD:
            with CRASHES.lock:
                CRASHES.crashed.setdefault(self.slot.generation, time.monotonic())
            raise RuntimeError("injected: crash on every message")
        super().on_receive(message)


def replay_policy(seconds: float = 600.0) -> tuple[int, bool]:
    """Restarts the real `RestartPolicy` grants in `seconds` of fake time when the actor
    dies the moment it is restarted; returns (restarts, parked at the end)."""
    policy = RestartPolicy()
    now, restarts = 0.0, 0
    while True:
        decision = policy.record_death(now)
        now += decision.delay
        if now > seconds:
            return restarts, policy.parked
        restarts += 1


def run(options: Options) -> Section:
    """Baseline change latency, then the same with a crashing neighbour."""
    endpoints = options.count(20, 100)
    window = 8.0 if options.quick else 20.0
    section = Section(
        TITLE,
        parameters={
            "good endpoints updated": endpoints,
            "window s": window,
            "RECONCILE_INTERVAL_SECONDS": INTERVAL,
            "daemon": "in-process (actor_factory)",
        },
    )
    good = names(endpoints)
    with rig() as kit:
        kit.fill(good)
        baseline_daemon = kit.start_daemon(RECONCILE_INTERVAL_SECONDS=str(INTERVAL))
        kit.wait_all_running(timeout=120, what="baseline convergence")
        baseline = update_at_random_times(kit, good, window, "repo/model:v2", seed=1)
        baseline_daemon.stop()
        kit.daemons.remove(baseline_daemon)
        kit.fill([BAD])
        daemon = kit.start_daemon(
            actor_factory=CrashingActor, RECONCILE_INTERVAL_SECONDS=str(INTERVAL)
        )
        daemon.user_on_event = CRASHES.on_event
        wait_until(lambda: len(CRASHES.crashed) >= 2, timeout=30, what="bad-0 crash twice")
        crashed = update_at_random_times(kit, good, window, "repo/model:v3", seed=1)
        view = daemon.snapshot()
    add_latency_figures(section, "baseline: ", baseline, interval=INTERVAL)
    add_latency_figures(section, "with crashing neighbour: ", crashed, interval=INTERVAL)
    p95_base = percentile(baseline.latencies(baseline.image), 0.95)
    p95_crash = percentile(crashed.latencies(crashed.image), 0.95)
    if p95_base is not None and p95_crash is not None:
        section.add(
            "effect on others' p95 (crashing - baseline)",
            p95_crash - p95_base,
            "s",
            target=f"none measurable (|effect| < interval/2 = {INTERVAL / 2:g} s)",
            met=abs(p95_crash - p95_base) < INTERVAL / 2,
            note="updates land at a random phase of the poll: noise is up to one interval",
        )
    with CRASHES.lock:
        gaps = [
            CRASHES.started[g + 1] - CRASHES.crashed[g]
            for g in sorted(CRASHES.crashed)
            if g + 1 in CRASHES.started
        ]
        delays = list(CRASHES.delays)
    first = gaps[0] if gaps else None
    section.add(
        "crash -> next actor started (first restart)",
        first,
        "s",
        target=f"<= {RESTART_TARGET:g} s",
        met=at_most(first, RESTART_TARGET),
        note="includes the 0.5 s +-20 % first backoff",
    )
    overheads = [gap - delay for gap, delay in zip(gaps, delays, strict=False)]
    section.add("restart overhead above the backoff, max", max(overheads, default=None), "s")
    restarts = view.restarts.get(BAD, 0)
    section.add(
        "bad-0 restarts while measured",
        restarts,
        "",
        note=f"{sum(gaps):.0f} s of crash loop; parked: {BAD in view.parked}",
    )
    others = sum(v for k, v in view.restarts.items() if k != BAD)
    section.add("restarts of the other endpoints", others, "", target="0", met=others == 0)
    replayed, parked = replay_policy()
    section.add(
        "restarts in 10 min of fake time (policy replay)",
        replayed,
        "",
        note=(
            "5 with backoff 0.5-8 s, then parked and retried at the 5 min cap; "
            f"parked at the end: {parked}"
        ),
    )
    return section
