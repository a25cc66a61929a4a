"""The pod-status driver's decisions (`k8s.realcluster.pod_driver`): what a pod needs
next on a control plane without kubelets, and the status it is given."""

from __future__ import annotations

from typing import Any

from k8s.realcluster.pod_driver import (
    BIND,
    DELETE,
    READY,
    START,
    next_step,
    status_patch,
)

PATTERN = "crashloop"


def _pod(image: str = "repo/model:v1", **fields: Any) -> dict[str, Any]:
    pod: dict[str, Any] = {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
        "spec": {"containers": [{"name": "server", "image": image}]},
        "status": {"phase": "Pending"},
    }
    for path, value in fields.items():
        section, key = path.split("__")
        pod[section][key] = value
    return pod


def _started(pod: dict[str, Any], *, ready: bool) -> dict[str, Any]:
    return {**pod, **status_patch(pod, ready=ready, pod_ip="10.244.0.2", pattern=PATTERN)}


def test_an_unbound_pod_is_bound_first() -> None:
    assert next_step(_pod(), PATTERN) == BIND


def test_a_bound_pod_starts_then_becomes_ready_then_is_left_alone() -> None:
    bound = _pod(spec__nodeName="local-node")
    assert next_step(bound, PATTERN) == START
    running = _started(bound, ready=False)
    assert running["status"]["phase"] == "Running"
    assert next_step(running, PATTERN) == READY
    ready = _started(bound, ready=True)
    conditions = {c["type"]: c["status"] for c in ready["status"]["conditions"]}
    assert conditions["Ready"] == conditions["ContainersReady"] == "True"
    assert ready["status"]["containerStatuses"][0]["ready"] is True
    assert next_step(ready, PATTERN) is None


def test_a_crashloop_image_runs_but_never_becomes_ready() -> None:
    bound = _pod("repo/model:crashloop", spec__nodeName="local-node")
    assert next_step(bound, PATTERN) == START
    asked_ready = _started(bound, ready=True)
    conditions = {c["type"]: c["status"] for c in asked_ready["status"]["conditions"]}
    assert conditions["Ready"] == "False"
    state = asked_ready["status"]["containerStatuses"][0]["state"]
    assert state["waiting"]["reason"] == "CrashLoopBackOff"
    assert next_step(asked_ready, PATTERN) is None


def test_a_terminating_pod_is_deleted_only_once_bound() -> None:
    at = "2026-01-01T00:00:00Z"
    assert next_step(_pod(metadata__deletionTimestamp=at), PATTERN) is None
    bound = _pod(spec__nodeName="local-node", metadata__deletionTimestamp=at)
    assert next_step(bound, PATTERN) == DELETE
