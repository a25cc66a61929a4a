"""End-to-end scenarios of one region's daemon, the same code against `k8s.sim` and a
real k3s (architecture sections 4, 5 and 9.3): the daemon runs in-process against the
session's moto DynamoDB and reaches the cluster through a kubeconfig, exactly as
it would in production; the test reads the cluster with the real kubernetes client.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from structlog.testing import capture_logs

from k8s.daemon_objects import APP_NAME, build_daemon_objects
from k8s.gateway import make_api_client
from k8s.manifests import KINDS
from k8s.workload import MANAGED_BY_LABEL, MANAGED_BY_VALUE
from store import commands
from tests.integration import predecessor
from tests.k3s.backends import (
    BASE_SPEC,
    K3S_TIMEOUT_SECONDS,
    REAL_TIMEOUT_SECONDS,
    REQUEST_TIMEOUT,
    Cluster,
    RealSession,
)
from tests.k3s.gate import ConnectionGate
from tests.k3s.kit import (
    APIS,
    REGION,
    WORKLOAD_KINDS,
    EndpointKit,
    container,
    endpoint_kit,
    rolled_out,
    wait_for,
)

ALB_FINALIZER = "ingress.k8s.aws/resources"
MERGE_PATCH = "application/merge-patch+json"
WEIGHTED_ACTION = "alb.ingress.kubernetes.io/actions.weighted-routing"
LEASE_NAME = "inference-monitor-leader"
# Leadership moves on lease timings (3 s in the kit), not on pods: the same bound on both.
FAILOVER_SECONDS = 15
# etcd's answer to a watch from a compacted revision (a watch cache says "too old
# resource version: X (Y)" instead).
ETCD_COMPACTED = "The resourceVersion for the provided watch is too old"
# With an HPA on a real cluster: requests large enough that an idle model server stays
# far below the 70 % CPU / 60 % memory targets, so the HPA holds its minimum.
HPA_RESOURCES = {
    "requests": {"cpu": "250m", "memory": "128Mi"},
    "limits": {"cpu": "500m", "memory": "256Mi"},
}


def _ready_pods(kit: EndpointKit, app: str, image: str, count: int) -> bool:
    """Exactly `count` pods of `app`, all Ready, all running `image` (none terminating)."""
    pods = kit.kube.items("Pod", f"app={app}") or []
    if len(pods) != count:
        return False
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp"):
            return False
        if pod["spec"]["containers"][0]["image"] != image:
            return False
        conditions = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions", [])}
        if conditions.get("Ready") != "True":
            return False
    return True


def _routing(kit: EndpointKit, name: str) -> tuple[str, dict[str, int] | None]:
    """The Ingress's backend service and, when weighted, the weight per Service; every
    Service the Ingress sends traffic to must exist."""
    ingress = kit.kube.get("Ingress", f"inference-{name}")
    assert ingress is not None, "the Ingress is missing"
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"]
    action = (ingress["metadata"].get("annotations") or {}).get(WEIGHTED_ACTION)
    if action is None:
        assert kit.kube.get("Service", backend) is not None, f"Ingress points at {backend}"
        return backend, None
    groups = json.loads(action)["forwardConfig"]["targetGroups"]
    for group in groups:
        assert kit.kube.get("Service", group["serviceName"]) is not None, group
    return backend, {g["serviceName"]: g["weight"] for g in groups}


def _deployment(kit: EndpointKit, name: str) -> dict[str, Any]:
    deployment = kit.kube.get("Deployment", name)
    assert deployment is not None, f"Deployment {name} is missing"
    return deployment


def test_new_endpoint_runs_with_every_pod_ready(kit: EndpointKit) -> None:
    kit.put("m1", replicas=2)
    kit.start_daemon()
    status = kit.wait_state("m1", "running")
    assert (status.replicas_ready, status.replicas_desired) == (2, 2)
    assert rolled_out(kit.kube.get("Deployment", "m1"), 2)
    image = kit.cluster.image("v1")
    kit.wait(lambda: _ready_pods(kit, "m1", image, 2), "two ready pods")
    service = kit.kube.get("Service", "m1")
    assert service is not None
    assert (service["spec"]["ports"][0]["port"], service["spec"]["ports"][0]["targetPort"]) == (
        80,
        8000,
    )
    ingress = kit.kube.get("Ingress", "inference-m1")
    assert ingress is not None
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/inference/m1"
    assert _routing(kit, "m1") == ("m1", None)


def test_image_update_rolls_out_to_every_pod(kit: EndpointKit) -> None:
    kit.put("m1", replicas=2)
    kit.start_daemon()
    kit.wait_state("m1", "running")
    generation = _deployment(kit, "m1")["metadata"]["generation"]
    kit.store.apply("m1", commands.update_spec, {"image": kit.cluster.image("v2")})
    new_image = kit.cluster.image("v2")
    kit.wait(lambda: container(_deployment(kit, "m1"))["image"] == new_image, "the new image")
    assert _deployment(kit, "m1")["metadata"]["generation"] > generation
    kit.wait(lambda: rolled_out(kit.kube.get("Deployment", "m1"), 2), "the rollout")
    kit.wait(lambda: _ready_pods(kit, "m1", new_image, 2), "two ready pods on the new image")
    kit.wait_state("m1", "running")


def test_stop_scales_to_zero_and_start_brings_the_pods_back(kit: EndpointKit) -> None:
    kit.put("m1", replicas=2)
    kit.start_daemon()
    kit.wait_state("m1", "running")
    kit.store.apply("m1", commands.set_desired_state, "stopped")
    kit.wait_state("m1", "stopped")
    assert _deployment(kit, "m1")["spec"]["replicas"] == 0
    kit.wait(lambda: not kit.kube.items("Pod", "app=m1"), "every pod gone")
    assert kit.kube.get("Service", "m1") is not None
    assert kit.kube.get("Ingress", "inference-m1") is not None
    kit.store.apply("m1", commands.set_desired_state, "running")
    status = kit.wait_state("m1", "running")
    assert (status.replicas_ready, status.replicas_desired) == (2, 2)
    assert _deployment(kit, "m1")["spec"]["replicas"] == 2
    kit.wait(lambda: _ready_pods(kit, "m1", kit.cluster.image("v1"), 2), "two ready pods")


def test_autoscaling_on_creates_the_hpa_and_off_restores_replicas(kit: EndpointKit) -> None:
    kit.put(
        "m1",
        replicas=1,
        resources=HPA_RESOURCES,
        autoscaling={"enabled": True, "min_replicas": 2, "max_replicas": 4},
    )
    kit.start_daemon()
    hpa = kit.wait(lambda: kit.kube.get("HorizontalPodAutoscaler", "m1"), "the HPA")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "m1",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 4)
    assert hpa["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 70},
            },
        }
    ]
    # The HPA raises replicas to its minimum; the daemon must not write them back to 1.
    kit.wait(lambda: rolled_out(kit.kube.get("Deployment", "m1"), 2), "the HPA's two replicas")
    kit.wait_state("m1", "running")
    assert _deployment(kit, "m1")["spec"]["replicas"] == 2
    kit.store.apply(
        "m1",
        commands.update_spec,
        {
            "autoscaling": {
                "enabled": True,
                "min_replicas": 2,
                "max_replicas": 6,
                "metrics": [{"type": "memory", "target": 60}],
            }
        },
    )
    hpa = kit.wait(
        lambda: (
            (h := kit.kube.get("HorizontalPodAutoscaler", "m1"))
            and h["spec"]["maxReplicas"] == 6
            and h
        ),
        "the HPA updated",
    )
    assert hpa["spec"]["metrics"][0]["resource"] == {
        "name": "memory",
        "target": {"type": "Utilization", "averageUtilization": 60},
    }
    kit.store.apply("m1", commands.update_spec, {"autoscaling": {"enabled": False}, "replicas": 3})
    kit.wait(lambda: kit.kube.get("HorizontalPodAutoscaler", "m1") is None, "the HPA deleted")
    kit.wait(lambda: rolled_out(kit.kube.get("Deployment", "m1"), 3), "the spec's 3 replicas")
    status = kit.wait_state("m1", "running")
    assert status.replicas_desired == 3


def test_canary_add_promote_and_rollback_move_the_ingress(kit: EndpointKit) -> None:
    v1, v2, v3 = (kit.cluster.image(v) for v in ("v1", "v2", "v3"))
    kit.put("m1")
    kit.start_daemon()
    kit.wait_state("m1", "running")

    kit.store.apply("m1", commands.set_canary, v2, 20)
    kit.wait(lambda: rolled_out(kit.kube.get("Deployment", "m1-canary"), 1), "canary ready")
    assert container(_deployment(kit, "m1-canary"))["image"] == v2
    kit.wait(lambda: _ready_pods(kit, "m1-canary", v2, 1), "the canary pod")
    assert kit.kube.get("Service", "m1-canary") is not None
    kit.wait(lambda: _routing(kit, "m1")[1], "weighted routing")
    assert _routing(kit, "m1") == ("weighted-routing", {"m1": 80, "m1-canary": 20})
    assert container(_deployment(kit, "m1"))["image"] == v1

    kit.store.apply("m1", commands.promote)
    kit.wait(lambda: kit.kube.get("Service", "m1-canary") is None, "canary Service removed")
    kit.wait(lambda: kit.kube.get("Deployment", "m1-canary") is None, "canary removed")
    assert _routing(kit, "m1") == ("m1", None)
    assert container(_deployment(kit, "m1"))["image"] == v2
    kit.wait(lambda: rolled_out(kit.kube.get("Deployment", "m1"), 1), "primary on the canary image")
    kit.wait_state("m1", "running")
    item = kit.store.get("m1")
    assert item is not None
    assert item.endpoint.spec.canary is None

    kit.store.apply("m1", commands.set_canary, v3, 10)
    kit.wait(lambda: kit.kube.get("Deployment", "m1-canary"), "second canary")
    kit.wait(lambda: _routing(kit, "m1")[1], "weighted routing again")
    assert _routing(kit, "m1") == ("weighted-routing", {"m1": 90, "m1-canary": 10})
    kit.store.apply("m1", commands.rollback)
    kit.wait(lambda: kit.kube.get("Deployment", "m1-canary") is None, "canary rolled back")
    kit.wait(lambda: kit.kube.get("Service", "m1-canary") is None, "canary Service rolled back")
    assert _routing(kit, "m1") == ("m1", None)
    assert container(_deployment(kit, "m1"))["image"] == v2
    kit.wait(lambda: not kit.kube.items("Pod", "app=m1-canary"), "canary pods gone")


def test_watchdog_removes_the_ingress_of_a_never_ready_primary(kit: EndpointKit) -> None:
    kit.put("m1", **kit.cluster.never_ready_spec())
    kit.start_daemon(INFERENCE_UNHEALTHY_THRESHOLD_SECONDS="5")
    kit.wait(lambda: kit.kube.get("Deployment", "m1"), "the Deployment")
    status = kit.wait(
        lambda: (
            kit.kube.get("Ingress", "inference-m1") is None
            and kit.state("m1") == "error"
            and kit.status("m1")
        ),
        "the watchdog to cut traffic",
    )
    assert "traffic stopped" in (status.error or "")
    deployment = _deployment(kit, "m1")
    assert not deployment.get("status", {}).get("readyReplicas")
    available = {c["type"]: c for c in deployment["status"]["conditions"]}["Available"]
    assert (available["status"], available["reason"]) == ("False", "MinimumReplicasUnavailable")
    assert kit.kube.get("Service", "m1") is not None
    # The primary is fixed: traffic comes back once it is ready.
    kit.store.apply("m1", commands.update_spec, {**kit.cluster.healthy_spec("v2"), "env": None})
    kit.wait(lambda: kit.kube.get("Ingress", "inference-m1"), "the Ingress restored")
    kit.wait_state("m1", "running")
    assert _routing(kit, "m1") == ("m1", None)


def test_delete_leaves_nothing_in_the_namespace(kit: EndpointKit) -> None:
    kit.put(
        "m1",
        replicas=1,
        resources=HPA_RESOURCES,
        canary={"image": kit.cluster.image("v2"), "weight": 10},
        autoscaling={"enabled": True, "min_replicas": 1, "max_replicas": 3},
    )
    kit.start_daemon()
    kit.wait_state("m1", "running")
    assert kit.kube.get("HorizontalPodAutoscaler", "m1") is not None
    assert kit.kube.get("Deployment", "m1-canary") is not None
    kit.store.apply("m1", commands.set_desired_state, "deleted")
    kit.wait(lambda: kit.store.get("m1") is None, "the item purged")

    def leftovers() -> dict[str, list[str]]:
        left = {}
        for kind in WORKLOAD_KINDS:
            names = sorted(i["metadata"]["name"] for i in kit.kube.items(kind) or [])
            if names:
                left[kind] = names
        return left

    kit.wait(lambda: not leftovers(), "an empty namespace")
    assert leftovers() == {}


def test_delete_reports_deleting_while_the_ingress_finalizer_holds_then_purges(
    kit: EndpointKit,
) -> None:
    """The AWS Load Balancer Controller's finalizer (put here by hand, as it would) keeps
    the deleted Ingress until the load balancer is gone: the endpoint reports `deleting`
    (section 5), not `error`, and is purged once the finalizer goes."""
    kit.put("m1")
    kit.start_daemon()
    kit.wait_state("m1", "running")
    ingresses = client.NetworkingV1Api(kit.cluster.api)
    ns = kit.cluster.namespace
    ingresses.patch_namespaced_ingress(
        "inference-m1",
        ns,
        {"metadata": {"finalizers": [ALB_FINALIZER]}},
        _content_type=MERGE_PATCH,
        _request_timeout=REQUEST_TIMEOUT,
    )
    kit.store.apply("m1", commands.set_desired_state, "deleted")
    seen: list[str | None] = []

    def state() -> str | None:
        now = kit.state("m1") if kit.store.get("m1") is not None else "purged"
        if not seen or seen[-1] != now:
            seen.append(now)
        return now

    kit.wait(lambda: state() == "deleting", "deleting")
    kit.wait(
        lambda: state()
        and kit.kube.get("Deployment", "m1") is None
        and kit.kube.get("Service", "m1") is None,
        "everything but the Ingress removed",
    )
    ingress = kit.kube.get("Ingress", "inference-m1")
    assert ingress is not None
    assert ingress["metadata"]["deletionTimestamp"]
    ingresses.patch_namespaced_ingress(
        "inference-m1",
        ns,
        {"metadata": {"finalizers": None}},
        _content_type=MERGE_PATCH,
        _request_timeout=REQUEST_TIMEOUT,
    )
    kit.wait(lambda: state() == "purged", "the item purged")
    assert kit.kube.get("Ingress", "inference-m1") is None
    assert "error" not in seen, seen


def test_leader_hands_over_on_stop_and_the_standby_reconciles(kit: EndpointKit) -> None:
    first = kit.start_daemon(POD_NAME="daemon-a")
    wait_for(lambda: first.snapshot().leading, timeout=FAILOVER_SECONDS, what="a leads")
    second = kit.start_daemon(POD_NAME="daemon-b")
    kit.put("m1")
    kit.wait_state("m1", "running")
    assert not second.snapshot().leading
    lease = kit.kube.get("Lease", LEASE_NAME)
    assert lease is not None
    assert lease["spec"]["holderIdentity"] == "daemon-a"
    first.stop()
    wait_for(lambda: second.snapshot().leading, timeout=FAILOVER_SECONDS, what="b leads")
    assert kit.kube.get("Lease", LEASE_NAME)["spec"]["holderIdentity"] == "daemon-b"
    kit.store.apply("m1", commands.update_spec, {"replicas": 2})
    kit.wait(lambda: rolled_out(kit.kube.get("Deployment", "m1"), 2), "b reconciles")
    status = kit.wait_state("m1", "running")
    assert status.replicas_ready == 2


def test_crashed_leader_is_replaced_after_its_lease_expires(kit: EndpointKit) -> None:
    first = kit.start_daemon(POD_NAME="daemon-a")
    wait_for(lambda: first.snapshot().leading, timeout=FAILOVER_SECONDS, what="a leads")
    second = kit.start_daemon(POD_NAME="daemon-b")
    kit.put("m1")
    kit.wait_state("m1", "running")
    first.stop(release=False)
    assert kit.kube.get("Lease", LEASE_NAME)["spec"]["holderIdentity"] == "daemon-a"
    wait_for(lambda: second.snapshot().leading, timeout=FAILOVER_SECONDS, what="b leads")
    kit.store.apply("m1", commands.update_spec, {"replicas": 2})
    kit.wait(lambda: rolled_out(kit.kube.get("Deployment", "m1"), 2), "b reconciles")


def test_a_lease_deleted_by_hand_does_not_freeze_status(kit: EndpointKit) -> None:
    """Issue 19 item 10 and issue 22 case 2 on every backend: after a handover the Lease is
    deleted by hand; the leader recreates it (leaseTransitions 0 again) and its status
    writes go on, since the epoch they carry comes from the table, not the Lease."""
    first = kit.start_daemon(POD_NAME="daemon-a")
    wait_for(lambda: first.snapshot().leading, timeout=FAILOVER_SECONDS, what="a leads")
    second = kit.start_daemon(POD_NAME="daemon-b")
    kit.put("m1")
    kit.wait_state("m1", "running")
    first.stop()
    wait_for(lambda: second.snapshot().leading, timeout=FAILOVER_SECONDS, what="b leads")
    kit.store.apply("m1", commands.update_spec, {"replicas": 2})
    kit.wait(
        lambda: (s := kit.status("m1")) is not None
        and (s.holder, s.state, s.replicas_ready) == ("daemon-b", "running", 2),
        "b reports 2 ready replicas",
    )
    client.CoordinationV1Api(kit.cluster.api).delete_namespaced_lease(
        LEASE_NAME, kit.cluster.namespace, _request_timeout=REQUEST_TIMEOUT
    )
    kit.wait(
        lambda: (lease := kit.kube.get("Lease", LEASE_NAME)) is not None
        and lease["spec"]["holderIdentity"] == "daemon-b"
        and not lease["spec"].get("leaseTransitions"),
        "the Lease recreated by the leader",
    )
    kit.store.apply("m1", commands.update_spec, {"replicas": 1})
    kit.wait(
        lambda: (s := kit.status("m1")) is not None
        and (s.state, s.replicas_desired, s.replicas_ready) == ("running", 1, 1),
        "the change reported after the Lease was recreated",
    )


def _create(kit: EndpointKit, obj: dict[str, Any]) -> None:
    api_class, suffix = APIS[obj["kind"]]
    create = getattr(api_class(kit.cluster.api), f"create_namespaced_{suffix}")
    create(kit.cluster.namespace, obj, _request_timeout=REQUEST_TIMEOUT)


def _pod_uids(kit: EndpointKit, app: str) -> set[str]:
    return {p["metadata"]["uid"] for p in kit.kube.items("Pod", f"app={app}") or []}


def test_adopting_the_predecessors_objects_keeps_their_pods(kit: EndpointKit) -> None:
    """Switching over from the predecessor (section 3, defect 29): its Deployment is
    adopted by a metadata-only write; its pods and (on a real server) its ReplicaSet are
    the same objects afterwards. Its generation may move (a real server bumps it for
    the annotations the daemon records), its pod template does not."""
    spec = {**BASE_SPEC, "image": kit.cluster.image("v1"), "port": 8000, "replicas": 2}
    for obj in predecessor.objects("m1", spec, kit.cluster.namespace):
        _create(kit, obj)
    kit.wait(lambda: rolled_out(kit.kube.get("Deployment", "m1"), 2), "the predecessor's pods")
    before = _deployment(kit, "m1")
    pods = _pod_uids(kit, "m1")
    replica_sets = kit.kube.items("ReplicaSet", "app=m1")
    kit.store.create_item(
        predecessor.item("m1", spec, region=REGION, namespace=kit.cluster.namespace)
    )
    kit.start_daemon()
    kit.wait_state("m1", "running")
    kit.wait(
        lambda: (
            _deployment(kit, "m1")["metadata"].get("labels", {}).get(MANAGED_BY_LABEL)
            == MANAGED_BY_VALUE
        ),
        "the Deployment adopted",
    )
    after = _deployment(kit, "m1")
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["spec"]["template"] == before["spec"]["template"]
    assert rolled_out(after, 2)
    assert _pod_uids(kit, "m1") == pods
    if replica_sets is not None:  # the sim keeps none
        assert [rs["metadata"]["uid"] for rs in kit.kube.items("ReplicaSet", "app=m1") or []] == [
            rs["metadata"]["uid"] for rs in replica_sets
        ]


@pytest.mark.parametrize(
    "backend_kind",
    [pytest.param("real", id="real", marks=[pytest.mark.timeout(REAL_TIMEOUT_SECONDS)])],
    indirect=True,
)
def test_an_api_server_restart_is_survived_and_a_hand_deletion_after_it_repaired(
    kit: EndpointKit, backend_kind: RealSession
) -> None:
    """Real control plane only: kube-apiserver stops and starts again on the same etcd
    while the daemon runs (its watches break; resuming from a version older than the
    new watch caches is a real 410, so it relists). A Service deleted by hand after the
    restart comes back, and a spec change still rolls out."""
    kit.put("m1")
    kit.start_daemon()
    kit.wait_state("m1", "running")
    assert backend_kind.cluster_process is not None
    backend_kind.cluster_process.restart_apiserver()
    core = client.CoreV1Api(kit.cluster.api)
    core.delete_namespaced_service("m1", kit.cluster.namespace, _request_timeout=REQUEST_TIMEOUT)
    kit.wait(lambda: kit.kube.get("Service", "m1") is not None, "the Service recreated")
    kit.store.apply("m1", commands.update_spec, {"replicas": 2})
    kit.wait(lambda: rolled_out(kit.kube.get("Deployment", "m1"), 2), "the update")
    kit.wait_state("m1", "running")


def _gated_kubeconfig(cluster: Cluster, gate: ConnectionGate, path: Path) -> Path:
    """The cluster's kubeconfig with the server behind `gate` (same credentials and CA:
    the gate forwards the TLS bytes unchanged)."""
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    for entry in config["clusters"]:
        entry["cluster"]["server"] = gate.url
    path.write_text(yaml.safe_dump(config))
    return path


def _compacted(core: client.CoreV1Api, namespace: str, resource_version: str) -> bool:
    """True when a Service watch from `resource_version` answers 410 (etcd compacted past
    it); until then the watch replays what came after it."""
    response = core.list_namespaced_service(
        namespace,
        watch=True,
        resource_version=resource_version,
        timeout_seconds=1,
        _preload_content=False,
        _request_timeout=REQUEST_TIMEOUT,
    )
    try:
        events = [json.loads(line) for line in response.read().splitlines() if line.strip()]
    finally:
        response.release_conn()
    return any(e["type"] == "ERROR" and e["object"].get("code") == 410 for e in events)


@pytest.mark.parametrize(
    "compacting_kind",
    [pytest.param("real", id="real", marks=[pytest.mark.timeout(REAL_TIMEOUT_SECONDS)])],
    indirect=True,
)
def test_watches_cut_off_past_an_etcd_compaction_relist_and_repair_what_changed_meanwhile(
    compacting_backend: Cluster,
    compacting_kind: RealSession,
    dynamo_url: str,
    table_name: str,
    tmp_path: Path,
) -> None:
    """Real control plane without a watch cache: etcd serves every watch and compacts
    every second. The daemon reaches the server through a `ConnectionGate`, closed while
    a Service is deleted by hand and the item's replicas change, until etcd has compacted
    past every resourceVersion the daemon's watches hold. Once it opens, each watch
    resumes from its old resourceVersion, gets etcd's own 410 (not a watch cache's) and
    lists again: the Service comes back and the update rolls out. The lease (60 s here)
    outlasts the cut, so these are the same informers relisting, not a new term's."""
    cluster = compacting_backend
    assert compacting_kind.cluster_process is not None
    server = compacting_kind.cluster_process
    gate = ConnectionGate((server.host, server.port)).start()
    try:
        with endpoint_kit(cluster, dynamo_url=dynamo_url, table_name=table_name) as kit:
            kit.put("m1")
            kit.start_daemon(
                KUBECONFIG=str(_gated_kubeconfig(cluster, gate, tmp_path / "gated.yaml")),
                LEASE_DURATION_SECONDS="60",
                LEASE_RENEW_DEADLINE_SECONDS="40",
                LEASE_RETRY_PERIOD_SECONDS="1",
            )
            kit.wait_state("m1", "running")
            core = client.CoreV1Api(cluster.api)
            with capture_logs() as logs:
                gate.close()
                cut_at = core.list_namespaced_service(
                    cluster.namespace, _request_timeout=REQUEST_TIMEOUT
                ).metadata.resource_version
                core.delete_namespaced_service(
                    "m1", cluster.namespace, _request_timeout=REQUEST_TIMEOUT
                )
                kit.store.apply("m1", commands.update_spec, {"replicas": 2})
                kit.wait(
                    lambda: _compacted(core, cluster.namespace, cut_at),
                    "etcd compacted past the daemon's resourceVersions",
                )
                gate.open()
                kit.wait(lambda: kit.kube.get("Service", "m1") is not None, "the Service back")
                kit.wait(lambda: rolled_out(kit.kube.get("Deployment", "m1"), 2), "the update")
                kit.wait_state("m1", "running")
            relisted = {
                entry["kind"]
                for entry in logs
                if entry["event"] == "watch cannot resume, listing again"
                and ETCD_COMPACTED in entry["error"]
            }
            # Every watched kind resumed from a compacted revision: all four relisted.
            assert relisted == set(KINDS), relisted
            assert not [e for e in logs if e["event"] == "watches started"], "a new term"
    finally:
        gate.stop()


