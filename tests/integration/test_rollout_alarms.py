"""The rollout's alarm gate (architecture section 12, issue 14's guarantee 3): a CloudWatch
alarm that goes to ALARM while the first wave bakes halts the revision and rolls that wave
back, and no later wave ever serves it. Three regions, one table, one moto server (which
also serves CloudWatch, per region), one daemon per region, in fake time (the first case
also on real control planes, `SIM_AND_REAL`). The decision is also an Event on the
Deployment and a metric (`tests/integration/test_decision_events.py` covers the
watchdog's).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from kubernetes import client

from actors.app.rollout_status import RolloutView
from store.rollout import revision
from tests.integration.planes import SIM_AND_REAL, ControlPlanes
from tests.integration.regions import Regions, regions

US, EU, AP = "us-east-1", "eu-west-1", "ap-south-1"
V2 = "repo/model:v2"
ALARM_NAME = "m1-5xx-rate"
#: Long enough that an alarm noticed only at the end of the bake would be too late.
BAKE = 600


@pytest.fixture
def cloudwatch(dynamo_url: str, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Any]:
    """A CloudWatch client of one region on the moto server; the daemons find the same
    server through boto3's standard variable."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", dynamo_url)

    def client_for(region: str) -> Any:
        return boto3.client(
            "cloudwatch",
            region_name=region,
            endpoint_url=dynamo_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    return client_for


@pytest.fixture
def world(
    dynamo_url: str, table_name: str, cloudwatch: Any, planes: ControlPlanes | None
) -> Iterator[Regions]:
    with regions(dynamo_url, table_name, (US, EU, AP), planes=planes) as scenario:
        for region in scenario.names:
            scenario.start(region)
        scenario.put("m1")
        scenario.converge("m1")
        yield scenario


def _put_alarm(cw: Any, name: str) -> None:
    cw.put_metric_alarm(
        AlarmName=name,
        MetricName="5xx",
        Namespace="inference",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanThreshold",
    )


def _decisions(world: Regions, region: str, decision: str) -> float:
    return sum(
        sample.value
        for family in world.daemons[region].metrics.registry.collect()
        for sample in family.samples
        if sample.name == "inference_supervisor_decisions_total"
        and sample.labels.get("decision") == decision
    )


@SIM_AND_REAL
def test_an_alarm_firing_while_the_first_wave_bakes_halts_and_rolls_it_back(
    world: Regions, cloudwatch: Callable[[str], Any]
) -> None:
    us = cloudwatch(US)
    _put_alarm(us, ALARM_NAME)
    # The same name in another region is another alarm: only the region's own counts.
    _put_alarm(cloudwatch(EU), ALARM_NAME)
    world.update(
        "m1",
        V2,
        {"waves": [[US]], "bake_seconds": BAKE, "alarms": [ALARM_NAME]},
    )
    new = revision(world.item("m1").raw["spec"])
    world.drive(
        "m1",
        lambda: (
            (s := world.status("m1", US)) is not None and (s.revision, s.rollout) == (new, "baking")
        ),
        what="the first wave baking the new revision",
    )
    us.set_alarm_state(AlarmName=ALARM_NAME, StateValue="ALARM", StateReason="5xx above 1")
    fired_at = world.clock.time()

    world.drive(
        "m1",
        lambda: world.record("m1").halt is not None and world.image("m1", US) == "repo/model:v1",
        timeout=120,
        what="the halt and the rollback of the first wave",
    )
    assert world.clock.time() - fired_at < BAKE / 4, "the alarm was noticed only as the bake ended"
    halt = world.record("m1").halt
    assert (new, US) == (halt.revision, halt.region)
    assert ALARM_NAME in halt.reason
    assert world.record("m1").completed_revision != new
    assert world.timeline.when(EU, V2) is None
    assert world.timeline.when(AP, V2) is None
    world.drive(
        "m1",
        lambda: set(world.phases("m1").values()) == {"rolled_back"},
        what="every region rolled back",
    )
    assert world.timeline.when(EU, V2) is None
    assert world.timeline.when(AP, V2) is None

    # The halt is a Warning Event on the first wave's Deployment, once, naming the alarm,
    # and a metric; the other regions' Deployments say they rolled back.
    events = client.CoreV1Api(world.kits[US].kube.api).list_namespaced_event(
        world.namespace, field_selector="involvedObject.name=m1,reason=RolloutHalted"
    )
    assert [(e.type, e.involved_object.kind) for e in events.items] == [("Warning", "Deployment")]
    assert ALARM_NAME in events.items[0].message
    assert _decisions(world, US, "RolloutHalted") == 1
    eu_reasons = [
        e.reason
        for e in client.CoreV1Api(world.kits[EU].kube.api)
        .list_namespaced_event(world.namespace, field_selector="involvedObject.name=m1")
        .items
    ]
    assert "RolloutRolledBack" in eu_reasons
    assert "RolloutStarted" not in eu_reasons

    # Once rolled back, the first wave stays rolled back: its pod template is not
    # rewritten and no decision is announced again (seen: Started/RolledBack flipping,
    # the template rewritten at each flip).
    us_apps = client.AppsV1Api(world.kits[US].kube.api)
    template = us_apps.read_namespaced_deployment("m1", world.namespace).spec.template.to_dict()
    # The flip came at every pass (a few fake seconds each): 30 fake seconds show it.
    settle_until = world.clock.time() + 30
    world.drive(
        "m1", lambda: world.clock.time() >= settle_until, timeout=180, what="30 s after"
    )
    assert (
        us_apps.read_namespaced_deployment("m1", world.namespace).spec.template.to_dict()
        == template
    )
    assert world.phases("m1")[US] == "rolled_back"
    us_reasons = [
        e.reason
        for e in client.CoreV1Api(world.kits[US].kube.api)
        .list_namespaced_event(world.namespace, field_selector="involvedObject.name=m1")
        .items
    ]
    assert us_reasons.count("RolloutStarted") == 1, us_reasons
    assert us_reasons.count("RolloutRolledBack") == 1, us_reasons


def test_an_alarm_firing_late_in_a_bake_shorter_than_the_read_cadence_is_seen(
    world: Regions, cloudwatch: Callable[[str], Any]
) -> None:
    """Case 6: the alarm goes to ALARM after the bake's first read, and the bake ends
    before the next regular read: the gate is read again after the bake's end, before the
    region is done, so the revision halts and no later wave takes it."""
    us = cloudwatch(US)
    name = "m1-late-5xx"
    _put_alarm(us, name)
    world.update("m1", V2, {"waves": [[US]], "bake_seconds": 10, "alarms": [name]})
    new = revision(world.item("m1").raw["spec"])
    world.drive(
        "m1",
        lambda: (
            (s := world.status("m1", US)) is not None and (s.revision, s.rollout) == (new, "baking")
        ),
        what="the first wave baking",
    )
    us.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="5xx above 1")
    world.drive(
        "m1",
        lambda: world.record("m1").halt is not None,
        timeout=120,
        what="the halt",
    )
    assert name in world.record("m1").halt.reason
    assert world.timeline.when(EU, V2) is None
    assert world.timeline.when(AP, V2) is None


