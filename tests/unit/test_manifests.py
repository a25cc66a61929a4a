"""Manifest builders: every built object is valid for the target Kubernetes version
(strict schema, so a misspelt field fails), and carries the names, labels,
selectors and behaviour the predecessor's objects have, without its defects."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import re
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from kubernetes_validate import utils as kv_utils
from referencing import Registry, Resource

from k8s.manifests import (
    GPU_METRIC_NAME,
    HEALTHCHECK_PATH_ANNOTATION,
    KINDS,
    NAME_LIMITS,
    ManifestError,
    build_canary_deployment,
    build_canary_service,
    build_deployment,
    build_hpa,
    build_ingress,
    build_objects,
    build_service,
    object_key,
    spec_hash,
)
from k8s.workload import (
    INSTANCE_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    REPLICAS_OWNER_ANNOTATION,
    SPEC_HASH_ANNOTATION,
    Autoscaling,
    CanaryWorkload,
    HpaMetric,
    Toleration,
    Workload,
)

# EKS's oldest version in standard support when this was written; the schema
# set is the one kubernetes-validate ships for it, in strict mode.
K8S_VERSION = "1.31.0"

VLLM = "vllm/vllm-openai:v0.6.3"
TGI = "ghcr.io/huggingface/text-generation-inference:2.4"
PLAIN = "registry.example.com/team/triton-server:24.08"
CANARY_IMAGE = "vllm/vllm-openai:v0.7.0"
HOSTILE_SOURCE = "s3://b/x; rm -rf /"
PREDECESSOR = {"project": "gco", "gco.io/type": "inference"}


@functools.cache
def _validator(kind: str, api_version: str) -> jsonschema.Draft202012Validator:
    """A strict validator for one kind, built once: kubernetes_validate.validate rebuilds
    it on every call (~10 ms); this uses the same schema files and registry layout."""
    schema_dir = f"kubernetes-json-schema/v{K8S_VERSION}-local-strict"
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema = kv_utils.schema_contents(
        f"{schema_dir}/{kind.lower()}-{group_version}.json", K8S_VERSION
    )
    definitions = kv_utils.schema_contents(f"{schema_dir}/_definitions.json", K8S_VERSION)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def assert_valid(obj: dict[str, Any]) -> None:
    """Fail with the schema error when `obj` is not a valid object for K8S_VERSION."""
    _validator(obj["kind"], obj["apiVersion"]).validate(obj)


def workload(**changes: Any) -> Workload:
    """A minimal running vLLM endpoint, with `changes` applied."""
    base = Workload(name="m1", namespace="gco-inference", image=VLLM)
    return dataclasses.replace(base, **changes)


def by_key(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {object_key(obj): obj for obj in objects}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]["containers"][0]


#: The new revision of a rollout step: another image, env, port, health path and model.
STEP_POD = Workload(
    name="m1",
    namespace="gco-inference",
    image=CANARY_IMAGE,
    port=9000,
    health_check_path="/v1/health",
    env=(("MODE", "new"),),
    args=("--max-model-len", "4096"),
    model_source="s3://models/llama-3.1",
    requests=(("cpu", "2"), ("memory", "8Gi")),
)


def _matrix() -> list[Any]:
    """Every combination of the interacting switches, for each server family, plus
    each remaining optional field on its own and everything on at once."""
    params = []
    switches = itertools.product([False, True], repeat=4)
    for (canary, scaling, stopped, traffic), image in itertools.product(
        switches, (VLLM, TGI, PLAIN)
    ):
        w = workload(
            image=image,
            canary=CanaryWorkload(image=CANARY_IMAGE, weight=20) if canary else None,
            autoscaling=Autoscaling(min_replicas=2, max_replicas=5) if scaling else None,
            stopped=stopped,
            replicas=0 if stopped else 2,
            serve_traffic=traffic,
        )
        ident = (
            f"{image.split('/')[-1].split(':')[0]}-canary{canary:d}-hpa{scaling:d}"
            f"-stopped{stopped:d}-traffic{traffic:d}"
        )
        params.append(pytest.param(w, id=ident))
    singles = {
        "neuron": {"accelerator": "neuron", "gpu_count": 2},
        "no-gpu": {"gpu_count": 0},
        "spot": {"capacity_type": "spot"},
        "on-demand": {"capacity_type": "on-demand"},
        "model-source": {"model_source": "s3://models/llama-3"},
        "hostile-model-source": {"model_source": HOSTILE_SOURCE},
        "model-path": {"model_path": "/models/m1"},
        "command": {"command": ("python", "-m", "server")},
        "args": {"args": ("--model", "/models/m1", "--tensor-parallel-size", "2")},
        "args-with-root-path": {"args": ("--root-path", "/inference/m1")},
        "env": {"env": (("HF_HOME", "/models/cache"), ("MAX_BATCH", "8"))},
        "node-selector": {"node_selector": (("pool", "inference"),)},
        "labels": {"labels": (("team", "ml"), ("example.com/tier", "gold"))},
        "ingress-path": {"ingress_path": "/api/v1/m1"},
        "port-health": {"port": 9000, "health_check_path": "/v1/health"},
        "no-requests-limits": {"requests": (), "limits": (), "gpu_count": 0},
        "memory-metric": {
            "autoscaling": Autoscaling(metrics=(HpaMetric("memory", 80), HpaMetric("cpu", 60)))
        },
        "canary-weight-0": {"canary": CanaryWorkload(image=CANARY_IMAGE, weight=0)},
        # A rollout step (architecture section 12): the canary runs the new revision's own pod.
        "step-canary": {"canary": CanaryWorkload(CANARY_IMAGE, 10, 2, pod=STEP_POD)},
        "step-canary-stopped": {
            "canary": CanaryWorkload(CANARY_IMAGE, 10, 2, pod=STEP_POD),
            "stopped": True,
            "replicas": 0,
        },
        # What the predecessor served and this once refused (issue 13 item 2).
        "gpu-metric": {
            "autoscaling": Autoscaling(metrics=(HpaMetric("gpu", 60), HpaMetric("cpu", 150)))
        },
        "gpu-metric-named": {
            "autoscaling": Autoscaling(metrics=(HpaMetric("gpu", 60),), gpu_metric_name="gpu_util")
        },
        "bucket-root-source": {"model_source": "s3://models"},
        "hugging-face-source": {"model_source": "meta-llama/Llama-3.1-8B-Instruct"},
        "tolerations": {
            "tolerations": (
                Toleration(
                    key="dedicated", operator="Equal", value="inference", effect="NoSchedule"
                ),
                Toleration(operator="Exists"),
                Toleration(
                    key="node.kubernetes.io/unreachable",
                    operator="Exists",
                    effect="NoExecute",
                    toleration_seconds=30,
                ),
            )
        },
        "gpu-name": {"gpu_type": "A10G"},
        "gpu-instance-type": {"gpu_type": "g5.xlarge", "capacity_type": "spot"},
        "label-values-as-annotations": {
            "labels": (
                ("owner", "alice@example.com"),
                ("Bad Key", "x"),
                ("team", "ml team"),
                ("example.com/cost", "a b"),
                ("ok", "fine"),
            )
        },
        "everything": {
            "accelerator": "neuron",
            "capacity_type": "spot",
            "model_source": "s3://models/llama-3",
            "model_path": "/models/m1",
            "args": ("--model", "/models/m1"),
            "env": (("A", "1"),),
            "node_selector": (("pool", "inference"),),
            "labels": (("team", "ml"),),
            "autoscaling": Autoscaling(),
            "canary": CanaryWorkload(image=CANARY_IMAGE),
        },
    }
    params += [pytest.param(workload(**changes), id=key) for key, changes in singles.items()]
    return params


MATRIX = _matrix()


@pytest.mark.parametrize("w", MATRIX)
def test_every_built_object_is_valid_in_strict_mode(w: Workload) -> None:
    """Each object of each workload in the matrix passes the strict schema of K8S_VERSION."""
    for obj in build_objects(w):
        assert_valid(obj)


@pytest.mark.parametrize("w", MATRIX)
def test_every_object_is_labelled_ours_and_the_predecessors_and_hashed(w: Workload) -> None:
    """Our labels, the predecessor's labels and a spec hash of the object itself on everything."""
    for obj in build_objects(w):
        meta = obj["metadata"]
        assert meta["namespace"] == "gco-inference"
        assert meta["labels"][MANAGED_BY_LABEL] == MANAGED_BY_VALUE
        assert meta["labels"][INSTANCE_LABEL] == "m1"
        assert PREDECESSOR.items() <= meta["labels"].items()
        assert meta["annotations"][SPEC_HASH_ANNOTATION] == spec_hash(obj)


