"""A rollout never overloads its canary (architecture section 12, issue 19 cases 8 and 9): a
step's weight only once the canary's ready pods carry it, an autoscaled canary sized from
the HPA's current replicas, and a promotion that keeps the canary until the promoted
primary is ready. Two regions, one table, one daemon per region, in fake time; pods
become ready slowly (1 s of real time each), so every window shows. Each runs on the sim
and on real control planes (their Deployment controller's surge and status)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import pytest

from store.rollout import revision
from tests.integration.planes import SIM_AND_REAL, ControlPlanes
from tests.integration.regions import Regions, regions

US, EU = "us-east-1", "eu-west-1"
V2 = "repo/model:v2"


def _world(
    dynamo_url: str, table_name: str, planes: ControlPlanes | None, **spec: Any
) -> Iterator[Regions]:
    with regions(dynamo_url, table_name, (US, EU), planes=planes) as scenario:
        for region in scenario.names:
            scenario.start(region)
        scenario.put("m1", **spec)
        scenario.converge("m1")
        for cluster in scenario.clusters.values():
            cluster.set_ready_delay(1.0)
        yield scenario


@pytest.fixture
def world(dynamo_url: str, table_name: str, planes: ControlPlanes | None) -> Iterator[Regions]:
    yield from _world(dynamo_url, table_name, planes, replicas=4)


def _canary_weight(kube: Any) -> int | None:
    """The canary's weight in the Ingress (None: the plain Ingress, no canary)."""
    ingress = kube.get("Ingress", "inference-m1")
    annotation = (ingress or {}).get("metadata", {}).get("annotations", {})
    action = annotation.get("alb.ingress.kubernetes.io/actions.weighted-routing")
    if action is None:
        return None
    groups = json.loads(action)["forwardConfig"]["targetGroups"]
    return next(g["weight"] for g in groups if g["serviceName"] == "m1-canary")


def _ready(obj: dict[str, Any] | None) -> int:
    return int(((obj or {}).get("status") or {}).get("readyReplicas") or 0)


@SIM_AND_REAL
def test_a_step_weight_lands_only_once_the_canary_ready_pods_carry_it(world: Regions) -> None:
    """Case 8: 4 replicas, steps 25 then 75: 75 % goes to the canary only once 3 canary
    pods are ready (a primary pod's share of all traffic each), never to 1 of 3."""
    kube = world.kits[US].kube
    world.update(
        "m1",
        V2,
        {
            "waves": [[US]],
            "steps": [25, 75],
            "step_seconds": 10,
            "bake_seconds": 10,
            "progress_deadline_seconds": 300,
        },
    )
    new = revision(world.item("m1").raw["spec"])
    seen: set[int] = set()

    def done() -> bool:
        weight = _canary_weight(kube)
        canary = kube.get("Deployment", "m1-canary")
        if weight:
            seen.add(weight)
            need = math.ceil(4 * weight / 100)
            assert _ready(canary) >= need, f"{weight}% on {_ready(canary)} ready canary pods"
        return world.record("m1").completed_revision == new

    world.drive("m1", done, timeout=240, what="the rollout to complete")
    assert seen == {25, 75}


@SIM_AND_REAL
def test_promotion_keeps_the_canary_until_the_promoted_primary_is_ready(
    world: Regions,
) -> None:
    """Case 9: while the promoted primary rolls, the canary keeps its weight and pods; it
    goes only once the primary runs the new revision with every replica ready."""
    kube = world.kits[US].kube
    world.update(
        "m1",
        V2,
        {
            "waves": [[US]],
            "steps": [50],
            "step_seconds": 10,
            "bake_seconds": 10,
            "progress_deadline_seconds": 300,
        },
    )
    new = revision(world.item("m1").raw["spec"])
    promoted: list[float] = []

    def done() -> bool:
        primary = kube.get("Deployment", "m1")
        image = primary["spec"]["template"]["spec"]["containers"][0]["image"]
        canary = kube.get("Deployment", "m1-canary")
        weight = _canary_weight(kube)
        if image == V2:
            promoted.append(world.clock.time())
            status = primary.get("status") or {}
            rolled = (
                status.get("observedGeneration", 0) >= primary["metadata"]["generation"]
                and status.get("updatedReplicas") == status.get("readyReplicas") == 4
                and status.get("replicas") == 4
            )
            if not rolled:
                assert weight == 50, f"canary weight {weight} while the primary rolls"
                assert _ready(canary) >= 2, "the canary lost its pods while the primary rolls"
        return world.record("m1").completed_revision == new

    world.drive("m1", done, timeout=240, what="the rollout to complete")
    assert promoted, "the promotion was never observed"
    assert kube.get("Deployment", "m1-canary") is None


@pytest.fixture
def autoscaled(dynamo_url: str, table_name: str, planes: ControlPlanes | None) -> Iterator[Regions]:
    yield from _world(
        dynamo_url,
        table_name,
        planes,
        replicas=1,
        autoscaling={"enabled": True, "min_replicas": 1, "max_replicas": 10},
    )


@SIM_AND_REAL
def test_an_autoscaled_canary_is_sized_from_the_replicas_the_hpa_sets(
    autoscaled: Regions,
) -> None:
    """Case 8: the HPA runs 5 primary pods; a 50 % canary gets 3 pods, not min_replicas' 1."""
    world = autoscaled
    kube = world.kits[US].kube
    kube.merge_patch("Deployment", "m1", {"spec": {"replicas": 5}})  # what the HPA set
    world.update(
        "m1",
        V2,
        {"waves": [[US]], "steps": [50], "step_seconds": 600, "progress_deadline_seconds": 900},
    )
    world.drive(
        "m1",
        lambda: (
            (canary := kube.get("Deployment", "m1-canary")) is not None
            and canary["spec"]["replicas"] == 3
        ),
        what="a canary of 3 pods",
    )
