"""Builders of the objects themselves: Deployments, Services, Ingress and HPA."""

from __future__ import annotations

import json
from typing import Any

from k8s.manifests.common import (
    CANARY_LABEL,
    HEALTHCHECK_INTERVAL_ANNOTATION,
    HEALTHCHECK_PATH_ANNOTATION,
    REPLICAS_OWNER_HPA,
    WEIGHTED_ACTION,
    WEIGHTED_ACTION_ANNOTATION,
    ManifestError,
    check_canary,
    check_workload,
    labels_for,
    metadata_for,
    template_spec_hash,
    with_spec_hash,
)
from k8s.manifests.pod import pod_spec
from k8s.naming import canary_name, ingress_name
from k8s.workload import (
    REPLICAS_OWNER_ANNOTATION,
    RESTARTED_AT_ANNOTATION,
    TEMPLATE_SPEC_HASH_ANNOTATION,
    HpaMetric,
    Workload,
)

SERVICE_PORT = 80
HPA_RESOURCES = ("cpu", "memory")
# Metric type `gpu` (the predecessor's CLI advertises `gpu:60`) scales on this per-pod
# metric: the NVIDIA DCGM exporter's GPU utilisation (0-100). It is served through the
# custom metrics API, so the cluster needs a metrics adapter (e.g. prometheus-adapter with
# a rule exposing DCGM_FI_DEV_GPU_UTIL per pod); without one the HPA reports
# FailedGetPodsMetric and keeps the replicas it has. The default of the daemon's
# `GPU_METRIC_NAME` setting, which reaches here as `Autoscaling.gpu_metric_name`
# (the endpoint actor passes it to workload_for's `gpu_metric`).
GPU_METRIC_NAME = "DCGM_FI_DEV_GPU_UTIL"


def _deployment(
    w: Workload, *, name: str, image: str, replicas: int, annotations: dict[str, str]
) -> dict[str, Any]:
    """A Deployment selecting `app={name}`, as the predecessor's did.

    Its metadata carries `TEMPLATE_SPEC_HASH_ANNOTATION` (the inputs of the pod template);
    the gateway writes the template only when that hash (or the template, by hand) changed.
    A restart request goes on the template as `kubectl rollout restart` puts it.
    """
    template_metadata: dict[str, Any] = {"labels": labels_for(w, name)}
    if w.restarted_at:
        template_metadata["annotations"] = {RESTARTED_AT_ANNOTATION: w.restarted_at}
    annotations = {**annotations, TEMPLATE_SPEC_HASH_ANNOTATION: template_spec_hash(w, name, image)}
    return with_spec_hash(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata_for(w, name, name, annotations),
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": template_metadata, "spec": pod_spec(w, image)},
            },
        }
    )


def _hpa_enabled(w: Workload) -> bool:
    """An HPA exists only for a running endpoint with autoscaling on."""
    return w.autoscaling is not None and not w.stopped


def build_deployment(w: Workload) -> dict[str, Any]:
    """Return the primary Deployment `{name}`.

    Stopped: 0 replicas. With an HPA: replicas = min_replicas (used at creation
    only) and `REPLICAS_OWNER_ANNOTATION=hpa`, so the live count is kept after.
    """
    check_workload(w)
    annotations: dict[str, str] = {}
    replicas = 0 if w.stopped else w.replicas
    if w.autoscaling is not None and _hpa_enabled(w):
        annotations[REPLICAS_OWNER_ANNOTATION] = REPLICAS_OWNER_HPA
        replicas = w.autoscaling.min_replicas
    return _deployment(w, name=w.name, image=w.image, replicas=replicas, annotations=annotations)


def _canary_pod(w: Workload) -> Workload:
    """The workload the canary's pod is built from: its own `pod` (a rollout step: the new
    revision's) or, for a hand-made canary, the primary's."""
    canary = check_canary(w)
    return w if canary.pod is None else canary.pod


def build_canary_deployment(w: Workload) -> dict[str, Any]:
    """Return the canary Deployment `{name}-canary`: the pod of the canary's own workload
    (a rollout step's new revision) or else the primary's, with the canary's own image
    (never the region override) and replicas (0 when stopped); root path and model sync
    as the primary has them, since both share the endpoint's name and Ingress path."""
    check_workload(w)
    canary = check_canary(w)
    replicas = 0 if w.stopped else canary.replicas
    return _deployment(
        _canary_pod(w),
        name=canary_name(w.name),
        image=canary.image,
        replicas=replicas,
        annotations={},
    )


def _service(w: Workload, name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """A ClusterIP Service on port 80 selecting `app={name}`."""
    return with_spec_hash(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata_for(w, name, name, annotations),
            "spec": {
                "type": "ClusterIP",
                "selector": {"app": name},
                "ports": [{"port": SERVICE_PORT, "targetPort": w.port, "protocol": "TCP"}],
            },
        }
    )


def build_service(w: Workload) -> dict[str, Any]:
    """Return the primary Service `{name}` (port 80 -> container port)."""
    check_workload(w)
    return _service(w, w.name)


