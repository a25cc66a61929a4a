"""The daemon's own Kubernetes manifests, built from a handful of parameters.

One source for everything an operator applies to run the daemon in a cluster:
Namespace, ServiceAccount, a least-privilege Role and its RoleBinding (and, for
each further namespace the daemon serves, that Namespace and a Role and RoleBinding
in it), the Deployment (2 replicas; the leader lease makes one active), a
PodDisruptionBudget and a Service for metrics. `inference-supervisor
render-manifests` prints them; tests validate each one strictly.

The daemon's own objects deliberately do not carry the `managed-by` label the
daemon puts on endpoint objects, so it can never mistake itself for an orphan.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

APP_NAME = "inference-supervisor"
METRICS_PORT = 8080
DEFAULT_LEASE_NAME = "inference-monitor-leader"
# Non-root user and group of the image (docker/Dockerfile creates them).
RUN_AS_ID = 10001
# Sized from the benchmark: ~100 KiB per endpoint above a ~100 MiB baseline,
# so 5,000 endpoints fit in ~600 MiB; 1 GiB leaves room for bursts of API replies.
DEFAULT_MEMORY_LIMIT = "1Gi"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Verbs on the endpoint objects the daemon owns, exactly those k8s/gateway.py sends: list
# and watch (informers), get (re-read after a conflict, confirm a delete), create, update
# (conditional replace, never patch) and delete. tests/integration/test_rbac_used.py runs
# a full lifecycle against the sim and fails on a verb granted but unused, or used but
# not granted.
_OWNER_VERBS = ["get", "list", "watch", "create", "update", "delete"]
# Env names the builder sets itself; `extra_env` may not override them silently.
_RESERVED_ENV = frozenset(
    {
        "CLUSTER_NAME",
        "REGION",
        "INFERENCE_ENDPOINTS_TABLE_NAME",
        "INFERENCE_NAMESPACE",
        "INFERENCE_NAMESPACES",
        "METRICS_PORT",
        "POD_NAME",
        "LOG_FORMAT",
    }
)


def _labels() -> dict[str, str]:
    return {"app.kubernetes.io/name": APP_NAME, "app.kubernetes.io/component": "daemon"}


def _meta(name: str, namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["labels"] = _labels()
    return meta


def role_rules(lease_name: str = DEFAULT_LEASE_NAME) -> list[dict[str, Any]]:
    """The Role's rules in the daemon's own namespace: exactly the kinds and verbs the
    daemon uses, nothing cluster-wide.

    Endpoint objects (`object_rules`), plus Leases: create (which cannot be limited by
    name) plus get/update of the leader lease only. No pods: health comes from the
    Deployments' status. No namespaces: the daemon (and `run --check`) never reads or
    creates one.
    """
    return [
        *object_rules(),
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [lease_name],
            "verbs": ["get", "update"],
        },
    ]


def object_rules() -> list[dict[str, Any]]:
    """The rules on endpoint objects, the whole Role of a further served namespace:
    read, watch, create, replace and delete (no patch: writes are conditional replaces),
    plus `create` on Events: each decision about an endpoint is one new Event on its
    Deployment (`k8s.events`), never read, updated or deleted by the daemon."""
    return [
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": list(_OWNER_VERBS)},
        {"apiGroups": [""], "resources": ["services"], "verbs": list(_OWNER_VERBS)},
        {
            "apiGroups": ["networking.k8s.io"],
            "resources": ["ingresses"],
            "verbs": list(_OWNER_VERBS),
        },
        {
            "apiGroups": ["autoscaling"],
            "resources": ["horizontalpodautoscalers"],
            "verbs": list(_OWNER_VERBS),
        },
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    ]


def _probe(path: str, *, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "metrics"},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def _env(
    *,
    region: str,
    cluster_name: str,
    namespace: str,
    namespaces: Sequence[str],
    table_name: str,
    extra_env: Mapping[str, str],
) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "CLUSTER_NAME", "value": cluster_name},
        {"name": "REGION", "value": region},
        {"name": "INFERENCE_ENDPOINTS_TABLE_NAME", "value": table_name},
        {"name": "INFERENCE_NAMESPACE", "value": namespace},
    ]
    if namespaces:
        env.append({"name": "INFERENCE_NAMESPACES", "value": ",".join((namespace, *namespaces))})
    env += [
        {"name": "METRICS_PORT", "value": str(METRICS_PORT)},
        {"name": "LOG_FORMAT", "value": "json"},
        # The lease identity: unique per pod and readable in `kubectl get lease`.
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]
    env += [{"name": name, "value": str(value)} for name, value in sorted(extra_env.items())]
    return env


def _deployment(
    *,
    image: str,
    namespace: str,
    replicas: int,
    memory_limit: str,
    env: list[dict[str, Any]],
) -> dict[str, Any]:
    container = {
        "name": "supervisor",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "env": env,
        "ports": [{"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}],
        "livenessProbe": {
            **_probe("/healthz", period=10, failures=3),
            "initialDelaySeconds": 10,
        },
        "readinessProbe": _probe("/readyz", period=5, failures=2),
        # No CPU limit: throttling a leader mid-renewal costs the lease; memory is capped.
        "resources": {
            "requests": {"cpu": "100m", "memory": "256Mi"},
            "limits": {"memory": memory_limit},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        # The root filesystem is read-only; Python and boto3 may still want a temp dir.
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(APP_NAME, namespace),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": _labels()},
            # One standby stays up while the other rolls: a handover, never a gap.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {
                    "labels": _labels(),
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(METRICS_PORT),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    "serviceAccountName": APP_NAME,
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": RUN_AS_ID,
                        "runAsGroup": RUN_AS_ID,
                        "fsGroup": RUN_AS_ID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    # Leader and standby on different nodes, so one node loss is a failover.
                    "affinity": {
                        "podAntiAffinity": {
                            "preferredDuringSchedulingIgnoredDuringExecution": [
                                {
                                    "weight": 100,
                                    "podAffinityTerm": {
                                        "labelSelector": {"matchLabels": _labels()},
                                        "topologyKey": "kubernetes.io/hostname",
                                    },
                                }
                            ]
                        }
                    },
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
                },
            },
        },
    }


def _role(
    namespace: str, rules: list[dict[str, Any]], *, account_namespace: str
) -> list[dict[str, Any]]:
    """A Role in `namespace` and its binding to the daemon's ServiceAccount."""
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta(APP_NAME, namespace),
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _meta(APP_NAME, namespace),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": APP_NAME},
            "subjects": [
                {"kind": "ServiceAccount", "name": APP_NAME, "namespace": account_namespace}
            ],
        },
    ]


