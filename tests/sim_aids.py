"""Aids for tests that drive an API server (the sim, or a real one) with the real kubernetes client.

`api_client(url)` builds a `kubernetes.client.ApiClient` for the sim;
`deployment()` and friends return valid manifests; `wait_for()` polls a
condition against a deadline (tests never sleep to synchronise).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes import client

T = TypeVar("T")
NAMESPACE = "gco-inference"


def api_client(url: str) -> Any:
    """Returns a `kubernetes.client.ApiClient` talking to `url` (close it when done)."""
    config = client.Configuration()
    config.host = url
    return client.ApiClient(config)


def wait_for(
    condition: Callable[[], T | None],
    *,
    timeout: float = 20.0,
    interval: float = 0.05,
    what: str = "",
) -> T:
    """Poll `condition` until it returns a truthy value and return it; after `timeout`
    seconds raise AssertionError naming `what` and the last value seen. The one wait of
    the test suites: tests wait on conditions with a deadline, never sleep to synchronise."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = condition()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what or condition}: {last!r}"
            )
        time.sleep(interval)


def deployment(
    name: str = "m1",
    *,
    image: str = "nginx:1.25",
    replicas: int = 2,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Returns a valid apps/v1 Deployment manifest selecting `app=<name>`."""
    all_labels = {"app": name, **(labels or {})}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": all_labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": all_labels},
                "spec": {
                    "containers": [
                        {
                            "name": "server",
                            "image": image,
                            "ports": [{"containerPort": 8000, "name": "http"}],
                            "env": [{"name": "MODEL", "value": name}],
                        }
                    ]
                },
            },
        },
    }


def service(name: str = "m1", *, port: int = 80) -> dict[str, Any]:
    """Returns a valid v1 Service manifest for `app=<name>`."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "selector": {"app": name},
            "ports": [{"name": "http", "port": port, "targetPort": 8000}],
        },
    }


def lease(name: str = "leader", *, holder: str = "a") -> dict[str, Any]:
    """Returns a valid coordination.k8s.io/v1 Lease held by `holder`."""
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 15,
            "acquireTime": "2026-01-02T03:04:05.123456Z",
            "renewTime": "2026-01-02T03:04:05.123456Z",
            "leaseTransitions": 0,
        },
    }


def raw_request(
    url: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    content_type: str = "application/json",
    timeout: float = 5.0,
) -> tuple[int, dict[str, str], Any]:
    """Sends one request with urllib, bypassing the client's own checks.

    Returns (status, headers, decoded JSON body or None).
    """
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        url + path, data=data, method=method, headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw, status, headers = response.read(), response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        raw, status, headers = error.read(), error.code, dict(error.headers)
    return status, headers, json.loads(raw) if raw else None
