"""The watchdog (architecture section 4; defects 5 and 19): when to stop sending traffic to an
endpoint whose primary has had no ready replica for too long, and when to give an unready
canary weight 0.

Pure: live Deployments as dicts and times as epoch seconds in, a `WatchdogDecision` out.
The clock is the cluster's (the `Available` condition's lastTransitionTime), never one
kept in memory, so a restart or a new leader does not reset it. The endpoint actor calls
`watchdog()` on every reconcile and sets a timer for `next_check`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

# What a person reads when the watchdog acts, said once: the status error, the Events and
# the rollout's halt reason are built from these, and the endpoint actor recognises a cut
# by `TRAFFIC_STOPPED` (rewording it here rewords every place, and the restore still works).
TRAFFIC_STOPPED = "traffic stopped (Ingress removed)"


def traffic_cut_reason(threshold: float) -> str:
    """Why a primary lost its traffic: the status error and the `TrafficCut` Event."""
    return f"no ready replica for {threshold:g}s: {TRAFFIC_STOPPED}"


def canary_zeroed_reason(threshold: float) -> str:
    """Why a canary's weight went to 0: the `CanaryWeightZeroed` Event."""
    return f"canary has had no ready replica for {threshold:g}s: its weight is set to 0"


#: A rollout halted because the watchdog cut the new revision's traffic.
ROLLOUT_HALT_REASON = "watchdog: no ready replica, traffic was cut"


def says_traffic_was_cut(error: str | None) -> bool:
    """A status error written by `traffic_cut_reason`."""
    return TRAFFIC_STOPPED in (error or "")


def parse_time(value: str | None) -> float | None:
    """Epoch seconds of an RFC 3339 timestamp as Kubernetes writes it, None if absent or bad."""
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def unready_since(deployment: dict | None) -> float | None:
    """When the Deployment last became unavailable with no ready replica, from the cluster.

    Uses the `Available` condition's lastTransitionTime (falling back to the
    creation time), so a restart or a new leader does not reset the clock.
    None while it has a ready replica or is scaled to 0.
    """
    if deployment is None:
        return None
    desired = int(deployment.get("spec", {}).get("replicas", 1) or 0)
    status = deployment.get("status") or {}
    if desired == 0 or int(status.get("readyReplicas") or 0) > 0:
        return None
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Available":
            if condition.get("status") == "True":
                return None
            since = parse_time(condition.get("lastTransitionTime"))
            if since is not None:
                return since
    return parse_time(deployment.get("metadata", {}).get("creationTimestamp"))


@dataclass(frozen=True)
class WatchdogDecision:
    """Decisions of the watchdog for one endpoint at one instant."""

    serve_traffic: bool
    canary_healthy: bool
    #: Epoch seconds at which the decision may change (a timer should fire then), or None.
    next_check: float | None


def watchdog(
    primary: dict | None, canary: dict | None, *, now: float, threshold: float
) -> WatchdogDecision:
    """Cut traffic to a primary with no ready replica for `threshold` seconds, and give an
    unready canary weight 0 after the same time. Judged on the primary alone, so a
    ready canary cannot hide a dead primary."""
    checks: list[float] = []
    primary_since = unready_since(primary)
    serve = True
    if primary_since is not None:
        if now - primary_since >= threshold:
            serve = False
        else:
            checks.append(primary_since + threshold)
    canary_since = unready_since(canary)
    canary_healthy = True
    if canary_since is not None:
        if now - canary_since >= threshold:
            canary_healthy = False
        else:
            checks.append(canary_since + threshold)
    return WatchdogDecision(serve, canary_healthy, min(checks) if checks else None)
