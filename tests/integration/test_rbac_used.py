"""The daemon's Roles (k8s/daemon_objects.py) grant exactly what the daemon sends.

The daemon serves two namespaces (`INFERENCE_NAMESPACES`): a full endpoint lifecycle runs
in each against `k8s.sim` with the real daemon, then the lease is released and `run
--check` runs; every request the sim logged is mapped to an RBAC (namespace, apiGroup,
resource, verb, name) and matched against the rules of the Role in that namespace. A
request no rule allows fails the test (the daemon would get a 403 in a real cluster), and
so does a verb a Role grants that no request used (least privilege: grant only what is
used).

The cluster is read from the sim's memory while waiting (no request), so the log holds
the daemon's requests only.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from actors.app.daemon import check
from k8s.daemon_objects import build_daemon_objects
from k8s.sim import SimCluster
from k8s.sim.kinds import NAMESPACES
from k8s.sim.server import route
from store import commands
from store.rollout import RolloutRecord, revision
from store.rollout_commands import seed
from tests.integration.harness import NAMESPACE, Harness, wait_for

#: The sim's verbs (from method, name and `?watch`) as RBAC names them.
RBAC_VERBS = {
    "GET": "get",
    "LIST": "list",
    "WATCH": "watch",
    "CREATE": "create",
    "UPDATE": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}

#: The second namespace the daemon serves (its Role grants the endpoint objects only).
TEAM = "team-a"

# (namespace, apiGroup, resource, verb, object name)
Request = tuple[str, str, str, str, str | None]
# (namespace, apiGroup, resource, verb, resourceNames)
Grant = tuple[str, str, str, str, tuple[str, ...]]


def role_grants(lease_name: str) -> set[Grant]:
    """Every (namespace, group, resource, verb, resourceNames) the rendered Roles grant."""
    objects = build_daemon_objects(
        image="registry/sup:1", region="us-east-1", cluster_name="c1", namespaces=[TEAM],
        extra_env={"LEASE_NAME": lease_name},
    )  # fmt: skip
    roles = [obj for obj in objects if obj["kind"] == "Role"]
    assert [role["metadata"]["namespace"] for role in roles] == [NAMESPACE, TEAM]
    return {
        (role["metadata"]["namespace"], group, resource, verb, tuple(rule.get("resourceNames", ())))
        for role in roles
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def requests_made(sim: SimCluster) -> set[Request]:
    """Every API request in the sim's log as (namespace, group, resource, verb, name)."""
    made: set[Request] = set()
    for verb, path, _status in sim.requests_log():
        found = route(urlsplit(path).path)
        assert found is not None, path
        assert found.namespace in (NAMESPACE, TEAM), f"request outside the Roles: {path}"
        # A collection request (list, watch, create) has no name: RBAC cannot limit it by one.
        made.add((found.namespace, found.kind.group, found.resource, RBAC_VERBS[verb], found.name))
    return made


def allows(grant: Grant, request: Request) -> bool:
    namespace, group, resource, verb, names = grant
    if request[:4] != (namespace, group, resource, verb):
        return False
    return not names or request[4] in names


def stored(sim: SimCluster, plural: str, name: str, namespace: str) -> dict[str, Any] | None:
    """The object in the sim's memory (no API request, nothing logged)."""
    for obj in sim.objects(plural, namespace):
        if obj["metadata"]["name"] == name:
            return obj
    return None