@pytest.mark.parametrize("w", MATRIX)
def test_objects_come_in_apply_order(w: Workload) -> None:
    """Deployments, then Services, then the Ingress, then the HPA."""
    kinds = [obj["kind"] for obj in build_objects(w)]
    assert kinds == sorted(kinds, key=KINDS.index)


def test_official_validate_agrees_with_the_cached_validator() -> None:
    """The cached validators are the library's own: kubernetes_validate.validate accepts
    what they accept, and both reject an unknown field."""
    w = workload(canary=CanaryWorkload(image=CANARY_IMAGE), autoscaling=Autoscaling())
    objects = build_objects(w)
    assert {obj["kind"] for obj in objects} == set(KINDS)
    for obj in objects:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    typo = build_deployment(w)
    container(typo)["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, K8S_VERSION, strict=True)
    with pytest.raises(jsonschema.ValidationError):
        assert_valid(typo)


def test_running_endpoint_has_deployment_service_and_ingress_with_contract_names() -> None:
    """Plain running endpoint: Deployment and Service `{name}`, Ingress `inference-{name}`."""
    assert [object_key(o) for o in build_objects(workload())] == [
        ("Deployment", "m1"),
        ("Service", "m1"),
        ("Ingress", "inference-m1"),
    ]


def test_canary_and_hpa_objects_are_named_as_the_predecessor_named_them() -> None:
    """Canary Deployment/Service `{name}-canary`, HPA `{name}`."""
    w = workload(canary=CanaryWorkload(image=CANARY_IMAGE), autoscaling=Autoscaling())
    assert [object_key(o) for o in build_objects(w)] == [
        ("Deployment", "m1"),
        ("Deployment", "m1-canary"),
        ("Service", "m1"),
        ("Service", "m1-canary"),
        ("Ingress", "inference-m1"),
        ("HorizontalPodAutoscaler", "m1"),
    ]


def test_deployment_selectors_equal_the_predecessors_so_its_deployments_can_be_adopted() -> None:
    """The selector is immutable: exactly `{app: name}`; our labels only on metadata and pods."""
    w = workload(canary=CanaryWorkload(image=CANARY_IMAGE), labels=(("team", "ml"),))
    primary, canary = build_deployment(w), build_canary_deployment(w)
    assert primary["spec"]["selector"] == {"matchLabels": {"app": "m1"}}
    assert canary["spec"]["selector"] == {"matchLabels": {"app": "m1-canary"}}
    pod_labels = primary["spec"]["template"]["metadata"]["labels"]
    assert pod_labels == {
        "team": "ml",
        "app": "m1",
        "project": "gco",
        "gco.io/type": "inference",
        MANAGED_BY_LABEL: MANAGED_BY_VALUE,
        INSTANCE_LABEL: "m1",
    }
    assert build_service(w)["spec"]["selector"] == {"app": "m1"}
    assert build_canary_service(w)["spec"]["selector"] == {"app": "m1-canary"}


def test_item_labels_cannot_override_ours() -> None:
    """A user label `app` or managed-by does not break the selector or our ownership."""
    w = workload(labels=(("app", "other"), (MANAGED_BY_LABEL, "someone")))
    labels = build_deployment(w)["spec"]["template"]["metadata"]["labels"]
    assert (labels["app"], labels[MANAGED_BY_LABEL]) == ("m1", MANAGED_BY_VALUE)


def test_service_maps_port_80_to_the_container_port() -> None:
    service = build_service(workload(port=9000))
    assert service["spec"]["ports"] == [{"port": 80, "targetPort": 9000, "protocol": "TCP"}]
    assert service["spec"]["type"] == "ClusterIP"


@pytest.mark.parametrize("image", [VLLM, TGI, "my/TGI-fork:1"], ids=["vllm", "tgi", "tgi-upper"])
def test_root_path_is_injected_on_primary_and_canary_for_vllm_and_tgi(image: str) -> None:
    """Both Deployments get `--root-path /inference/{name}` (the primary's Ingress path,
    not `{name}-canary`), appended after the item's own args."""
    w = workload(image=image, args=("--model", "/models/m1"), canary=CanaryWorkload(image=image))
    expected = ["--model", "/models/m1", "--root-path", "/inference/m1"]
    assert container(build_deployment(w))["args"] == expected
    assert container(build_canary_deployment(w))["args"] == expected


def test_root_path_follows_a_custom_ingress_path() -> None:
    w = workload(ingress_path="/api/m1")
    assert container(build_deployment(w))["args"] == ["--root-path", "/api/m1"]


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"image": PLAIN}, id="other-server"),
        pytest.param({"command": ("python", "serve.py")}, id="command-replaces-entrypoint"),
    ],
)
def test_root_path_is_not_injected_for_other_servers_or_custom_commands(
    changes: dict[str, Any],
) -> None:
    assert "args" not in container(build_deployment(workload(**changes)))


