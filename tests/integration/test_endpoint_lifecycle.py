"""End-to-end behaviour of one region's daemon (architecture section 5 and the predecessor's
defects of section 11), with the real daemon against moto and `k8s.sim`."""

from __future__ import annotations

import json

import pykka

from actors.endpoint import EndpointActor
from k8s.workload import MANAGED_BY_LABEL, SPEC_HASH_ANNOTATION
from store import commands
from tests.integration.harness import Harness, scan_count, wait_for


def _container(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]["containers"][0]


def _writes(counters: dict[str, int]) -> int:
    """Writes to endpoint objects (the lease renewals are the daemon's, not an endpoint's)."""
    return sum(
        v
        for k, v in counters.items()
        if k.split(" ")[0] in ("CREATE", "UPDATE", "PATCH", "DELETE") and not k.endswith("leases")
    )


def test_new_endpoint_gets_every_object_and_reports_running(kit: Harness) -> None:
    kit.put("m1", replicas=2, port=8080, health_check_path="/ready")
    kit.start_daemon()
    status = kit.wait_state("m1", "running")
    assert (status.replicas_ready, status.replicas_desired) == (2, 2)
    deployment = kit.kube.get("Deployment", "m1")
    assert deployment is not None
    assert deployment["metadata"]["labels"][MANAGED_BY_LABEL] == "inference-supervisor"
    assert SPEC_HASH_ANNOTATION in deployment["metadata"]["annotations"]
    container = _container(deployment)
    assert container["image"] == "repo/model:v1"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    service = kit.kube.get("Service", "m1")
    assert service is not None
    assert service["spec"]["ports"][0]["port"] == 80
    assert service["spec"]["ports"][0]["targetPort"] == 8080
    ingress = kit.kube.get("Ingress", "inference-m1")
    assert ingress is not None
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/inference/m1"


def test_steady_state_makes_no_kubernetes_write_and_no_status_write(kit: Harness, sim) -> None:
    """Defect 15: status written every cycle, canary deleted every cycle."""
    kit.put("m1")
    kit.put("m2", canary={"image": "repo/model:v2", "weight": 10})
    daemon = kit.start_daemon()
    kit.wait_state("m1", "running")
    kit.wait_state("m2", "running")
    synced = {n: kit.status(n).last_sync for n in ("m1", "m2")}
    before = kit.item("m1")
    sim.reset_counters()
    scans = scan_count(daemon)
    wait_for(lambda: scan_count(daemon) >= scans + 8, what="eight more table scans")
    counters = sim.counters()
    assert _writes(counters) == 0, counters
    assert {n: kit.status(n).last_sync for n in ("m1", "m2")} == synced
    assert kit.item("m1").raw == before.raw


def test_steady_state_holds_one_copy_of_each_item(kit: Harness) -> None:
    """Memory: scan after scan, the supervisor and the endpoint's actor share one copy of
    an unchanged item (each scan's fresh copy is dropped), and a changed item replaces it
    for both."""
    kit.put("m1")
    daemon = kit.start_daemon()
    kit.wait_state("m1", "running")
    items = daemon.supervisor.proxy().items.get(timeout=5)

    def shared() -> bool:
        [actor] = pykka.ActorRegistry.get_by_class(EndpointActor)
        return actor.proxy().item.get(timeout=5) is items["m1"]

    scans = scan_count(daemon)
    wait_for(lambda: scan_count(daemon) >= scans + 3, what="three more table scans")
    assert shared(), "two copies of an unchanged item"
    before = items["m1"].content_hash
    kit.store.apply("m1", commands.update_spec, {"replicas": 2})
    wait_for(lambda: items["m1"].content_hash != before, what="the change seen")
    wait_for(shared, what="the changed item shared again")


