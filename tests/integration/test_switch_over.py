"""Switch-over from GCO's inference monitor restarts no pod (issue 13 item 3, defect 29).

The predecessor's items (written field for field as its CLI writes them) and the objects
its `inference_monitor.py` built for them are put in place first, one per kind of
endpoint; then the real daemon starts. Adoption changes metadata only: every object gets
our labels and annotations, and no Deployment's pod template changes (the sim bumps
`metadata.generation` on any spec change, as a real API server does). A pod template
changes only for a reason: the endpoint's spec changed, the template was edited by hand,
or a restart was asked for; a new builder output (a daemon upgrade) is none.
"""

from __future__ import annotations

from typing import Any

import pytest

from k8s.manifests import pod as pod_builder
from k8s.workload import (
    INSTANCE_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    RESTARTED_AT_ANNOTATION,
    SPEC_HASH_ANNOTATION,
    TEMPLATE_HASH_ANNOTATION,
    TEMPLATE_SPEC_HASH_ANNOTATION,
)
from store import commands
from tests.integration import predecessor
from tests.integration.harness import NAMESPACE, REGION, Harness, wait_for

VLLM = "vllm/vllm-openai:v0.8.0"

# One endpoint per kind: (spec as the predecessor's CLI writes it, desired_state).
FIXTURES: dict[str, tuple[dict[str, Any], str]] = {
    "plain": ({"image": "nginx:1.27", "port": 80, "replicas": 1, "gpu_count": 0}, "running"),
    "gpu": (
        {
            "image": VLLM,
            "port": 8000,
            "replicas": 1,
            "gpu_count": 1,
            "health_check_path": "/health",
            "env": {"MAX_MODEL_LEN": "4096", "HF_HOME": "/models"},
            "capacity_type": "spot",
            "args": ["--model", "meta-llama/Llama-3.1-8B-Instruct"],
        },
        "running",
    ),
    "neuron": (
        {
            "image": "ghcr.io/huggingface/text-generation-inference:3.0-neuron",
            "port": 8080,
            "replicas": 1,
            "gpu_count": 2,
            "accelerator": "neuron",
            "health_check_path": "/health",
        },
        "running",
    ),
    "scaled": (
        {
            "image": VLLM,
            "port": 8000,
            "replicas": 2,
            "gpu_count": 1,
            "autoscaling": {
                "enabled": True,
                "min_replicas": 2,
                "max_replicas": 4,
                "metrics": [{"type": "cpu", "target": 60}],
            },
        },
        "running",
    ),
    "canary": (
        {
            "image": VLLM,
            "port": 8000,
            "replicas": 1,
            "gpu_count": 1,
            "canary": {"image": "vllm/vllm-openai:v0.9.0", "weight": 20, "replicas": 1},
        },
        "running",
    ),
    "s3model": (
        {
            "image": VLLM,
            "port": 8000,
            "replicas": 1,
            "gpu_count": 1,
            "model_path": "/models/s3model",
            "model_source": "s3://models-bucket/llama3",
        },
        "running",
    ),
    "stopped": (
        {"image": VLLM, "port": 8000, "replicas": 1, "gpu_count": 1},
        "stopped",
    ),
}


def _deployments(name: str) -> list[str]:
    spec, _ = FIXTURES[name]
    return [name, f"{name}-canary"] if spec.get("canary") else [name]


def _install(kit: Harness, names: list[str]) -> dict[str, dict[str, Any]]:
    """Create the predecessor's objects and items; return its Deployments as created."""
    table = kit.raw_table()
    created: dict[str, dict[str, Any]] = {}
    for name in names:
        spec, state = FIXTURES[name]
        for obj in predecessor.objects(name, spec, NAMESPACE, desired_state=state):
            live = kit.kube.create(obj["kind"], obj)
            if obj["kind"] == "Deployment":
                created[obj["metadata"]["name"]] = live
        table.put_item(
            Item=predecessor.item(
                name, spec, region=REGION, namespace=NAMESPACE, desired_state=state
            )
        )
    return created


def _adopted(obj: dict[str, Any] | None, instance: str) -> bool:
    if obj is None:
        return False
    labels = obj["metadata"].get("labels") or {}
    annotations = obj["metadata"].get("annotations") or {}
    return (
        labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE
        and labels.get(INSTANCE_LABEL) == instance
        and SPEC_HASH_ANNOTATION in annotations
        and (obj["kind"] != "Deployment" or TEMPLATE_HASH_ANNOTATION in annotations)
    )


def _settled(kit: Harness, names: list[str]) -> None:
    """Wait until every endpoint reports its state and every object is adopted."""
    for name in names:
        spec, state = FIXTURES[name]
        kit.wait_state(name, "stopped" if state == "stopped" else "running")
        for obj in predecessor.objects(name, spec, NAMESPACE, desired_state=state):
            wait_for(
                lambda o=obj, n=name: _adopted(kit.kube.get(o["kind"], o["metadata"]["name"]), n),
                what=f"{obj['kind']} {obj['metadata']['name']} adopted",
            )


def _generation(kit: Harness, name: str) -> int:
    return int(kit.kube.get("Deployment", name)["metadata"]["generation"])


