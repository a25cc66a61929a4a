"""Kubernetes Events of the daemon's decisions (architecture section 12), a pure builder.

Each decision the daemon makes about an endpoint (a rollout step, a halt, the watchdog
cutting traffic, an endpoint parked...) becomes one core/v1 Event on the endpoint's
Deployment, so `kubectl describe deployment NAME` tells its story as it does for Argo
Rollouts and Flagger. Events are created once per decision, never updated: the daemon
records a decision when it changes, not on every reconcile, so `count` is always 1 and
the Role needs `create` on events and nothing more.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

__all__ = ["COMPONENT", "NORMAL", "WARNING", "build_event"]

#: `source.component` and `reportingComponent` of every Event the daemon writes.
COMPONENT = "inference-supervisor"
NORMAL, WARNING = "Normal", "Warning"
#: The API server refuses longer messages (validation of core/v1 Event).
MAX_MESSAGE = 1024


def build_event(
    *,
    namespace: str,
    deployment: str,
    reason: str,
    message: str,
    warning: bool = False,
    now: float,
    uid: str | None = None,
    host: str | None = None,
    instance: str | None = None,
) -> dict[str, Any]:
    """The Event on Deployment `deployment` in `namespace`.

    Args:
        reason: CamelCase, what happened (`RolloutHalted`, `TrafficCut`).
        message: one human sentence (cut to 1024 characters).
        warning: type Warning instead of Normal.
        now: epoch seconds of the decision (first and last timestamp).
        uid: the Deployment's uid when known (`kubectl describe` matches on it too).
        host: `source.host`, e.g. the cluster's name.
        instance: `reportingInstance`, e.g. the daemon's identity.

    Returns:
        The Event body, named `{deployment}.{hex}` as client-go's recorder names them.
    """
    stamp = dt.datetime.fromtimestamp(now, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    involved: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment,
        "namespace": namespace,
    }
    if uid:
        involved["uid"] = uid
    source: dict[str, Any] = {"component": COMPONENT}
    if host:
        source["host"] = host
    # client-go uses the time in nanoseconds; a random part keeps two decisions of one
    # fake (or coarse) instant apart.
    suffix = f"{int(now * 1e9):x}{secrets.token_hex(3)}"
    event: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{deployment}.{suffix}", "namespace": namespace},
        "involvedObject": involved,
        "reason": reason,
        "message": message[:MAX_MESSAGE],
        "type": WARNING if warning else NORMAL,
        "source": source,
        "count": 1,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "reportingComponent": COMPONENT,
    }
    if instance:
        event["reportingInstance"] = instance
    return event
