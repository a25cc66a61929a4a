"""The predecessor's items and objects, field for field, for switch-over tests.

`item()` is what GCO's `InferenceEndpointStore.create_endpoint` writes (its CLI's
`deploy`); `objects()` is what its `inference_monitor.py` created for that item
(`_create_deployment`, `_create_service`, `_update_ingress_rule` or
`_update_canary_ingress`, `_create_or_update_hpa`, `_reconcile_canary`), in the API's
JSON shape as the kubernetes client sends it (None fields left out).
"""

from __future__ import annotations

import copy
import json
from typing import Any

LABELS = {"project": "gco", "gco.io/type": "inference"}
ROOT_PATH_IMAGES = ("vllm", "text-generation-inference", "tgi")


def item(
    name: str,
    spec: dict[str, Any],
    *,
    region: str,
    namespace: str,
    desired_state: str = "deploying",
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The item as the predecessor's `create_endpoint` writes it (then, for a stopped one,
    `update_desired_state`)."""
    now = "2025-06-01T10:00:00.123456+00:00"
    raw: dict[str, Any] = {
        "endpoint_name": name,
        "desired_state": desired_state,
        "target_regions": [region],
        "namespace": namespace,
        "spec": copy.deepcopy(spec),
        "ingress_path": f"/inference/{name}",
        "created_at": now,
        "updated_at": now,
        "region_status": {},
    }
    if labels:
        raw["labels"] = labels
    raw["created_by"] = "alice"
    return raw


def _labels(app: str) -> dict[str, str]:
    return {"app": app, **LABELS}


def deployment(name: str, spec: dict[str, Any], namespace: str) -> dict[str, Any]:
    """`_create_deployment(name, namespace, spec)`."""
    image = spec["image"]
    port = spec.get("port", 8000)
    gpu_count = spec.get("gpu_count", 1)
    health = spec.get("health_check_path", "/health")
    command, args = spec.get("command"), spec.get("args")
    prefix = f"/inference/{name}"
    if not command and any(tag in image.lower() for tag in ROOT_PATH_IMAGES):
        if args:
            if "--root-path" not in args:
                args = [*args, "--root-path", prefix]
        else:
            args = ["--root-path", prefix]
    resources = spec.get("resources", {})
    requests = dict(resources.get("requests", {"cpu": "1", "memory": "4Gi"}))
    limits = dict(resources.get("limits", {"cpu": "4", "memory": "16Gi"}))
    accelerator = spec.get("accelerator", "nvidia")
    device = "aws.amazon.com/neuron" if accelerator == "neuron" else "nvidia.com/gpu"
    if gpu_count > 0:
        limits[device] = str(gpu_count)
        requests[device] = str(gpu_count)
    model_path, model_source = spec.get("model_path"), spec.get("model_source")
    probe_path = f"{prefix}{health}" if args is not None and "--root-path" in args else health
    container: dict[str, Any] = {
        "name": "inference",
        "image": image,
        "ports": [{"containerPort": port}],
        "resources": {"limits": limits, "requests": requests},
        "livenessProbe": {
            "httpGet": {"path": probe_path, "port": port},
            "initialDelaySeconds": 120,
            "periodSeconds": 15,
            "failureThreshold": 5,
        },
        "readinessProbe": {
            "httpGet": {"path": probe_path, "port": port},
            "initialDelaySeconds": 30,
            "periodSeconds": 10,
        },
    }
    env = [{"name": k, "value": str(v)} for k, v in (spec.get("env") or {}).items()]
    if env:
        container["env"] = env
    if command:
        container["command"] = command
    if args:
        container["args"] = args
    pod: dict[str, Any] = {"serviceAccountName": "gco-service-account", "containers": [container]}
    if model_path or model_source:
        container["volumeMounts"] = [{"name": "model-storage", "mountPath": "/models"}]
        pod["volumes"] = [
            {"name": "model-storage", "persistentVolumeClaim": {"claimName": "efs-claim"}}
        ]
    if model_source and model_source.startswith("s3://"):
        dest = f"/models/{name}"
        pod["initContainers"] = [
            {
                "name": "model-sync",
                "image": "amazon/aws-cli:latest",
                "command": ["sh", "-c"],
                "args": [
                    f"if [ -d '{dest}' ] && [ \"$(ls -A '{dest}')\" ]; then "
                    f"echo 'Model already cached at {dest}, skipping sync'; "
                    f"else echo 'Syncing model from {model_source}...'; "
                    f"aws s3 sync {model_source} {dest} --quiet; "
                    f"echo 'Model sync complete'; fi"
                ],
                "volumeMounts": [{"name": "model-storage", "mountPath": "/models"}],
                "resources": {
                    "limits": {"cpu": "4", "memory": "8Gi"},
                    "requests": {"cpu": "1", "memory": "2Gi"},
                },
            }
        ]
    pod["tolerations"] = [
        {"key": device, "operator": "Equal", "value": "true", "effect": "NoSchedule"}
    ]
    node_selector = dict(spec.get("node_selector", {}))
    if gpu_count > 0 and not node_selector:
        node_selector = (
            {"accelerator": "neuron"}
            if accelerator == "neuron"
            else {"eks.amazonaws.com/instance-gpu-manufacturer": "nvidia"}
        )
    if spec.get("capacity_type") in ("spot", "on-demand"):
        node_selector["karpenter.sh/capacity-type"] = spec["capacity_type"]
    if node_selector:
        pod["nodeSelector"] = node_selector
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": _labels(name)},
        "spec": {
            "replicas": spec.get("replicas", 1),
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": _labels(name)}, "spec": pod},
        },
    }


def service(name: str, spec: dict[str, Any], namespace: str) -> dict[str, Any]:
    """`_create_service(name, namespace, spec)`."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": _labels(name)},
        "spec": {
            "selector": {"app": name},
            "ports": [{"port": 80, "targetPort": spec.get("port", 8000), "protocol": "TCP"}],
            "type": "ClusterIP",
        },
    }


