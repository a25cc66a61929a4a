"""Memory breakdown: where a converged daemon's memory goes, per endpoint.

An in-process daemon (the `memory` benchmark reads a subprocess's RSS; this one needs
the daemon's objects) at N endpoints, once every item is `running`:

- caches: the informers' cached objects (every watched kind), by object graph size;
- items: the table items the supervisor and the endpoint actors hold (each distinct
  object once, so two holders of one item count it once), by object graph size;
- actor state: the endpoint actor objects without their items and shared context;
- thread stacks: the resident part of a thread's stack (`/proc/self/smaps`: the mappings
  of the daemon's thread stack size), averaged over every thread started after the daemon.

Graph sizes are `sys.getsizeof` summed over everything reachable through containers
and instance attributes, each object once.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

import pykka

from actors.endpoint import EndpointActor
from bench.rig import Options, Section, names, rig
from bench.scale import SETTLE_SECONDS

TITLE = "memory breakdown"



def _children(obj: Any) -> Iterable[Any]:
    if isinstance(obj, dict):
        yield from obj.keys()
        yield from obj.values()
    elif isinstance(obj, (list, tuple, set, frozenset)):
        yield from obj
    else:
        attributes = getattr(obj, "__dict__", None)
        if attributes is not None:
            yield attributes
        for slot in getattr(type(obj), "__slots__", ()):
            if hasattr(obj, slot):
                yield getattr(obj, slot)


def graph_size(roots: Iterable[Any], seen: set[int], *, skip: tuple[type, ...] = ()) -> int:
    """Bytes of everything reachable from `roots` not in `seen` (which it extends), not
    descending into instances of `skip` (modules, classes and functions are never counted)."""
    total = 0
    stack = list(roots)
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (type, type(sys), skip)) or callable(obj):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(_children(obj))
    return total


def stack_rss_kib() -> tuple[int, int]:
    """(resident KiB of every thread stack mapping, how many) in this process."""
    stack_kib = (threading.stack_size() or 8 * 1024 * 1024) // 1024
    resident = count = size = 0
    with open("/proc/self/smaps", encoding="ascii", errors="replace") as smaps:
        for line in smaps:
            if line.startswith("Size:"):
                size = int(line.split()[1])
            elif line.startswith("Rss:") and size == stack_kib:
                resident += int(line.split()[1])
                count += 1
    return resident, count


def _actor(ref: pykka.ActorRef[Any]) -> Any:
    """The actor object behind `ref` (the bench sizes the daemon's own objects)."""
    return ref._actor_weakref()


def endpoints(options: Options) -> int:
    """--endpoints, else 250 (quick) or 1,000."""
    return options.endpoints or (250 if options.quick else 1000)


def run(options: Options) -> Section:
    """Converge N endpoints in process, then size each part."""
    n = endpoints(options)
    section = Section(TITLE, parameters={"endpoints": n, "daemon": "in-process"})
    with rig() as kit:
        kit.fill(names(n))
        daemon = kit.start_daemon()
        kit.wait_all_running(timeout=max(120.0, n * 0.3))
        time.sleep(SETTLE_SECONDS)  # late status writes land before the sizes are read
        supervisor = _actor(daemon.supervisor)
        actors = [_actor(r) for r in pykka.ActorRegistry.get_by_class(EndpointActor)]
        seen: set[int] = set()
        informers = [
            informer
            for namespace in supervisor.gateway
            for informer in supervisor.gateway[namespace]._informers.values()
        ]
        caches = graph_size((i.objects() for i in informers), seen)
        cached = sum(len(i.objects()) for i in informers)
        held = [*supervisor.items.values(), *(a.item for a in actors if a.item is not None)]
        distinct = len({id(item) for item in held})
        items = graph_size(held, seen)
        # The context, slot, refs and the pool are shared or counted elsewhere: the actor's
        # own state (its mailbox included).
        seen.update(id(a.ctx) for a in actors)
        seen.add(id(daemon.pool))
        state = graph_size(actors, seen, skip=(pykka.ActorRef, threading.Thread))
        stacks, mappings = stack_rss_kib()
        threads = threading.active_count()
        per_thread = stacks / mappings if mappings else 0.0
        section.add("items held (supervisor + actors)", len(held), "", note=f"{distinct} distinct")
        section.add("objects cached (all kinds)", cached, "")
        section.add("informer caches per endpoint", caches / 1024 / n, "KiB")
        section.add("table items per endpoint", items / 1024 / n, "KiB")
        section.add("endpoint actor state per endpoint", state / 1024 / n, "KiB")
        section.add(
            "thread stack resident per thread",
            per_thread,
            "KiB",
            note=f"{mappings} stacks, {threads} threads in the process (sim and moto included)",
        )
        section.add(
            "endpoint worker threads",
            daemon.pool.threads(),
            "",
            note=f"{len(actors)} endpoint actors on a pool of {daemon.pool.size} running workers",
        )
    return section

