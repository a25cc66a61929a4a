"""Messages exchanged by the actors. All are sent with `tell()`; a handler that
raises on a `tell()` kills its actor, which is what the supervisor watches for."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from store.item import LoadedItem


class EventKind(StrEnum):
    """What an `on_event(kind, fields)` callback is told (for metrics, the demo, tests);
    called on the telling actor's thread. The fields of each kind are listed."""

    #: An endpoint actor died and will be restarted: endpoint, error, restart_in (s).
    DIED = "died"
    #: An endpoint was retired (its actor stopped for good): endpoint.
    RETIRED = "retired"
    #: This process gained the leader lease: no fields.
    LEADING = "leading"
    #: This process does not hold the lease (lost it, or never had it): no fields.
    STANDBY = "standby"
    #: The poller died and will be restarted: restart_in (s).
    POLLER_DIED = "poller_died"
    #: The mass-deletion guard held back deletions: count.
    ORPHANS_REFUSED = "orphans_refused"
    #: A region status was written: endpoint.
    STATUS_WRITTEN = "status_written"
    #: A status or item write was refused because a newer leader's epoch is on the entry
    #: (`store.errors.Superseded`): endpoint, error.
    STATUS_REFUSED = "status_refused"
    #: Periodic sample of the supervisor's gauges: alive, parked, mailbox.
    GAUGES = "gauges"
    #: A decision about an endpoint, told once when it changes (`actors.decisions`):
    #: endpoint, decision (the Event's reason, e.g. RolloutHalted), message, warning.
    DECISION = "decision"
    #: A CloudWatch alarm read (`store.alarms.AlarmReader`): outcome ("ok" or the error).
    ALARM_READ = "alarm_read"
    #: A rollout gate read its source (`store.gates`): gate, outcome.
    GATE_READ = "gate_read"
    #: A table scan failed (the next poll retries): reason (the error's code or class).
    SCAN_FAILED = "scan_failed"


#: The callback type of `on_event`.
OnEvent = Callable[[EventKind, dict[str, Any]], None]


@dataclass(frozen=True)
class SpecChanged:
    """Endpoint actor: the table item changed (or is new); reconcile toward it."""

    item: LoadedItem


@dataclass(frozen=True)
class Reconcile:
    """Endpoint actor: something in the cluster changed or a timer fired; look again."""


@dataclass(frozen=True)
class Retire:
    """Endpoint actor: this region no longer serves the endpoint; delete its objects, drop
    this region's status entry (when the item still exists), then stop."""

    item: LoadedItem | None = None


@dataclass(frozen=True)
class InjectCrash:
    """Endpoint actor: raise at once (the demo's and the fault tests' crash)."""

    reason: str = "crash injected"


@dataclass(frozen=True)
class CrashEndpoint:
    """Supervisor: make endpoint `name`'s actor crash (forwards `InjectCrash`)."""

    name: str
    reason: str = "crash injected"


@dataclass(frozen=True)
class Poll:
    """Poller: scan the table now (skipped while the change feed is healthy and the
    resync is not due)."""


@dataclass(frozen=True)
class ReadStream:
    """Poller: read what the table's stream has now (the change feed)."""


@dataclass(frozen=True)
class Scanned:
    """Supervisor: one table scan's view for this region.

    active: items this region must serve (valid or not: invalid ones get an error status).
    retiring: items that name this region in `region_status` but no longer target it.
    changed: names whose item changed since the previous scan (this region's status
        entry included, so a lost status write is seen and repaired).
    present: every endpoint name in the table, whatever its regions.
    partial: the view holds only the items the change feed just delivered (`present` is
        those names): nothing absent from it is missing from the table, so it counts no
        absence and stops only actors of items it holds.
    """

    active: dict[str, LoadedItem]
    retiring: dict[str, LoadedItem]
    changed: frozenset[str]
    present: frozenset[str]
    total: int
    partial: bool = False


@dataclass(frozen=True)
class ScanFailed:
    """Supervisor: the poller's scan failed with `error` (`reason`: its code or class);
    shown on /readyz until a scan succeeds."""

    error: str
    reason: str


@dataclass(frozen=True)
class ActorDied:
    """Supervisor: endpoint `name`'s actor of `generation` died with `error`."""

    name: str
    generation: int
    error: str


@dataclass(frozen=True)
class Retired:
    """Supervisor: endpoint `name`'s actor cleaned up and is stopping."""

    name: str
    generation: int


@dataclass(frozen=True)
class RestartDue:
    """Supervisor: the backoff of endpoint `name`'s dead actor of `generation` is over."""

    name: str
    generation: int


@dataclass(frozen=True)
class LeadershipChanged:
    """Supervisor: the lease was won (True) or lost (False)."""

    leading: bool


@dataclass(frozen=True)
class Resync:
    """Supervisor: ask every endpoint actor to reconcile (a lost event is repaired here)."""


@dataclass(frozen=True)
class Sweep:
    """Supervisor: look for actors that died silently or hang in a handler."""


@dataclass(frozen=True)
class Shutdown:
    """Supervisor: stop every child and release the lease (answered when done).

    `release=False` leaves the lease to expire: what a crash does, for tests."""

    release: bool = True


@dataclass(frozen=True)
class Snapshot:
    """Supervisor: answer a `SupervisorView` (for the demo, /readyz and tests)."""


@dataclass(frozen=True)
class SupervisorView:
    """What the supervisor knows, at one instant."""

    leading: bool
    alive: frozenset[str]
    parked: frozenset[str]
    restarts: dict[str, int] = field(default_factory=dict)
    generations: dict[str, int] = field(default_factory=dict)
    #: What an operator must know now ("" when nothing): e.g. a refused mass deletion.
    detail: str = ""
