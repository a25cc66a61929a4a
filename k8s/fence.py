"""The write fence a leader hands to its Kubernetes transport (architecture section 4).

A `Fence` is a snapshot of the leader lease taken on the lease holder's clock:
`send_deadline` (last renew + renew deadline) is the last moment a request may
be sent, `expiry` (last renew + lease duration) the moment a standby may hold
the lease, so no attempt may still be waiting for an answer then. `now` is the
holder's clock reading when the snapshot was taken; the windows are relative to
it, so a transport on another clock (a fake one in tests) can use them.
`epoch`/`holder` (the Lease's `leaseTransitions` and holder identity) go into
conditional table writes.

This module is plain data and arithmetic: `k8s` takes a `FenceSource` callable
and never imports the actors that produce it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Fence", "FenceSource"]


@dataclass(frozen=True)
class Fence:
    """The leader's write window, as seen at `now` (all on one monotonic clock)."""

    now: float
    send_deadline: float
    expiry: float
    epoch: int = 0
    holder: str = ""

    @property
    def send_window(self) -> float:
        """Seconds left to send a request (<= 0: no request may be sent)."""
        return self.send_deadline - self.now

    @property
    def expiry_window(self) -> float:
        """Seconds until a standby may hold the lease: the cap of any attempt's timeout."""
        return self.expiry - self.now

    @property
    def open(self) -> bool:
        """True while a request may still be sent."""
        return self.send_window > 0

    def may_wait(self, seconds: float) -> bool:
        """True when a request sent after waiting `seconds` still goes out before the deadline."""
        return seconds < self.send_window

    def attempt_timeout(self, configured: float) -> float:
        """The per-attempt timeout: the configured one, cut to end by the lease's expiry."""
        return max(0.0, min(configured, self.expiry_window))


#: Returns the current fence, or None when this process is not leading.
FenceSource = Callable[[], Fence | None]
