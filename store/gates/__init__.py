"""The rollout's gates (architecture section 12): what a region reads, besides its own
cluster, before it moves a new revision on.

Each gate is one module behind the `Gate` protocol (argo-rollouts' metric providers are
the model: the analysis never knows which provider it runs). A gate says which policies
it applies to, how often it wants to be read while a region steps or bakes, and answers
a `GateQuery` with a `GateReading`: a reason to halt now, a reason the region may not
move on yet (`pending`), a reason the gate could not be read (`problem`), and what
`rollout status` shows. The actor core (`actors.rollout`, the endpoint actor, the
supervisor) carries gates without knowing what is in them; the daemon registers them
(`actors.app.daemon`, one line per gate).

Adding a gate touches its own module here, its policy field (`store.rollout`, listed in
`GATE_FIELDS`) and one registration line.

A gate never raises: what it cannot read is a `problem` (shown; the bake does not end on
it), so an outage of a gate's source holds a region instead of failing a good revision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from store.rollout import RolloutPolicy

__all__ = ["Gate", "GateQuery", "GateReading"]


@dataclass(frozen=True)
class GateQuery:
    """What a gate is asked about: one endpoint in one region, stepping or baking.

    Attributes:
        endpoint: the endpoint's name.
        namespace: its Kubernetes namespace.
        region: the region reading (the daemon's).
        policy: the item's rollout policy.
        phase: "stepping" or "baking".
        since: when the region's phase or step last changed (epoch seconds).
        now: the time of the question (epoch seconds, the daemon's clock).
        max_age: past a bake's end only an answer younger than this counts (seconds;
            None: any answer the gate keeps).
        ingress: the endpoint's Ingress as the cluster last showed it (None: absent).
    """

    endpoint: str
    namespace: str
    region: str
    policy: RolloutPolicy
    phase: str
    since: float
    now: float
    max_age: float | None = None
    ingress: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class GateReading:
    """One gate's answer.

    Attributes:
        state: one word shown per region (`ok`, `firing`, `verified`, `pending`...); a
            change of it is a status write, so it holds no counter or clock.
        detail: what a person reads next to it (stable text, as `state`).
        halt: a reason to halt the revision now.
        pending: a reason the region may not move on yet (no step, promotion or end of
            bake); past the progress deadline it halts the revision.
        problem: why the gate could not be read (shown; the bake does not end on it).
        age: seconds since the answer was taken (0: fresh; more from a cache).
    """

    state: str
    detail: str = ""
    halt: str | None = None
    pending: str | None = None
    problem: str | None = None
    age: float = 0.0

    def shown(self) -> dict[str, str]:
        """The reading as a region's status entry keeps it (`RegionStatus.gates`)."""
        shown = {"state": self.state}
        if self.detail:
            shown["detail"] = self.detail
        return shown


class Gate(Protocol):
    """One source a rollout is gated on."""

    #: The key of its reading in a region's status entry (`RegionStatus.gates`).
    name: str
    #: How often a region stepping or baking under it reads it again (seconds).
    poll_seconds: float
    #: A step's time counts only from when this gate last started passing (the load
    #: balancer carrying the step's weights); False: the gate halts or holds only.
    paces_steps: bool

    def applies(self, policy: RolloutPolicy) -> bool:
        """The policy asks for this gate (its field is set)."""
        ...

    def read(self, query: GateQuery) -> GateReading:
        """Read the gate now (or from a cache younger than `query.max_age`); never raises."""
        ...

    def close(self) -> None:
        """Release the gate's connections (idempotent; the daemon calls it as it stops)."""
        ...
