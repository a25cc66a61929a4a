"""Pure decisions of an endpoint actor: the workload to build and the state to report
(the watchdog's decisions are `actors.watchdog`).

Everything here takes plain values (a table `Endpoint`, live objects as dicts,
times as epoch seconds) and returns plain values.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from typing import Any

from actors.watchdog import traffic_cut_reason
from k8s.naming import canary_name, deployment_name, ingress_name
from k8s.workload import Autoscaling, CanaryWorkload, HpaMetric, Toleration, Workload
from store.model import Endpoint, RegionStatus
from store.spec_schema import FIELDS as SPEC_FIELDS_BY_NAME

#: Spec fields resolved here rather than copied as they are.
_RESOLVED_FIELDS = frozenset({"image", "replicas", "tolerations", "autoscaling", "canary"})
#: Spec fields copied to the Workload field of the same name.
_COPIED_FIELDS = tuple(
    key
    for key in SPEC_FIELDS_BY_NAME
    if key in {f.name for f in dataclasses.fields(Workload)} and key not in _RESOLVED_FIELDS
)


def _workload_value(value: Any) -> Any:
    """A spec value as a Workload holds it: maps as sorted (key, value) tuples, lists as
    tuples, the rest as it is."""
    if isinstance(value, dict):
        return tuple(sorted(value.items()))
    if isinstance(value, list):
        return tuple(value)
    return value


def owned_names(name: str) -> list[tuple[str, str]]:
    """Every (kind, name) endpoint `name` may own; Ingress first, so traffic stops first."""
    return [
        ("Ingress", ingress_name(name)),
        ("HorizontalPodAutoscaler", deployment_name(name)),
        ("Deployment", canary_name(name)),
        ("Service", canary_name(name)),
        ("Deployment", deployment_name(name)),
        ("Service", deployment_name(name)),
    ]


def _label_text(value: Any) -> str:
    """An item label value as text: strings as they are, anything else as JSON (5, true)."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def _toleration(entry: dict[str, Any]) -> Toleration:
    seconds = entry.get("tolerationSeconds")
    return Toleration(
        key=entry.get("key") or None,
        operator=entry.get("operator") or None,
        value=entry.get("value") or None,
        effect=entry.get("effect") or None,
        toleration_seconds=None if seconds is None else int(seconds),
    )


def workload_for(
    endpoint: Endpoint,
    region: str,
    *,
    serve_traffic: bool = True,
    canary_healthy: bool = True,
    gpu_metric: str | None = None,
) -> Workload:
    """The workload endpoint `endpoint` needs in `region`.

    The region's image override applies to the primary only (the canary runs
    its own image); a stopped endpoint runs 0 replicas and no HPA; an unhealthy
    canary keeps running but gets weight 0. `gpu_metric` names the per-pod metric a
    `gpu` autoscaling metric scales on (None: `k8s.manifests.GPU_METRIC_NAME`).
    """
    spec = endpoint.spec
    stopped = endpoint.desired_state == "stopped"
    autoscaling = None
    if spec.autoscaling.enabled and not stopped:
        autoscaling = Autoscaling(
            min_replicas=spec.autoscaling.min_replicas,
            max_replicas=spec.autoscaling.max_replicas,
            metrics=tuple(HpaMetric(m.type, m.target) for m in spec.autoscaling.metrics),
            gpu_metric_name=gpu_metric,
        )
    canary = None
    if spec.canary is not None:
        canary = CanaryWorkload(
            image=spec.canary.image,
            weight=spec.canary.weight if canary_healthy else 0,
            replicas=0 if stopped else spec.canary.replicas,
        )
    if stopped:
        replicas = 0
    elif autoscaling is not None:
        replicas = autoscaling.min_replicas
    else:
        replicas = spec.replicas
    return Workload(
        # Every spec field whose name is a Workload field, as Workload values
        # (`store.spec_schema`: a new field needs no line here).
        **{key: _workload_value(getattr(spec, key)) for key in _COPIED_FIELDS},
        name=endpoint.endpoint_name,
        namespace=endpoint.namespace,
        image=spec.image_for(region),
        replicas=replicas,
        requests=tuple(sorted(spec.resources.requests.items())),
        limits=tuple(sorted(spec.resources.limits.items())),
        tolerations=tuple(_toleration(t) for t in spec.tolerations),
        ingress_path=endpoint.ingress_path,
        autoscaling=autoscaling,
        canary=canary,
        stopped=stopped,
        serve_traffic=serve_traffic,
        labels=tuple(sorted((str(k), _label_text(v)) for k, v in endpoint.labels.items())),
        restarted_at=endpoint.restart_requested_at,
    )


