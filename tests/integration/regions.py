"""Several regions in one test process (architecture section 12): one moto server (one table), one
cluster and one daemon per region (`REGION` differs), every daemon on one `FakeClock`, so a
rollout's steps and bakes run in fake seconds.

The clusters are `k8s.sim` servers on the same fake clock, or the session's real control
planes (`tests/integration/planes.py`, a fresh namespace per test). Real controllers and
the pod driver run in real seconds, so on them `drive` lets fake time race ahead only
while every Deployment of the scenario is rolled out; while a controller still works,
fake time follows real time, as the sim's pods become ready in fake seconds. The real
clusters stamp their conditions in real time, which the fake clock (started at the real
time) runs ahead of: what the daemon times from those stamps - the watchdog, a step
counted from its canary becoming `Available` - sees that lead as elapsed time, so on the
real control planes the watchdog's threshold is raised out of the way and those two
clocks are left to the sim runs.

`Regions` is the scenario's view: write the item once, drive fake time, read each
region's status and Deployment. `Timeline` records, at every step of fake time, what each
region's Deployment runs, so a test can say when a region first served an image.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from actors.app.daemon import Daemon
from actors.clock import FakeClock
from k8s.realcluster.control_plane import RealCluster
from k8s.sim import SimCluster
from store.item import LoadedItem
from store.model import RegionStatus
from store.rollout import RolloutRecord
from store.rollout_commands import seed
from tests.integration.harness import FAKE_TIME_LEASE, NAMESPACE, Harness, drive
from tests.integration.planes import ControlPlanes

#: Fake seconds between two scans of each daemon.
INTERVAL = 5
#: On the real control planes: real seconds a turn waits while a controller works, and
#: the most fake time one such turn may run (a turn slowed by a loaded machine).
REAL_TICK = 0.1
REAL_TURN_LIMIT = 1.0
#: The daemons' settings on the real control planes. The watchdog would count the fake
#: clock's lead over the cluster's real-time stamps as unready time (module doc): a day,
#: out of the way. Each turn costs real API calls, and fake time moves timer by timer: a
#: lease retried every 5 fake seconds, not every 1, makes a third of the turns.
REAL_DAEMON_ENV = {
    "INFERENCE_UNHEALTHY_THRESHOLD_SECONDS": "86400",
    "LEASE_RETRY_PERIOD_SECONDS": "5",
}


def rolled_out(deployment: dict[str, Any]) -> bool:
    """The controller saw the latest spec and every wanted pod is updated and ready, with
    no old pod left (`kubectl rollout status`'s test; 0 replicas count as rolled out)."""
    status = deployment.get("status") or {}
    wanted = int(deployment["spec"].get("replicas") or 0)
    counts = {int(status.get(key) or 0) for key in ("replicas", "updatedReplicas", "readyReplicas")}
    observed = int(status.get("observedGeneration") or 0)
    return observed >= deployment["metadata"]["generation"] and counts == {wanted}


@dataclass
class Timeline:
    """When (fake time) each region's primary and canary Deployments first ran each image."""

    first: dict[tuple[str, str], float] = field(default_factory=dict)

    def saw(self, region: str, image: str, at: float) -> None:
        self.first.setdefault((region, image), at)

    def when(self, region: str, image: str) -> float | None:
        """The fake time `region` first ran `image` (primary or canary), None if never."""
        return self.first.get((region, image))


class Regions:
    """N regions sharing one table, each with its own cluster and daemon: a sim per
    region, or (`planes`) the session's real control planes in a fresh namespace."""

    def __init__(
        self,
        dynamo_url: str,
        table_name: str,
        names: tuple[str, ...],
        clock: FakeClock | None = None,
        *,
        planes: ControlPlanes | None = None,
    ) -> None:
        self.names = names
        self.planes = planes
        self.clusters: dict[str, SimCluster | RealCluster] = {}
        self.kits: dict[str, Harness] = {}
        self.daemons: dict[str, Daemon] = {}
        self.timeline = Timeline()
        self._cleanup = ExitStack()
        self._turned = time.monotonic()
        if planes is None:
            self.clock = clock or FakeClock()
            self.namespace = NAMESPACE
            for region in names:
                cluster = SimCluster(port=0, ready_delay=0.2, clock=self.clock.time).start()
                self._cleanup.callback(cluster.stop)
                self.clusters[region] = cluster
                self.kits[region] = Harness(dynamo_url, table_name, cluster.url)
        else:
            # Real stamps and fake times are compared (the watchdog): start together.
            self.clock = clock or FakeClock(start=time.time())
            assert len(names) <= len(planes.clusters), f"{len(names)} regions, fewer planes"
            self.namespace = self._cleanup.enter_context(planes.namespace())
            for region, cluster, kubeconfig in zip(
                names, planes.clusters, planes.kubeconfigs, strict=False
            ):
                self.clusters[region] = cluster
                self.kits[region] = Harness(
                    dynamo_url, table_name, kubeconfig=str(kubeconfig), namespace=self.namespace
                )
        self.store = self.kits[names[0]].store

    def start(self, region: str, identity: str = "a", **options: Any) -> Daemon:
        """Start (or restart) `region`'s daemon (`options`: `Harness.start_daemon`'s,
        such as `actor_factory`)."""
        env = dict(FAKE_TIME_LEASE)
        if self.planes is not None:
            env.update(REAL_DAEMON_ENV)
        daemon = self.kits[region].start_daemon(
            clock=self.clock,
            **{**env, **options},
            REGION=region,
            DYNAMODB_REGION="us-east-1",
            POD_NAME=f"{region}-{identity}",
            CLUSTER_NAME=f"cluster-{region}",
            RECONCILE_INTERVAL_SECONDS=str(INTERVAL),
        )
        self.daemons[region] = daemon
        return daemon

    def stop(self, region: str) -> None:
        """Stop `region`'s daemon (its cluster keeps running what it runs)."""
        daemon = self.daemons.pop(region)
        daemon.stop()
        self.kits[region].daemons.remove(daemon)

    def close(self) -> None:
        """Stop the daemons, then the sims (a real control plane only loses the test's
        namespace)."""
        for kit in self.kits.values():
            kit.close()
        self._cleanup.close()

    # -- the table --------------------------------------------------------

    def put(self, name: str, **spec: Any) -> None:
        """Create an item served by every region, as the predecessor's CLI writes it."""
        self.kits[self.names[0]].put(name, regions=self.names, **spec)

    def update(
        self, name: str, image: str, rollout: Mapping[str, Any] | None = None, **spec: Any
    ) -> None:
        """Change the image and the `spec` fields given (and set the policy), seeding the
        completed revision with the current spec when the item has none, in one
        conditional write (the CLI's way)."""
        loaded = self.item(name)
        set_: dict[str, Any] = {"spec.image": image, **{f"spec.{k}": v for k, v in spec.items()}}
        if rollout is not None:
            set_.update(seed(loaded).set_)
            set_["spec.rollout"] = dict(rollout)
        self.store.update(name, set_=set_, expected_updated_at=loaded.updated_at)

    def item(self, name: str) -> LoadedItem:
        item = self.store.get(name)
        assert item is not None
        return item

    def record(self, name: str) -> RolloutRecord:
        return RolloutRecord.from_item(self.item(name).raw)

    def status(self, name: str, region: str) -> RegionStatus | None:
        return self.item(name).region_status.get(region)

    def image(self, name: str, region: str, *, canary: bool = False) -> str | None:
        obj = self.kits[region].kube.get("Deployment", f"{name}-canary" if canary else name)
        if obj is None:
            return None
        return obj["spec"]["template"]["spec"]["containers"][0]["image"]

    # -- time -------------------------------------------------------------

    def observe(self, name: str) -> None:
        """Record what every region's Deployments run now."""
        for region in self.names:
            for canary in (False, True):
                image = self.image(name, region, canary=canary)
                if image is not None:
                    self.timeline.saw(region, image, self.clock.time())

    def drive(
        self, name: str, until: Callable[[], Any], *, timeout: float = 90.0, what: str = ""
    ) -> Any:
        """Run fake time timer by timer (`harness.drive`), observing `name` at every turn,
        until `until()` holds; on real control planes paced by `_pace`."""

        def check() -> Any:
            self.observe(name)
            return until()

        pace = None if self.planes is None else self._pace
        return drive(self.clock, check, timeout=timeout, what=what, pace=pace)

    def converge(self, name: str, regions: tuple[str, ...] | None = None) -> None:
        """Drive until `name` reports `running` in `regions` (every region by default)."""
        where = self.names if regions is None else regions
        self.drive(
            name,
            lambda: all(
                (s := self.status(name, r)) is not None and s.state == "running" for r in where
            ),
            what=f"{name} running in {', '.join(where)}",
        )

    def _pace(self) -> float | None:
        """How far fake time may jump this turn: any distance while every Deployment of
        the scenario is rolled out (nothing real is under way), else, after `REAL_TICK`
        real seconds, the real time since the last turn: fake time then follows real time,
        so a progress deadline gives real pods as long as the sim's fake-time pods get."""
        settled = all(
            rolled_out(deployment)
            for kit in self.kits.values()
            for deployment in kit.kube.items("Deployment")
        )
        if not settled:
            time.sleep(REAL_TICK)
        now = time.monotonic()
        elapsed, self._turned = now - self._turned, now
        return None if settled else min(elapsed, REAL_TURN_LIMIT)

    def phases(self, name: str) -> dict[str, str | None]:
        item = self.item(name)
        return {r: (s.rollout if (s := item.region_status.get(r)) else None) for r in self.names}


@contextmanager
def regions(
    dynamo_url: str,
    table_name: str,
    names: tuple[str, ...],
    clock: FakeClock | None = None,
    *,
    planes: ControlPlanes | None = None,
) -> Iterator[Regions]:
    """A `Regions` closed on exit (on the sim unless `planes` are given)."""
    scenario = Regions(dynamo_url, table_name, names, clock, planes=planes)
    try:
        yield scenario
    finally:
        scenario.close()