@pytest.mark.parametrize(
    "args", [("--root-path", "/x"), ("--root-path=/x",)], ids=["separate", "equals"]
)
def test_root_path_given_by_the_item_is_not_added_twice(args: tuple[str, ...]) -> None:
    assert container(build_deployment(workload(args=args)))["args"] == list(args)


def test_canary_root_path_depends_on_the_canary_image() -> None:
    """A plain primary with a vLLM canary: only the canary gets the root path."""
    w = workload(image=PLAIN, canary=CanaryWorkload(image=CANARY_IMAGE))
    assert "args" not in container(build_deployment(w))
    assert container(build_canary_deployment(w))["args"] == ["--root-path", "/inference/m1"]


def test_canary_runs_its_own_image_and_replicas() -> None:
    """The canary never inherits the primary's (region-overridden) image."""
    w = workload(image="override/vllm:regional", canary=CanaryWorkload(CANARY_IMAGE, replicas=3))
    canary = build_canary_deployment(w)
    assert container(canary)["image"] == CANARY_IMAGE
    assert canary["spec"]["replicas"] == 3
    assert container(build_deployment(w))["image"] == "override/vllm:regional"


def test_a_rollout_steps_canary_runs_the_new_revisions_whole_pod() -> None:
    """architecture section 12 steps: the canary is the new spec's pod exactly as the new primary
    will
    run it (env, resources, args, port, probes, model sync, root path: defect 4), and its
    Service targets that pod's port and health path; the primary keeps its own pod."""
    w = workload(env=(("MODE", "old"),), canary=CanaryWorkload(CANARY_IMAGE, 10, 2, pod=STEP_POD))
    canary = build_canary_deployment(w)
    new_primary = build_deployment(STEP_POD)
    assert new_primary["spec"]["template"]["spec"] == canary["spec"]["template"]["spec"]
    assert container(canary)["env"] == [{"name": "MODE", "value": "new"}]
    assert container(canary)["args"] == [
        "--max-model-len",
        "4096",
        "--root-path",
        "/inference/m1",
    ]
    (init,) = canary["spec"]["template"]["spec"]["initContainers"]
    assert init["command"][3:5] == ["s3://models/llama-3.1", "/models/m1"]
    assert canary["spec"]["replicas"] == 2
    assert container(build_deployment(w))["env"] == [{"name": "MODE", "value": "old"}]
    service = build_canary_service(w)
    assert service["spec"]["ports"][0]["targetPort"] == 9000
    assert service["metadata"]["annotations"][HEALTHCHECK_PATH_ANNOTATION] == "/v1/health"
    assert build_service(w)["spec"]["ports"][0]["targetPort"] == 8000


