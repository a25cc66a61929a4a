"""Churn: N endpoints converged, then creates, updates and deletes for a window (issue 22).

The daemon runs as a subprocess (`python -m actors run`, the default 15 s poll interval:
about 7 deletes land between two scans at this rate, past the guard's limit of 5).
Once N endpoints run, the benchmark performs about two operations a second for
`--duration` seconds (default 600; `--quick` 60), keeping about N endpoints in the
table: updates (a new image, 40 %), creates of new names when fewer than N remain,
otherwise deletes - `desired_state: deleted`, the normal way (90 %), or the item removed
by hand (10 %, what the mass-deletion guard watches). Every 5 s it samples the daemon's
threads and RSS, and the guard's refusals (`inference_supervisor_orphan_deletes_refused`
and /readyz).

Figures: threads and RSS converged before the churn and after it (once every remaining
item runs and every purge is done), their change in per cent, guard refusals seen, and
Deployments of endpoints absent from the table when the churn ends, one resync later
(3 scans to confirm + 15 s), and the seconds until none is left.
"""

from __future__ import annotations

import random
import time
import urllib.request

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from bench.rig import (
    DaemonProcess,
    Options,
    Rig,
    Section,
    at_most,
    item,
    names,
    rig,
    wait_until,
)
from store import commands
from store.errors import StoreError

TITLE = "churn"
#: The daemon's default `RECONCILE_INTERVAL_SECONDS`.
INTERVAL = 15.0
SAMPLE_PERIOD = 5.0
#: Operations per second during the churn (the issue's run: 918 in 8 minutes).
RATE = 2.0
#: Threads and RSS after the churn, against before (issue 22: within 10 %).
GROWTH_TARGET = 10.0
#: One resync after the churn: the guard's 3 confirming scans plus a margin.
RESYNC_SECONDS = 3 * INTERVAL + 15.0


def run(options: Options) -> Section:
    """Converge N endpoints, churn for the window, converge again; figures as above."""
    endpoints = options.count(50, 200)
    duration = options.duration or (60.0 if options.quick else 600.0)
    section = Section(
        TITLE,
        parameters={
            "endpoints": endpoints,
            "window s": duration,
            "operations per s": RATE,
            "RECONCILE_INTERVAL_SECONDS": INTERVAL,
            "daemon": "subprocess `python -m actors run`",
        },
    )
    with rig() as kit:
        _measure(kit, section, endpoints, duration)
    return section


def _measure(kit: Rig, section: Section, endpoints: int, duration: float) -> None:
    live = names(endpoints)
    kit.fill(live)
    daemon = kit.spawn(RECONCILE_INTERVAL_SECONDS=str(INTERVAL))
    kit.wait_all_running(timeout=120 + endpoints * 0.5)
    time.sleep(2 * INTERVAL)
    before = daemon.status()
    churn = _Churn(kit, live, endpoints)
    refusals: list[float] = []
    refused_readyz = 0
    started = time.monotonic()
    next_sample = started
    while time.monotonic() - started < duration:
        churn.step()
        if time.monotonic() >= next_sample:
            next_sample += SAMPLE_PERIOD
            refusals.append(_gauge(daemon, "inference_supervisor_orphan_deletes_refused"))
            refused_readyz += "refusing" in _readyz(daemon)
        time.sleep(1 / RATE)
    ended = time.monotonic()
    absent_at_end = _orphans(kit)
    wait_until(
        lambda: time.monotonic() - ended >= RESYNC_SECONDS, timeout=RESYNC_SECONDS + 1, period=1
    )
    absent_after_resync = _orphans(kit)
    try:
        wait_until(lambda: not _orphans(kit), timeout=180, period=1, what="no orphan left")
        orphans_gone: float | None = time.monotonic() - ended
    except TimeoutError:
        orphans_gone = None
    try:
        _settle(kit)
        settled = ""
    except TimeoutError as error:
        settled = str(error)
    time.sleep(2 * INTERVAL)
    after = daemon.status()
    thread_growth = 100 * (after["Threads"] - before["Threads"]) / before["Threads"]
    rss_growth = 100 * (after["VmRSS"] - before["VmRSS"]) / before["VmRSS"]
    section.add(
        "operations (create / update / delete / removed by hand)",
        churn.total,
        "",
        note=" / ".join(str(churn.counts[k]) for k in _Churn.KINDS),
    )
    section.add(
        "threads before -> after",
        after["Threads"],
        "",
        note=f"before {before['Threads']}; endpoints {endpoints} -> {len(churn.live)}",
    )
    section.add(
        "threads change",
        thread_growth,
        "%",
        target=f"<= {GROWTH_TARGET:.0f} %",
        met=at_most(abs(thread_growth), GROWTH_TARGET),
    )
    section.add(
        "RSS before -> after",
        after["VmRSS"] / 1024,
        "MiB",
        note=f"before {before['VmRSS'] / 1024:.0f} MiB; peak {after['VmHWM'] / 1024:.0f}",
    )
    section.add(
        "RSS change",
        rss_growth,
        "%",
        target=f"<= {GROWTH_TARGET:.0f} %",
        met=at_most(abs(rss_growth), GROWTH_TARGET),
        note=settled,
    )
    section.add(
        "guard refusals: largest count refused",
        max(refusals, default=0),
        "",
        target="0",
        met=max(refusals, default=0) == 0,
    )
    section.add(
        "guard refusals: samples of /readyz reporting one",
        refused_readyz,
        "",
        note=f"of {len(refusals)}",
    )
    section.add("orphan Deployments when the churn ends", len(absent_at_end), "")
    section.add(
        f"orphan Deployments {RESYNC_SECONDS:.0f} s later (one resync)",
        len(absent_after_resync),
        "",
        target="0",
        met=not absent_after_resync,
    )
    section.add(
        "seconds until no orphan Deployment is left",
        orphans_gone,
        "s",
        note="" if orphans_gone is not None else "some still there after 180 s",
    )
    daemon.stop()


