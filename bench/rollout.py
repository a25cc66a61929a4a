"""Guarded global rollout (architecture section 12): the overhead of each wave above
`bake_seconds` (target: <= 1 interval, section 10), in real time.

Three regions (us-east-1 | eu-west-1 | ap-south-1, waves [[us-east-1], [eu-west-1],
[ap-south-1]]), each with its own `k8s.sim` cluster and its own daemon subprocess
(`python -m actors run`, `REGION` differs), sharing one moto table, all with
`RECONCILE_INTERVAL_SECONDS=1`. N endpoints target all three and converge without a
policy; then every endpoint gets a new image and the policy in one write each (the CLI's
`endpoints update`: `update_and_seed`, so the old spec is the completed revision), all at
once. Run 1: no steps. Run 2 (same daemons, after run 1 completed): another image, the
policy with `steps [50]`, `step_seconds 3`.

Per endpoint and per wave boundary k -> k+1:

- baked: the latest, over the regions of wave k, of its `baking` status's `since` (read
  from the table, to the microsecond, as the daemon writes it) + `bake_seconds`: the earliest
  moment wave k+1 may go (since issue 19 it goes once wave k's regions reported `done`,
  written after the bake with the gates read: `actors.rollout.baked`);
- started: the first moment a Deployment of wave k+1's region (primary or, with steps,
  the canary) carries the new image, read from the sim's memory every 20 ms (no request);
- overhead = started - baked. Also the same to the region's first table report of the
  new revision (the benchmark's scan every 0.1 s), and baked -> wave k's `done` seen.

Plus the time from the first update write to every endpoint's rollout completed
(`rollout.completed_revision` is the new revision), and the table writes per endpoint of
the three daemons (their `/metrics`) from the first write to 2 s after completion.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.rig import (
    NAMESPACE,
    READY_DELAY,
    DaemonProcess,
    Options,
    Rig,
    Section,
    at_most,
    diff,
    item,
    names,
    percentile,
    rig,
    table_split,
    wait_until,
)
from k8s.sim import SimCluster
from k8s.sim.errors import StatusError
from k8s.sim.kinds import DEPLOYMENTS
from store.errors import StoreError
from store.model import parse_timestamp
from store.rollout import RolloutRecord, revision
from store.rollout_commands import update_and_seed

TITLE = "rollout"
REGIONS = ("us-east-1", "eu-west-1", "ap-south-1")
WAVES = [[r] for r in REGIONS]
INTERVAL = 1.0
STEP_SECONDS = 3
#: Phases in which a region reports running the new revision.
ACTIVE = ("stepping", "baking", "done", "paused")
WRITE_OPS = ("UpdateItem", "PutItem", "DeleteItem")


@dataclass
class Trace:
    """Wall-clock (epoch) times seen during one rollout, keyed (endpoint, region)."""

    revision: str
    image: str
    written: dict[str, float] = field(default_factory=dict)
    deployed: dict[tuple[str, str], float] = field(default_factory=dict)
    reported: dict[tuple[str, str], float] = field(default_factory=dict)
    bake_since: dict[tuple[str, str], float] = field(default_factory=dict)
    bake_seen: dict[tuple[str, str], float] = field(default_factory=dict)
    done: dict[tuple[str, str], float] = field(default_factory=dict)
    completed: dict[str, float] = field(default_factory=dict)
    scan_errors: int = 0


class Tracker(threading.Thread):
    """Reads the three clusters (memory, every 20 ms) and the table (a scan every 0.1 s)."""

    def __init__(
        self, kit: Rig, sims: Mapping[str, SimCluster], endpoints: list[str], trace: Trace
    ):
        super().__init__(name="bench-rollout-tracker", daemon=True)
        self.kit = kit
        self.sims = sims
        self.endpoints = endpoints
        self.trace = trace
        self.stopping = threading.Event()

    def _image(self, region: str, name: str) -> str | None:
        try:
            obj = self.sims[region].store.get(DEPLOYMENTS, NAMESPACE, name)
        except StatusError:
            return None
        return obj["spec"]["template"]["spec"]["containers"][0]["image"]

    def run(self) -> None:
        last_scan = 0.0
        trace = self.trace
        while not self.stopping.wait(0.02):
            now = time.time()
            for name in self.endpoints:
                for region in REGIONS:
                    key = (name, region)
                    if key in trace.deployed:
                        continue
                    if trace.image in (
                        self._image(region, name),
                        self._image(region, f"{name}-canary"),
                    ):
                        trace.deployed[key] = now
            if now - last_scan < 0.1:
                continue
            last_scan = now
            try:
                loaded = self.kit.store.scan()
            except StoreError:
                trace.scan_errors += 1
                continue
            seen = time.time()
            for entry in loaded:
                if RolloutRecord.from_item(entry.raw).completed_revision == trace.revision:
                    trace.completed.setdefault(entry.name, seen)
                for region, status in entry.region_status.items():
                    if status.revision != trace.revision or status.rollout not in ACTIVE:
                        continue
                    key = (entry.name, region)
                    trace.reported.setdefault(key, seen)
                    if status.rollout == "baking":
                        since = parse_timestamp(status.since)
                        if since is not None:
                            trace.bake_since[key] = since
                        trace.bake_seen.setdefault(key, seen)
                    elif status.rollout == "done":
                        trace.done.setdefault(key, seen)

    def stop(self) -> None:
        self.stopping.set()
        self.join()


def _counts(daemons: list[DaemonProcess]) -> dict[str, float]:
    total: dict[str, float] = {}
    for daemon in daemons:
        for key, value in daemon.counts().items():
            total[key] = total.get(key, 0) + value
    return total


def _roll(
    kit: Rig,
    sims: Mapping[str, SimCluster],
    daemons: list[DaemonProcess],
    endpoints: list[str],
    *,
    image: str,
    policy: dict[str, Any],
    timeout: float,
) -> tuple[Trace, dict[str, float], float]:
    """Write `image` and `policy` to every endpoint at once; follow until every endpoint
    completed (or `timeout`). Returns the trace, the daemons' counter increments and the
    time the writes took."""
    first = kit.store.get(endpoints[0])
    assert first is not None
    spec = {k: v for k, v in first.raw["spec"].items() if k != "region_image_uris"}
    target = revision({**spec, "image": image})
    trace = Trace(revision=target, image=image)
    before = _counts(daemons)
    tracker = Tracker(kit, sims, endpoints, trace)
    tracker.start()
    try:
        began = time.monotonic()
        for name in endpoints:
            trace.written[name] = time.time()
            kit.store.apply(name, update_and_seed, {"image": image, "rollout": policy})
        writing = time.monotonic() - began
        # The revision the daemons compute (the stored spec, whatever the writes added).
        stored = kit.store.get(endpoints[0])
        assert stored is not None
        trace.revision = revision(stored.raw["spec"])
        with contextlib.suppress(TimeoutError):
            wait_until(
                lambda: len(trace.completed) == len(endpoints),
                timeout=timeout,
                period=0.1,
                what="every endpoint's rollout completed",
            )
        time.sleep(2.0)  # trailing status writes of the last wave
    finally:
        tracker.stop()
    return trace, diff(_counts(daemons), before), writing


def _figures(
    section: Section,
    label: str,
    trace: Trace,
    *,
    counts: Mapping[str, float],
    endpoints: list[str],
    bake: int,
) -> None:
    target = f"<= 1 interval ({INTERVAL:g} s)"
    pooled: list[float] = []
    for k in range(len(WAVES) - 1):
        overheads: list[float] = []
        by_report: list[float] = []
        to_done: list[float] = []
        from_seen: list[float] = []
        for name in endpoints:
            sinces = [trace.bake_since.get((name, r)) for r in WAVES[k]]
            if any(s is None for s in sinces):
                continue
            baked = max(s for s in sinces if s is not None) + bake
            starts = [trace.deployed.get((name, r)) for r in WAVES[k + 1]]
            if all(s is not None for s in starts):
                overheads.append(min(s for s in starts if s is not None) - baked)
            reports = [trace.reported.get((name, r)) for r in WAVES[k + 1]]
            if all(s is not None for s in reports):
                by_report.append(min(s for s in reports if s is not None) - baked)
            seen = [trace.bake_seen.get((name, r)) for r in WAVES[k]]
            if all(s is not None for s in seen + starts):
                from_seen.append(
                    min(s for s in starts if s is not None)
                    - max(s for s in seen if s is not None)
                    - bake
                )
            dones = [trace.done.get((name, r)) for r in WAVES[k]]
            if all(s is not None for s in dones):
                to_done.append(max(s for s in dones if s is not None) - baked)
        pooled.extend(overheads)
        edge = f"{label}{'+'.join(WAVES[k])} -> {'+'.join(WAVES[k + 1])}"
        p95 = percentile(overheads, 0.95)
        top = max(overheads) if overheads else None
        section.add(f"{edge}: baked -> Deployment has image, p50", percentile(overheads, 0.5), "s")
        section.add(
            f"{edge}: baked -> Deployment has image, p95",
            p95,
            "s",
            target=target,
            met=at_most(p95, INTERVAL),
        )
        section.add(
            f"{edge}: baked -> Deployment has image, max",
            top,
            "s",
            target=target,
            met=at_most(top, INTERVAL),
            note=f"min {min(overheads):.2f} s" if overheads else "",
        )
        section.add(
            f"{edge}: baked -> first table report of the revision, p95",
            percentile(by_report, 0.95),
            "s",
            note=f"p50 {percentile(by_report, 0.5) or 0:.2f} s; bench scan every 0.1 s",
        )
        section.add(
            f"{edge}: as above, from `baking` first seen + bake, p95",
            percentile(from_seen, 0.95),
            "s",
            note=f"p50 {percentile(from_seen, 0.5) or 0:.2f} s; from the benchmark's own "
            "sighting of `baking` (bench scan every 0.1 s), not the table's `since`",
        )
        section.add(
            f"{edge}: baked -> earlier wave's `done` seen, p50",
            percentile(to_done, 0.5),
            "s",
            note=f"p95 {percentile(to_done, 0.95) or 0:.2f} s; bench scan every 0.1 s",
        )
        missing = len(endpoints) - len(overheads)
        if missing:
            section.add(f"{edge}: endpoints not measured", missing, "endpoints")
    section.add(
        f"{label}all boundaries: overhead p95",
        percentile(pooled, 0.95),
        "s",
        target=target,
        met=at_most(percentile(pooled, 0.95), INTERVAL),
        note=f"{len(pooled)} boundaries; p50 {percentile(pooled, 0.5) or 0:.2f} s, "
        f"max {max(pooled) if pooled else 0:.2f} s",
    )
    start = min(trace.written.values())
    done = [trace.completed[n] - trace.written[n] for n in endpoints if n in trace.completed]
    section.add(
        f"{label}first write -> every endpoint completed everywhere",
        max(trace.completed.values()) - start if len(done) == len(endpoints) else None,
        "s",
        note=f"{len(done)}/{len(endpoints)} completed; per endpoint p50 "
        f"{percentile(done, 0.5) or 0:.1f} s, max {max(done) if done else 0:.1f} s",
    )
    _, writes = table_split(counts)
    section.add(
        f"{label}table writes per endpoint (3 daemons, whole rollout)",
        writes / len(endpoints),
        "",
        note=", ".join(
            f"{k.split()[1]} {v:.0f}"
            for k, v in sorted(counts.items())
            if k.split()[0] == "dynamodb"
            and k.split()[1] in ("UpdateItem", "PutItem", "DeleteItem")
        )
        + "; the benchmark's update write not counted",
    )
    k8s = {k: v for k, v in counts.items() if k.startswith("k8s ") and not k.endswith(" Lease")}
    section.add(
        f"{label}Kubernetes requests per endpoint (3 regions, leases excluded)",
        sum(k8s.values()) / len(endpoints),
        "",
        note=", ".join(f"{k[4:]} {v:.0f}" for k, v in sorted(k8s.items())),
    )


def run(options: Options) -> Section:
    """Three regions, N endpoints converged, then every image updated at once, twice."""
    endpoints = options.count(5, 20)
    bake = 3 if options.quick else 5
    plain = {"waves": WAVES, "bake_seconds": bake}
    stepped = {**plain, "steps": [50], "step_seconds": STEP_SECONDS}
    section = Section(
        TITLE,
        parameters={
            "endpoints": endpoints,
            "regions": len(REGIONS),
            "waves": "/".join(REGIONS),
            "bake_seconds": bake,
            "steps (run 2)": "[50] x 3 s",
            "RECONCILE_INTERVAL_SECONDS": INTERVAL,
            "sim ready delay s": READY_DELAY,
            "daemons": "3 subprocesses",
        },
    )
    with rig() as kit:
        sims: dict[str, SimCluster] = {REGIONS[0]: kit.sim}
        try:
            for region in REGIONS[1:]:
                sims[region] = SimCluster(port=0, ready_delay=READY_DELAY).start()
            every = names(endpoints)
            for name in every:
                entry = item(name)
                entry["target_regions"] = list(REGIONS)
                kit.store.create_item(entry)
            daemons = [
                kit.spawn(
                    REGION=region,
                    DYNAMODB_REGION=REGIONS[0],
                    K8S_API_URL=sims[region].url,
                    CLUSTER_NAME=f"bench-{region}",
                    RECONCILE_INTERVAL_SECONDS=str(INTERVAL),
                )
                for region in REGIONS
            ]
            wait_until(
                lambda: all(
                    (s := loaded.region_status.get(r)) is not None and s.state == "running"
                    for loaded in kit.store.scan()
                    for r in REGIONS
                ),
                timeout=60 + endpoints,
                period=0.5,
                what="every endpoint running in every region",
            )
            for label, image, policy in (
                ("no steps: ", "repo/model:v2", plain),
                ("steps [50]: ", "repo/model:v3", stepped),
            ):
                floor = len(WAVES) * (bake + len(policy.get("steps", [])) * STEP_SECONDS)
                trace, counts, writing = _roll(
                    kit, sims, daemons, every, image=image, policy=policy,
                    timeout=60 + 3 * floor + endpoints,
                )  # fmt: skip
                _figures(section, label, trace, counts=counts, endpoints=every, bake=bake)
                section.add(
                    f"{label}floor: waves x (steps x step_seconds + bake_seconds)",
                    floor,
                    "s",
                    note=f"the {endpoints} update writes took {writing:.2f} s; "
                    f"{trace.scan_errors} bench scans failed",
                )
        finally:
            for region in REGIONS[1:]:
                if region in sims:
                    sims[region].stop()
    return section
