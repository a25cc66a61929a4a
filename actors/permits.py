"""`HandlerPermits`: how many endpoint handlers may run Python code at the same time.

Thousands of runnable threads starve the GIL (measured: a 5,000-endpoint cold start
lost the lease without a bound), so a handler holds a permit while it runs. It
gives the permit back while it only waits (on the network, the rate limiter or a
retry backoff: the gateway and the store enter `waiting()` there), so endpoints
stuck on a slow API never hold a slot that the others need, and a waiting handler
is not "busy": the hang clock (`Permit.busy_since`) runs only while the handler
runs its own code.

Endpoint actors run on a `WorkerPool` (`actors.pooled`); given it, the permits tell
it when a worker only waits and when a hung handler's permit is reclaimed, so the
pool can start another worker: neither keeps a worker the others need.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext

from actors.pool import WorkerPool

__all__ = ["HandlerPermits", "Permit"]


class Permit:
    """One handler's claim on a slot. Thread-safe: the supervisor may `reclaim()` it
    from another thread when the handler hangs; the handler then runs on without one."""

    def __init__(
        self,
        semaphore: threading.Semaphore,
        monotonic: Callable[[], float],
        *,
        on_reclaim: Callable[[], None] | None = None,
    ) -> None:
        self._semaphore = semaphore
        self._monotonic = monotonic
        self._on_reclaim = on_reclaim
        self._lock = threading.Lock()
        self._held = False
        self._reclaimed = False
        self._ended = False
        #: When the handler last started running its own code; None while it waits.
        self.busy_since: float | None = None

    @property
    def held(self) -> bool:
        """True while this permit occupies a slot."""
        return self._held

    def take(self) -> None:
        """Block until a slot is free (unless reclaimed), then start the hang clock."""
        if not self._reclaimed and not self._held:
            self._semaphore.acquire()
            with self._lock:
                if self._reclaimed:
                    # Reclaimed while we queued: the slot we just got is not ours.
                    self._semaphore.release()
                else:
                    self._held = True
        self.busy_since = self._monotonic()

    def give_back(self) -> None:
        """Free the slot (idempotent) and stop the hang clock."""
        self.busy_since = None
        with self._lock:
            held, self._held = self._held, False
        if held:
            self._semaphore.release()

    def reclaim(self) -> None:
        """Take the slot away from a hung handler for good; `on_reclaim` runs once,
        unless the handler has ended meanwhile."""
        with self._lock:
            first = not self._reclaimed and not self._ended
            self._reclaimed = True
            if first and self._on_reclaim is not None:
                self._on_reclaim()
        self.give_back()

    def end(self) -> bool:
        """The handler is over; True when `on_reclaim` ran for it."""
        self.give_back()
        with self._lock:
            self._ended = True
            return self._reclaimed and self._on_reclaim is not None


class HandlerPermits:
    """At most `size` handlers running at once; see the module docstring."""

    def __init__(
        self, size: int, *, monotonic: Callable[[], float], pool: WorkerPool | None = None
    ) -> None:
        if size < 1:
            raise ValueError(f"need at least one handler permit, got {size}")
        self.size = size
        self._semaphore = threading.Semaphore(size)
        self._monotonic = monotonic
        #: The pool the handlers run on, told of waits and reclaims (None: threads of their own).
        self.pool = pool
        self._local = threading.local()

    @contextmanager
    def held(self, on_permit: Callable[[Permit | None], None]) -> Iterator[Permit]:
        """Run a handler with a permit; `on_permit` is told of it (and of None at the end)
        so the supervisor can watch its hang clock and reclaim it."""
        pool = self.pool
        worker = pool.current() if pool is not None else None
        # A hung handler keeps its worker: the pool counts it blocked and starts another.
        on_reclaim = None if pool is None or worker is None else lambda: pool.block(worker)
        permit = Permit(self._semaphore, self._monotonic, on_reclaim=on_reclaim)
        on_permit(permit)
        permit.take()
        self._local.permit = permit
        try:
            yield permit
        finally:
            self._local.permit = None
            if permit.end() and pool is not None and worker is not None:
                pool.unblock(worker)
            on_permit(None)

    @contextmanager
    def waiting(self) -> Iterator[None]:
        """Give this thread's permit back for the duration of a wait (no-op without one)."""
        permit: Permit | None = getattr(self._local, "permit", None)
        if permit is None or not permit.held:
            # No permit, or an outer wait already gave it back.
            yield
            return
        permit.give_back()
        try:
            with self.pool.blocking() if self.pool is not None else nullcontext():
                yield
        finally:
            permit.take()
