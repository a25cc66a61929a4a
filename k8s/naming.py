"""Names of the Kubernetes objects of an endpoint (architecture section 3): the contract
with the predecessor, so they are built here and nowhere else.

Deployment, Service and HPA `{name}`; Ingress `inference-{name}`; canary Deployment and
Service `{name}-canary`. An endpoint name is a DNS-1035 label (it names the Service), at
most `MAX_NAME_LENGTH`; only a canary needs `{name}-canary` to fit too, so a longer name
refuses the canary, not the endpoint. (`store.validation` states the same limits for the
table; `store` cannot import `k8s`, so tests/unit/test_naming.py keeps the two equal.)
"""

from __future__ import annotations

#: Longest endpoint name: a DNS-1035 label.
MAX_NAME_LENGTH = 63
CANARY_SUFFIX = "-canary"
INGRESS_PREFIX = "inference-"
#: Longest endpoint name that can have a canary (`{name}-canary` within 63).
MAX_CANARY_NAME_LENGTH = MAX_NAME_LENGTH - len(CANARY_SUFFIX)


def deployment_name(name: str) -> str:
    """Name of the Deployment (and Service and HPA) of endpoint `name`."""
    return name


def canary_name(name: str) -> str:
    """Name of the canary Deployment and Service of endpoint `name`."""
    return f"{name}{CANARY_SUFFIX}"


def ingress_name(name: str) -> str:
    """Name of the Ingress of endpoint `name`."""
    return f"{INGRESS_PREFIX}{name}"


def endpoint_of_ingress(ingress: str) -> str:
    """The endpoint an Ingress name belongs to (`inference-x` -> `x`)."""
    return ingress.removeprefix(INGRESS_PREFIX)


def base_of_canary(name: str) -> str:
    """The endpoint a canary object name belongs to (`x-canary` -> `x`; else `name`)."""
    return name.removesuffix(CANARY_SUFFIX)
