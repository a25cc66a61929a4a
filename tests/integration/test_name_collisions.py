"""Endpoint `x-canary` and endpoint `x`'s canary share the Deployment and Service name
`x-canary` (architecture section 3, defect 27): the endpoint that holds the objects keeps them,
the other gets an `error` status naming the owner, and nothing of the owner's is ever
modified or deleted - with the real daemon against moto and `k8s.sim`."""

from __future__ import annotations

import json
from typing import Any

from k8s.workload import INSTANCE_LABEL
from store import commands
from tests.integration.harness import Harness, wait_for

CANARY = {"image": "repo/model:v2", "weight": 20}


def _identity(obj: dict[str, Any] | None) -> tuple[Any, ...]:
    assert obj is not None
    meta = obj["metadata"]
    return meta["uid"], meta["resourceVersion"], meta.get("generation"), meta["labels"]


def test_a_canary_never_takes_over_another_endpoints_objects(kit: Harness) -> None:
    kit.put("x-canary")
    kit.start_daemon()
    kit.wait_state("x-canary", "running")
    deployment = kit.kube.get("Deployment", "x-canary")
    service = kit.kube.get("Service", "x-canary")
    assert deployment["metadata"]["labels"][INSTANCE_LABEL] == "x-canary"

    kit.put("x", canary=CANARY)
    status = kit.wait_state("x", "error")
    assert "Deployment x-canary belongs to endpoint 'x-canary'" in (status.error or "")
    assert _identity(kit.kube.get("Deployment", "x-canary")) == _identity(deployment)
    assert _identity(kit.kube.get("Service", "x-canary")) == _identity(service)
    ingress = kit.kube.get("Ingress", "inference-x")
    assert ingress is None or "x-canary" not in json.dumps(ingress), "no traffic to x-canary"

    kit.store.apply("x", commands.rollback)
    kit.wait_state("x", "running")
    assert _identity(kit.kube.get("Deployment", "x-canary")) == _identity(deployment)
    assert _identity(kit.kube.get("Service", "x-canary")) == _identity(service)
    assert kit.state("x-canary") == "running"


def test_an_endpoint_named_like_a_canary_never_takes_it_over_nor_deletes_it(
    kit: Harness,
) -> None:
    kit.put("x", canary=CANARY)
    kit.start_daemon()
    kit.wait_state("x", "running")
    canary = kit.kube.get("Deployment", "x-canary")
    assert canary["metadata"]["labels"][INSTANCE_LABEL] == "x"

    kit.put("x-canary")
    status = kit.wait_state("x-canary", "error")
    assert "Deployment x-canary belongs to endpoint 'x'" in (status.error or "")
    assert _identity(kit.kube.get("Deployment", "x-canary")) == _identity(canary)

    kit.store.apply("x-canary", commands.set_desired_state, "deleted")
    wait_for(lambda: kit.item("x-canary") is None, what="x-canary deleted and purged")
    assert _identity(kit.kube.get("Deployment", "x-canary")) == _identity(canary)
    assert kit.kube.get("Service", "x-canary") is not None
    assert kit.state("x") == "running"
