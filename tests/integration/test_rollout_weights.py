"""The ALB weights gate (architecture section 12, `store.gates.alb`, policy field
`verify_weights`): a region never moves past a weight its load balancer does not carry.

The gate alone against moto's ELBv2 (a load balancer built as the AWS Load Balancer
Controller builds it, `tests.integration.alb`), then whole rollouts in fake time with a
controller that applies the Ingress's weights late, or never."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from actors.clock import FakeClock
from store.gates import GateQuery
from store.gates.alb import AlbWeightsGate
from store.rollout import RolloutPolicy, revision
from tests.integration.alb import FakeAlbController
from tests.integration.harness import NAMESPACE, metric_total
from tests.integration.regions import Regions, regions

US, EU = "us-east-1", "eu-west-1"
V1, V2 = "repo/model:v1", "repo/model:v2"
STEP_SECONDS = 10
LAG = 12


@pytest.fixture
def elbv2(dynamo_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The daemons' gate finds moto's ELBv2 through our variable."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_ELBV2", dynamo_url)
    return dynamo_url


def ingress(weights: dict[str, int] | None, hostname: str | None) -> dict[str, Any]:
    """An Ingress as the daemon builds it (plain, or with the weighted action), with the
    controller's hostname in its status."""
    annotations: dict[str, str] = {}
    backend: dict[str, Any] = {"name": "m1", "port": {"number": 80}}
    if weights is not None:
        groups = [
            f'{{"serviceName":"{s}","servicePort":"80","weight":{w}}}' for s, w in weights.items()
        ]
        annotations["alb.ingress.kubernetes.io/actions.weighted-routing"] = (
            '{"type":"forward","forwardConfig":{"targetGroups":[' + ",".join(groups) + "]}}"
        )
        backend = {"name": "weighted-routing", "port": {"name": "use-annotation"}}
    status = {"loadBalancer": {"ingress": [{"hostname": hostname}]}} if hostname else {}
    return {
        "metadata": {"name": "inference-m1", "annotations": annotations},
        "spec": {"rules": [{"http": {"paths": [{"path": "/", "backend": {"service": backend}}]}}]},
        "status": status,
    }


def query(obj: dict[str, Any], region: str = US) -> GateQuery:
    return GateQuery(
        endpoint="m1",
        namespace=NAMESPACE,
        region=region,
        policy=RolloutPolicy(verify_weights=True),
        phase="stepping",
        since=0.0,
        now=0.0,
        ingress=obj,
    )


def test_the_gate_finds_the_weights_as_the_controller_publishes_them(elbv2: str) -> None:
    """No hostname, an unknown hostname, weights not carried: each is pending with its
    reason (never taken as fine); the carried weights verify; while pending, ELBv2 is read
    again only after a backoff."""
    clock = FakeClock()
    lbc = FakeAlbController(elbv2, "us-west-2", None, clock, endpoint="m1", lag=0)
    now = [0.0]
    gate = AlbWeightsGate("us-west-2", monotonic=lambda: now[0])
    split = {"m1": 90, "m1-canary": 10}

    no_lb = gate.read(query(ingress(split, None), "us-west-2"))
    assert (no_lb.state, no_lb.pending) == (
        "no-lb",
        "Ingress inference-m1 has no load balancer hostname yet",
    )
    unknown = gate.read(query(ingress(split, "nowhere.elb.amazonaws.com"), "us-west-2"))
    assert unknown.pending == "no load balancer has the DNS name nowhere.elb.amazonaws.com"

    plain = gate.read(query(ingress(None, lbc.hostname), "us-west-2"))
    assert (plain.state, plain.pending) == ("verified", None)
    # 100/0 splits traffic as the plain forward does.
    assert (
        gate.read(query(ingress({"m1": 100, "m1-canary": 0}, lbc.hostname), "us-west-2")).state
        == "verified"
    )

    wanted = query(ingress(split, lbc.hostname), "us-west-2")
    pending = gate.read(wanted)
    assert pending.state == "pending"
    assert pending.pending == "load balancer carries m1 1, not m1 90 / m1-canary 10"
    lbc.apply(split)
    now[0] += 0.5
    assert gate.read(wanted).state == "pending", "read again before its backoff"
    now[0] += 1.0
    assert gate.read(wanted).state == "verified"


def test_an_unreadable_elbv2_is_pending_not_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_ELBV2", "http://127.0.0.1:9")
    gate = AlbWeightsGate(US, monotonic=lambda: 0.0, timeout=0.5, max_attempts=1)
    reading = gate.read(query(ingress({"m1": 90, "m1-canary": 10}, "lb.example.com")))
    assert reading.state == "unreadable"
    assert reading.pending is not None
    assert reading.pending.startswith("load balancer not readable: ")


def _running(world: Regions) -> bool:
    return all(
        (s := world.status("m1", r)) is not None and s.state == "running" for r in world.names
    )


