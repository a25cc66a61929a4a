"""The daemon's decisions about an endpoint, told to people (architecture sections 7 and 12).

A decision (a rollout step, a halt, the watchdog cutting traffic, an endpoint parked...)
is announced once, when it changes, never on every reconcile, three ways: a Kubernetes
Event on the endpoint's Deployment (`kubectl describe deployment NAME`), a log line
naming it (in the endpoint's JSONL stream when told from its actor) and the metric
`inference_supervisor_decisions_total{decision}` (through `EventKind.DECISION`).

`rollout_decision` is pure: the status entry this region last reported and the new
rollout plan in, the decision to announce (or None) out. Its "before" is the table's
entry, so a restart or a new leader does not announce again what was announced.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from actors.messages import EventKind, OnEvent
from actors.ports import Cluster
from actors.rollout import ACTIVE, Plan
from actors.watchdog import canary_zeroed_reason, traffic_cut_reason
from k8s.errors import NotSynced
from k8s.events import build_event
from store.model import RegionStatus
from store.rollout import Halt

__all__ = [
    "Decision",
    "announce",
    "canary_zeroed",
    "completed",
    "halted",
    "parked",
    "rollout_decision",
    "traffic_cut",
    "traffic_restored",
]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Decision:
    """One decision as people see it.

    Attributes:
        reason: the Event's reason and the metric's `decision` label, CamelCase.
        message: one sentence.
        warning: an Event of type Warning (something failed), else Normal.
    """

    reason: str
    message: str
    warning: bool = False


def _rev(revision: str | None) -> str:
    return f"revision {revision}" if revision else "no revision"


def rollout_decision(
    previous: RegionStatus | None, plan: Plan, *, halt: Halt | None = None
) -> Decision | None:
    """The rollout decision to announce when this region's (revision, phase, step) moves
    from `previous` (the entry last reported) to `plan`'s; None when nothing changed.

    `halt` is the item's halt record (for the reason a region fails or rolls back). The
    region that records a halt announces it with `halted` instead of its phase `failed`.
    """
    d = plan.decision
    before = (
        (None, None, None)
        if previous is None
        else (
            previous.revision,
            previous.rollout,
            previous.step,
        )
    )
    if before == (d.revision, d.phase, d.step):
        return None
    new = _rev(plan.revision)
    was = before[1]
    was_on_new = before[0] == plan.revision and was in ACTIVE
    if d.phase == "waiting":
        if was == "waiting":
            return None
        return Decision(
            "RolloutWaiting",
            f"{new} waits for the earlier waves to bake it; this region serves {_rev(d.revision)}",
        )
    if d.phase == "paused":
        return Decision("RolloutPaused", f"rollout of {new} paused")
    if d.phase in ("stepping", "baking") and was == "paused" and was_on_new:
        return Decision("RolloutResumed", f"rollout of {new} resumed ({d.phase})")
    if d.phase == "stepping":
        share = (
            f"canary at {d.weight}%"
            if d.weight is not None and not d.promoting
            else "as the primary"
        )
        if not was_on_new:
            return Decision("RolloutStarted", f"{new} started in this region, {share}")
        if d.weight is not None and not d.promoting:
            return Decision("RolloutStepped", f"{new}: {share}")
        return Decision("RolloutPromoted", f"{new} promoted to the primary")
    if d.phase == "baking":
        return Decision("RolloutBaking", f"{new} is ready: baking")
    if d.phase == "done":
        return Decision("RolloutDone", f"{_rev(d.revision)} done in this region")
    why = f" in {halt.region}: {halt.reason}" if halt is not None else ""
    if d.phase == "rolled_back":
        return Decision(
            "RolloutRolledBack",
            f"{new} halted{why}; rolled back to {_rev(d.revision)}",
            warning=True,
        )
    if d.phase == "failed":
        if d.halt is not None:
            return None  # this region halted it: announced by `halted`
        return Decision("RolloutHalted", f"{new} halted{why}; no rollback", warning=True)
    return None


def halted(halt: Halt) -> Decision:
    """This region recorded a halt of the revision (only the first region to do so)."""
    return Decision(
        "RolloutHalted",
        f"{_rev(halt.revision)} halted in {halt.region}: {halt.reason}",
        warning=True,
    )


def completed(revision: str) -> Decision:
    """This region recorded the revision as completed in every target region."""
    return Decision("RolloutCompleted", f"{_rev(revision)} completed in every target region")


def traffic_cut(threshold: float) -> Decision:
    """The watchdog removed the Ingress: no ready replica for `threshold` seconds."""
    return Decision("TrafficCut", traffic_cut_reason(threshold), warning=True)


def traffic_restored() -> Decision:
    """The Ingress is back after the watchdog cut it."""
    return Decision("TrafficRestored", "a replica is ready again: traffic restored (Ingress)")


def canary_zeroed(threshold: float) -> Decision:
    """The canary's weight was set to 0: no ready canary replica for `threshold` seconds."""
    return Decision("CanaryWeightZeroed", canary_zeroed_reason(threshold), warning=True)


def parked(deaths: int, error: str) -> Decision:
    """The supervisor parked the endpoint after too many restarts."""
    return Decision(
        "EndpointParked",
        f"parked after {deaths} restarts in 10 minutes: not restarted until its item "
        f"changes; last error: {error}",
        warning=True,
    )


def announce(
    decision: Decision,
    *,
    endpoint: str,
    gateway: Cluster | None,
    namespace: str,
    now: float,
    on_event: OnEvent | None,
    logger: Any = log,
    cluster: str | None = None,
    fenced: Callable[[], bool] | None = None,
) -> None:
    """Tell `decision` about `endpoint`: log line, metric, and an Event on its Deployment.

    The Event goes through `gateway` (fenced like every write: nothing is sent when
    `fenced()` says the lease is lost); one that cannot be written is logged by the
    gateway and dropped: the decision stands.
    """
    say = logger.warning if decision.warning else logger.info
    say("decision", decision=decision.reason, detail=decision.message, endpoint=endpoint)
    if on_event is not None:
        on_event(
            EventKind.DECISION,
            {
                "endpoint": endpoint,
                "decision": decision.reason,
                "message": decision.message,
                "warning": decision.warning,
            },
        )
    if gateway is None or (fenced is not None and fenced()):
        return
    try:
        primary = gateway.cached("Deployment", endpoint)
    except NotSynced:  # an unsynced cache only costs the Event its uid
        primary = None
    uid = ((primary or {}).get("metadata") or {}).get("uid")
    gateway.record_event(
        build_event(
            namespace=namespace,
            deployment=endpoint,
            reason=decision.reason,
            message=decision.message,
            warning=decision.warning,
            now=now,
            uid=uid,
            host=cluster,
        )
    )