def _template(kit: Harness, name: str) -> dict[str, Any]:
    return kit.kube.get("Deployment", name)["spec"]["template"]


def _container(template: dict[str, Any]) -> dict[str, Any]:
    return template["spec"]["containers"][0]


def _adopt(kit: Harness, names: list[str]) -> dict[str, dict[str, Any]]:
    created = _install(kit, names)
    kit.start_daemon()
    _settled(kit, names)
    return created


@pytest.mark.parametrize("name", list(FIXTURES))
def test_adopting_the_predecessors_objects_changes_metadata_only(kit: Harness, name: str) -> None:
    spec, state = FIXTURES[name]
    created = _install(kit, [name])
    before = {
        (obj["kind"], obj["metadata"]["name"]): kit.kube.get(obj["kind"], obj["metadata"]["name"])
        for obj in predecessor.objects(name, spec, NAMESPACE, desired_state=state)
    }
    pods = kit.kube.names("Pod")
    kit.start_daemon()
    _settled(kit, [name])
    # No rollout: the same pods. (Not "generation unchanged": a real server bumps a
    # Deployment's generation when its annotations change, as adoption's do.)
    assert kit.kube.names("Pod") == pods
    adopted = {d: _generation(kit, d) for d in _deployments(name)}
    for (kind, obj_name), old in before.items():
        live = kit.kube.get(kind, obj_name)
        assert live["metadata"]["uid"] == old["metadata"]["uid"], f"{kind} {obj_name} recreated"
        assert live["metadata"]["labels"]["app"] == old["metadata"]["labels"]["app"]
        assert live["metadata"]["labels"]["project"] == "gco"
    for deployment in _deployments(name):
        old = created[deployment]
        live = kit.kube.get("Deployment", deployment)
        assert live["spec"]["template"] == old["spec"]["template"], "pod template untouched"
        assert live["spec"]["selector"] == old["spec"]["selector"]
        annotations = live["metadata"]["annotations"]
        assert annotations[TEMPLATE_SPEC_HASH_ANNOTATION]
        assert annotations[TEMPLATE_HASH_ANNOTATION]
        # Field by field where it matters: the predecessor's probes, root path and
        # model sync run on as it built them.
        container, old_container = (
            _container(live["spec"]["template"]),
            _container(old["spec"]["template"]),
        )
        assert container["name"] == "inference"
        for key in ("image", "args", "env", "resources", "livenessProbe", "readinessProbe"):
            assert container.get(key) == old_container.get(key), key
        labels = live["spec"]["template"]["metadata"]["labels"]
        assert MANAGED_BY_LABEL not in labels, "our labels stay off the template until a roll"
    if state == "stopped":
        assert kit.kube.get("Deployment", name)["spec"]["replicas"] == 0
    if spec.get("autoscaling"):
        hpa = kit.kube.get("HorizontalPodAutoscaler", name)
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 4)
        assert kit.kube.get("Deployment", name)["spec"]["replicas"] == 2
    if spec.get("model_source"):
        init = created[name]["spec"]["template"]["spec"]["initContainers"][0]
        assert _template(kit, name)["spec"]["initContainers"][0]["args"] == init["args"]
    # A few more cycles (the daemon's own writes come back as watch events): no write.
    kit.wait_state(name, "stopped" if state == "stopped" else "running")
    assert {d: _generation(kit, d) for d in _deployments(name)} == adopted
    assert kit.kube.names("Pod") == pods


def test_a_spec_change_after_adoption_rolls_to_our_template(kit: Harness) -> None:
    created = _adopt(kit, ["gpu"])
    generation = _generation(kit, "gpu")
    assert _template(kit, "gpu") == created["gpu"]["spec"]["template"]
    kit.store.apply("gpu", commands.update_spec, {"env": {"MAX_MODEL_LEN": "8192"}})
    wait_for(lambda: _generation(kit, "gpu") > generation, what="a rollout for the spec change")
    template = _template(kit, "gpu")
    container = _container(template)
    assert {"name": "MAX_MODEL_LEN", "value": "8192"} in container["env"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health", "our probe path now"
    assert template["metadata"]["labels"][MANAGED_BY_LABEL] == MANAGED_BY_VALUE
    kit.wait_state("gpu", "running")
    rolled = _generation(kit, "gpu")
    wait_for(
        lambda: (
            TEMPLATE_HASH_ANNOTATION in kit.kube.get("Deployment", "gpu")["metadata"]["annotations"]
        ),
        what="the applied template recorded",
    )
    assert _generation(kit, "gpu") == rolled, "rolled exactly once"


def test_a_scale_after_adoption_restarts_no_pod(kit: Harness) -> None:
    created = _adopt(kit, ["plain"])
    kit.store.apply("plain", commands.update_spec, {"replicas": 3})
    wait_for(lambda: kit.kube.get("Deployment", "plain")["spec"]["replicas"] == 3, what="scaled")
    assert _template(kit, "plain") == created["plain"]["spec"]["template"]


def test_a_hand_edit_of_an_adopted_template_is_repaired(kit: Harness) -> None:
    _adopt(kit, ["neuron"])
    generation = _generation(kit, "neuron")
    kit.kube.merge_patch(
        "Deployment",
        "neuron",
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "inference",
                                "image": FIXTURES["neuron"][0]["image"],
                                "securityContext": {"privileged": True},
                            }
                        ]
                    }
                }
            }
        },
    )
    wait_for(
        lambda: (
            "securityContext" not in _container(_template(kit, "neuron"))
            and _generation(kit, "neuron") >= generation + 2
        ),
        what="the privileged container repaired",
    )
    template = _template(kit, "neuron")
    assert template["metadata"]["labels"][MANAGED_BY_LABEL] == MANAGED_BY_VALUE
    assert template["spec"]["containers"][0]["resources"]["limits"]["aws.amazon.com/neuron"] == "2"