def test_image_update_rolls_out_and_clears_the_region_override(kit: Harness) -> None:
    """Defect 2: the per-region image override must not survive an image update."""
    kit.put("m1", region_image_uris={"us-east-1": "regional/model:v1"})
    kit.start_daemon()
    kit.wait_state("m1", "running")
    assert _container(kit.kube.get("Deployment", "m1"))["image"] == "regional/model:v1"
    kit.store.apply("m1", commands.update_spec, {"image": "repo/model:v2"})
    wait_for(
        lambda: _container(kit.kube.get("Deployment", "m1"))["image"] == "repo/model:v2",
        what="the new image on the Deployment",
    )
    kit.wait_state("m1", "running")


def test_out_of_band_drift_in_env_resources_and_probes_is_repaired(kit: Harness) -> None:
    """Defect 7: only image and replicas were reconciled; everything else drifted forever."""
    kit.put("m1", env={"MODEL": "a"})
    kit.start_daemon()
    kit.wait_state("m1", "running")
    deployment = kit.kube.get("Deployment", "m1")
    container = _container(deployment)
    container["env"] = [{"name": "MODEL", "value": "tampered"}]
    container["resources"]["limits"]["cpu"] = "64"
    container["readinessProbe"]["httpGet"]["path"] = "/nope"
    kit.kube.merge_patch("Deployment", "m1", {"spec": {"template": deployment["spec"]["template"]}})

    def repaired() -> bool:
        c = _container(kit.kube.get("Deployment", "m1"))
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        return (
            env.get("MODEL") == "a"
            and c["resources"]["limits"]["cpu"] == "4"
            and c["readinessProbe"]["httpGet"]["path"] == "/health"
        )

    wait_for(repaired, what="drift repaired")


def test_stop_scales_to_zero_keeps_service_and_ingress_and_start_restores(kit: Harness) -> None:
    """Defect 1 (start after stop never scaled up) and defect 9 (a spec update restarted a
    stopped endpoint)."""
    kit.put("m1", replicas=3, autoscaling={"enabled": True, "min_replicas": 2, "max_replicas": 6})
    kit.start_daemon()
    kit.wait_state("m1", "running")
    assert kit.kube.get("HorizontalPodAutoscaler", "m1") is not None
    kit.store.apply("m1", commands.set_desired_state, "stopped")
    kit.wait_state("m1", "stopped")
    assert kit.kube.get("Deployment", "m1")["spec"]["replicas"] == 0
    assert kit.kube.get("HorizontalPodAutoscaler", "m1") is None
    assert kit.kube.get("Service", "m1") is not None
    assert kit.kube.get("Ingress", "inference-m1") is not None
    kit.store.apply("m1", commands.update_spec, {"env": {"NEW": "1"}})
    wait_for(
        lambda: any(
            e["name"] == "NEW" for e in _container(kit.kube.get("Deployment", "m1")).get("env", [])
        ),
        what="spec change applied while stopped",
    )
    assert kit.kube.get("Deployment", "m1")["spec"]["replicas"] == 0
    assert kit.state("m1") == "stopped"
    kit.store.apply("m1", commands.set_desired_state, "running")
    kit.wait_state("m1", "running")
    assert kit.kube.get("Deployment", "m1")["spec"]["replicas"] == 2
    assert kit.kube.get("HorizontalPodAutoscaler", "m1") is not None