def _service_account_kubeconfig(kit: EndpointKit, path: Path) -> Path:
    """A kubeconfig for the same server that authenticates as the daemon's
    ServiceAccount (a short-lived token from the TokenRequest API)."""
    core = client.CoreV1Api(kit.cluster.api)
    request = core.create_namespaced_service_account_token(
        APP_NAME,
        kit.cluster.namespace,
        {"spec": {"expirationSeconds": 3600}},
        _request_timeout=REQUEST_TIMEOUT,
    )
    config = yaml.safe_load(kit.cluster.kubeconfig.read_text())
    for user in config["users"]:
        user["user"] = {"token": request.status.token}
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    "backend_kind",
    [
        pytest.param("real", id="real", marks=[pytest.mark.timeout(REAL_TIMEOUT_SECONDS)]),
        pytest.param(
            "k3s", id="k3s", marks=[pytest.mark.k3s, pytest.mark.timeout(K3S_TIMEOUT_SECONDS)]
        ),
    ],
    indirect=True,
)
def test_daemon_manifests_are_accepted_and_their_rbac_is_enough(
    kit: EndpointKit, tmp_path: Path
) -> None:
    """Real servers only (the sim has no authorization and serves only the daemon's own
    kinds): the real authorizer judges the rendered Role, least privilege included."""
    manifests = build_daemon_objects(
        image="inference-supervisor:test",
        region=REGION,
        cluster_name=f"{kit.cluster.name}-cluster",
        namespace=kit.cluster.namespace,
        table_name=kit.table_name,
    )
    by_kind = {m["kind"]: m for m in manifests}
    assert set(by_kind) == {
        "Namespace",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "Deployment",
        "PodDisruptionBudget",
        "Service",
    }
    ns = kit.cluster.namespace
    api = kit.cluster.api
    rbac = client.RbacAuthorizationV1Api(api)
    client.CoreV1Api(api).create_namespaced_service_account(
        ns, by_kind["ServiceAccount"], _request_timeout=REQUEST_TIMEOUT
    )
    rbac.create_namespaced_role(ns, by_kind["Role"], _request_timeout=REQUEST_TIMEOUT)
    rbac.create_namespaced_role_binding(
        ns, by_kind["RoleBinding"], _request_timeout=REQUEST_TIMEOUT
    )
    # The daemon's own pods need its image, which this harness does not build: the
    # server validates (and admits) them without creating anything.
    for create, kind in (
        (client.AppsV1Api(api).create_namespaced_deployment, "Deployment"),
        (client.PolicyV1Api(api).create_namespaced_pod_disruption_budget, "PodDisruptionBudget"),
        (client.CoreV1Api(api).create_namespaced_service, "Service"),
    ):
        create(ns, by_kind[kind], dry_run="All", _request_timeout=REQUEST_TIMEOUT)

    kubeconfig = _service_account_kubeconfig(kit, tmp_path / "daemon-kubeconfig.yaml")
    kit.put(
        "m1",
        resources=HPA_RESOURCES,
        autoscaling={"enabled": True, "min_replicas": 1, "max_replicas": 2},
    )
    daemon = kit.start_daemon(KUBECONFIG=str(kubeconfig), POD_NAME="daemon-rbac")
    wait_for(lambda: daemon.snapshot().leading, timeout=FAILOVER_SECONDS, what="it leads")
    kit.wait_state("m1", "running")
    kit.store.apply("m1", commands.update_spec, {"autoscaling": {"enabled": False}, "replicas": 2})
    kit.wait(lambda: rolled_out(kit.kube.get("Deployment", "m1"), 2), "the update")
    kit.store.apply("m1", commands.set_desired_state, "deleted")
    kit.wait(lambda: kit.store.get("m1") is None, "the item purged")
    assert kit.kube.get("Deployment", "m1") is None

    # Least privilege, as the real authorizer judges the daemon's own identity: the
    # rendered Role's verbs and nothing beside them.
    account = make_api_client(kubeconfig=str(kubeconfig))
    try:
        allowed = {
            (verb, resource, name): _allowed(account, ns, verb, resource, name=name)
            for verb, resource, name in (
                ("update", "deployments.apps", ""),
                ("create", "events", ""),
                ("update", "leases.coordination.k8s.io", LEASE_NAME),
                ("update", "leases.coordination.k8s.io", "someone-elses-lease"),
                ("patch", "deployments.apps", ""),
                ("list", "pods", ""),
                ("get", "secrets", ""),
                ("delete", "events", ""),
            )
        }
        assert allowed == {
            ("update", "deployments.apps", ""): True,
            ("create", "events", ""): True,
            ("update", "leases.coordination.k8s.io", LEASE_NAME): True,
            ("update", "leases.coordination.k8s.io", "someone-elses-lease"): False,
            ("patch", "deployments.apps", ""): False,
            ("list", "pods", ""): False,
            ("get", "secrets", ""): False,
            ("delete", "events", ""): False,
        }
        assert not _allowed(account, "default", "list", "deployments.apps")
        assert not _allowed(account, "", "list", "namespaces")
    finally:
        account.close()


def _allowed(
    api: client.ApiClient, namespace: str, verb: str, resource: str, *, name: str = ""
) -> bool:
    """The server's own answer (SelfSubjectAccessReview) for the caller of `api`."""
    plural, _, group = resource.partition(".")
    attributes = {"namespace": namespace, "verb": verb, "resource": plural, "group": group}
    if name:
        attributes["name"] = name
    review = client.AuthorizationV1Api(api).create_self_subject_access_review(
        {"spec": {"resourceAttributes": attributes}}, _request_timeout=REQUEST_TIMEOUT
    )
    return bool(review.status.allowed)
