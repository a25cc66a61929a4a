"""Everything said to Kubernetes: pure manifest builders, the API gateway
(timeouts, rate limit, retries, watch cache, leases) and `k8s.sim`, a local API
server for the embedded default and the tests. Never imports `actors` or `store`.

`build_objects(Workload)` says what should exist; `ClusterGateway` makes it so,
comparing against its watch cache so that a steady state sends no request.
"""

from k8s.errors import (
    AlreadyExists,
    ApiError,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    Retryable,
)
from k8s.gateway import ClusterGateway, GatewaySettings, WatchEvent, make_api_client
from k8s.manifests import KINDS, ManifestError, build_objects, object_key
from k8s.workload import Autoscaling, CanaryWorkload, HpaMetric, Workload

__all__ = [
    "KINDS",
    "AlreadyExists",
    "ApiError",
    "Autoscaling",
    "CanaryWorkload",
    "ClusterGateway",
    "Conflict",
    "Forbidden",
    "GatewaySettings",
    "Gone",
    "HpaMetric",
    "Invalid",
    "ManifestError",
    "NotFound",
    "Retryable",
    "WatchEvent",
    "Workload",
    "build_objects",
    "make_api_client",
    "object_key",
]