def build_daemon_objects(
    *,
    image: str,
    region: str,
    cluster_name: str,
    namespace: str = "gco-inference",
    namespaces: Sequence[str] = (),
    table_name: str = "gco-inference-endpoints",
    replicas: int = 2,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    extra_env: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Everything needed to run the daemon in `namespace`, in apply order.

    Args:
        image: the daemon's image reference.
        region: the region this cluster serves (`REGION`).
        cluster_name: this cluster's name (`CLUSTER_NAME`).
        namespace: where the daemon runs, its lease lives and endpoints are served.
        namespaces: further namespaces whose endpoints it serves (`INFERENCE_NAMESPACES`):
            each gets its Namespace and a Role (endpoint objects only) bound to the
            daemon's ServiceAccount.
        table_name: the endpoints table (`INFERENCE_ENDPOINTS_TABLE_NAME`).
        replicas: daemon pods; one leads, the others stand by.
        memory_limit: the container's memory limit (quantity string).
        extra_env: more environment variables (e.g. `DYNAMODB_REGION`, `LEASE_NAME`).

    Returns:
        Namespace, ServiceAccount, Role, RoleBinding, Deployment, PodDisruptionBudget, Service;
        with `namespaces`, their Namespaces follow the first and their Roles and
        RoleBindings the first RoleBinding.

    Raises:
        ValueError: an empty image/region/cluster name, a bad namespace, replicas < 1,
            or an `extra_env` name that is invalid or one the builder sets itself.
    """
    extra = dict(extra_env or {})
    for label, value in (("image", image), ("region", region), ("cluster name", cluster_name)):
        if not value or value.strip() != value:
            raise ValueError(f"{label} must be a non-empty value without spaces, got {value!r}")
    if not _DNS_LABEL.match(namespace):
        raise ValueError(f"namespace must be a DNS-1123 label, got {namespace!r}")
    for other in namespaces:
        if not _DNS_LABEL.match(other):
            raise ValueError(f"namespaces must be DNS-1123 labels, got {other!r}")
    others = [name for name in dict.fromkeys(namespaces) if name != namespace]
    if replicas < 1:
        raise ValueError(f"replicas must be at least 1, got {replicas}")
    for name in extra:
        if not _ENV_NAME.match(name) or name in _RESERVED_ENV:
            raise ValueError(f"extra environment variable not allowed: {name!r}")
    lease_name = extra.get("LEASE_NAME", DEFAULT_LEASE_NAME)
    env = _env(
        region=region,
        cluster_name=cluster_name,
        namespace=namespace,
        namespaces=others,
        table_name=table_name,
        extra_env=extra,
    )
    return [
        *(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(name)}
            for name in (namespace, *others)
        ),
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(APP_NAME, namespace)},
        *_role(namespace, role_rules(lease_name), account_namespace=namespace),
        *(
            obj
            for other in others
            for obj in _role(other, object_rules(), account_namespace=namespace)
        ),
        _deployment(
            image=image,
            namespace=namespace,
            replicas=replicas,
            memory_limit=memory_limit,
            env=env,
        ),
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": _meta(APP_NAME, namespace),
            # One pod always up; a single replica must not block node drains forever.
            "spec": {
                **({"minAvailable": 1} if replicas > 1 else {"maxUnavailable": 1}),
                "selector": {"matchLabels": _labels()},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(f"{APP_NAME}-metrics", namespace),
            "spec": {
                "selector": _labels(),
                "ports": [
                    {
                        "name": "metrics",
                        "port": METRICS_PORT,
                        "targetPort": "metrics",
                        "protocol": "TCP",
                    }
                ],
            },
        },
    ]