def build_canary_service(w: Workload) -> dict[str, Any]:
    """Return the canary Service `{name}-canary` (port 80 -> the canary pod's container
    port). A canary whose own pod checks health on another path than the primary's
    carries that path as the ALB health-check annotation (a Service's overrides the
    Ingress's), so the load balancer checks each target group where its pods answer."""
    check_workload(w)
    pod = _canary_pod(w)
    annotations = {}
    if pod.health_check_path != w.health_check_path:
        annotations[HEALTHCHECK_PATH_ANNOTATION] = pod.health_check_path
    return _service(pod, canary_name(w.name), annotations)


def build_ingress(w: Workload) -> dict[str, Any]:
    """Return the Ingress `inference-{name}` (class alb, Prefix path `w.path`).

    Without a canary the rule points at Service `{name}`:80. With one it points at
    the ALB weighted-routing action, whose annotation splits traffic by percent
    between `{name}` and `{name}-canary` (weight 0 allowed).
    """
    check_workload(w)
    annotations = {
        HEALTHCHECK_PATH_ANNOTATION: w.health_check_path,
        HEALTHCHECK_INTERVAL_ANNOTATION: "15",
    }
    backend: dict[str, Any] = {"name": w.name, "port": {"number": SERVICE_PORT}}
    if w.canary is not None:
        check_canary(w)  # never route to a canary Service that cannot exist
        weights = ((w.name, 100 - w.canary.weight), (canary_name(w.name), w.canary.weight))
        annotations[WEIGHTED_ACTION_ANNOTATION] = json.dumps(
            {
                "type": "forward",
                "forwardConfig": {
                    "targetGroups": [
                        {"serviceName": service, "servicePort": str(SERVICE_PORT), "weight": share}
                        for service, share in weights
                    ]
                },
            },
            separators=(",", ":"),
        )
        backend = {"name": WEIGHTED_ACTION, "port": {"name": "use-annotation"}}
    metadata = metadata_for(w, ingress_name(w.name), w.name, annotations)
    if w.canary is not None:
        metadata["labels"][CANARY_LABEL] = "true"
    path = {"path": w.path, "pathType": "Prefix", "backend": {"service": backend}}
    return with_spec_hash(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": metadata,
            "spec": {"ingressClassName": "alb", "rules": [{"http": {"paths": [path]}}]},
        }
    )


def _hpa_metric(metric: HpaMetric, gpu_metric_name: str) -> dict[str, Any]:
    """One autoscaling/v2 metric: cpu/memory as Resource utilisation in percent (above 100
    allowed), gpu as the Pods metric `gpu_metric_name` with averageValue = target."""
    if metric.target < 1:
        raise ManifestError(f"autoscaling target {metric.target} must be a positive number")
    if metric.resource in HPA_RESOURCES:
        target = {"type": "Utilization", "averageUtilization": metric.target}
        return {"type": "Resource", "resource": {"name": metric.resource, "target": target}}
    if metric.resource == "gpu":
        return {
            "type": "Pods",
            "pods": {
                "metric": {"name": gpu_metric_name},
                "target": {"type": "AverageValue", "averageValue": str(metric.target)},
            },
        }
    raise ManifestError(f"autoscaling metric {metric.resource!r} is not cpu, memory or gpu")


def build_hpa(w: Workload) -> dict[str, Any]:
    """Return the autoscaling/v2 HPA `{name}` scaling Deployment `{name}`.

    cpu/memory are Resource metrics (average utilisation, percent of requests); gpu is
    a Pods metric (`GPU_METRIC_NAME` unless the workload names another), which needs a
    custom-metrics adapter in the cluster. Raises `ManifestError` without autoscaling or
    for any other metric type (never silently replaced by a default)."""
    check_workload(w)
    scaling = w.autoscaling
    if scaling is None:
        raise ManifestError(f"endpoint {w.name!r} has no autoscaling")
    if not 1 <= scaling.min_replicas <= scaling.max_replicas:
        raise ManifestError(
            f"autoscaling needs 1 <= min_replicas <= max_replicas, "
            f"got {scaling.min_replicas}..{scaling.max_replicas}"
        )
    if not scaling.metrics:
        raise ManifestError("autoscaling needs at least one metric")
    gpu_metric_name = scaling.gpu_metric_name or GPU_METRIC_NAME
    metrics = [_hpa_metric(metric, gpu_metric_name) for metric in scaling.metrics]
    return with_spec_hash(
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": metadata_for(w, w.name, w.name),
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": w.name},
                "minReplicas": scaling.min_replicas,
                "maxReplicas": scaling.max_replicas,
                "metrics": metrics,
            },
        }
    )


def build_objects(w: Workload) -> list[dict[str, Any]]:
    """Return every object the endpoint should have in this cluster, in apply order
    (Deployments, Services, Ingress, HPA). Objects absent from the list (canary,
    HPA, Ingress when traffic is cut) are ones the endpoint should not have."""
    objects = [build_deployment(w)]
    if w.canary is not None:
        objects.append(build_canary_deployment(w))
    objects.append(build_service(w))
    if w.canary is not None:
        objects.append(build_canary_service(w))
    if w.serve_traffic:
        objects.append(build_ingress(w))
    if _hpa_enabled(w):
        objects.append(build_hpa(w))
    return objects
