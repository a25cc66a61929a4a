"""`WorkerPool`: a few threads that run many actors' turns (`actors.pooled`).

A thread per endpoint actor cost about 100 KiB of resident memory each (stack, the
interpreter's per-thread state, allocator slack: bench/README.md, issue 20), while at
most `HANDLER_PERMITS` of them may run Python code at once anyway (`actors.permits`).
The pool keeps about `size` workers able to run: workers start when tasks queue and
none is idle, and end after `idle_seconds` without work.

A worker that only waits (the network, the rate limiter, a backoff: the store's and
the gateway's `waiting()` hooks, through `HandlerPermits`) is `blocked` and does not
count against `size`, so endpoints stuck on a slow API never keep the others from
running; nor does a worker whose handler hangs once its permit is reclaimed. `limit`
bounds the threads in all, so a slow API costs at most `limit` stacks, not one per
endpoint: past it, work queues.
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import structlog

__all__ = ["WorkerPool"]

log = structlog.get_logger(__name__)


class _Worker:
    """One pool thread; `blocks` > 0 while it only waits (or runs a reclaimed handler)."""

    __slots__ = ("blocks", "thread")

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.blocks = 0


class WorkerPool:
    """Runs submitted tasks on at most about `size` running threads (see module docstring).

    Args:
        size: workers that may run at once, not counting blocked ones.
        limit: threads in all, blocked ones included.
        idle_seconds: a worker with nothing to do for this long ends.
        name: thread name prefix.
    """

    def __init__(
        self, size: int, *, limit: int = 256, idle_seconds: float = 30.0, name: str = "pool"
    ) -> None:
        if not 1 <= size <= limit:
            raise ValueError(f"need 1 <= size <= limit, got size {size}, limit {limit}")
        self.size = size
        self.limit = limit
        self.idle_seconds = idle_seconds
        self.name = name
        self._cond = threading.Condition()
        self._tasks: collections.deque[Callable[[], None]] = collections.deque()
        self._workers: set[_Worker] = set()
        self._idle = 0
        #: Workers started that have not yet looked for a task: each will take one.
        self._starting = 0
        self._blocked = 0
        self._closing = False
        self._numbers = itertools.count(1)
        self._local = threading.local()

    # -- use -----------------------------------------------------------------

    def submit(self, task: Callable[[], None]) -> None:
        """Run `task` on a worker, soon. Works after `close()` too (a worker then ends
        once nothing is queued), so a message sent late is still handled, never lost."""
        with self._cond:
            self._tasks.append(task)
            self._cond.notify()
            self._grow()

    @contextmanager
    def blocking(self) -> Iterator[None]:
        """The calling worker only waits meanwhile: another may start in its place.
        A no-op on a thread that is not this pool's."""
        worker = self.current()
        if worker is None:
            yield
            return
        self.block(worker)
        try:
            yield
        finally:
            self.unblock(worker)

    def current(self) -> _Worker | None:
        """The calling thread's worker, None on a thread that is not this pool's."""
        return getattr(self._local, "worker", None)

    def block(self, worker: _Worker) -> None:
        """Count `worker` as blocked until a matching `unblock` (any thread may call it)."""
        with self._cond:
            worker.blocks += 1
            if worker.blocks == 1:
                self._blocked += 1
                self._grow()

    def unblock(self, worker: _Worker) -> None:
        """Undo one `block`."""
        with self._cond:
            worker.blocks -= 1
            if worker.blocks == 0:
                self._blocked -= 1

    # -- figures -------------------------------------------------------------

    def threads(self) -> int:
        """Workers alive, blocked ones included."""
        with self._cond:
            return len(self._workers)

    def queued(self) -> int:
        """Tasks waiting for a worker."""
        with self._cond:
            return len(self._tasks)

    # -- end -----------------------------------------------------------------

    def close(self, timeout: float = 10.0) -> bool:
        """Let every worker end once nothing is queued and wait up to `timeout` for them.
        True when none is left (a worker still running a hung task is not)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            threads = [w.thread for w in self._workers if w.thread is not None]
        deadline = time.monotonic() + timeout
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        return self.threads() == 0

    # -- workers -------------------------------------------------------------

    def _grow(self) -> None:
        """Start a worker when tasks outnumber the workers about to take one and there is
        room. Holds _cond."""
        running = len(self._workers) - self._blocked
        room = running < self.size and len(self._workers) < self.limit
        if room and len(self._tasks) > self._idle + self._starting:
            worker = _Worker()
            # Daemon threads: a handler that hangs must not keep the process from exiting.
            worker.thread = threading.Thread(
                target=self._work,
                args=(worker,),
                name=f"{self.name}-{next(self._numbers)}",
                daemon=True,
            )
            self._workers.add(worker)
            self._starting += 1
            worker.thread.start()

    def _work(self, worker: _Worker) -> None:
        self._local.worker = worker
        first = True
        try:
            while (task := self._next(worker, first=first)) is not None:
                first = False
                try:
                    task()
                except Exception:
                    # A task is an actor's turn, which handles its own errors: this is a bug.
                    log.exception("pool task failed", pool=self.name)
        finally:
            with self._cond:
                self._workers.discard(worker)

    def _next(self, worker: _Worker, *, first: bool) -> Callable[[], None] | None:
        """The next task for `worker`; None when it should end."""
        with self._cond:
            if first:
                self._starting -= 1
            # More running workers than `size` (blocked ones came back): this one goes.
            if len(self._workers) - self._blocked > self.size and not worker.blocks:
                return None
            while not self._tasks:
                if self._closing:
                    return None
                self._idle += 1
                woke = self._cond.wait(self.idle_seconds)
                self._idle -= 1
                if not woke and not self._tasks:
                    return None
            return self._tasks.popleft()