def test_a_hand_edit_of_our_own_template_is_repaired(kit: Harness) -> None:
    kit.put("m1", image=VLLM)
    kit.start_daemon()
    kit.wait_state("m1", "running")
    wait_for(
        lambda: (
            TEMPLATE_HASH_ANNOTATION in kit.kube.get("Deployment", "m1")["metadata"]["annotations"]
        ),
        what="template hash recorded",
    )
    ours = _template(kit, "m1")
    patch = {"spec": {"template": {"spec": {"hostNetwork": True}}}}
    kit.kube.merge_patch("Deployment", "m1", patch)
    wait_for(lambda: "hostNetwork" not in _template(kit, "m1")["spec"], what="hostNetwork removed")
    assert _template(kit, "m1") == ours


def test_a_daemon_upgrade_with_new_builder_output_restarts_no_pod(
    kit: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install(kit, ["s3model"])
    kit.put("m1", image=VLLM)
    first = kit.start_daemon()
    _settled(kit, ["s3model"])
    kit.wait_state("m1", "running")
    wait_for(
        lambda: (
            TEMPLATE_HASH_ANNOTATION in kit.kube.get("Deployment", "m1")["metadata"]["annotations"]
        ),
        what="template hash recorded",
    )
    before = {n: kit.kube.get("Deployment", n) for n in ("m1", "s3model")}
    first.stop()
    kit.daemons.remove(first)

    # The new version builds other probes and pins the model-sync image.
    original = pod_builder._probe

    def new_probe(w: Any, *, initial_delay: int, period: int, failures: int) -> dict[str, Any]:
        probe = original(w, initial_delay=initial_delay + 5, period=period, failures=failures)
        probe["timeoutSeconds"] = 3
        return probe

    monkeypatch.setattr(pod_builder, "_probe", new_probe)
    monkeypatch.setattr(pod_builder, "MODEL_SYNC_IMAGE", "amazon/aws-cli:2.17.0")
    kit.start_daemon()
    for name, old in before.items():
        old_hash = old["metadata"]["annotations"][SPEC_HASH_ANNOTATION]
        wait_for(
            lambda n=name, h=old_hash: (
                kit.kube.get("Deployment", n)["metadata"]["annotations"][SPEC_HASH_ANNOTATION] != h
            ),
            what=f"the new version's spec hash on {name}",
        )
        live = kit.kube.get("Deployment", name)
        assert live["spec"]["template"] == old["spec"]["template"]

    # Its builder output is used as soon as the spec changes.
    kit.store.apply("m1", commands.update_spec, {"env": {"A": "1"}})
    wait_for(
        lambda: _container(_template(kit, "m1"))["readinessProbe"].get("timeoutSeconds") == 3,
        what="the new template applied on a spec change",
    )


def test_a_restart_request_rolls_exactly_once(kit: Harness) -> None:
    created = _adopt(kit, ["canary"])
    generations = {n: _generation(kit, n) for n in ("canary", "canary-canary")}
    assert {n: _template(kit, n) for n in generations} == {
        n: created[n]["spec"]["template"] for n in generations
    }
    kit.store.apply("canary", commands.request_restart)
    requested = kit.item("canary").raw["restart_requested_at"]
    for name in generations:
        wait_for(
            lambda n=name: (
                (_template(kit, n)["metadata"].get("annotations") or {}).get(
                    RESTARTED_AT_ANNOTATION
                )
                == requested
            ),
            what=f"{name} restarted",
        )
    kit.wait_state("canary", "running")
    restarted = {n: (_generation(kit, n), _template(kit, n)) for n in generations}
    # Other changes that are no reason to roll: a weight change (Ingress only).
    kit.store.apply("canary", commands.set_canary, "vllm/vllm-openai:v0.9.0", 50)
    wait_for(
        lambda: (
            '"weight":50'
            in kit.kube.get("Ingress", "inference-canary")["metadata"]["annotations"][
                "alb.ingress.kubernetes.io/actions.weighted-routing"
            ]
        ),
        what="weight 50",
    )
    kit.wait_state("canary", "running")
    # Exactly once: the restart's template is still the live one and nothing wrote the
    # Deployments since (a generation counts annotation writes too, so it is compared
    # with its value after the restart, not counted from before it).
    assert {n: (_generation(kit, n), _template(kit, n)) for n in generations} == restarted
