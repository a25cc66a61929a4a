"""`WatchedNamespaces`: the endpoints' gateways of one leadership term, one per watched
namespace (`INFERENCE_NAMESPACES`), handled by the supervisor as one.

Each namespace has its own `Cluster` (a `k8s.gateway.ClusterGateway`: one watch per kind
in that namespace and its cache), all built by the same factory with the lease's fence.
They start together when the daemon leads (a namespace that cannot start stops them all:
a leader that sees only part of its namespaces would take the rest for empty) and stop
together when it does not. Watch events of every namespace go to the one router; the
endpoints with objects here are the union over the namespaces; `quiesce` waits for every
gateway within one deadline. An endpoint actor applies through the gateway of its item's
namespace (`get`); cleanups look in all of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping

from actors.ports import Cluster
from k8s.informer import WatchEvent

__all__ = ["WatchedNamespaces"]


class WatchedNamespaces(Mapping[str, Cluster]):
    """The gateways by namespace (read-only mapping, in watch order: the home namespace,
    where the Lease lives, first).

    Args:
        gateways: namespace -> its gateway, at least one.
        monotonic: the clock `quiesce` measures its one deadline with.
    """

    def __init__(
        self,
        gateways: Mapping[str, Cluster],
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not gateways:
            raise ValueError("at least one namespace must be watched")
        self._gateways = dict(gateways)
        self._monotonic = monotonic

    # -- mapping -----------------------------------------------------------

    def __getitem__(self, namespace: str) -> Cluster:
        return self._gateways[namespace]

    def __iter__(self) -> Iterator[str]:
        return iter(self._gateways)

    def __len__(self) -> int:
        return len(self._gateways)

    def __repr__(self) -> str:
        return f"WatchedNamespaces({', '.join(self._gateways)})"

    # -- the supervisor's calls, over every namespace -----------------------

    def start(self, on_event: Callable[[WatchEvent], None]) -> None:
        """Start every namespace's watches; returns once every cache is synced.

        Raises:
            whatever a gateway's start raised; every gateway is stopped again first.
        """
        try:
            for gateway in self._gateways.values():
                gateway.start(on_event)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every namespace's watches (idempotent)."""
        for gateway in self._gateways.values():
            gateway.stop()

    def quiesce(self, timeout: float) -> bool:
        """Wait, `timeout` seconds in all, until no request of any gateway is in flight."""
        deadline = self._monotonic() + timeout
        quiet = True
        for gateway in self._gateways.values():
            remaining = max(0.0, deadline - self._monotonic())
            quiet = gateway.quiesce(remaining) and quiet
        return quiet

    def instances(self) -> set[str]:
        """Endpoints with objects in any watched namespace.

        Raises:
            k8s.errors.NotSynced: some namespace's cache cannot answer (never read a
                namespace that cannot answer as empty).
        """
        names: set[str] = set()
        for gateway in self._gateways.values():
            names |= gateway.instances()
        return names
