"""The two doors the actors use, as the actors see them.

The actors depend on these Protocols, not on the classes behind them:
`store.dynamo.DynamoEndpointStore` and `k8s.gateway.ClusterGateway` implement them
against real servers (integration tests run those against moto and `k8s.sim`), and
strict fakes implement them for unit tests of the actors' decisions
(`tests/unit/fakes.py`). Only the calls the actors make are here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from k8s.informer import WatchEvent
from store.item import LoadedItem
from store.model import RegionStatus
from store.rollout import Halt
from store.stream import ReadResult

__all__ = ["ChangeFeed", "Cluster", "EndpointStore"]


class ChangeFeed(Protocol):
    """The table's change feed (`store.stream.StreamReader`)."""

    def read(self) -> ReadResult:
        """What the stream has now; raises `StoreError` when it cannot be read at all."""
        ...


class EndpointStore(Protocol):
    """The endpoints table (`store.dynamo.DynamoEndpointStore`)."""

    def scan(self) -> list[LoadedItem]:
        """Every item, consistent and paginated; invalid items carry their problems."""
        ...

    def take_epoch(self, region: str, *, floor: int = 0) -> int:
        """Raise `region`'s leader epoch in the table and return it (once per term)."""
        ...

    def write_region_status(
        self,
        name: str,
        region: str,
        status: RegionStatus | None,
        *,
        epoch: int | None = None,
        holder: str = "",
    ) -> bool:
        """Write (None: remove) one region's status entry, conditional on the epoch;
        False when the item is gone."""
        ...

    def own_status(self, item: LoadedItem, region: str) -> RegionStatus | None:
        """This daemon's cluster's own entry for `region` in `item`."""
        ...

    def region_view(
        self, item: LoadedItem, region: str, own: RegionStatus | None
    ) -> RegionStatus | None:
        """What `region` as a whole reports once this cluster's entry is `own`."""
        ...

    def purge_if_deleted(
        self,
        name: str,
        regions: Sequence[str],
        *,
        region: str | None = None,
        epoch: int | None = None,
        holder: str = "",
    ) -> bool:
        """Delete the item once every region reports `deleted`; True if this call did."""
        ...

    def mark_running(
        self,
        name: str,
        regions: Sequence[str],
        *,
        region: str | None = None,
        epoch: int | None = None,
        holder: str = "",
    ) -> bool:
        """Move `deploying` to `running` once every region runs it; True if this call did."""
        ...

    def record_rollout_completion(
        self,
        name: str,
        revision: str,
        spec: Mapping[str, Any],
        regions: Sequence[str],
        *,
        expected_updated_at: str | None,
        region: str | None = None,
        epoch: int | None = None,
        holder: str = "",
    ) -> bool:
        """Record `revision` as completed once every region reports it done; True if
        this call did (architecture section 12)."""
        ...

    def record_rollout_halt(
        self,
        name: str,
        halt: Halt,
        *,
        expected_updated_at: str | None,
        region: str | None = None,
        epoch: int | None = None,
        holder: str = "",
    ) -> bool:
        """Record a halt of `halt.revision`, once per revision; True if this call did."""
        ...


class Cluster(Protocol):
    """One namespace of the cluster (`k8s.gateway.ClusterGateway`)."""

    def start(self, on_event: Callable[[WatchEvent], None]) -> None:
        """List and watch every managed kind; returns once the caches are synced."""
        ...

    def stop(self) -> None:
        """End the watches (idempotent)."""
        ...

    def quiesce(self, timeout: float) -> bool:
        """Wait until no request is in flight; True if none is left."""
        ...

    def cached(self, kind: str, name: str) -> dict[str, Any] | None:
        """The cached object or None; raises `k8s.errors.NotSynced` when it cannot know."""
        ...

    def instances(self) -> set[str]:
        """Endpoints with objects here (ours or the predecessor's)."""
        ...

    def ensure(self, desired: dict[str, Any]) -> str:
        """Make the live object match; `created`, `updated`, `unchanged` or `unmanaged`."""
        ...

    def remove(self, kind: str, name: str, *, owner: str) -> bool:
        """Delete an object of `owner`'s; True once it is gone (or was never `owner`'s)."""
        ...

    def read(self, kind: str, name: str) -> dict[str, Any] | None:
        """The object as the server has it now (not the cache), or None."""
        ...

    def record_event(self, event: dict[str, Any]) -> bool:
        """Create a core/v1 Event (`k8s.events.build_event`); False when it could not be
        written (logged, never raised)."""
        ...
