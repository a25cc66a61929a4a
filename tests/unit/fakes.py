"""Strict fakes of the actors' two doors (`actors.ports`), for unit tests of the actors'
decisions. They hold plain dicts, record every call, and fail loudly on a call the test
did not plan for (like client-go's catch-all reactor): an unexpected write is a bug."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from store.item import LoadedItem
from store.model import RegionStatus


class UnexpectedCall(AssertionError):
    """A fake was called in a way the test did not allow."""


class FakeStore:
    """An `EndpointStore` over a dict of status entries; only status writes are allowed
    unless the test sets `allow` (e.g. {"purge_if_deleted"})."""

    def __init__(self, *, allow: frozenset[str] = frozenset()) -> None:
        self.statuses: dict[tuple[str, str], RegionStatus | None] = {}
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self._allow = allow

    def scan(self) -> list[LoadedItem]:
        raise UnexpectedCall("scan")

    def take_epoch(self, region: str, *, floor: int = 0) -> int:
        raise UnexpectedCall(f"take_epoch({region!r})")

    def write_region_status(
        self,
        name: str,
        region: str,
        status: RegionStatus | None,
        *,
        epoch: int | None = None,
        holder: str = "",
    ) -> bool:
        self.calls.append(("write_region_status", (name, region, status)))
        self.statuses[(name, region)] = status
        return True

    def own_status(self, item: LoadedItem, region: str) -> RegionStatus | None:
        return item.region_status.get(region)

    def region_view(
        self, item: LoadedItem, region: str, own: RegionStatus | None
    ) -> RegionStatus | None:
        return own

    def purge_if_deleted(
        self,
        name: str,
        regions: Sequence[str],
        *,
        region: str | None = None,
        epoch: int | None = None,
        holder: str = "",
    ) -> bool:
        return self._allowed("purge_if_deleted", name, tuple(regions))

    def mark_running(
        self,
        name: str,
        regions: Sequence[str],
        *,
        region: str | None = None,
        epoch: int | None = None,
        holder: str = "",
    ) -> bool:
        return self._allowed("mark_running", name, tuple(regions))

    def record_rollout_completion(
        self, name: str, revision: str, spec: Any, regions: Sequence[str], **_: Any
    ) -> bool:
        return self._allowed("record_rollout_completion", name, revision, tuple(regions))

    def record_rollout_halt(self, name: str, halt: Any, **_: Any) -> bool:
        return self._allowed("record_rollout_halt", name, halt)

    def _allowed(self, method: str, *args: Any) -> bool:
        if method not in self._allow:
            raise UnexpectedCall(f"{method}{args}")
        self.calls.append((method, args))
        return True


class FakeCluster:
    """A `Cluster` over a dict of objects keyed by (kind, name). `ensure` stores the desired
    object; `remove` follows `on_remove` (default: delete it) and records the call."""

    def __init__(self, objects: dict[tuple[str, str], dict[str, Any]] | None = None) -> None:
        self.objects = dict(objects or {})
        self.calls: list[tuple[str, str, str]] = []
        self.on_remove: Callable[[str, str], bool] = self._delete
        #: Every Event recorded (best-effort announcements: allowed, kept for the tests).
        self.events: list[dict[str, Any]] = []

    def start(self, on_event: Callable[[Any], None]) -> None:
        raise UnexpectedCall("start")

    def stop(self) -> None:
        raise UnexpectedCall("stop")

    def quiesce(self, timeout: float) -> bool:
        raise UnexpectedCall("quiesce")

    def cached(self, kind: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((kind, name))

    def instances(self) -> set[str]:
        raise UnexpectedCall("instances")

    def ensure(self, desired: dict[str, Any]) -> str:
        key = (desired["kind"], desired["metadata"]["name"])
        self.calls.append(("ensure", *key))
        existed = key in self.objects
        self.objects[key] = desired
        return "updated" if existed else "created"

    def remove(self, kind: str, name: str, *, owner: str) -> bool:
        self.calls.append(("remove", kind, name))
        return self.on_remove(kind, name)

    def read(self, kind: str, name: str) -> dict[str, Any] | None:
        self.calls.append(("read", kind, name))
        return self.objects.get((kind, name))

    def record_event(self, event: dict[str, Any]) -> bool:
        self.events.append(event)
        return True

    def _delete(self, kind: str, name: str) -> bool:
        self.objects.pop((kind, name), None)
        return True
