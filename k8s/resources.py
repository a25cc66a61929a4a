"""The typed API calls for each kind the daemon manages, bound to one `ApiClient`.

Every call returns the raw urllib3 response (`_preload_content=False`): the
gateway parses JSON itself, so objects stay plain dicts in the API's shape and
no model objects are built. Bodies are dicts. Writes set `Content-Type:
application/json` explicitly because the 37.x client sends none on create and
replace, and chooses json-patch for PATCH unless told otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client

__all__ = ["API_VERSIONS", "ResourceApi", "json_headers", "resource_apis"]


def json_headers() -> dict[str, str]:
    """Headers for a write (see the module docstring): a new dict per call, because
    the client adds Accept, User-Agent and the bearer token into the dict it is given."""
    return {"Content-Type": "application/json"}


Call = Callable[..., Any]


@dataclass(frozen=True)
class ResourceApi:
    """The namespaced list/read/create/replace/delete calls of one kind.

    Each takes the typed client's arguments (`namespace`, `name`, `body`, and
    keyword options) and returns a streaming urllib3 response when called with
    `_preload_content=False`.
    """

    kind: str
    list: Call
    read: Call
    create: Call
    replace: Call
    delete: Call


def _bind(kind: str, api: object, suffix: str) -> ResourceApi:
    """The five calls `<verb>_namespaced_<suffix>` of a typed API object."""
    return ResourceApi(
        kind=kind,
        list=getattr(api, f"list_namespaced_{suffix}"),
        read=getattr(api, f"read_namespaced_{suffix}"),
        create=getattr(api, f"create_namespaced_{suffix}"),
        replace=getattr(api, f"replace_namespaced_{suffix}"),
        delete=getattr(api, f"delete_namespaced_{suffix}"),
    )


def resource_apis(api_client: client.ApiClient) -> dict[str, ResourceApi]:
    """The calls for Deployment, Service, Ingress, HorizontalPodAutoscaler and Lease, by kind."""
    core = client.CoreV1Api(api_client)
    return {
        "Deployment": _bind("Deployment", client.AppsV1Api(api_client), "deployment"),
        "Service": _bind("Service", core, "service"),
        "Ingress": _bind("Ingress", client.NetworkingV1Api(api_client), "ingress"),
        "HorizontalPodAutoscaler": _bind(
            "HorizontalPodAutoscaler",
            client.AutoscalingV2Api(api_client),
            "horizontal_pod_autoscaler",
        ),
        "Lease": _bind("Lease", client.CoordinationV1Api(api_client), "lease"),
    }


# apiVersion per kind: list items carry none in real servers' JSON, and the
# cache adds it back so every cached object looks like a GET of that object.
API_VERSIONS = {
    "Deployment": "apps/v1",
    "Service": "v1",
    "Ingress": "networking.k8s.io/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
    "Lease": "coordination.k8s.io/v1",
    "Namespace": "v1",
}
