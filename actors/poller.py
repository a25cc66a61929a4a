"""`PollerActor`: reads the table and tells the supervisor what this region must serve.

Two ways in, handled by this one actor so that they never race each other:

- the change feed (`ReadStream`, when the table has a stream of new images): each
  item a person changed is told to the supervisor at once, as a partial view. Items
  whose only news is this region's own status entry (the daemon's own writes, which
  come back on the stream) are not told: they would cost a reconcile and say nothing.
  A removed item is only news: it makes the next polls scan, so the deletion guard
  counts it on whole scans as ever.
- the scan (`Poll`): one paginated, consistent scan. With a healthy feed it runs only
  as a resync every `resync` seconds (and when the feed lost its position or saw a
  removal); without a stream, at every poll as before.

Items are sorted into those this region serves and those it must retire (the region
was removed from `target_regions` but still has a status entry here); only items whose
content changed since they were last seen are marked `changed`, so a steady state sends
no spec to any endpoint actor.
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any

import pykka
import structlog

from actors.clock import Clock
from actors.messages import Poll, ReadStream, ScanFailed, Scanned
from actors.ports import ChangeFeed, EndpointStore
from store.errors import ScanBroken, StoreError
from store.item import LoadedItem
from store.rollout import ATTRIBUTE as ROLLOUT

log = structlog.get_logger(__name__)


def _targets(item: LoadedItem) -> list[str]:
    # An invalid item's regions are read leniently, so they report its problem.
    return list(item.target_regions)


def change_key(
    item: LoadedItem, region: str, *, own_status: bool = True, cluster: str | None = None
) -> str:
    """What must differ for an item to count as changed: its content; this region's status
    entry (so a status write that was lost, or landed out of order, is seen and repaired by
    the actor at the next scan); and - while it is deploying or being deleted - every
    region's state (the move to `running` and the purge wait for all of them); and - with a
    rollout policy (architecture section 12) - the rollout record and every region's state and
    rollout fields, since a region's step depends on the others' (no `last_sync`: a
    heartbeat changes nothing).

    Without `own_status`, this region's entry is left out everywhere: the key of what
    others changed, by which the change feed ignores the daemon's own status writes -
    except, when other clusters share the region, their own entries (not `cluster`'s):
    another cluster's progress decides this one's purge and `running`, as another
    region's does."""
    own = item.region_status.get(region) if own_status else None
    key = item.content_hash + repr(own.to_item() if own is not None else None)
    statuses = {r: s for r, s in sorted(item.region_status.items()) if own_status or r != region}
    if not own_status:
        sharing = {c: s for c, s in item.cluster_status(region).items() if c != cluster}
        key += json.dumps(
            {c: (s.state, s.revision, s.rollout, s.step, s.since) for c, s in sharing.items()},
            sort_keys=True,
        )
    if item.endpoint is not None and item.endpoint.desired_state in ("deleted", "deploying"):
        key += json.dumps({r: s.state for r, s in statuses.items()})
    spec = item.raw.get("spec")
    if isinstance(spec, dict) and spec.get(ROLLOUT) is not None:
        progress = {
            r: (s.state, s.revision, s.rollout, s.step, s.since) for r, s in statuses.items()
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


def request_poll(poller: pykka.ActorRef[Any], queued: threading.Event, message: Any = None) -> None:
    """Queue one `Poll` (or `message`) unless one is already waiting: a scan slower than
    the interval must not pile ticks up in the mailbox."""
    if queued.is_set():
        return
    queued.set()
    try:
        poller.tell(Poll() if message is None else message)
    except pykka.ActorDeadError:
        queued.clear()


class PollerActor(pykka.ThreadingActor):
    """Reads the change feed on every `ReadStream`, scans on every `Poll` that is due, and
    tells the supervisor a `Scanned` view of each.

    Args:
        feed: the table's stream reader, or None (no change feed: every poll scans).
        clock: for the resync's due time (required with `feed`).
        resync: seconds between the scans of a healthy feed.
        confirmations: scans in a row the deletion guard needs: after a removal on the
            feed, that many polls scan.
        cluster: this daemon's cluster (`CLUSTER_NAME`): the feed tells of the entries
            other clusters of the region write, not of its own.
    """

    def __init__(
        self,
        store: EndpointStore,
        region: str,
        supervisor: pykka.ActorRef[Any],
        queued: threading.Event,
        *,
        feed: ChangeFeed | None = None,
        clock: Clock | None = None,
        resync: float = 300.0,
        confirmations: int = 3,
        read_queued: threading.Event | None = None,
        cluster: str | None = None,
    ) -> None:
        super().__init__()
        self.store = store
        self.region = region
        self.cluster = cluster
        self.supervisor = supervisor
        self.queued = queued
        self.read_queued = read_queued or threading.Event()
        self.feed = feed
        self.clock = clock
        self.resync = resync
        self.confirmations = confirmations
        #: Change keys of the items last seen (whole, and without this region's status).
        self.keys: dict[str, str] = {}
        self.others: dict[str, str] = {}
        #: The feed is read without error (None: no feed, or not read yet).
        self.feed_healthy = False
        self.scans_owed = 0
        self.last_scan = float("-inf")

    def on_start(self) -> None:
        # Open the feed (at its newest records) before the first scan, so that no change
        # falls between the two.
        if self.feed is not None:
            self._read_feed()

    def on_receive(self, message: Any) -> None:
        if isinstance(message, Poll):
            self.queued.clear()
            if self._scan_due():
                self._scan()
        elif isinstance(message, ReadStream):
            self.read_queued.clear()
            self._read_feed()
        else:
            log.warning("unexpected message", message=repr(message))

    def _scan_due(self) -> bool:
        if not self.feed_healthy or self.scans_owed > 0 or self.clock is None:
            return True
        return self.clock.monotonic() - self.last_scan >= self.resync

    def _scan(self) -> None:
        try:
            items = self.store.scan()
        except StoreError as error:
            reason = error.code or type(error).__name__
            # A scan that could not end is a broken table, not a passing hiccup.
            level = log.error if isinstance(error, ScanBroken) else log.warning
            level("table scan failed; next poll retries", error=str(error), reason=reason)
            self.supervisor.tell(ScanFailed(str(error), reason))
            return
        if self.clock is not None:
            self.last_scan = self.clock.monotonic()
        self.scans_owed = max(0, self.scans_owed - 1)
        active, retiring = classify(items, self.region)
        keys = {item.name: change_key(item, self.region) for item in items}
        changed = frozenset(n for n, k in keys.items() if self.keys.get(n) != k)
        self.keys = keys
        self.others = {
            item.name: change_key(item, self.region, own_status=False, cluster=self.cluster)
            for item in items
        }
        self.supervisor.tell(
            Scanned(
                active=active,
                retiring=retiring,
                changed=changed,
                present=frozenset(keys),
                total=len(items),
            )
        )

    def _read_feed(self) -> None:
        """One read of the stream; the items others changed go to the supervisor."""
        assert self.feed is not None
        try:
            result = self.feed.read()
        except StoreError as error:
            if self.feed_healthy or self.last_scan == float("-inf"):
                log.warning("change feed unreadable: scanning every poll", error=str(error))
            self.feed_healthy = False
            return
        if not self.feed_healthy:
            log.info("change feed read: scans become a resync", resync=self.resync)
        self.feed_healthy = True
        latest: dict[str, LoadedItem] = {}
        for change in result.changes:
            if change.item is None:
                # Deleting stays with whole scans and the guard: owe it those scans.
                self.scans_owed = max(self.scans_owed, self.confirmations + 1)
                latest.pop(change.name, None)
                continue
            latest[change.name] = change.item
        news: dict[str, LoadedItem] = {}
        for name, item in latest.items():
            others = change_key(item, self.region, own_status=False, cluster=self.cluster)
            if self.others.get(name) != others:
                # Told now, so the next scan does not tell it again; an item whose only
                # news is this region's own entry keeps its old key, so a scan still sees
                # an entry someone else wrote there (and the actor repairs it).
                self.others[name] = others
                self.keys[name] = change_key(item, self.region)
                news[name] = item
        if news:
            self._tell_partial(news)
        if result.lost:
            # What the stream lost is unknown: a whole scan now, not at the next poll.
            self._scan()

    def _tell_partial(self, news: dict[str, LoadedItem]) -> None:
        active, retiring = classify(list(news.values()), self.region)
        self.supervisor.tell(
            Scanned(
                active=active,
                retiring=retiring,
                changed=frozenset(news),
                present=frozenset(news),
                total=len(news),
                partial=True,
            )
        )