def ingress(name: str, spec: dict[str, Any], namespace: str) -> dict[str, Any]:
    """`_update_ingress_rule`, or `_update_canary_ingress` while the item has a canary."""
    uses_root_path = any(tag in spec.get("image", "").lower() for tag in ROOT_PATH_IMAGES)
    base = spec.get("health_check_path", "/health")
    annotations = {
        "alb.ingress.kubernetes.io/healthcheck-path": (
            f"/inference/{name}{base}" if uses_root_path else base
        ),
        "alb.ingress.kubernetes.io/healthcheck-interval-seconds": "15",
    }
    labels = _labels(name)
    backend: dict[str, Any] = {"name": name, "port": {"number": 80}}
    canary = spec.get("canary")
    if canary:
        weight = canary.get("weight", 10)
        annotations["alb.ingress.kubernetes.io/actions.weighted-routing"] = json.dumps(
            {
                "type": "forward",
                "forwardConfig": {
                    "targetGroups": [
                        {"serviceName": name, "servicePort": 80, "weight": 100 - weight},
                        {"serviceName": f"{name}-canary", "servicePort": 80, "weight": weight},
                    ]
                },
            }
        )
        labels["gco.io/canary"] = "true"
        backend = {"name": "weighted-routing", "port": {"name": "use-annotation"}}
    path = {"path": f"/inference/{name}", "pathType": "Prefix", "backend": {"service": backend}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": f"inference-{name}",
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": {"ingressClassName": "alb", "rules": [{"http": {"paths": [path]}}]},
    }


def hpa(name: str, spec: dict[str, Any], namespace: str) -> dict[str, Any]:
    """`_create_or_update_hpa` (cpu and memory; anything else became CPU 70)."""
    scaling = spec["autoscaling"]
    metrics = [
        {
            "type": "Resource",
            "resource": {
                "name": m.get("type", "cpu"),
                "target": {"type": "Utilization", "averageUtilization": m.get("target", 70)},
            },
        }
        for m in scaling.get("metrics", [{"type": "cpu", "target": 70}])
        if m.get("type", "cpu") in ("cpu", "memory")
    ] or [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 70},
            },
        }
    ]
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": namespace, "labels": _labels(name)},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": scaling.get("min_replicas", 1),
            "maxReplicas": scaling.get("max_replicas", 10),
            "metrics": metrics,
        },
    }


def objects(
    name: str, spec: dict[str, Any], namespace: str, *, desired_state: str = "running"
) -> list[dict[str, Any]]:
    """Every object the predecessor had created for the item once it settled (a stopped
    endpoint: its Deployment scaled to 0, the rest left in place)."""
    primary = deployment(name, spec, namespace)
    if desired_state == "stopped":
        primary["spec"]["replicas"] = 0
    built = [primary, service(name, spec, namespace)]
    canary = spec.get("canary")
    if canary:
        canary_spec = {k: v for k, v in spec.items() if k != "canary"}
        canary_spec["image"] = canary["image"]
        canary_spec["replicas"] = canary.get("replicas", 1)
        built.append(deployment(f"{name}-canary", canary_spec, namespace))
        built.append(service(f"{name}-canary", canary_spec, namespace))
    built.append(ingress(name, spec, namespace))
    if (spec.get("autoscaling") or {}).get("enabled"):
        built.append(hpa(name, spec, namespace))
    return built