def test_a_hand_made_canary_runs_the_primarys_pod_with_its_own_image() -> None:
    """The predecessor's `spec.canary`: only the image differs from the primary."""
    w = workload(env=(("MODE", "old"),), port=9000, canary=CanaryWorkload(CANARY_IMAGE))
    primary, canary = build_deployment(w), build_canary_deployment(w)
    expected = primary["spec"]["template"]["spec"]
    expected["containers"][0]["image"] = CANARY_IMAGE
    assert expected == canary["spec"]["template"]["spec"]
    service = build_canary_service(w)
    assert service["spec"]["ports"][0]["targetPort"] == 9000
    assert HEALTHCHECK_PATH_ANNOTATION not in service["metadata"]["annotations"]


@pytest.mark.parametrize(
    "pod",
    [
        pytest.param(dataclasses.replace(STEP_POD, name="m2"), id="other-name"),
        pytest.param(dataclasses.replace(STEP_POD, namespace="other"), id="other-namespace"),
        pytest.param(dataclasses.replace(STEP_POD, ingress_path="/x"), id="other-path"),
    ],
)
def test_a_canary_pod_of_another_endpoint_is_refused(pod: Workload) -> None:
    w = workload(canary=CanaryWorkload(CANARY_IMAGE, pod=pod))
    with pytest.raises(ManifestError, match="same endpoint"):
        build_objects(w)


@pytest.mark.parametrize("w", MATRIX)
def test_probes_hit_health_check_path_on_the_container_port(w: Workload) -> None:
    """Liveness, readiness and the ALB health check all use `health_check_path` as given
    (a rollout step's canary: its own pod's)."""
    objects = by_key(build_objects(w))
    step_pod = w.canary.pod if w.canary is not None else None
    for key, source in ((("Deployment", "m1"), w), (("Deployment", "m1-canary"), step_pod or w)):
        if key in objects:
            main = container(objects[key])
            for probe in ("livenessProbe", "readinessProbe"):
                expected = {"path": source.health_check_path, "port": source.port}
                assert main[probe]["httpGet"] == expected
    if ("Ingress", "inference-m1") in objects:
        annotations = objects["Ingress", "inference-m1"]["metadata"]["annotations"]
        assert annotations["alb.ingress.kubernetes.io/healthcheck-path"] == w.health_check_path


