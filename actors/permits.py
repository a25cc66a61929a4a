"""`HandlerPermits`: how many endpoint handlers may run Python code at the same time.

Each endpoint actor is a thread. Thousands of runnable threads starve the GIL
(measured: a 5,000-endpoint cold start lost the lease without a bound), so a
handler holds a permit while it runs. It gives the permit back while it only
waits (on the network, the rate limiter or a retry backoff: the gateway and
the store enter `waiting()` there), so endpoints stuck on a slow API never
hold a slot that the others need, and a waiting handler is not "busy": the
hang clock (`Permit.busy_since`) runs only while the handler runs its own code.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["HandlerPermits", "Permit"]


class Permit:
    """One handler's claim on a slot. Thread-safe: the supervisor may `reclaim()` it
    from another thread when the handler hangs; the handler then runs on without one."""

    def __init__(self, semaphore: threading.Semaphore, monotonic: Callable[[], float]) -> None:
        self._semaphore = semaphore
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._held = False
        self._reclaimed = False
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
        """Take the slot away from a hung handler for good."""
        with self._lock:
            self._reclaimed = True
        self.give_back()


class HandlerPermits:
    """At most `size` handlers running at once; see the module docstring."""

    def __init__(self, size: int, *, monotonic: Callable[[], float]) -> None:
        if size < 1:
            raise ValueError(f"need at least one handler permit, got {size}")
        self.size = size
        self._semaphore = threading.Semaphore(size)
        self._monotonic = monotonic
        self._local = threading.local()

    @contextmanager
    def held(self, on_permit: Callable[[Permit | None], None]) -> Iterator[Permit]:
        """Run a handler with a permit; `on_permit` is told of it (and of None at the end)
        so the supervisor can watch its hang clock and reclaim it."""
        permit = Permit(self._semaphore, self._monotonic)
        on_permit(permit)
        permit.take()
        self._local.permit = permit
        try:
            yield permit
        finally:
            self._local.permit = None
            permit.give_back()
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
            yield
        finally:
            permit.take()
