"""Server-side defaulting: the fields a real API server fills in on every write.

A client that compares its desired object with the live one sees these
defaults in the live object (for example `imagePullPolicy`, `strategy`,
Service `clusterIP`), so the sim adds the same ones a real server adds for the
kinds and fields the daemon writes, and writes times back the way it does
(Lease MicroTimes in UTC with `Z`). Functions take a fresh object and fill it
in place; they never overwrite a value the client set.

`omit_empty` then drops what Go's `omitempty` drops when a real server writes
the object back, for the fields the daemon uses: an empty `env[].value`, empty
strings, lists and maps in containers, pod specs and metadata. A client that
sends `{"name": "X", "value": ""}` reads back `{"name": "X"}`.
"""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime
from typing import Any

from k8s.sim.errors import bad_request

_cluster_ips = itertools.count(10)
_ip_lock = threading.Lock()


def _next_cluster_ip() -> str:
    with _ip_lock:
        n = next(_cluster_ips)
    return f"10.96.{(n // 250) % 250}.{n % 250 + 1}"


def _probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    probe.setdefault("timeoutSeconds", 1)
    probe.setdefault("periodSeconds", 10)
    probe.setdefault("successThreshold", 1)
    probe.setdefault("failureThreshold", 3)
    if isinstance(probe.get("httpGet"), dict):
        probe["httpGet"].setdefault("scheme", "HTTP")


def _container(container: Any) -> None:
    if not isinstance(container, dict):
        return
    image = str(container.get("image", ""))
    tag = image.rsplit("/", 1)[-1]
    latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
    container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("resources", {})
    for port in container.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    for name in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(container.get(name))


def pod_spec(spec: Any) -> None:
    """Fills the PodSpec defaults (restartPolicy, dnsPolicy, container defaults, ...)."""
    if not isinstance(spec, dict):
        return
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    # The deprecated alias, kept equal to serviceAccountName by the API's conversion.
    if spec.get("serviceAccountName"):
        spec["serviceAccount"] = spec["serviceAccountName"]
    elif spec.get("serviceAccount"):
        spec["serviceAccountName"] = spec["serviceAccount"]
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or []:
            _container(container)


def deployment(obj: dict[str, Any]) -> None:
    """Deployment defaults: replicas 1, RollingUpdate 25 %/25 %, history 10, deadline 600 s."""
    spec = obj.setdefault("spec", {})
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    template = spec.setdefault("template", {})
    pod_spec(template.get("spec"))


def service(obj: dict[str, Any], previous: dict[str, Any] | None) -> None:
    """Service defaults: ClusterIP type, an allocated cluster IP kept across updates, TCP ports."""
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["type"] != "ExternalName":
        old_ip = ((previous or {}).get("spec") or {}).get("clusterIP")
        spec.setdefault("clusterIP", old_ip or _next_cluster_ip())
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
    obj.setdefault("status", {}).setdefault("loadBalancer", {})


def ingress(obj: dict[str, Any]) -> None:
    """Ingress defaults: an empty load-balancer status."""
    obj.setdefault("status", {}).setdefault("loadBalancer", {})


def hpa(obj: dict[str, Any]) -> None:
    """HPA (autoscaling/v2) defaults: minReplicas 1, CPU at 80 % when no metric is given."""
    spec = obj.setdefault("spec", {})
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1
    if not spec.get("metrics"):
        spec["metrics"] = [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80},
                },
            }
        ]


def namespace(obj: dict[str, Any]) -> None:
    """Namespace defaults: the `kubernetes` finalizer and phase Active."""
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj.setdefault("status", {}).setdefault("phase", "Active")
    labels = obj["metadata"].setdefault("labels", {})
    labels.setdefault("kubernetes.io/metadata.name", obj["metadata"]["name"])


def micro_time(value: str) -> str:
    """Returns a `MicroTime` as the server writes it back: UTC, six fractional digits, `Z`.

    Raises:
        StatusError: 400 when `value` is not an RFC 3339 time.
    """
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as error:
        raise bad_request(
            f'Lease in version "v1" cannot be handled as a Lease: parsing time "{value}"'
            f' as "2006-01-02T15:04:05.000000Z07:00": cannot parse'
        ) from error
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease(obj: dict[str, Any]) -> None:
    """Lease: `acquireTime` and `renewTime` normalised like any MicroTime the server stores."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    for name in ("acquireTime", "renewTime"):
        if isinstance(spec.get(name), str):
            spec[name] = micro_time(spec[name])


# `omitempty` fields the daemon writes, by place: dropped when "", [] or {}.
_METADATA_OMITTED = ("labels", "annotations", "finalizers", "ownerReferences", "generateName")
_POD_SPEC_OMITTED = (
    "containers",
    "initContainers",
    "volumes",
    "tolerations",
    "nodeSelector",
    "imagePullSecrets",
    "serviceAccountName",
    "serviceAccount",
    "nodeName",
    "priorityClassName",
)
_CONTAINER_OMITTED = (
    "command",
    "args",
    "env",
    "envFrom",
    "ports",
    "volumeMounts",
    "workingDir",
    "imagePullPolicy",
    "terminationMessagePath",
    "terminationMessagePolicy",
)
_EMPTY: tuple[Any, ...] = ("", [], {})


def _drop_empty(place: Any, keys: tuple[str, ...]) -> None:
    if isinstance(place, dict):
        for key in keys:
            if key in place and place[key] in _EMPTY:
                del place[key]


def _omit_empty_pod_spec(spec: Any) -> None:
    if not isinstance(spec, dict):
        return
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or []:
            if not isinstance(container, dict):
                continue
            for var in container.get("env") or []:
                # EnvVar.value is `json:"value,omitempty"`: an empty value is not stored.
                _drop_empty(var, ("value",))
            for port in container.get("ports") or []:
                _drop_empty(port, ("name", "hostIP"))
            _drop_empty(container, _CONTAINER_OMITTED)
    _drop_empty(spec, _POD_SPEC_OMITTED)


def omit_empty(obj: dict[str, Any]) -> None:
    """Drops, in place, the empty values a real server omits (Go `omitempty`) in the
    fields the daemon uses: metadata, pod templates and their containers."""
    _drop_empty(obj.get("metadata"), _METADATA_OMITTED)
    if obj.get("kind") == "Deployment":
        template = (obj.get("spec") or {}).get("template")
        if isinstance(template, dict):
            _drop_empty(template.get("metadata"), _METADATA_OMITTED)
            _omit_empty_pod_spec(template.get("spec"))


def apply_defaults(obj: dict[str, Any], previous: dict[str, Any] | None) -> None:
    """Fills the server defaults for `obj` (by kind) in place, then drops what the
    server omits (`omit_empty`)."""
    _apply_kind_defaults(obj, previous)
    omit_empty(obj)


def _apply_kind_defaults(obj: dict[str, Any], previous: dict[str, Any] | None) -> None:
    kind = obj.get("kind")
    if kind == "Deployment":
        deployment(obj)
    elif kind == "Service":
        service(obj, previous)
    elif kind == "Ingress":
        ingress(obj)
    elif kind == "HorizontalPodAutoscaler":
        hpa(obj)
    elif kind == "Namespace":
        namespace(obj)
    elif kind == "Lease":
        lease(obj)