def test_plain_ingress_points_at_the_service() -> None:
    ingress = build_ingress(workload())
    assert ingress["spec"]["ingressClassName"] == "alb"
    (rule,) = ingress["spec"]["rules"]
    assert rule["http"]["paths"] == [
        {
            "path": "/inference/m1",
            "pathType": "Prefix",
            "backend": {"service": {"name": "m1", "port": {"number": 80}}},
        }
    ]
    assert (
        "alb.ingress.kubernetes.io/actions.weighted-routing"
        not in (ingress["metadata"]["annotations"])
    )
    assert ingress["metadata"]["annotations"][
        "alb.ingress.kubernetes.io/healthcheck-interval-seconds"
    ] == ("15")


@pytest.mark.parametrize(("weight", "primary"), [(10, 90), (0, 100), (100, 0)])
def test_canary_ingress_uses_the_weighted_action(weight: int, primary: int) -> None:
    """Percent weights, primary first; the rule's backend is the action (use-annotation)."""
    ingress = build_ingress(workload(canary=CanaryWorkload(CANARY_IMAGE, weight=weight)))
    action = json.loads(
        ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/actions.weighted-routing"]
    )
    assert action == {
        "type": "forward",
        "forwardConfig": {
            "targetGroups": [
                {"serviceName": "m1", "servicePort": "80", "weight": primary},
                {"serviceName": "m1-canary", "servicePort": "80", "weight": weight},
            ]
        },
    }
    (path,) = ingress["spec"]["rules"][0]["http"]["paths"]
    assert path["backend"] == {
        "service": {"name": "weighted-routing", "port": {"name": "use-annotation"}}
    }
    assert ingress["metadata"]["labels"]["gco.io/canary"] == "true"


def test_no_ingress_when_traffic_is_cut() -> None:
    w = workload(serve_traffic=False, canary=CanaryWorkload(CANARY_IMAGE))
    assert "Ingress" not in {obj["kind"] for obj in build_objects(w)}


def test_stopped_endpoint_scales_to_zero_keeps_service_and_ingress_and_has_no_hpa() -> None:
    w = workload(
        stopped=True,
        replicas=3,
        autoscaling=Autoscaling(min_replicas=2),
        canary=CanaryWorkload(CANARY_IMAGE, replicas=2),
    )
    objects = by_key(build_objects(w))
    assert set(objects) == {
        ("Deployment", "m1"),
        ("Deployment", "m1-canary"),
        ("Service", "m1"),
        ("Service", "m1-canary"),
        ("Ingress", "inference-m1"),
    }
    assert objects["Deployment", "m1"]["spec"]["replicas"] == 0
    assert objects["Deployment", "m1-canary"]["spec"]["replicas"] == 0
    assert REPLICAS_OWNER_ANNOTATION not in objects["Deployment", "m1"]["metadata"]["annotations"]


def test_autoscaled_deployment_leaves_replicas_to_the_hpa() -> None:
    """min_replicas at creation, and the annotation telling the gateway to keep the live count."""
    deployment = build_deployment(workload(replicas=7, autoscaling=Autoscaling(3, 9)))
    assert deployment["spec"]["replicas"] == 3
    assert deployment["metadata"]["annotations"][REPLICAS_OWNER_ANNOTATION] == "hpa"


def test_hpa_targets_the_deployment_with_the_requested_metrics() -> None:
    scaling = Autoscaling(2, 8, (HpaMetric("cpu", 65), HpaMetric("memory", 80)))
    hpa = build_hpa(workload(autoscaling=scaling))
    assert (hpa["apiVersion"], hpa["metadata"]["name"]) == ("autoscaling/v2", "m1")
    assert hpa["spec"] == {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "m1"},
        "minReplicas": 2,
        "maxReplicas": 8,
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 65},
                },
            },
            {
                "type": "Resource",
                "resource": {
                    "name": "memory",
                    "target": {"type": "Utilization", "averageUtilization": 80},
                },
            },
        ],
    }


def test_hpa_change_changes_only_the_hpa_hash_not_the_deployments() -> None:
    """Raising max_replicas rewrites the HPA; the Deployment's hash stays (no rollout)."""
    before = workload(autoscaling=Autoscaling(2, 5))
    after = workload(autoscaling=Autoscaling(2, 9))
    assert spec_hash(build_deployment(before)) == spec_hash(build_deployment(after))
    assert spec_hash(build_hpa(before)) != spec_hash(build_hpa(after))


