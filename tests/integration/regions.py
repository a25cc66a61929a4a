"""Several regions in one test process (architecture section 12): one moto server (one table), one
`k8s.sim` cluster and one daemon per region (`REGION` differs), every sim and daemon on
one `FakeClock`, so a rollout's steps and bakes run in fake seconds.

`Regions` is the scenario's view: write the item once, drive fake time, read each
region's status and Deployment. `Timeline` records, at every step of fake time, what each
region's Deployment runs, so a test can say when a region first served an image.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from actors.app.daemon import Daemon
from actors.clock import FakeClock
from k8s.sim import SimCluster
from store.item import LoadedItem
from store.model import RegionStatus
from store.rollout import RolloutRecord
from store.rollout_commands import seed
from tests.integration.harness import FAKE_TIME_LEASE, Harness, drive

#: Fake seconds between two scans of each daemon.
INTERVAL = 5


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
    """N regions sharing one table, each with its own cluster and daemon."""

    def __init__(
        self, dynamo_url: str, table_name: str, names: tuple[str, ...], clock: FakeClock
    ) -> None:
        self.clock = clock
        self.names = names
        self.clusters: dict[str, SimCluster] = {}
        self.kits: dict[str, Harness] = {}
        self.daemons: dict[str, Daemon] = {}
        self.timeline = Timeline()
        for region in names:
            cluster = SimCluster(port=0, ready_delay=0.2, clock=clock.time).start()
            self.clusters[region] = cluster
            self.kits[region] = Harness(dynamo_url, table_name, cluster.url)
        self.store = self.kits[names[0]].store

    def start(self, region: str, identity: str = "a", **options: Any) -> Daemon:
        """Start (or restart) `region`'s daemon (`options`: `Harness.start_daemon`'s,
        such as `actor_factory`)."""
        daemon = self.kits[region].start_daemon(
            clock=self.clock,
            **options,
            REGION=region,
            DYNAMODB_REGION="us-east-1",
            POD_NAME=f"{region}-{identity}",
            CLUSTER_NAME=f"cluster-{region}",
            RECONCILE_INTERVAL_SECONDS=str(INTERVAL),
            **FAKE_TIME_LEASE,
        )
        self.daemons[region] = daemon
        return daemon

    def stop(self, region: str) -> None:
        """Stop `region`'s daemon (its cluster keeps running what it runs)."""
        daemon = self.daemons.pop(region)
        daemon.stop()
        self.kits[region].daemons.remove(daemon)

    def close(self) -> None:
        for kit in self.kits.values():
            kit.close()
        for cluster in self.clusters.values():
            cluster.stop()

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
        until `until()` holds."""

        def check() -> Any:
            self.observe(name)
            return until()

        return drive(self.clock, check, timeout=timeout, what=what)

    def phases(self, name: str) -> dict[str, str | None]:
        item = self.item(name)
        return {r: (s.rollout if (s := item.region_status.get(r)) else None) for r in self.names}


@contextmanager
def regions(
    dynamo_url: str, table_name: str, names: tuple[str, ...], clock: FakeClock
) -> Iterator[Regions]:
    scenario = Regions(dynamo_url, table_name, names, clock)
    try:
        yield scenario
    finally:
        scenario.close()