@pytest.fixture
def one(
    dynamo_url: str, table_name: str, elbv2: str
) -> Iterator[tuple[Regions, FakeAlbController]]:
    with regions(dynamo_url, table_name, (US,), FakeClock()) as world:
        world.start(US)
        world.put("m1")
        world.drive("m1", lambda: _running(world), what="v1 running")
        lbc = FakeAlbController(elbv2, US, world.kits[US].kube, world.clock, endpoint="m1", lag=LAG)
        yield world, lbc


def test_a_lagging_load_balancer_holds_every_step_until_it_carries_the_weights(
    one: tuple[Regions, FakeAlbController],
) -> None:
    """Steps 10 %, 50 %; the controller applies each weight 12 s late: the region moves
    on from a step only once the load balancer carries that step's weights, and counts
    the step's 10 s from then; the promoted canary is drained to 0 and removed once that
    is carried; the bake ends only once the load balancer sends the canary nothing."""
    world, lbc = one
    world.update(
        "m1",
        V2,
        {
            "steps": [10, 50],
            "step_seconds": STEP_SECONDS,
            "bake_seconds": 10,
            "progress_deadline_seconds": 300,
            "verify_weights": True,
        },
    )
    new = revision(world.item("m1").raw["spec"])
    moves: list[tuple[float, tuple[Any, ...], dict[str, int]]] = []
    last: list[tuple[Any, ...]] = [()]

    def watch() -> bool:
        lbc.sync()
        s = world.status("m1", US)
        where = (s.rollout, s.step) if s is not None and s.revision == new else ()
        if where != last[0]:
            moves.append((world.clock.time(), where, lbc.carried()))
            last[0] = where
        return where == ("done", 2) and lbc.carried() == {"m1": 1}

    world.drive("m1", watch, timeout=120, what="the rollout done with the plain backend carried")
    assert world.image("m1", US) == V2
    steps = [(t, where, carried) for t, where, carried in moves if where]
    phases = [where for _, where, _ in steps]
    assert phases[:1] == [("stepping", 0)]
    assert ("stepping", 1) in phases
    assert ("baking", 2) in phases
    assert phases[-1] == ("done", 2)
    # Each move out of a weighted step happened with that step's weights carried, at least
    # a step's time after the load balancer took them.
    applied = {json_key(w): t for t, w in lbc.history}
    for (_, before, _), (at, after, carried) in itertools.pairwise(steps):
        if before[0] == "stepping" and before[1] < 2:
            weight = (10, 50)[before[1]]
            expected = {"m1": 100 - weight, "m1-canary": weight}
            assert carried == expected, (before, after, carried)
            assert at - applied[json_key(expected)] >= STEP_SECONDS
        if after[0] == "baking":
            # The promoted canary was drained first: removed only once weight 0 was carried.
            assert carried == {"m1": 100, "m1-canary": 0}
        if after[0] == "done":
            # No traffic to the canary (100/0 splits as the plain backend does).
            assert carried.get("m1-canary", 0) == 0


def json_key(weights: dict[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(weights.items()))


def test_a_load_balancer_that_never_takes_the_weights_halts_at_the_deadline(
    dynamo_url: str, table_name: str, elbv2: str
) -> None:
    """The controller never applies the Ingress's weights: the first wave never moves
    past its first step, the revision halts at the progress deadline naming the weights,
    the wave rolls back, and the next wave never runs it."""
    with regions(dynamo_url, table_name, (US, EU), FakeClock()) as world:
        for region in world.names:
            world.start(region)
        world.put("m1")
        world.drive("m1", lambda: _running(world), what="v1 running everywhere")
        lbc = FakeAlbController(
            elbv2, US, world.kits[US].kube, world.clock, endpoint="m1", lag=None
        )
        world.update(
            "m1",
            V2,
            {
                "waves": [[US]],
                "steps": [10, 50],
                "step_seconds": STEP_SECONDS,
                "progress_deadline_seconds": 90,
                "verify_weights": True,
            },
        )
        new = revision(world.item("m1").raw["spec"])
        seen: set[Any] = set()

        def watch() -> bool:
            lbc.sync()
            s = world.status("m1", US)
            if s is not None and s.revision == new:
                seen.add((s.rollout, s.step))
            return world.record("m1").halt is not None and world.image("m1", US) == V1

        world.drive("m1", watch, timeout=120, what="the halt and the rollback")
        assert seen <= {("stepping", 0)}, seen
        halt = world.record("m1").halt
        assert (halt.revision, halt.region) == (new, US)
        assert "load balancer carries m1 1, not m1 90 / m1-canary 10" in halt.reason
        assert lbc.carried() == {"m1": 1}
        reads = "inference_supervisor_gate_reads_total"
        assert metric_total(world.daemons[US], reads, gate="weights", outcome="pending") >= 1
        world.drive(
            "m1",
            lambda: set(world.phases("m1").values()) == {"rolled_back"},
            what="every region rolled back",
        )
        assert world.timeline.when(EU, V2) is None