def test_spec_hash_is_stable_and_ignores_hpa_owned_replicas() -> None:
    deployment = build_deployment(workload(autoscaling=Autoscaling()))
    scaled = json.loads(json.dumps(deployment))
    scaled["spec"]["replicas"] = 9
    assert spec_hash(scaled) == spec_hash(deployment)
    assert spec_hash(build_deployment(workload())) == spec_hash(build_deployment(workload()))
    assert spec_hash(build_deployment(workload(replicas=2))) != spec_hash(
        build_deployment(workload(replicas=3))
    )


@pytest.mark.parametrize("source", ["s3://models/llama-3", HOSTILE_SOURCE])
def test_model_sync_is_an_argument_list_that_always_syncs(source: str) -> None:
    """No shell: the source is one argv element whatever it contains; `--delete` and
    no emptiness check, so a stale or partial model is always replaced."""
    w = workload(model_source=source, canary=CanaryWorkload(CANARY_IMAGE))
    for deployment in (build_deployment(w), build_canary_deployment(w)):
        (init,) = deployment["spec"]["template"]["spec"]["initContainers"]
        argv = init["command"] + init.get("args", [])
        assert argv == ["aws", "s3", "sync", source, "/models/m1", "--delete", "--no-progress"]
        assert "sh" not in argv
        assert init["volumeMounts"] == [{"name": "model-storage", "mountPath": "/models"}]


@pytest.mark.parametrize(
    ("changes", "init"),
    [
        pytest.param({"model_source": "s3://m/x"}, True, id="s3-source"),
        pytest.param({"model_path": "/models/m1"}, False, id="path-only"),
        pytest.param({"model_source": "hf://org/model"}, False, id="non-s3-source"),
    ],
)
def test_model_volume_is_the_efs_claim_at_models(changes: dict[str, Any], init: bool) -> None:
    pod = build_deployment(workload(**changes))["spec"]["template"]["spec"]
    assert pod["volumes"] == [
        {"name": "model-storage", "persistentVolumeClaim": {"claimName": "efs-claim"}}
    ]
    assert pod["containers"][0]["volumeMounts"] == [
        {"name": "model-storage", "mountPath": "/models"}
    ]
    assert ("initContainers" in pod) is init


def test_no_model_volume_without_model() -> None:
    pod = build_deployment(workload())["spec"]["template"]["spec"]
    assert "volumes" not in pod
    assert "initContainers" not in pod


@pytest.mark.parametrize(
    ("accelerator", "device", "selector"),
    [
        ("nvidia", "nvidia.com/gpu", {"eks.amazonaws.com/instance-gpu-manufacturer": "nvidia"}),
        ("neuron", "aws.amazon.com/neuron", {"accelerator": "neuron"}),
    ],
)
def test_accelerator_limits_tolerations_and_default_node_selector(
    accelerator: str, device: str, selector: dict[str, str]
) -> None:
    w = workload(accelerator=accelerator, gpu_count=4, canary=CanaryWorkload(CANARY_IMAGE))
    for deployment in (build_deployment(w), build_canary_deployment(w)):
        pod = deployment["spec"]["template"]["spec"]
        resources = pod["containers"][0]["resources"]
        assert resources["limits"][device] == "4"
        assert resources["requests"][device] == "4"
        assert resources["limits"]["memory"] == "16Gi"
        assert pod["tolerations"] == [
            {"key": device, "operator": "Equal", "value": "true", "effect": "NoSchedule"}
        ]
        assert pod["nodeSelector"] == selector


def test_no_accelerator_devices_without_gpus() -> None:
    pod = build_deployment(workload(gpu_count=0))["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"] == {"cpu": "4", "memory": "16Gi"}
    assert "nodeSelector" not in pod


