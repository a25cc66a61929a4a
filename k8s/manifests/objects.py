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
    canary_name,
    check_workload,
    ingress_name,
    labels_for,
    metadata_for,
    with_spec_hash,
)
from k8s.manifests.pod import pod_spec
from k8s.workload import REPLICAS_OWNER_ANNOTATION, Workload

SERVICE_PORT = 80
HPA_RESOURCES = ("cpu", "memory")


def _deployment(
    w: Workload, *, name: str, image: str, replicas: int, annotations: dict[str, str]
) -> dict[str, Any]:
    """A Deployment selecting `app={name}`, as the predecessor's did."""
    return with_spec_hash(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata_for(w, name, name, annotations),
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": labels_for(w, name)},
                    "spec": pod_spec(w, image),
                },
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


def build_canary_deployment(w: Workload) -> dict[str, Any]:
    """Return the canary Deployment `{name}-canary`: the primary's pod spec with the
    canary's own image (never the region override) and replicas (0 when stopped)."""
    check_workload(w)
    if w.canary is None:
        raise ManifestError(f"endpoint {w.name!r} has no canary")
    replicas = 0 if w.stopped else w.canary.replicas
    return _deployment(
        w, name=canary_name(w.name), image=w.canary.image, replicas=replicas, annotations={}
    )


def _service(w: Workload, name: str) -> dict[str, Any]:
    """A ClusterIP Service on port 80 selecting `app={name}`."""
    return with_spec_hash(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata_for(w, name, name),
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
    """Return the canary Service `{name}-canary` (port 80 -> container port)."""
    check_workload(w)
    if w.canary is None:
        raise ManifestError(f"endpoint {w.name!r} has no canary")
    return _service(w, canary_name(w.name))


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


def build_hpa(w: Workload) -> dict[str, Any]:
    """Return the autoscaling/v2 HPA `{name}` scaling Deployment `{name}` on resource
    utilisation. Raises `ManifestError` without autoscaling or for a metric other
    than cpu/memory (never silently replaced by a default)."""
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
    metrics = []
    for metric in scaling.metrics:
        if metric.resource not in HPA_RESOURCES:
            raise ManifestError(f"autoscaling metric {metric.resource!r} is not cpu or memory")
        if metric.target < 1:
            raise ManifestError(f"autoscaling target {metric.target} must be a positive percent")
        target = {"type": "Utilization", "averageUtilization": metric.target}
        metrics.append(
            {"type": "Resource", "resource": {"name": metric.resource, "target": target}}
        )
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