def _alarm_reads(world: Regions, region: str, outcome: str) -> float:
    return sum(
        sample.value
        for family in world.daemons[region].metrics.registry.collect()
        for sample in family.samples
        if sample.name == "inference_supervisor_alarm_reads_total"
        and sample.labels.get("outcome") == outcome
    )


def test_a_misspelled_alarm_holds_the_bake_and_says_so(
    world: Regions, cloudwatch: Callable[[str], Any]
) -> None:
    """Case 7: the policy names `m1-5xx`, the alarm is `m1-5XX` (in ALARM): the gate is not
    taken as read - the region does not finish its bake, `rollout status` says why, the
    read is counted as `missing` - and no later wave takes the revision."""
    us = cloudwatch(US)
    _put_alarm(us, "m1-5XX")
    us.set_alarm_state(AlarmName="m1-5XX", StateValue="ALARM", StateReason="5xx above 1")
    world.update("m1", V2, {"waves": [[US]], "bake_seconds": 10, "alarms": ["m1-5xx"]})
    new = revision(world.item("m1").raw["spec"])
    world.drive(
        "m1",
        lambda: (
            (s := world.status("m1", US)) is not None and (s.revision, s.rollout) == (new, "baking")
        ),
        what="the first wave baking",
    )
    start = world.clock.time()

    def held() -> bool:
        assert world.status("m1", US).rollout == "baking"
        return world.clock.time() - start > 60

    world.drive("m1", held, what="time past the bake")
    row = RolloutView.of(world.item("m1"), world.clock.time()).regions[0]
    assert (row.region, row.phase.split()[0]) == (US, "baking")
    assert row.reason == "alarm m1-5xx does not exist in CloudWatch"
    assert _alarm_reads(world, US, "missing") >= 1
    assert _alarm_reads(world, US, "ok") == 0
    assert world.timeline.when(EU, V2) is None
    assert world.timeline.when(AP, V2) is None
    assert world.record("m1").completed_revision != new