@pytest.mark.parametrize(
    ("changes", "selector"),
    [
        pytest.param(
            {"capacity_type": "spot"},
            {
                "eks.amazonaws.com/instance-gpu-manufacturer": "nvidia",
                "karpenter.sh/capacity-type": "spot",
            },
            id="spot",
        ),
        pytest.param(
            {"capacity_type": "on-demand", "node_selector": (("pool", "a"),)},
            {"pool": "a", "karpenter.sh/capacity-type": "on-demand"},
            id="on-demand-with-own-selector",
        ),
        pytest.param(
            {"capacity_type": "spot", "gpu_count": 0},
            {"karpenter.sh/capacity-type": "spot"},
            id="spot-cpu-only",
        ),
    ],
)
def test_capacity_type_selects_spot_or_on_demand_nodes(
    changes: dict[str, Any], selector: dict[str, str]
) -> None:
    pod = build_deployment(workload(**changes))["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == selector


def test_env_command_and_args_are_passed_in_order() -> None:
    w = workload(
        image=PLAIN,
        env=(("B", "2"), ("A", "1")),
        command=("python", "-m", "srv"),
        args=("--port", "8000"),
    )
    main = container(build_deployment(w))
    assert main["env"] == [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]
    assert (main["command"], main["args"]) == (["python", "-m", "srv"], ["--port", "8000"])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"name": "Bad_Name"}, "DNS-1035", id="bad-name"),
        pytest.param({"name": "a" * 64}, "at most 63", id="too-long"),
        pytest.param(
            {"name": "a" * 57, "canary": CanaryWorkload(CANARY_IMAGE)},
            "cannot have a canary",
            id="too-long-for-canary",
        ),
        pytest.param({"accelerator": "tpu"}, "accelerator", id="accelerator"),
        pytest.param({"capacity_type": "reserved"}, "capacity_type", id="capacity-type"),
        pytest.param({"canary": CanaryWorkload(CANARY_IMAGE, weight=101)}, "0-100", id="weight"),
        pytest.param(
            {"autoscaling": Autoscaling(metrics=(HpaMetric("requests_per_second", 10),))},
            "not cpu, memory or gpu",
            id="unsupported-metric",
        ),
        pytest.param({"autoscaling": Autoscaling(5, 2)}, "min_replicas", id="min-above-max"),
        pytest.param({"ingress_path": "api/m1"}, "start with '/'", id="relative-path"),
        pytest.param({"node_selector": (("pool", "x" * 64),)}, "node selector", id="selector"),
    ],
)
def test_invalid_workloads_are_refused_with_a_reason(changes: dict[str, Any], message: str) -> None:
    """Bad input is an error naming the problem, never silently replaced by a default."""
    with pytest.raises(ManifestError, match=re.escape(message)):
        build_objects(workload(**changes))


def test_canary_builders_refuse_a_workload_without_canary() -> None:
    with pytest.raises(ManifestError, match="no canary"):
        build_canary_deployment(workload())
    with pytest.raises(ManifestError, match="no canary"):
        build_canary_service(workload())
    with pytest.raises(ManifestError, match="no autoscaling"):
        build_hpa(workload())


# --- What the predecessor served (issue 13 item 2) ---------------------------------------


def test_gpu_metric_is_a_pods_metric_on_the_dcgm_gpu_utilisation() -> None:
    """`gpu:60` scales on the DCGM exporter's per-pod GPU utilisation (averageValue 60),
    never silently on CPU; cpu/memory targets above 100 % are kept as given."""
    scaling = Autoscaling(1, 4, (HpaMetric("gpu", 60), HpaMetric("cpu", 150)))
    hpa = build_hpa(workload(autoscaling=scaling))
    assert_valid(hpa)
    assert hpa["spec"]["metrics"] == [
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": GPU_METRIC_NAME},
                "target": {"type": "AverageValue", "averageValue": "60"},
            },
        },
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 150},
            },
        },
    ]
    assert GPU_METRIC_NAME == "DCGM_FI_DEV_GPU_UTIL"


def test_gpu_metric_name_can_be_overridden_per_workload() -> None:
    scaling = Autoscaling(metrics=(HpaMetric("gpu", 75),), gpu_metric_name="nv_gpu_util")
    (metric,) = build_hpa(workload(autoscaling=scaling))["spec"]["metrics"]
    assert metric["pods"]["metric"] == {"name": "nv_gpu_util"}
    assert metric["pods"]["target"]["averageValue"] == "75"


@pytest.mark.parametrize(
    ("source", "synced"),
    [
        pytest.param("s3://models", True, id="bucket-root"),
        pytest.param("s3://models/", True, id="bucket-root-slash"),
        pytest.param("meta-llama/Llama-3.1-8B-Instruct", False, id="hugging-face-id"),
    ],
)
def test_bucket_root_is_synced_and_a_model_id_only_mounts_the_volume(
    source: str, synced: bool
) -> None:
    pod = build_deployment(workload(model_source=source))["spec"]["template"]["spec"]
    assert pod["volumes"] == [
        {"name": "model-storage", "persistentVolumeClaim": {"claimName": "efs-claim"}}
    ]
    assert pod["containers"][0]["volumeMounts"] == [
        {"name": "model-storage", "mountPath": "/models"}
    ]
    if synced:
        (init,) = pod["initContainers"]
        assert init["command"] == [
            "aws", "s3", "sync", source, "/models/m1", "--delete", "--no-progress"
        ]  # fmt: skip
        assert "args" not in init
    else:
        assert "initContainers" not in pod


