"""Items in other namespaces (issue 13 item 5): the daemon serves every namespace of
`INFERENCE_NAMESPACES` (one watch set each) and refuses, with a clear status, an item in
any other; such an item's delete still completes.

The real daemon against `k8s.sim` and moto; the sim starts with `default`, `gco-inference`
and `kube-system`, so each test creates the other namespaces it serves. The namespace move
also runs on a real control plane (`SIM_AND_REAL`: two fresh namespaces).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from actors.app.daemon import check
from k8s.sim import SimCluster
from store import commands
from tests.integration.harness import NAMESPACE, Harness, harness, wait_for
from tests.integration.planes import SIM_AND_REAL, ControlPlanes

TEAM_A = "team-a"
OWNED = (
    ("Deployment", "m2"),
    ("Service", "m2"),
    ("Ingress", "inference-m2"),
    ("HorizontalPodAutoscaler", "m2"),
)


def test_each_item_is_served_in_its_own_watched_namespace(kit: Harness) -> None:
    kit.kube.create_namespace(TEAM_A)
    kit.put("m1")
    kit.put(
        "m2",
        namespace=TEAM_A,
        autoscaling={"enabled": True, "min_replicas": 1, "max_replicas": 3},
    )
    kit.start_daemon(INFERENCE_NAMESPACES=TEAM_A)

    kit.wait_state("m1", "running")
    kit.wait_state("m2", "running")
    for kind, name in OWNED:
        assert kit.kube.get(kind, name, TEAM_A) is not None, f"{kind} {name} in {TEAM_A}"
        assert kit.kube.get(kind, name) is None, f"{kind} {name} also in {NAMESPACE}"
    assert kit.kube.get("Deployment", "m1") is not None
    assert kit.kube.get("Deployment", "m1", TEAM_A) is None

    # team-a's watches route to m2's actor: a hand deletion there is repaired.
    first = kit.kube.get("Service", "m2", TEAM_A)
    assert first is not None
    assert kit.kube.delete("Service", "m2", TEAM_A) == 200
    wait_for(
        lambda: (
            (kit.kube.get("Service", "m2", TEAM_A) or first)["metadata"]["uid"]
            != first["metadata"]["uid"]
        ),
        what="Service m2 recreated in team-a",
    )

    # A desired_state change reaches team-a through that namespace's gateway.
    kit.store.apply("m2", commands.set_desired_state, "deleted")
    wait_for(lambda: kit.item("m2") is None, what="m2 deleted and purged")
    for kind, name in OWNED:
        assert kit.kube.get(kind, name, TEAM_A) is None, f"{kind} {name} left in {TEAM_A}"
    assert kit.kube.get("Deployment", "m1") is not None, "m1 untouched"


def test_objects_of_an_endpoint_gone_from_the_table_are_removed_in_any_watched_namespace(
    kit: Harness,
) -> None:
    kit.kube.create_namespace(TEAM_A)
    kit.put("m1")
    kit.put("m2", namespace=TEAM_A)
    kit.start_daemon(INFERENCE_NAMESPACES=TEAM_A)
    kit.wait_state("m1", "running")
    kit.wait_state("m2", "running")

    kit.raw_table().delete_item(Key={"endpoint_name": "m2"})

    # Removed one after the other: wait for all of them.
    wait_for(
        lambda: all(
            kit.kube.get(kind, name, TEAM_A) is None
            for kind, name in (("Deployment", "m2"), ("Service", "m2"), ("Ingress", "inference-m2"))
        ),
        what="orphan m2 removed from team-a",
    )
    assert kit.kube.get("Deployment", "m1") is not None


def test_an_item_in_a_namespace_not_watched_gets_a_clear_error(kit: Harness) -> None:
    kit.kube.create_namespace(TEAM_A)
    kit.put("m1", namespace="team-b")
    kit.start_daemon(INFERENCE_NAMESPACES=TEAM_A)

    status = kit.wait_state("m1", "error")

    assert status.error == (
        "namespace 'team-b' is not watched by this daemon "
        "(INFERENCE_NAMESPACES=gco-inference,team-a)"
    )
    assert kit.kube.get("Deployment", "m1") is None
    assert kit.kube.get("Deployment", "m1", TEAM_A) is None


def test_deleting_an_item_in_a_namespace_not_watched_completes(kit: Harness) -> None:
    """Nothing of ours can be in a namespace we do not watch: `deleted`, then purged (it
    used to stay `deleted` with an error status forever)."""
    kit.put("m1", namespace="team-b")
    kit.put("m2")
    kit.start_daemon()
    kit.wait_state("m1", "error")
    kit.wait_state("m2", "running")

    kit.store.apply("m1", commands.set_desired_state, "deleted")

    wait_for(lambda: kit.item("m1") is None, what="m1 purged")
    assert kit.kube.get("Deployment", "m2") is not None


def test_a_configured_gpu_metric_name_reaches_the_hpa(kit: Harness) -> None:
    kit.put(
        "m1",
        autoscaling={
            "enabled": True,
            "min_replicas": 1,
            "max_replicas": 4,
            "metrics": [{"type": "gpu", "target": 60}],
        },
    )
    kit.start_daemon(GPU_METRIC_NAME="nvidia_gpu_utilisation")

    hpa = wait_for(lambda: kit.kube.get("HorizontalPodAutoscaler", "m1"), what="HPA m1")

    assert hpa["spec"]["metrics"] == [
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": "nvidia_gpu_utilisation"},
                "target": {"type": "AverageValue", "averageValue": "60"},
            },
        }
    ]


def test_run_check_lists_and_watches_in_every_watched_namespace(
    kit: Harness, sim: SimCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    kit.kube.create_namespace(TEAM_A)

    assert check(kit.settings(INFERENCE_NAMESPACES=TEAM_A)) == 0

    assert "list/watch allowed in namespaces gco-inference, team-a;" in capsys.readouterr().out
    wait_for(
        lambda: len(sim.requests_log()) >= sim.counters()["total"],
        what="every counted request logged",
    )
    listed = {path.split("?")[0] for verb, path, _ in sim.requests_log() if verb == "LIST"}
    for namespace in (NAMESPACE, TEAM_A):
        assert f"/apis/apps/v1/namespaces/{namespace}/deployments" in listed, listed


@pytest.fixture
def moving(
    request: pytest.FixtureRequest,
    planes: ControlPlanes | None,
    dynamo_url: str,
    table_name: str,
) -> Iterator[tuple[Harness, str]]:
    """The kit of a namespace move and the namespace it moves to, both watched: the sim's
    `kit` and team-a, or a harness on a real control plane in a fresh namespace and a
    second fresh one."""
    if planes is None:
        kit = request.getfixturevalue("kit")
        kit.kube.create_namespace(TEAM_A)
        yield kit, TEAM_A
        return
    with (
        planes.namespace() as home,
        planes.namespace() as team,
        harness(
            dynamo_url, table_name, kubeconfig=str(planes.kubeconfigs[0]), namespace=home
        ) as kit,
    ):
        yield kit, team


@SIM_AND_REAL
def test_editing_a_running_items_namespace_moves_it_new_objects_ready_first(
    moving: tuple[Harness, str],
) -> None:
    """Issue 19: the endpoint comes up in its new namespace; only once it is ready there
    are its objects in the old one deleted."""
    kit, team = moving
    kit.put("m3", replicas=2)
    kit.start_daemon(INFERENCE_NAMESPACES=team)
    kit.wait_state("m3", "running", timeout=60)
    loaded = kit.item("m3")
    assert loaded is not None
    kit.store.update("m3", set_={"namespace": team}, expected_updated_at=loaded.updated_at)

    def moved() -> bool:
        old = kit.kube.get("Deployment", "m3")
        new = kit.kube.get("Deployment", "m3", team)
        if old is None:
            status = (new or {}).get("status") or {}
            assert status.get("readyReplicas") == 2, (
                "the old objects went before the new were ready"
            )
        return old is None and kit.kube.get("Ingress", "inference-m3") is None

    wait_for(moved, timeout=60, what=f"m3 moved to {team}")
    for kind, name in (("Service", "m3"), ("Ingress", "inference-m3")):
        assert kit.kube.get(kind, name, team) is not None
        assert kit.kube.get(kind, name) is None
