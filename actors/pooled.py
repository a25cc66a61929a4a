"""`PooledActor`: a pykka actor without a thread of its own, run on a `WorkerPool`.

The API is pykka's (`start`, `ActorRef.tell/ask/stop`, proxies, `on_start`,
`on_stop`, `on_failure`, the registry); only where the actor's loop runs differs.
Its inbox (`Mailbox`) puts the actor on the pool when a message arrives and it is
not already there; a turn runs `on_start` or handles one message, then puts the
actor back if more wait. So messages are handled in the order they came, one at a
time, never by two workers at once, and a busy actor does not keep a worker from
the others between messages.

Each actor runs in a `contextvars.Context` of its own, as a pykka thread would, so
what `on_start` binds (structlog's context variables) stays with that actor and
never leaks to the next one the worker runs.

Unlike a thread, a worker is shared: a handler that `ask`s another pooled actor
and waits could wait on a worker that never comes. Endpoint actors only `tell`.
"""

from __future__ import annotations

import collections
import contextvars
import sys
import threading
from typing import TYPE_CHECKING, Any

import pykka
from pykka import ActorRegistry

from actors.pool import WorkerPool

if TYPE_CHECKING:
    from pykka._envelope import Envelope

__all__ = ["Mailbox", "PooledActor"]


class Mailbox:
    """A pooled actor's inbox (pykka's `ActorInbox`): a queue that schedules its
    actor's next turn on the pool whenever it holds a message and no turn is due."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._envelopes: collections.deque[Envelope[Any]] = collections.deque()
        self._pool: WorkerPool | None = None
        self._turn: Any = None
        #: A turn is queued or running: nothing else may schedule one.
        self._scheduled = False

    def put(self, envelope: Envelope[Any], /) -> None:
        with self._lock:
            self._envelopes.append(envelope)
            if self._scheduled or self._pool is None:
                return
            self._scheduled = True
        self._pool.submit(self._turn)

    def get(self) -> Envelope[Any]:
        with self._lock:
            return self._envelopes.popleft()

    def empty(self) -> bool:
        with self._lock:
            return not self._envelopes

    def open(self, pool: WorkerPool, turn: Any) -> None:
        """Start serving: schedule the first turn (`on_start`) on `pool`."""
        with self._lock:
            self._pool, self._turn, self._scheduled = pool, turn, True
        pool.submit(turn)

    def turn_done(self) -> None:
        """The turn ended: schedule the next one if a message waits."""
        with self._lock:
            if not self._envelopes:
                self._scheduled = False
                return
        assert self._pool is not None
        self._pool.submit(self._turn)


class PooledActor(pykka.Actor):
    """A pykka actor whose turns run on `pool` (see the module docstring).

    Subclasses pass the pool to `__init__`; everything else is pykka's `Actor`.
    """

    def __init__(self, *, pool: WorkerPool) -> None:
        super().__init__()
        self._pool = pool
        self._started = False
        # Empty, as a new thread's context is: nothing of the starter's leaks in.
        self._context = contextvars.Context()

    @staticmethod
    def _create_actor_inbox() -> Mailbox:
        return Mailbox()

    @staticmethod
    def _create_future() -> pykka.Future[Any]:
        return pykka.ThreadingFuture()

    def _start_actor_loop(self) -> None:
        self._mailbox.open(self._pool, self._turn)

    @property
    def _mailbox(self) -> Mailbox:
        inbox = self.actor_inbox
        assert isinstance(inbox, Mailbox)
        return inbox

    def _turn(self) -> None:
        """One turn on a worker: `on_start` first, else one message; then the next
        turn is scheduled, or, once stopped, what is left in the inbox is answered."""
        self._context.run(self._step)
        if self.actor_stopped.is_set():
            self._context.run(self._actor_loop_teardown)
        else:
            self._mailbox.turn_done()

    def _step(self) -> None:
        if not self._started:
            self._started = True
            self._actor_loop_setup()
            return
        envelope = self.actor_inbox.get()
        # pykka's `_actor_loop_running`, for one envelope.
        try:
            response = self._handle_receive(envelope.message)
            if envelope.reply_to is not None:
                envelope.reply_to.set(response)
        except Exception:
            if envelope.reply_to is not None:
                envelope.reply_to.set_exception()
            else:
                self._handle_failure(*sys.exc_info())
                try:
                    self.on_failure(*sys.exc_info())
                except Exception:
                    self._handle_failure(*sys.exc_info())
        except BaseException:
            # As pykka does: a KeyboardInterrupt or SystemExit in an actor stops them all.
            self._stop()
            ActorRegistry.stop_all(block=False)