def test_hpa_owns_replicas_and_follows_the_spec(kit: Harness) -> None:
    """Defect 6: HPA created once and never updated or deleted; replicas written over it."""
    kit.put("m1", replicas=1, autoscaling={"enabled": True, "min_replicas": 1, "max_replicas": 4})
    kit.start_daemon()
    kit.wait_state("m1", "running")
    # The HPA scales the Deployment: the daemon must leave that alone.
    kit.kube.merge_patch("Deployment", "m1", {"spec": {"replicas": 3}})
    kit.wait_state("m1", "running")
    assert kit.kube.get("Deployment", "m1")["spec"]["replicas"] == 3
    kit.store.apply(
        "m1",
        commands.update_spec,
        {
            "autoscaling": {
                "enabled": True,
                "min_replicas": 2,
                "max_replicas": 8,
                "metrics": [{"type": "memory", "target": 60}],
            }
        },
    )
    wait_for(
        lambda: kit.kube.get("HorizontalPodAutoscaler", "m1")["spec"]["maxReplicas"] == 8,
        what="HPA updated",
    )
    hpa = kit.kube.get("HorizontalPodAutoscaler", "m1")
    assert hpa["spec"]["minReplicas"] == 2
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "memory"
    kit.store.apply("m1", commands.update_spec, {"autoscaling": {"enabled": False}, "replicas": 5})
    wait_for(lambda: kit.kube.get("HorizontalPodAutoscaler", "m1") is None, what="HPA deleted")
    wait_for(
        lambda: kit.kube.get("Deployment", "m1")["spec"]["replicas"] == 5,
        what="spec replicas restored",
    )


def _backends(ingress: dict) -> tuple[str, dict | None]:
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    action = (
        ingress["metadata"]
        .get("annotations", {})
        .get("alb.ingress.kubernetes.io/actions.weighted-routing")
    )
    return backend["name"], json.loads(action) if action else None


def test_canary_add_weight_promote_and_rollback(kit: Harness) -> None:
    """Defects 2, 3 and 4: canary image, root path, Ingress never left on a deleted canary."""
    kit.put("m1", image="vllm/vllm-openai:v1", region_image_uris={"us-east-1": "r/vllm:v1"})
    kit.start_daemon()
    kit.wait_state("m1", "running")
    kit.store.apply("m1", commands.set_canary, "vllm/vllm-openai:v2", 20)
    wait_for(lambda: kit.kube.get("Deployment", "m1-canary"), what="canary Deployment")
    canary = _container(kit.kube.get("Deployment", "m1-canary"))
    assert canary["image"] == "vllm/vllm-openai:v2", "the canary runs its own image"
    assert "--root-path" in canary.get("args", []) + canary.get("command", [])
    # Applied in order within one reconcile: the Service follows the Deployment.
    wait_for(lambda: kit.kube.get("Service", "m1-canary"), what="canary Service")
    wait_for(lambda: _backends(kit.kube.get("Ingress", "inference-m1"))[1], what="weighted")
    name, action = _backends(kit.kube.get("Ingress", "inference-m1"))
    weights = {g["serviceName"]: g["weight"] for g in action["forwardConfig"]["targetGroups"]}
    assert name == "weighted-routing"
    assert weights == {"m1": 80, "m1-canary": 20}

    kit.store.apply("m1", commands.set_canary, "vllm/vllm-openai:v2", 50)
    wait_for(
        lambda: (
            {
                g["weight"]
                for g in _backends(kit.kube.get("Ingress", "inference-m1"))[1]["forwardConfig"][
                    "targetGroups"
                ]
            }
            == {50}
        ),
        what="weight change",
    )

    kit.store.apply("m1", commands.promote)
    wait_for(lambda: kit.kube.get("Service", "m1-canary") is None, what="canary removed")
    assert kit.kube.get("Deployment", "m1-canary") is None
    assert _container(kit.kube.get("Deployment", "m1"))["image"] == "vllm/vllm-openai:v2"
    assert _backends(kit.kube.get("Ingress", "inference-m1")) == ("m1", None)
    item = kit.item("m1")
    assert item.endpoint.spec.region_image_uris == {}
    assert item.endpoint.spec.canary is None

    kit.store.apply("m1", commands.set_canary, "vllm/vllm-openai:v3", 10)
    wait_for(lambda: kit.kube.get("Deployment", "m1-canary"), what="second canary")
    kit.store.apply("m1", commands.rollback)
    wait_for(lambda: kit.kube.get("Service", "m1-canary") is None, what="rolled back")
    assert _backends(kit.kube.get("Ingress", "inference-m1")) == ("m1", None)
    assert _container(kit.kube.get("Deployment", "m1"))["image"] == "vllm/vllm-openai:v2"