class _Churn:
    """The operations, seeded; keeps about `size` endpoints in the table."""

    KINDS = ("create", "update", "delete", "removed")

    def __init__(self, kit: Rig, live: list[str], size: int) -> None:
        self.kit = kit
        self.live = list(live)
        self.size = size
        self.random = random.Random(22)
        self.created = 0
        self.counts = dict.fromkeys(self.KINDS, 0)
        # A hand removal is a plain DeleteItem, as a person's console or script makes it.
        self.table = boto3.resource(
            "dynamodb",
            endpoint_url=kit.dynamo.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).Table(kit.table)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def step(self) -> None:
        """One operation; a table error (an overloaded moto server) skips it."""
        try:
            self._step()
        except (StoreError, BotoCoreError, ClientError):
            return

    def _step(self) -> None:
        store = self.kit.store
        roll = self.random.random()
        if roll < 0.4 and self.live:
            name = self.random.choice(self.live)
            store.apply(name, commands.update_spec, {"image": f"repo/model:v{self.total}"})
            self.counts["update"] += 1
        elif len(self.live) < self.size:
            name = f"churn-{self.created:05d}"
            self.created += 1
            store.create_item(item(name))
            self.live.append(name)
            self.counts["create"] += 1
        else:
            name = self.live.pop(self.random.randrange(len(self.live)))
            if self.random.random() < 0.9:
                store.apply(name, commands.set_desired_state, "deleted")
                self.counts["delete"] += 1
            else:
                self.table.delete_item(Key={"endpoint_name": name})
                self.counts["removed"] += 1


def _settle(kit: Rig) -> None:
    """Every item left runs (deleted ones are purged) and the cluster holds no orphan."""
    wait_until(
        lambda: all(state == "running" for state in kit.states().values()),
        timeout=300,
        period=2,
        what="every remaining item running, every deleted one purged",
    )


def _orphans(kit: Rig) -> set[str]:
    """Deployments whose endpoint is absent from the table."""
    in_table = set(kit.states())
    deployed = {d["metadata"]["name"] for d in kit.sim.objects("deployments", "gco-inference")}
    return deployed - in_table


def _gauge(daemon: DaemonProcess, name: str) -> float:
    try:
        return daemon.counts().get(name, 0.0)
    except OSError:
        return 0.0


def _readyz(daemon: DaemonProcess) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{daemon.port}/readyz", timeout=5) as r:
            return r.read().decode()
    except OSError as error:
        return str(error)
