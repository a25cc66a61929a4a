"""Leader election on a coordination.k8s.io Lease, with client-go's semantics.

`LeaseKeeper.tick()` runs on the scheduler thread every retry period. It
acquires a free or expired lease, renews a held one, and reports changes of
leadership. Expiry is judged by the local monotonic clock since the record was
last seen to change, never by timestamps another machine wrote, and with the
`leaseDurationSeconds` of the record read (the predecessor writes 45 s).

Fencing: `may_write()` is true only while the last successful renewal is
younger than the renew deadline, so writes stop by the deadline even if the
thread that renews is stuck. `fence()` hands the same window to the endpoints'
Kubernetes transport (send deadline = last renew + renew deadline, expiry = last
renew + duration, both from the start of the renewing attempt) together with the
term's epoch and our identity, which conditional table writes carry. The epoch is
not the Lease's `leaseTransitions` (that restarts at 0 when the Lease is deleted or
the cluster rebuilt): the supervisor takes one from the table each time we start
leading (`store.dynamo.DynamoEndpointStore.take_epoch`) and hands it over with
`begin_term`; until then there is no fence. `close_fence()` shuts the window for
good before a release.
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from actors.clock import Clock
from k8s.fence import Fence

log = structlog.get_logger(__name__)


class LeaseClient(Protocol):
    """The Lease calls the keeper needs (implemented by `k8s.gateway.ClusterGateway`)."""

    def get_lease(self, name: str, *, timeout: float | None = None) -> dict | None: ...

    def create_lease(self, body: dict, *, timeout: float | None = None) -> dict: ...

    def replace_lease(self, body: dict, *, timeout: float | None = None) -> dict: ...


@dataclass(frozen=True)
class LeaseSettings:
    """Lease timings in seconds (client-go defaults 15/10/2) and who we are.

    duration: how long a holder's claim lasts without renewal.
    renew_deadline: how long the leader keeps trying to renew before it stops
        writing (must be < duration).
    retry_period: time between attempts (acquire or renew).
    """

    name: str
    namespace: str
    identity: str
    duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.identity:
            raise ValueError("lease identity must not be empty")
        if not self.duration > self.renew_deadline > 1.2 * self.retry_period > 0:
            raise ValueError(
                "lease timings need duration > renew_deadline > 1.2 x retry_period > 0, "
                f"got {self.duration}/{self.renew_deadline}/{self.retry_period}"
            )

    @property
    def call_timeout(self) -> float:
        """Timeout of one Lease call: long enough to succeed, short enough to retry in time."""
        return max(1.0, self.renew_deadline / 2)


def _transitions(record: dict | None) -> int:
    """`spec.leaseTransitions` of a Lease record (0 when absent or malformed)."""
    try:
        return int(((record or {}).get("spec") or {}).get("leaseTransitions") or 0)
    except (TypeError, ValueError):
        return 0


def _microtime(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseKeeper:
    """Holds (or waits for) one Lease; calls `on_change(leading)` on every transition."""

    def __init__(
        self,
        client: LeaseClient,
        settings: LeaseSettings,
        clock: Clock,
        *,
        on_change: Callable[[bool], None],
    ) -> None:
        self._client = client
        self._settings = settings
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._leading = False
        self._renewed_at = float("-inf")
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self._held_by_other = False
        self._record: dict | None = None
        #: This term's epoch (`begin_term`); None: not leading, or not taken yet.
        self._epoch: int | None = None
        self._fence_closed = False
        self.transitions = 0

    @property
    def settings(self) -> LeaseSettings:
        return self._settings

    @property
    def leading(self) -> bool:
        return self._leading

    @property
    def epoch(self) -> int | None:
        """This term's epoch (None until `begin_term`, and after leadership is lost)."""
        return self._epoch

    @property
    def lease_transitions(self) -> int:
        """The Lease's `leaseTransitions` as of our last acquire or renew (0 if none):
        the floor of a region's first table epoch."""
        return _transitions(self._record)

    def begin_term(self, epoch: int, term: int) -> bool:
        """Open the fence with `epoch` for the term that started at `transitions` ==
        `term`. Refused (False) when leadership changed since: that term is over and
        the next one takes its own epoch. Not under the keeper's lock, which a renewal
        holds across a slow API call; every transition clears the epoch, so at worst a
        stale one is seen, and it is refused by the table, never accepted."""
        if not self._leading or self.transitions != term:
            return False
        self._epoch = epoch
        return True

    def may_write(self) -> bool:
        """True while we lead and the last renewal is younger than the renew deadline."""
        fence = self.fence()
        return fence is not None and fence.open

    def fence(self) -> Fence | None:
        """The current write window, or None when not leading (or the fence is closed).

        Read without the keeper's lock, so a renewal stuck on a slow API never blocks
        a writer's check; the values read are each replaced atomically.
        """
        renewed_at = self._renewed_at
        epoch = self._epoch
        if (
            not self._leading
            or self._fence_closed
            or epoch is None
            or renewed_at == float("-inf")
        ):
            return None
        s = self._settings
        return Fence(
            now=self._clock.monotonic(),
            send_deadline=renewed_at + s.renew_deadline,
            expiry=renewed_at + s.duration,
            epoch=epoch,
            holder=s.identity,
        )

    def close_fence(self) -> None:
        """Refuse every write from now on, leading or not (before a graceful release)."""
        self._fence_closed = True

    def tick(self) -> None:
        """One attempt to acquire or renew; never raises (errors count as a failed attempt)."""
        with self._lock:
            started = self._clock.monotonic()
            self._held_by_other = False
            try:
                ok = self._try_acquire_or_renew(started)
            except Exception as error:  # every failure is just a failed attempt
                log.warning("lease attempt failed", lease=self._settings.name, error=str(error))
                ok = False
            if ok:
                self._renewed_at = started
                self._set_leading(True)
            elif self._leading and self._held_by_other:
                log.error("lease taken by another holder: stepping down")
                self._set_leading(False)
            elif self._leading and (
                self._clock.monotonic() - self._renewed_at >= self._settings.renew_deadline
            ):
                log.error("lease not renewed by the renew deadline: stepping down")
                self._set_leading(False)

    def release(self) -> None:
        """Give the lease up (empty holder, 1 s duration) so a standby takes over at once."""
        with self._lock:
            if not self._leading:
                return
            self._set_leading(False)
            try:
                lease = self._client.get_lease(
                    self._settings.name, timeout=self._settings.call_timeout
                )
                if lease and lease.get("spec", {}).get("holderIdentity") == self._settings.identity:
                    now = _microtime(self._clock.time())
                    lease["spec"].update(
                        holderIdentity="", leaseDurationSeconds=1, renewTime=now, acquireTime=now
                    )
                    self._client.replace_lease(lease, timeout=self._settings.call_timeout)
                    log.info("lease released", lease=self._settings.name)
            except Exception as error:  # best effort: the lease expires on its own anyway
                log.warning("lease release failed", error=str(error))

    def _set_leading(self, leading: bool) -> None:
        if leading == self._leading:
            return
        self._leading = leading
        self._epoch = None
        if not leading:
            self._renewed_at = float("-inf")
            self._record = None
        self.transitions += 1
        log.info("leadership changed", leading=leading, identity=self._settings.identity)
        self._on_change(leading)

    def _renew_from_cache(self) -> bool:
        """client-go's fast path: the leader renews on the record its last write returned,
        with one PUT and no GET; any failure falls back to the full path."""
        if not self._leading or self._record is None:
            return False
        lease = copy.deepcopy(self._record)
        lease.setdefault("spec", {})["renewTime"] = _microtime(self._clock.time())
        try:
            self._record = self._client.replace_lease(lease, timeout=self._settings.call_timeout)
        except Exception as error:  # a conflict or an outage: read the record and decide
            self._record = None
            log.info("lease fast renew failed; reading the record", error=str(error))
            return False
        return True

    def _try_acquire_or_renew(self, now: float) -> bool:
        if self._renew_from_cache():
            return True
        s = self._settings
        wall = _microtime(self._clock.time())
        lease = self._client.get_lease(s.name, timeout=s.call_timeout)
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": s.name, "namespace": s.namespace},
                "spec": {
                    "holderIdentity": s.identity,
                    "leaseDurationSeconds": round(s.duration),
                    "acquireTime": wall,
                    "renewTime": wall,
                    "leaseTransitions": 0,
                },
            }
            self._record = self._client.create_lease(body, timeout=s.call_timeout)
            return True
        spec = lease.setdefault("spec", {})
        holder = spec.get("holderIdentity") or ""
        record = (holder, spec.get("renewTime"), spec.get("leaseDurationSeconds"))
        if record != self._observed:
            self._observed = record
            self._observed_at = now
        if holder and holder != s.identity:
            duration = float(spec.get("leaseDurationSeconds") or s.duration)
            if now < self._observed_at + duration:
                self._held_by_other = True
                return False
            log.warning("lease expired: taking over", previous_holder=holder)
        if holder != s.identity:
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
            spec["acquireTime"] = wall
        spec.update(
            holderIdentity=s.identity, leaseDurationSeconds=round(s.duration), renewTime=wall
        )
        self._record = self._client.replace_lease(lease, timeout=s.call_timeout)
        return True
