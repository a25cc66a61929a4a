"""A guarded rollout through a region two clusters serve (issue 22 case 3; architecture
sections 2 and 12): each cluster steps and bakes on its own, and the region counts as
baked - so the next wave goes - only once every one of its clusters reported `done`.
Two regions in fake time (`tests/integration/regions.py`), us-east-1 with a second
cluster whose pods are slower to become ready, so it bakes last."""

from __future__ import annotations

from actors.app.rollout_status import RolloutView
from actors.clock import FakeClock
from k8s.sim import SimCluster
from store.rollout import revision
from tests.integration.harness import FAKE_TIME_LEASE, harness
from tests.integration.regions import INTERVAL, regions

US, EU = "us-east-1", "eu-west-1"
V1, V2 = "repo/model:v1", "repo/model:v2"
BAKE = 5
#: Fake seconds the green cluster's pods take to become ready (blue's: 0.2): green bakes last.
SLOW = 8


def test_a_region_is_baked_only_when_all_its_clusters_are(dynamo_url: str, table_name: str) -> None:
    clock = FakeClock()
    green_sim = SimCluster(port=0, ready_delay=SLOW, clock=clock.time).start()
    try:
        with (
            regions(dynamo_url, table_name, (US, EU), clock) as world,
            harness(dynamo_url, table_name, green_sim.url) as green,
        ):
            for region in world.names:
                world.start(region)
            green.start_daemon(
                clock=clock,
                REGION=US,
                DYNAMODB_REGION="us-east-1",
                POD_NAME="us-green",
                CLUSTER_NAME="green",
                RECONCILE_INTERVAL_SECONDS=str(INTERVAL),
                **FAKE_TIME_LEASE,
            )
            world.put("m1")

            def clusters() -> dict:
                return world.item("m1").cluster_status(US)

            world.drive(
                "m1",
                lambda: (
                    len(clusters()) == 2
                    and all(s.state == "running" for s in clusters().values())
                    and world.status("m1", EU).state == "running"
                ),
                timeout=120,
                what="m1 running in both clusters of us-east-1 and in eu-west-1",
            )
            world.update(
                "m1",
                V2,
                {"waves": [[US]], "bake_seconds": BAKE, "progress_deadline_seconds": 600},
            )
            new = revision(world.item("m1").raw["spec"])
            done: dict[str, float] = {}

            def completed() -> bool:
                for cluster, status in clusters().items():
                    if (status.revision, status.rollout) == (new, "done"):
                        done.setdefault(cluster, world.clock.time())
                return world.record("m1").completed_revision == new

            try:
                world.drive("m1", completed, timeout=90, what="the rollout to complete")
            except AssertionError as error:
                item = world.item("m1")
                raise AssertionError(
                    f"{error}; statuses {item.raw['region_status']}; record "
                    f"{item.raw.get('rollout')}"
                ) from error
            eu_first = world.timeline.when(EU, V2)
            assert eu_first is not None
            blue = f"cluster-{US}"
            assert done[blue] < done["green"], "the slow green cluster should finish last"
            assert eu_first >= done["green"], (
                f"eu-west-1 took v2 at {eu_first}, before green was done at {done['green']}"
            )
            assert world.status("m1", US).rollout == "done"
            # `rollout status`: the region's row, then one per cluster.
            rows = {
                row.region: row.phase
                for row in RolloutView.of(world.item("m1"), world.clock.time()).regions
            }
            assert rows == {US: "done", f"{US}/{blue}": "done", f"{US}/green": "done", EU: "done"}
            green_deployment = green.kube.get("Deployment", "m1")
            assert green_deployment is not None
            assert green_deployment["spec"]["template"]["spec"]["containers"][0]["image"] == V2
    finally:
        green_sim.stop()
