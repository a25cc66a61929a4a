"""Pure decisions of an endpoint actor: the workload per region and state, and the
status to report (the watchdog is in test_watchdog.py)."""

from __future__ import annotations

from typing import Any

import pytest

from actors.desired import observed_status, same_report, workload_for
from actors.watchdog import says_traffic_was_cut
from store.model import RegionStatus, parse_endpoint
from tests.unit.live_objects import deployment as _deployment


def _endpoint(desired_state: str = "running", **spec: Any):
    item = {
        "endpoint_name": "m1",
        "desired_state": desired_state,
        "target_regions": ["us-east-1", "eu-west-1"],
        "namespace": "gco-inference",
        "spec": {"image": "repo/model:v1", **spec},
    }
    return parse_endpoint(item)


def test_region_override_applies_to_the_primary_only_and_canary_keeps_its_image() -> None:
    endpoint = _endpoint(
        region_image_uris={"eu-west-1": "eu.repo/model:v1"},
        canary={"image": "repo/model:v2", "weight": 25},
    )
    eu = workload_for(endpoint, "eu-west-1")
    us = workload_for(endpoint, "us-east-1")
    assert eu.image == "eu.repo/model:v1"
    assert us.image == "repo/model:v1"
    assert eu.canary is not None
    assert eu.canary.image == "repo/model:v2"
    assert eu.canary.weight == 25


def test_stopped_endpoint_runs_zero_replicas_and_no_hpa() -> None:
    endpoint = _endpoint(
        "stopped",
        replicas=3,
        autoscaling={"enabled": True, "min_replicas": 2, "max_replicas": 5},
        canary={"image": "repo/model:v2"},
    )
    w = workload_for(endpoint, "us-east-1")
    assert (w.replicas, w.autoscaling, w.stopped) == (0, None, True)
    assert w.canary is not None
    assert w.canary.replicas == 0


def test_start_after_stop_restores_the_spec_replicas() -> None:
    """Defect 1: 0 replicas must never be treated as 'already set'."""
    assert workload_for(_endpoint("running", replicas=3), "us-east-1").replicas == 3


def test_unhealthy_canary_gets_weight_zero() -> None:
    endpoint = _endpoint(canary={"image": "repo/model:v2", "weight": 30})
    w = workload_for(endpoint, "us-east-1", canary_healthy=False)
    assert w.canary is not None
    assert w.canary.weight == 0


@pytest.mark.parametrize(
    ("deployment", "state"),
    [
        pytest.param(None, "creating", id="no-deployment-yet"),
        pytest.param(_deployment(ready=0), "creating", id="nothing-ready"),
        pytest.param(_deployment(ready=1), "updating", id="half-ready"),
        pytest.param(_deployment(ready=2, available=True), "running", id="rolled-out"),
        pytest.param(
            _deployment(ready=2, available=True, generation=2, observed=1),
            "updating",
            id="new-generation-not-observed",
        ),
        pytest.param(
            _deployment(ready=2, available=True, updated=1), "updating", id="old-replicas-remain"
        ),
    ],
)
def test_running_is_reported_only_when_the_rollout_is_complete(
    deployment: dict | None, state: str
) -> None:
    """Defect 18: 'running' must not be reported before the rollout is done."""
    status = observed_status(_endpoint(), deployment, serving=True, threshold=300)
    assert status.state == state


def test_stopped_and_traffic_cut_states() -> None:
    stopped = observed_status(
        _endpoint("stopped"), _deployment(replicas=0), serving=True, threshold=300
    )
    assert (stopped.state, stopped.replicas_desired) == ("stopped", 0)
    cut = observed_status(_endpoint(), _deployment(ready=0), serving=False, threshold=300)
    assert cut.state == "error"
    assert "traffic stopped" in (cut.error or "")
    # The endpoint actor announces the restore by recognising this very error: whatever
    # its wording, the two stay in step (they are built from one place).
    assert says_traffic_was_cut(cut.error)
    assert not says_traffic_was_cut(stopped.error)


def test_same_report_ignores_last_sync() -> None:
    a = RegionStatus(state="running", replicas_ready=2, replicas_desired=2, last_sync="x")
    b = RegionStatus(state="running", replicas_ready=2, replicas_desired=2, last_sync="y")
    assert same_report(a, b)
    assert not same_report(a, RegionStatus(state="running", replicas_ready=1, replicas_desired=2))
