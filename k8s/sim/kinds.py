"""The resource kinds the sim serves and the discovery documents that list them.

One `ResourceKind` per REST resource: its URL plural, group/version, whether it
is namespaced, and which subresources exist. Discovery (`/api`, `/apis`,
`/api/v1`, `/apis/<group>/<version>`) is derived from this table once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ResourceKind:
    """One REST resource: `deployments` in `apps/v1`, `services` in core `v1`, ..."""

    plural: str
    kind: str
    group: str
    version: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    has_status: bool = False
    has_scale: bool = False
    has_generation: bool = True
    # Deployments: an annotation change bumps `generation` too (the real strategy does,
    # since a Deployment's annotations are copied to its ReplicaSets).
    generation_counts_annotations: bool = False
    read_only: bool = False

    @property
    def api_version(self) -> str:
        """`apps/v1`, or just `v1` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        """`DeploymentList`."""
        return f"{self.kind}List"

    @property
    def qualified(self) -> str:
        """`deployments.apps` (core kinds: `services`), as error messages name a resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def prefix(self) -> str:
        """The URL prefix of the group version: `/api/v1` or `/apis/apps/v1`."""
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"


NAMESPACES = ResourceKind(
    "namespaces",
    "Namespace",
    "",
    "v1",
    namespaced=False,
    short_names=("ns",),
    has_status=True,
    has_generation=False,
)
PODS = ResourceKind(
    "pods",
    "Pod",
    "",
    "v1",
    short_names=("po",),
    has_status=True,
    has_generation=False,
    read_only=True,
)
SERVICES = ResourceKind("services", "Service", "", "v1", short_names=("svc",), has_status=True)
DEPLOYMENTS = ResourceKind(
    "deployments",
    "Deployment",
    "apps",
    "v1",
    short_names=("deploy",),
    has_status=True,
    has_scale=True,
    generation_counts_annotations=True,
)
INGRESSES = ResourceKind(
    "ingresses", "Ingress", "networking.k8s.io", "v1", short_names=("ing",), has_status=True
)
HPAS = ResourceKind(
    "horizontalpodautoscalers",
    "HorizontalPodAutoscaler",
    "autoscaling",
    "v2",
    short_names=("hpa",),
    has_status=True,
)
LEASES = ResourceKind("leases", "Lease", "coordination.k8s.io", "v1", has_generation=False)
# core/v1 Events (what `kubectl describe` lists under an object), as a controller records them.
EVENTS = ResourceKind("events", "Event", "", "v1", short_names=("ev",), has_generation=False)

ALL_KINDS: tuple[ResourceKind, ...] = (
    NAMESPACES,
    PODS,
    SERVICES,
    DEPLOYMENTS,
    INGRESSES,
    HPAS,
    LEASES,
    EVENTS,
)
# Stored kinds: everything but the derived Pods.
STORED_KINDS: tuple[ResourceKind, ...] = tuple(k for k in ALL_KINDS if not k.read_only)
# (prefix, plural) -> kind: the router's only lookup.
BY_PATH: dict[tuple[str, str], ResourceKind] = {(k.prefix, k.plural): k for k in ALL_KINDS}
BY_PLURAL: dict[str, ResourceKind] = {k.plural: k for k in ALL_KINDS}
# Kinds whose objects the strict schema validation checks.
VALIDATED: frozenset[str] = frozenset(
    {"Deployment", "Service", "Ingress", "HorizontalPodAutoscaler", "Lease", "Event"}
)

SERVER_VERSION: dict[str, str] = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.0-sim",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.24.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}

# Resources that `kubectl get all` shows.
_CATEGORY_ALL = frozenset({"pods", "services", "deployments", "horizontalpodautoscalers"})
_VERBS_RW = ["create", "delete", "get", "list", "patch", "update", "watch"]


def _resource_list(group_version: str, kinds: list[ResourceKind]) -> dict[str, Any]:
    resources: list[dict[str, Any]] = []
    for k in kinds:
        resources.append(
            {
                "name": k.plural,
                "singularName": k.kind.lower(),
                "namespaced": k.namespaced,
                "kind": k.kind,
                "verbs": ["get", "list", "watch"] if k.read_only else _VERBS_RW,
                **({"shortNames": list(k.short_names)} if k.short_names else {}),
                **({"categories": ["all"]} if k.plural in _CATEGORY_ALL else {}),
            }
        )
        if k.has_status:
            resources.append(
                {
                    "name": f"{k.plural}/status",
                    "singularName": "",
                    "namespaced": k.namespaced,
                    "kind": k.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        if k.has_scale:
            resources.append(
                {
                    "name": f"{k.plural}/scale",
                    "singularName": "",
                    "namespaced": k.namespaced,
                    "group": "autoscaling",
                    "version": "v1",
                    "kind": "Scale",
                    "verbs": ["get", "patch", "update"],
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }


def discovery_documents() -> dict[str, dict[str, Any]]:
    """Returns path -> JSON body for every discovery path the sim answers."""
    docs: dict[str, dict[str, Any]] = {
        "/version": SERVER_VERSION,
        "/api": {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}
            ],
        },
        "/api/v1": _resource_list("v1", [k for k in ALL_KINDS if not k.group]),
    }
    groups: dict[str, list[ResourceKind]] = {}
    for k in ALL_KINDS:
        if k.group:
            groups.setdefault(k.api_version, []).append(k)
    group_docs = []
    for group_version, kinds in groups.items():
        group, version = group_version.split("/")
        gv = {"groupVersion": group_version, "version": version}
        group_doc = {
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": group,
            "versions": [gv],
            "preferredVersion": gv,
        }
        group_docs.append({k: v for k, v in group_doc.items() if k not in ("kind", "apiVersion")})
        docs[f"/apis/{group}"] = group_doc
        docs[f"/apis/{group_version}"] = _resource_list(group_version, kinds)
    docs["/apis"] = {"kind": "APIGroupList", "apiVersion": "v1", "groups": group_docs}
    return docs
