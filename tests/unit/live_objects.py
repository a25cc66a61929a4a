"""Live objects as an API server returns them, for unit tests of decisions made on them."""

from __future__ import annotations

from typing import Any


def deployment(
    *,
    replicas: int = 2,
    ready: int = 0,
    available: bool = False,
    since: str = "2027-01-15T08:00:00Z",
    generation: int = 1,
    observed: int = 1,
    updated: int | None = None,
) -> dict:
    status: dict[str, Any] = {
        "observedGeneration": observed,
        "replicas": replicas,
        "conditions": [
            {
                "type": "Available",
                "status": "True" if available else "False",
                "lastTransitionTime": since,
            }
        ],
    }
    if ready:
        status.update(readyReplicas=ready, availableReplicas=ready)
    status["updatedReplicas"] = replicas if updated is None else updated
    return {
        "metadata": {
            "name": "m1",
            "generation": generation,
            "creationTimestamp": "2027-01-15T07:00:00Z",
        },
        "spec": {"replicas": replicas},
        "status": status,
    }
