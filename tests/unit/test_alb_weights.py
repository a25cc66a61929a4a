"""The ALB weights gate's pure parts (`store.gates.alb`): the weights an Ingress asks for,
read as the AWS Load Balancer Controller reads them, and the comparison with what a rule
carries, as shares of the traffic."""

from __future__ import annotations

from typing import Any

import pytest

from k8s.manifests import build_ingress
from k8s.workload import CanaryWorkload, Workload
from store.gates.alb import expected_weights, same_shares


@pytest.mark.parametrize(
    ("expected", "a", "b"),
    [
        pytest.param(True, {"p": 90, "c": 10}, {"p": 90, "c": 10}, id="same"),
        pytest.param(True, {"p": 900, "c": 100}, {"p": 90, "c": 10}, id="scaled"),
        pytest.param(True, {"p": 100, "c": 0}, {"p": 1}, id="zero-is-absent"),
        pytest.param(False, {"p": 90, "c": 10}, {"p": 1}, id="not-carried"),
        pytest.param(False, {"p": 50, "c": 50}, {"p": 90, "c": 10}, id="older-step"),
        pytest.param(False, {"p": 0}, {"p": 0}, id="nothing-forwarded"),
    ],
)
def test_weights_compare_as_shares(expected: bool, a: dict[str, int], b: dict[str, int]) -> None:
    assert same_shares(a, b) is expected


def _ingress(canary_weight: int | None) -> dict[str, Any]:
    canary = None if canary_weight is None else CanaryWorkload("repo/m:v2", canary_weight)
    return build_ingress(
        Workload(name="m1", namespace="gco-inference", image="repo/m:v1", canary=canary)
    )


def test_the_ingress_the_daemon_builds_is_read_as_the_controller_reads_it() -> None:
    assert expected_weights(_ingress(None)) == {("m1", 80): 1}
    assert expected_weights(_ingress(10)) == {("m1", 80): 90, ("m1-canary", 80): 10}
    assert expected_weights(_ingress(0)) == {("m1", 80): 100, ("m1-canary", 80): 0}
    assert expected_weights({"metadata": {"name": "x"}, "spec": {}}) is None