@pytest.mark.parametrize(
    ("accelerator", "device"), [("nvidia", "nvidia.com/gpu"), ("neuron", "aws.amazon.com/neuron")]
)
def test_item_tolerations_are_added_after_the_accelerators_own(
    accelerator: str, device: str
) -> None:
    own = Toleration(key=device, operator="Equal", value="true", effect="NoSchedule")
    extra = (
        Toleration(key="dedicated", operator="Equal", value="llm", effect="NoSchedule"),
        own,  # a repeat of the accelerator's is not added twice
        Toleration(key="spot", operator="Exists", effect="NoExecute", toleration_seconds=60),
    )
    w = workload(accelerator=accelerator, tolerations=extra, canary=CanaryWorkload(CANARY_IMAGE))
    for deployment in (build_deployment(w), build_canary_deployment(w)):
        assert_valid(deployment)
        assert deployment["spec"]["template"]["spec"]["tolerations"] == [
            {"key": device, "operator": "Equal", "value": "true", "effect": "NoSchedule"},
            {"key": "dedicated", "operator": "Equal", "value": "llm", "effect": "NoSchedule"},
            {"key": "spot", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60},
        ]


@pytest.mark.parametrize(
    ("changes", "selector"),
    [
        pytest.param(
            {"gpu_type": "A10G"},
            {
                "eks.amazonaws.com/instance-gpu-manufacturer": "nvidia",
                "eks.amazonaws.com/instance-gpu-name": "a10g",
            },
            id="gpu-name-lower-cased",
        ),
        pytest.param(
            {"gpu_type": "g5.xlarge", "capacity_type": "spot"},
            {
                "eks.amazonaws.com/instance-gpu-manufacturer": "nvidia",
                "node.kubernetes.io/instance-type": "g5.xlarge",
                "karpenter.sh/capacity-type": "spot",
            },
            id="instance-type",
        ),
        pytest.param(
            {
                "gpu_type": "l40s",
                "node_selector": (("eks.amazonaws.com/instance-gpu-name", "h100"),),
            },
            {"eks.amazonaws.com/instance-gpu-name": "h100"},
            id="item-selector-wins",
        ),
    ],
)
def test_gpu_type_selects_nodes_by_gpu_name_or_instance_type(
    changes: dict[str, Any], selector: dict[str, str]
) -> None:
    pod = build_deployment(workload(**changes))["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == selector


def test_item_labels_kubernetes_refuses_are_kept_as_annotations() -> None:
    """`owner=alice@example.com` does not refuse the endpoint: valid labels stay labels,
    the others go on every object's metadata as annotations, none on the pods."""
    labels = (
        ("Bad Key", "x"),
        ("example.com/cost", "a b"),
        ("ok", "fine"),
        ("owner", "alice@example.com"),
    )
    w = workload(labels=labels, canary=CanaryWorkload(CANARY_IMAGE), autoscaling=Autoscaling())
    for obj in build_objects(w):
        assert_valid(obj)
        meta = obj["metadata"]
        assert meta["labels"]["ok"] == "fine"
        assert not {"owner", "example.com/cost", "Bad Key"} & set(meta["labels"])
        annotations = meta["annotations"]
        assert annotations["inference-supervisor.io/label-owner"] == "alice@example.com"
        assert annotations["inference-supervisor.io/label-example.com.cost"] == "a b"
        assert json.loads(annotations["inference-supervisor.io/labels"]) == {"Bad Key": "x"}
        if obj["kind"] == "Deployment":
            pod_meta = obj["spec"]["template"]["metadata"]
            assert "owner" not in pod_meta["labels"]
            assert "annotations" not in pod_meta


def test_a_63_character_name_is_served_and_every_object_name_fits_its_kind() -> None:
    name = "a" * 63
    w = workload(name=name, autoscaling=Autoscaling())
    objects = build_objects(w)
    assert [object_key(o) for o in objects] == [
        ("Deployment", name),
        ("Service", name),
        ("Ingress", f"inference-{name}"),
        ("HorizontalPodAutoscaler", name),
    ]
    for obj in objects:
        assert_valid(obj)
        assert len(obj["metadata"]["name"]) <= NAME_LIMITS[obj["kind"]]


def test_a_canary_needs_name_canary_to_fit_63_and_only_the_canary_is_refused() -> None:
    fits = workload(name="a" * 56, canary=CanaryWorkload(CANARY_IMAGE))
    for obj in build_objects(fits):
        assert_valid(obj)
        assert len(obj["metadata"]["name"]) <= NAME_LIMITS[obj["kind"]]
    too_long = workload(name="a" * 57, canary=CanaryWorkload(CANARY_IMAGE))
    assert_valid(build_deployment(too_long))
    assert_valid(build_service(too_long))
    for builder in (build_canary_deployment, build_canary_service, build_ingress):
        with pytest.raises(ManifestError, match=r"cannot have a canary: .* at most 56"):
            builder(too_long)
