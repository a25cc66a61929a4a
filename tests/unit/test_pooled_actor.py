"""Pooled actors (`actors.pooled`, `actors.pool`): pykka's actor API on a few shared
threads. Messages are handled in order, one at a time per actor, never by two workers
at once; stop, failure and ask behave as on a pykka thread; a worker that only waits
lets another run; closing the pool leaves no thread behind."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Iterator
from typing import Any

import pykka
import pytest
from structlog.testing import capture_logs

from actors.pool import WorkerPool
from actors.pooled import PooledActor

WAIT = 5.0

#: A context variable an actor binds in on_start, as endpoint actors bind structlog's.
bound: contextvars.ContextVar[str] = contextvars.ContextVar("bound", default="")


@pytest.fixture
def pool() -> Iterator[WorkerPool]:
    workers = WorkerPool(4, limit=8, idle_seconds=0.5, name="test-pool")
    try:
        yield workers
    finally:
        pykka.ActorRegistry.stop_all(timeout=WAIT)
        assert workers.close(WAIT), "a pool worker outlived close()"


class Recorder(PooledActor):
    """Records what it handles and how many of its turns run at once."""

    def __init__(self, pool: WorkerPool, name: str, *, hold: float = 0.0) -> None:
        super().__init__(pool=pool)
        self.name = name
        self.hold = hold
        self.seen: list[Any] = []
        self.running = 0
        self.most_at_once = 0
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.failed: list[str] = []

    def on_start(self) -> None:
        bound.set(self.name)

    def on_receive(self, message: Any) -> Any:
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            if message == "boom":
                raise RuntimeError("boom")
            if message == "whoami":
                return bound.get()
            time.sleep(self.hold)
            self.seen.append(message)
            return message
        finally:
            with self.lock:
                self.running -= 1

    def report(self) -> tuple[list[Any], int]:
        return list(self.seen), self.most_at_once

    def on_stop(self) -> None:
        self.stopped.set()

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        self.failed.append(str(exception_value))
        self.stopped.set()


def test_messages_are_handled_in_the_order_they_were_sent(pool: WorkerPool) -> None:
    ref = Recorder.start(pool, "a")
    for i in range(200):
        ref.tell(i)
    assert ref.ask("last", timeout=WAIT) == "last"
    seen, _ = ref.proxy().report().get(timeout=WAIT)
    assert seen == [*range(200), "last"]


def test_one_actor_never_runs_on_two_workers_at_once(pool: WorkerPool) -> None:
    """Many senders on many threads, a pool of four: still one turn at a time (a second
    turn started meanwhile would fail entering the actor's context: none may)."""
    ref = Recorder.start(pool, "a", hold=0.001)
    senders = [threading.Thread(target=lambda: [ref.tell(i) for i in range(50)]) for _ in range(4)]
    with capture_logs() as logs:
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(WAIT)
        seen, most_at_once = ref.proxy().report().get(timeout=WAIT)
    assert (len(seen), most_at_once) == (200, 1)
    assert [e["event"] for e in logs if e["log_level"] == "error"] == []


def test_actors_share_a_few_threads_and_run_side_by_side(pool: WorkerPool) -> None:
    """Twenty actors, four workers: all served, some at the same time, no thread each."""
    before = threading.active_count()
    refs = [Recorder.start(pool, f"a{i}", hold=0.01) for i in range(20)]
    futures = [ref.ask(i, block=False) for i, ref in enumerate(refs) for _ in range(3)]
    assert [f.get(timeout=WAIT) for f in futures] == [i for i in range(20) for _ in range(3)]
    assert threading.active_count() - before <= pool.limit
    assert pool.threads() <= pool.size


def test_ask_returns_the_handler_value_and_raises_its_error(pool: WorkerPool) -> None:
    ref = Recorder.start(pool, "a")
    assert ref.ask("x", timeout=WAIT) == "x"
    with pytest.raises(RuntimeError, match="boom"):
        ref.ask("boom", timeout=WAIT)
    assert ref.is_alive(), "an error returned to the asker does not kill the actor"


def test_a_failing_tell_kills_the_actor_through_on_failure(pool: WorkerPool) -> None:
    ref = Recorder.start(pool, "a")
    actor = ref.proxy()
    failed = actor.failed.get(timeout=WAIT)
    stopped = actor.stopped.get(timeout=WAIT)
    ref.tell("boom")
    assert stopped.wait(WAIT)
    assert failed == ["boom"]
    assert not ref.is_alive()
    with pytest.raises(pykka.ActorDeadError):
        ref.tell("after")


def test_stop_runs_on_stop_after_the_queued_messages(pool: WorkerPool) -> None:
    ref = Recorder.start(pool, "a", hold=0.001)
    stopped = ref.proxy().stopped.get(timeout=WAIT)
    actor_seen = ref.proxy().seen.get(timeout=WAIT)
    for i in range(20):
        ref.tell(i)
    ref.stop(timeout=WAIT)
    assert stopped.is_set()
    assert actor_seen == list(range(20))
    assert pykka.ActorRegistry.get_by_urn(ref.actor_urn) is None


def test_an_ask_queued_behind_a_stop_is_answered_dead(pool: WorkerPool) -> None:
    ref = Recorder.start(pool, "a", hold=0.2)
    ref.tell("slow")
    stop = ref.stop(block=False)
    late = ref.ask("late", block=False)
    stop.get(timeout=WAIT)
    with pytest.raises(pykka.ActorDeadError):
        late.get(timeout=WAIT)


def test_each_actor_keeps_its_own_context_variables(pool: WorkerPool) -> None:
    """What on_start binds (structlog binds the endpoint name so) stays with that actor
    on whatever worker runs it next."""
    refs = {f"a{i}": Recorder.start(pool, f"a{i}") for i in range(12)}
    for _ in range(3):
        answers = {name: ref.ask("whoami", block=False) for name, ref in refs.items()}
        assert {name: f.get(timeout=WAIT) for name, f in answers.items()} == {
            name: name for name in refs
        }


def test_a_blocked_worker_lets_another_run(pool: WorkerPool) -> None:
    """Every worker waiting (on the network, say): another starts for the queued work."""
    release = threading.Event()
    waiting = threading.Semaphore(0)

    def wait_on_network() -> None:
        with pool.blocking():
            waiting.release()
            release.wait(WAIT)

    for _ in range(pool.size):
        pool.submit(wait_on_network)
    for _ in range(pool.size):
        assert waiting.acquire(timeout=WAIT)
    ran = threading.Event()
    pool.submit(ran.set)
    try:
        assert ran.wait(WAIT), "queued work waited behind workers that only wait"
        assert pool.threads() == pool.size + 1
    finally:
        release.set()


def test_blocked_workers_never_exceed_the_limit(pool: WorkerPool) -> None:
    release = threading.Event()

    def wait_on_network() -> None:
        with pool.blocking():
            release.wait(WAIT)

    for _ in range(pool.limit + 4):
        pool.submit(wait_on_network)
    deadline = time.monotonic() + WAIT
    while pool.queued() > 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # room for a worker past the limit to show up: none may
    try:
        assert (pool.threads(), pool.queued()) == (pool.limit, 4)
    finally:
        release.set()


def test_idle_workers_end(pool: WorkerPool) -> None:
    done = threading.Event()
    pool.submit(done.set)
    assert done.wait(WAIT)
    deadline = time.monotonic() + WAIT
    while pool.threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pool.threads() == 0


def test_work_sent_after_close_is_still_done_and_its_worker_ends() -> None:
    pool = WorkerPool(2, idle_seconds=30, name="closed-pool")
    assert pool.close(WAIT)
    done = threading.Event()
    pool.submit(done.set)
    assert done.wait(WAIT), "a message sent after close was lost"
    assert pool.close(WAIT)