def test_delete_removes_everything_then_the_item(kit: Harness) -> None:
    kit.put(
        "m1",
        canary={"image": "repo/model:v2"},
        autoscaling={"enabled": True, "min_replicas": 1, "max_replicas": 3},
    )
    kit.start_daemon()
    kit.wait_state("m1", "running")
    kit.store.apply("m1", commands.set_desired_state, "deleted")
    wait_for(lambda: kit.item("m1") is None, what="item purged")
    for kind, name in [
        ("Deployment", "m1"),
        ("Deployment", "m1-canary"),
        ("Service", "m1"),
        ("Service", "m1-canary"),
        ("Ingress", "inference-m1"),
        ("HorizontalPodAutoscaler", "m1"),
    ]:
        assert kit.kube.get(kind, name) is None, f"{kind} {name} left behind"


def test_delete_waits_for_every_target_region_before_purging(kit: Harness) -> None:
    kit.put("m1", regions=("us-east-1", "eu-west-1"))
    kit.start_daemon()
    kit.wait_state("m1", "running")
    kit.store.apply("m1", commands.set_desired_state, "deleted")
    kit.wait_state("m1", "deleted")
    assert kit.item("m1") is not None, "eu-west-1 has not reported deleted yet"
    assert kit.kube.get("Deployment", "m1") is None


def test_failed_delete_is_reported_as_error_never_deleted(kit: Harness, sim) -> None:
    """Defect 10: failed deletes reported as deleted."""
    kit.put("m1")
    kit.start_daemon()
    kit.wait_state("m1", "running")
    sim.set_faults(error_rate=1.0, error_status=500, verbs=("DELETE",))
    kit.store.apply("m1", commands.set_desired_state, "deleted")
    status = kit.wait_state("m1", "error", timeout=30)
    assert "delete" in (status.error or "").lower() or "500" in (status.error or "")
    assert kit.kube.get("Deployment", "m1") is not None
    sim.clear_faults()
    wait_for(lambda: kit.item("m1") is None, timeout=60, what="purged after the API healed")


def test_region_removed_from_targets_cleans_up_and_drops_its_status(kit: Harness) -> None:
    kit.put("m1", regions=("us-east-1", "eu-west-1"))
    kit.start_daemon()
    kit.wait_state("m1", "running")
    item = kit.item("m1")
    kit.store.update(
        "m1", set_={"target_regions": ["eu-west-1"]}, expected_updated_at=item.updated_at
    )
    wait_for(lambda: kit.status("m1") is None, what="status entry dropped")
    assert kit.kube.get("Deployment", "m1") is None
    assert kit.kube.get("Ingress", "inference-m1") is None
    assert kit.item("m1") is not None


def test_invalid_item_is_reported_never_applied_never_rewritten(kit: Harness) -> None:
    kit.put_raw("m1", replicas=5000)
    before = kit.item("m1").raw
    kit.start_daemon()
    status = kit.wait_state("m1", "error")
    assert "spec.replicas" in (status.error or "")
    assert kit.kube.get("Deployment", "m1") is None
    after = dict(kit.item("m1").raw)
    after.pop("region_status", None)
    expected = dict(before)
    expected.pop("region_status", None)
    assert after == expected


def test_unmanaged_object_with_the_same_name_is_never_touched(kit: Harness) -> None:
    foreign = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "m1", "labels": {"owner": "someone-else"}},
        "spec": {"ports": [{"port": 1234}], "selector": {"app": "other"}},
    }
    kit.kube.create("Service", foreign)
    kit.put("m1")
    kit.start_daemon()
    status = kit.wait_state("m1", "error")
    assert "not managed" in (status.error or "")
    assert kit.kube.get("Service", "m1")["spec"]["ports"][0]["port"] == 1234