def _lifecycle(kit: Harness, sim: SimCluster, name: str, namespace: str) -> None:
    """Create, update (Deployment and Service), canary add/weight/promote/rollback,
    autoscaling on/change/off, stop, start, a guarded rollout (its decisions are Events)
    and delete one endpoint, `name` in `namespace`."""

    def wait_object(plural: str, obj_name: str, test: Any = bool, what: str = "") -> None:
        wait_for(
            lambda: test(stored(sim, plural, obj_name, namespace)),
            what=what or f"{plural} {obj_name}",
        )

    def image(deployment: dict[str, Any] | None) -> str | None:
        if deployment is None:
            return None
        return deployment["spec"]["template"]["spec"]["containers"][0]["image"]

    def weighted(ingress: dict[str, Any] | None, weight: int) -> bool:
        annotations = (ingress or {}).get("metadata", {}).get("annotations", {})
        action = annotations.get("alb.ingress.kubernetes.io/actions.weighted-routing", "")
        return f'"weight": {weight}' in action or f'"weight":{weight}' in action

    kit.put(name, replicas=1, namespace=namespace)
    kit.wait_state(name, "running")
    kit.store.apply(name, commands.update_spec, {"image": "repo/model:v2", "port": 8080})
    wait_object("deployments", name, lambda d: image(d) == "repo/model:v2", "image updated")
    wait_object(
        "services",
        name,
        lambda s: s is not None and s["spec"]["ports"][0]["targetPort"] == 8080,
        "Service port updated",
    )
    kit.wait_state(name, "running")

    kit.store.apply(name, commands.set_canary, "repo/model:c1", 20)
    wait_object("services", f"{name}-canary")
    wait_object("ingresses", f"inference-{name}", lambda i: weighted(i, 20), "weighted Ingress")
    kit.store.apply(name, commands.set_canary, "repo/model:c1", 40)
    wait_object("ingresses", f"inference-{name}", lambda i: weighted(i, 40), "weight changed")
    kit.store.apply(name, commands.promote)
    wait_object("deployments", name, lambda d: image(d) == "repo/model:c1", "promoted")
    wait_object("services", f"{name}-canary", lambda s: s is None, "canary removed")

    kit.store.apply(
        name,
        commands.update_spec,
        {"autoscaling": {"enabled": True, "min_replicas": 1, "max_replicas": 4}},
    )
    wait_object("horizontalpodautoscalers", name)
    kit.store.apply(
        name,
        commands.update_spec,
        {"autoscaling": {"enabled": True, "min_replicas": 1, "max_replicas": 6}},
    )
    wait_object(
        "horizontalpodautoscalers",
        name,
        lambda h: h is not None and h["spec"]["maxReplicas"] == 6,
        "HPA updated",
    )
    kit.store.apply(name, commands.update_spec, {"autoscaling": {"enabled": False}})
    wait_object("horizontalpodautoscalers", name, lambda h: h is None, "HPA deleted")

    kit.store.apply(name, commands.set_canary, "repo/model:c2", 10)
    wait_object("deployments", f"{name}-canary")
    kit.store.apply(name, commands.set_desired_state, "stopped")
    kit.wait_state(name, "stopped")
    kit.store.apply(name, commands.set_desired_state, "running")
    kit.wait_state(name, "running")
    kit.store.apply(name, commands.rollback)
    wait_object("deployments", f"{name}-canary", lambda d: d is None, "canary rolled back")

    # A guarded rollout (architecture section 12): each of its decisions is an Event on the
    # Deployment.
    loaded = kit.item(name)
    assert loaded is not None
    new_spec = {"spec.image": "repo/model:v3", "spec.rollout": {"bake_seconds": 0}}
    kit.store.update(
        name, set_={**seed(loaded).set_, **new_spec}, expected_updated_at=loaded.updated_at
    )
    wait_for(
        lambda: (
            RolloutRecord.from_item(kit.item(name).raw).completed_revision
            == revision(kit.item(name).raw["spec"])
        ),
        what="the rollout completed",
    )
    assert any(
        e["involvedObject"]["name"] == name and e["reason"] == "RolloutCompleted"
        for e in sim.objects("events", namespace)
    )

    kit.store.apply(name, commands.set_desired_state, "deleted")
    wait_for(lambda: kit.item(name) is None, what="item purged")
    for plural, obj_name in [
        ("deployments", name),
        ("services", name),
        ("ingresses", f"inference-{name}"),
    ]:
        assert stored(sim, plural, obj_name, namespace) is None, f"{plural} {obj_name} left"


def test_role_grants_exactly_the_verbs_the_daemon_and_run_check_use(
    kit: Harness, sim: SimCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    # Created in the sim's memory: no request of ours in the log.
    sim.store.create(NAMESPACES, "", {"metadata": {"name": TEAM}})
    daemon = kit.start_daemon(INFERENCE_NAMESPACES=TEAM)
    _lifecycle(kit, sim, "m1", NAMESPACE)
    _lifecycle(kit, sim, "m2", TEAM)
    daemon.stop()  # releases the lease: an UPDATE of it
    assert check(kit.settings(INFERENCE_NAMESPACES=TEAM)) == 0, capsys.readouterr().out
    # A watch is logged when its stream ends (stopping the daemon ends it): wait for all.
    wait_for(
        lambda: len(sim.requests_log()) >= sim.counters()["total"],
        what="every counted request logged",
    )

    made = requests_made(sim)
    grants = role_grants(kit.settings().lease_name)
    not_allowed = sorted((r for r in made if not any(allows(g, r) for g in grants)), key=str)
    unused = sorted((g for g in grants if not any(allows(g, r) for r in made)), key=str)

    assert not_allowed == [], f"requests the Role does not allow: {not_allowed}"
    assert unused == [], f"the Role grants what the daemon never uses: {unused}"