def step_canary(
    endpoint: Endpoint,
    region: str,
    weight: int,
    *,
    gpu_metric: str | None = None,
    primary_replicas: int | None = None,
) -> CanaryWorkload:
    """The canary of a rollout step (architecture section 12): the new revision `endpoint` (the
    item's
    spec) as a canary serving `weight` percent in `region`.

    Its pod is the new spec's whole pod as `workload_for` builds the primary (the region's
    image override included: it is what this region will run once promoted). Its size is
    the new spec's share of capacity for its share of traffic: ceil(replicas x weight /
    100), at least 1 (replicas: `primary_replicas` when given - with autoscaling, what the
    HPA currently sets - else the spec's, or `min_replicas` with autoscaling; 0 when
    stopped). A hand-made `spec.canary` is not this: `workload_for` maps it as it is.
    """
    pod = dataclasses.replace(
        workload_for(endpoint, region, gpu_metric=gpu_metric), canary=None, autoscaling=None
    )
    base = pod.replicas if primary_replicas is None else primary_replicas
    replicas = 0 if pod.stopped else max(1, math.ceil(base * weight / 100))
    return CanaryWorkload(image=pod.image, weight=weight, replicas=replicas, pod=pod)


def precise_iso(epoch: float) -> str:
    """ISO-8601 UTC with microseconds and a Z: for clocks a decision is timed on (a bake
    measured from a timestamp cut to the second would end up to 1 s early)."""
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_now(epoch: float) -> str:
    """ISO-8601 UTC with a Z, as the predecessor writes `last_sync`."""
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rollout_complete(deployment: dict) -> bool:
    """`kubectl rollout status`'s test: observed, updated, available, no old replicas."""
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    replicas = int(spec.get("replicas", 1) or 0)
    generation = int(deployment.get("metadata", {}).get("generation") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    return (
        int(status.get("observedGeneration") or 0) >= generation
        and updated == replicas
        and int(status.get("availableReplicas") or 0) == replicas
        and int(status.get("replicas") or 0) == updated
    )


def observed_status(
    endpoint: Endpoint, primary: dict | None, *, serving: bool, threshold: float
) -> RegionStatus:
    """The region state to report for a deploying/running/stopped endpoint (no `last_sync`)."""
    if primary is None:
        state = "stopped" if endpoint.desired_state == "stopped" else "creating"
        return RegionStatus(state=state)
    desired = int((primary.get("spec") or {}).get("replicas", 1) or 0)
    ready = int((primary.get("status") or {}).get("readyReplicas") or 0)
    if endpoint.desired_state == "stopped":
        return RegionStatus(state="stopped", replicas_ready=ready, replicas_desired=0)
    if not serving:
        return RegionStatus(
            state="error",
            replicas_ready=ready,
            replicas_desired=desired,
            error=traffic_cut_reason(threshold),
        )
    if rollout_complete(primary) and ready == desired:
        state = "running"
    elif ready == 0:
        state = "creating"
    else:
        state = "updating"
    return RegionStatus(state=state, replicas_ready=ready, replicas_desired=desired)


def same_report(a: RegionStatus | None, b: RegionStatus | None) -> bool:
    """Two statuses say the same thing (ignoring `last_sync`): no write needed."""
    if a is None or b is None:
        return a is b
    return (a.state, a.replicas_ready, a.replicas_desired, a.error or None) == (
        b.state,
        b.replicas_ready,
        b.replicas_desired,
        b.error or None,
    )
