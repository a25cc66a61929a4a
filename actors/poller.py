"""`PollerActor`: scans the table and tells the supervisor what this region must serve.

One paginated, consistent scan per `Poll`. Items are sorted into those this
region serves and those it must retire (the region was removed from
`target_regions` but still has a status entry here); only items whose content
changed since the previous scan are marked `changed`, so a steady state sends
no spec to any endpoint actor.
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any

import pykka
import structlog

from actors.messages import Poll, ScanFailed, Scanned
from actors.ports import EndpointStore
from store.dynamo import LoadedItem
from store.errors import ScanBroken, StoreError
from store.rollout import ATTRIBUTE as ROLLOUT

log = structlog.get_logger(__name__)


def _targets(item: LoadedItem) -> list[str]:
    # An invalid item's regions are read leniently, so they report its problem.
    return list(item.target_regions)


def change_key(item: LoadedItem, region: str) -> str:
    """What must differ for an item to count as changed: its content; this region's status
    entry (so a status write that was lost, or landed out of order, is seen and repaired by
    the actor at the next scan); and - while it is deploying or being deleted - every
    region's state (the move to `running` and the purge wait for all of them); and - with a
    rollout policy (architecture section 12) - the rollout record and every region's state and
    rollout
    fields, since a region's step depends on the others' (no `last_sync`: a heartbeat
    changes nothing)."""
    own = item.region_status.get(region)
    key = item.content_hash + repr(own.to_item() if own is not None else None)
    if item.endpoint is not None and item.endpoint.desired_state in ("deleted", "deploying"):
        states = {r: s.state for r, s in sorted(item.region_status.items())}
        key += json.dumps(states)
    spec = item.raw.get("spec")
    if isinstance(spec, dict) and spec.get(ROLLOUT) is not None:
        progress = {
            r: (s.state, s.revision, s.rollout, s.step, s.since)
            for r, s in sorted(item.region_status.items())
        }
        key += json.dumps([item.raw.get(ROLLOUT), progress], sort_keys=True, default=str)
    return hashlib.sha256(key.encode()).hexdigest()


def classify(
    items: list[LoadedItem], region: str
) -> tuple[dict[str, LoadedItem], dict[str, LoadedItem]]:
    """Split scanned items into (active, retiring) for `region`."""
    active: dict[str, LoadedItem] = {}
    retiring: dict[str, LoadedItem] = {}
    for item in items:
        # An item whose regions cannot be read at all is served everywhere, so each
        # region reports its problem (it is invalid: nothing is applied).
        if region in _targets(item) or item.targets_unreadable:
            active[item.name] = item
        elif region in item.region_status and item.endpoint is not None:
            retiring[item.name] = item
    return active, retiring


def request_poll(poller: pykka.ActorRef[Any], queued: threading.Event) -> None:
    """Queue one `Poll` unless one is already waiting: a scan slower than the interval
    must not pile ticks up in the mailbox."""
    if queued.is_set():
        return
    queued.set()
    try:
        poller.tell(Poll())
    except pykka.ActorDeadError:
        queued.clear()


class PollerActor(pykka.ThreadingActor):
    """Scans the table on every `Poll` and tells the supervisor a `Scanned` view."""

    def __init__(
        self,
        store: EndpointStore,
        region: str,
        supervisor: pykka.ActorRef[Any],
        queued: threading.Event,
    ) -> None:
        super().__init__()
        self.store = store
        self.region = region
        self.supervisor = supervisor
        self.queued = queued
        self.keys: dict[str, str] = {}

    def on_receive(self, message: Any) -> None:
        if not isinstance(message, Poll):
            log.warning("unexpected message", message=repr(message))
            return
        self.queued.clear()
        try:
            items = self.store.scan()
        except StoreError as error:
            reason = error.code or type(error).__name__
            # A scan that could not end is a broken table, not a passing hiccup.
            level = log.error if isinstance(error, ScanBroken) else log.warning
            level("table scan failed; next poll retries", error=str(error), reason=reason)
            self.supervisor.tell(ScanFailed(str(error), reason))
            return
        active, retiring = classify(items, self.region)
        keys = {item.name: change_key(item, self.region) for item in items}
        changed = frozenset(n for n, k in keys.items() if self.keys.get(n) != k)
        self.keys = keys
        self.supervisor.tell(
            Scanned(
                active=active,
                retiring=retiring,
                changed=changed,
                present=frozenset(keys),
                total=len(items),
            )
        )
