"""Server-side printing: the `meta.k8s.io/v1` `Table` that `kubectl get` asks for.

kubectl sends `Accept: application/json;as=Table;...`; answering with a Table
gives its usual columns (READY, STATUS, AGE, ...) instead of NAME/AGE only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

Row = list[Any]


def _age(created: str | None, now: float) -> str:
    if not created:
        return "<unknown>"
    seconds = max(0, int(now - datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _deployment(obj: dict[str, Any]) -> Row:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return [
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
    ]


def _pod(obj: dict[str, Any]) -> Row:
    statuses = (obj.get("status") or {}).get("containerStatuses") or []
    ready = sum(1 for s in statuses if s.get("ready"))
    waiting = next(
        (
            s["state"]["waiting"].get("reason")
            for s in statuses
            if "waiting" in (s.get("state") or {})
        ),
        None,
    )
    return [
        f"{ready}/{len(statuses)}",
        waiting or (obj.get("status") or {}).get("phase", "Unknown"),
        sum(int(s.get("restartCount", 0)) for s in statuses),
    ]


def _service(obj: dict[str, Any]) -> Row:
    spec = obj.get("spec") or {}
    ports = ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or [])
    return [
        spec.get("type", "ClusterIP"),
        spec.get("clusterIP", "<none>"),
        "<none>",
        ports or "<none>",
    ]


def _ingress(obj: dict[str, Any]) -> Row:
    spec = obj.get("spec") or {}
    hosts = ",".join(r["host"] for r in spec.get("rules") or [] if r.get("host")) or "*"
    return [spec.get("ingressClassName", "<none>"), hosts, "", "80"]


def _hpa(obj: dict[str, Any]) -> Row:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    return [
        f"{ref.get('kind')}/{ref.get('name')}",
        "<unknown>",
        spec.get("minReplicas", 1),
        spec.get("maxReplicas"),
        status.get("currentReplicas", 0),
    ]


def _namespace(obj: dict[str, Any]) -> Row:
    return [(obj.get("status") or {}).get("phase", "Active")]


def _lease(obj: dict[str, Any]) -> Row:
    return [(obj.get("spec") or {}).get("holderIdentity", "")]


def _event(obj: dict[str, Any]) -> Row:
    involved = obj.get("involvedObject") or {}
    return [
        obj.get("type", ""),
        obj.get("reason", ""),
        f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
        obj.get("message", ""),
    ]


_COLUMNS: dict[str, tuple[tuple[str, ...], Callable[[dict[str, Any]], Row]]] = {
    "deployments": (("Ready", "Up-to-date", "Available"), _deployment),
    "pods": (("Ready", "Status", "Restarts"), _pod),
    "services": (("Type", "Cluster-IP", "External-IP", "Port(s)"), _service),
    "ingresses": (("Class", "Hosts", "Address", "Ports"), _ingress),
    "horizontalpodautoscalers": (("Reference", "Targets", "MinPods", "MaxPods", "Replicas"), _hpa),
    "namespaces": (("Status",), _namespace),
    "leases": (("Holder",), _lease),
    "events": (("Type", "Reason", "Object", "Message"), _event),
}


def wants_table(accept: str | None) -> bool:
    """True when the client (kubectl) asked for server-side printing."""
    return bool(accept) and "as=Table" in (accept or "")


def table(
    plural: str, objects: list[dict[str, Any]], resource_version: str, now: float
) -> dict[str, Any]:
    """Returns the `Table` kubectl prints for `objects` of one kind."""
    names, cells = _COLUMNS.get(plural, ((), lambda _obj: []))
    columns = [
        {"name": "Name", "type": "string", "format": "name", "description": "", "priority": 0}
    ]
    columns += [
        {"name": n, "type": "string", "format": "", "description": "", "priority": 0} for n in names
    ]
    columns.append(
        {"name": "Age", "type": "string", "format": "", "description": "", "priority": 0}
    )
    rows = []
    for obj in objects:
        meta = obj.get("metadata") or {}
        rows.append(
            {
                "cells": [meta.get("name"), *cells(obj), _age(meta.get("creationTimestamp"), now)],
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": meta,
                },
            }
        )
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns,
        "rows": rows,
    }
