"""An informer per kind: list once into a cache, then watch, in one thread.

The watch resumes from the last resourceVersion it saw (events and bookmarks),
reconnects with backoff after a dropped connection, and lists again when it
cannot resume, reporting what the new list differs by (including DELETED for
objects that vanished meanwhile). "Cannot resume" is a 410 Gone (HTTP or an
ERROR event), or a server whose resourceVersion went backwards (as after an
etcd restore: an event or list older than the newest one seen; after a failed
watch the informer reads the server's current resourceVersion with a one-item
list before resuming, since a real server answers a watch from a future
resourceVersion with silence). Every kind also lists again every
`resync_period` seconds. While a relist caused by any of these is pending, the
cache is not trusted (`has_synced` is False), so it never answers "absent" for
an object the server may hold. The caller's `on_event` runs in the watch thread
after the cache is updated; its exceptions are logged and never end the watch.

The watch is our own line reader over a `_preload_content=False` list call
with `watch=True`: it gives direct access to each event's resourceVersion,
BOOKMARK and ERROR (410) events, and a response handle that `stop()` can shut
down to end a blocked read at once.
"""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import structlog
import urllib3

from k8s import errors
from k8s.resources import API_VERSIONS, ResourceApi
from k8s.retry import BackoffPolicy
from k8s.transport import Transport

__all__ = ["ApiListWatch", "KindInformer", "WatchEvent", "slim"]

log = structlog.get_logger(__name__)

# Objects per list page: bounds the size of one response in a large namespace.
LIST_PAGE_SIZE = 500
# A watch that ends within this many seconds without a single event counts as a
# failure (backoff before the next one), not as a normal server-side timeout.
SHORT_WATCH = 1.0


@dataclass(frozen=True)
class WatchEvent:
    """One change seen by a watch or a relist.

    `kind` is `Deployment`, `Service`, `Ingress` or `HorizontalPodAutoscaler`;
    `type` is ADDED, MODIFIED or DELETED; `obj` the object (for DELETED, its
    last known state). `obj` is the cached dict itself: read it, never modify it.
    """

    kind: str
    type: str
    obj: dict[str, Any]


#: Metadata nothing in the daemon reads: dropped before an object is cached. managedFields
#: are 40-50 % of a typical Deployment's JSON on a real server (the daemon never uses
#: server-side apply, and its PUT bodies are built from the desired object, so leaving
#: them out changes no write: the server keeps its managedFields when a body omits them).
UNREAD_METADATA = ("managedFields", "selfLink")


#: String values up to this many characters are shared between cached objects (interned):
#: kinds, API versions, label and annotation values, enum-like fields (`IfNotPresent`,
#: `TCP`), timestamps. Longer ones (a hash annotation, a condition's message) rarely repeat.
SHARED_STRING_MAX = 64


def slim(obj: dict[str, Any]) -> dict[str, Any]:
    """The copy of `obj` the cache keeps: without the metadata nothing reads
    (`UNREAD_METADATA`), and with every key and short string value shared with the other
    cached objects (`sys.intern`), so thousands of objects built from one template hold
    one `"livenessProbe"` or `"IfNotPresent"`, not one each (issue 20: about a third of
    the cache). Everything else stays: the drift rules compare the whole spec, PUT bodies
    keep foreign labels, annotations, finalizers and owner references, and the status code
    reads the status and `generation`/`creationTimestamp`. `obj` is left as it was."""
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        metadata = {k: v for k, v in metadata.items() if k not in UNREAD_METADATA}
        obj = {**obj, "metadata": metadata}
    return _shared(obj)


def _shared(value: Any) -> Any:
    """`value` rebuilt with its keys and short strings interned."""
    if isinstance(value, dict):
        return {sys.intern(k) if type(k) is str else k: _shared(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shared(v) for v in value]
    if type(value) is str and len(value) <= SHARED_STRING_MAX:
        return sys.intern(value)
    return value


def _name(obj: dict[str, Any]) -> str:
    return str(obj.get("metadata", {}).get("name", ""))


def _rv(obj: dict[str, Any] | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("resourceVersion") or "")


def _number(resource_version: str) -> int | None:
    """A resourceVersion as an integer (every real server and the sim use increasing
    integers), or None when it is not one."""
    return int(resource_version) if resource_version.isdigit() else None


def _is_older(candidate: str, current: str) -> bool:
    """True when resourceVersion `candidate` is certainly older than `current`.

    resourceVersions are opaque to clients, but every real server (etcd revisions)
    and the sim use increasing integers. The cache only uses this to keep an
    object written through by the gateway from being replaced by an older watch
    event still in flight; anything not numeric is never called older.
    """
    if candidate.isdigit() and current.isdigit():
        return int(candidate) < int(current)
    return False


class ApiListWatch:
    """List and watch one kind in one namespace through the gateway's transport.

    Args:
        api: the kind's typed calls.
        transport: rate limit, counting and error mapping.
        namespace: the namespace watched.
        request_timeout: per-request timeout in seconds (the connect timeout of a watch).
        watch_timeout: server-side `timeoutSeconds` of each watch request.
    """

    def __init__(
        self,
        api: ResourceApi,
        transport: Transport,
        *,
        namespace: str,
        request_timeout: float,
        watch_timeout: int,
    ) -> None:
        self.kind = api.kind
        self._api = api
        self._transport = transport
        self._namespace = namespace
        self._request_timeout = request_timeout
        self._watch_timeout = watch_timeout

    def list(self) -> tuple[list[dict[str, Any]], str]:
        """All objects of the kind (paged) and the list's resourceVersion.

        Items get their `apiVersion` and `kind` back (list items carry none).
        """
        items: list[dict[str, Any]] = []
        continue_token: str | None = None
        resource_version = ""
        while True:
            # One attempt: the informer retries on its own, waiting on its stop event.
            page = self._transport.call(
                "list",
                self.kind,
                "",
                lambda timeout, token=continue_token: self._api.list(
                    self._namespace,
                    limit=LIST_PAGE_SIZE,
                    _continue=token,
                    _preload_content=False,
                    _request_timeout=timeout,
                ),
                retry=False,
            )
            for raw in page.get("items") or []:
                item = slim(raw)
                item.setdefault("apiVersion", API_VERSIONS[self.kind])
                item.setdefault("kind", self.kind)
                items.append(item)
            metadata = page.get("metadata") or {}
            resource_version = resource_version or str(metadata.get("resourceVersion") or "")
            continue_token = metadata.get("continue") or None
            if continue_token is None:
                return items, resource_version

    def current_resource_version(self) -> str:
        """The server's current resourceVersion, read with a one-item list (a consistent
        read): cheap, and lower than one seen before only when the server went back."""
        page = self._transport.call(
            "list",
            self.kind,
            "",
            lambda timeout: self._api.list(
                self._namespace, limit=1, _preload_content=False, _request_timeout=timeout
            ),
            retry=False,
        )
        return str((page.get("metadata") or {}).get("resourceVersion") or "")

    def watch(
        self, resource_version: str, *, timeout_seconds: int | None = None
    ) -> urllib3.BaseHTTPResponse:
        """Open a watch from `resource_version` with bookmarks; the body is a stream of lines.

        `timeout_seconds` shortens the server-side timeout (never beyond `watch_timeout`).
        """
        seconds = self._watch_timeout
        if timeout_seconds is not None:
            seconds = max(1, min(seconds, timeout_seconds))
        # The read timeout outlasts the server-side timeout, so only a dead
        # connection (not a quiet namespace) ends a watch with a read timeout.
        timeout = (self._request_timeout, float(seconds) + self._request_timeout)
        return self._transport.open_stream(
            "watch",
            self.kind,
            lambda request_timeout: self._api.list(
                self._namespace,
                watch=True,
                resource_version=resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=seconds,
                _preload_content=False,
                _request_timeout=request_timeout,
            ),
            timeout=timeout,
        )


def _lines(response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    """The non-empty lines of a streaming body, as they arrive (chunked or not)."""
    buffer = b""
    while True:
        chunk = response.read1(65536)
        if not chunk:
            return
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        for line in complete:
            if line.strip():
                yield line


class KindInformer:
    """The cache of one kind, kept current by a list-then-watch thread.

    Args:
        source: list and watch calls for the kind.
        on_event: called in the watch thread for every change, after the cache is updated.
        backoff: delays between attempts after failures; its `max_retries` bounds the
            retries of the initial list (later failures are retried forever).
        random: jitter source in [0, 1).
        monotonic: clock for spotting watches that end at once and for the resync.
        resync_period: seconds between periodic relists (None: never).
    """

    def __init__(
        self,
        source: ApiListWatch,
        *,
        on_event: Callable[[WatchEvent], None],
        backoff: BackoffPolicy,
        random: Callable[[], float],
        monotonic: Callable[[], float] = time.monotonic,
        resync_period: float | None = None,
    ) -> None:
        self.kind = source.kind
        self._monotonic = monotonic
        self._source = source
        self._on_event = on_event
        self._backoff = backoff
        self._random = random
        self._cache: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._resource_version: str | None = None
        # The newest resourceVersion seen from the server (lists, events, bookmarks; not
        # write-throughs): one lower than it means the server went back in time.
        self._newest: int | None = None
        self._resync_period = resync_period
        self._listed_at = 0.0
        # Consecutive failed attempts; an event received or a list done resets it.
        self._failures = 0
        # A watch attempt failed: check the server's resourceVersion before resuming.
        self._verify = False
        # True once a list is cached, False again while a relist the watch needs
        # (410, resourceVersion gone back) is pending: then the cache is not trusted.
        self._current = False
        self.relists = 0
        self._stop = threading.Event()
        # Set once the initial list is cached and its events delivered (or it failed).
        self._synced = threading.Event()
        self._sync_error: errors.ApiError | None = None
        self._response: urllib3.BaseHTTPResponse | None = None
        self._log = log.bind(kind=self.kind)
        self._thread = threading.Thread(target=self._run, name=f"watch-{self.kind}", daemon=True)

    # -- cache -------------------------------------------------------------

    @property
    def has_synced(self) -> bool:
        """True once a list is in the cache, while the watch thread runs and no relist
        is pending (a dead thread's or a known-stale cache is not trusted: the gateway
        reads instead)."""
        return self._current and self._sync_error is None and self._thread.is_alive()

    def get(self, name: str) -> dict[str, Any] | None:
        """The cached object, or None."""
        with self._lock:
            return self._cache.get(name)

    def objects(self) -> list[dict[str, Any]]:
        """All cached objects."""
        with self._lock:
            return list(self._cache.values())

    def put(self, obj: dict[str, Any]) -> None:
        """Write through (slimmed) an object the server just returned, unless the cache
        already holds a newer version of it."""
        obj = slim(obj)
        name = _name(obj)
        with self._lock:
            current = self._cache.get(name)
            if current is not None and _is_older(_rv(obj), _rv(current)):
                return
            self._cache[name] = obj

    def discard(self, name: str) -> None:
        """Forget an object confirmed deleted."""
        with self._lock:
            self._cache.pop(name, None)

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        """Start the watch thread (it lists first)."""
        self._thread.start()

    def wait_synced(self) -> None:
        """Block until the initial list is cached.

        Raises:
            errors.ApiError: the initial list failed (after `max_retries` retries),
                or the informer was stopped before it synced.
        """
        self._synced.wait()
        if self._sync_error is not None:
            raise self._sync_error

    def stop(self, timeout: float) -> bool:
        """Ask the thread to end, unblock its read, wait up to `timeout` s; True if it ended."""
        self._stop.set()
        with self._lock:
            response = self._response
        if response is not None:
            _shutdown(response)
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- the watch thread --------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException:
            # Never die silently: the owner sees has_synced False or a stale cache.
            self._log.exception("watch thread crashed")
            raise
        finally:
            if not self._synced.is_set():
                self._sync_error = self._sync_error or errors.ApiError(
                    f"watch {self.kind}: stopped before the initial list", reason="Stopped"
                )
                self._synced.set()

    def _loop(self) -> None:
        """List when needed, watch, repeat; every wait is on the stop event."""
        while not self._stop.is_set():
            try:
                if self._resource_version is None:
                    self._relist()
                elif self._resync_due():
                    self._log.info("periodic resync, listing again")
                    self._relist()
                elif self._verify:
                    self._check_server_went_back()
                self._watch_once()
            except errors.Gone as exc:
                self._log.info(
                    "watch cannot resume, listing again", reason=exc.reason, error=str(exc)
                )
                # Not trusted until the relist: objects may have vanished meanwhile.
                self._current = False
                self._resource_version = None
                continue
            except errors.ApiError as exc:
                self._verify = True
                if self._stop.is_set():
                    return
                if not self._synced.is_set() and (
                    not isinstance(exc, errors.Retryable)
                    or self._failures >= self._backoff.max_retries
                ):
                    self._sync_error = exc
                    self._synced.set()
                    self._log.error("initial list failed", error=str(exc))
                    return
                self._log.warning("watch failed, retrying", error=str(exc), failures=self._failures)
            except Exception:
                self._verify = True
                if self._stop.is_set():
                    return
                self._log.exception("watch failed unexpectedly, retrying")
            else:
                continue
            delay = self._backoff.delay(self._failures, random_value=self._random())
            self._failures += 1
            self._stop.wait(delay)

    def _resync_due(self) -> bool:
        period = self._resync_period
        return period is not None and self._monotonic() - self._listed_at >= period

    def _seen(self, resource_version: str, *, advance: bool = True) -> None:
        """Note a resourceVersion from the server (`advance`: as the newest seen); raise
        Gone when it is older than the newest seen."""
        number = _number(resource_version)
        if number is None:
            return
        if self._newest is not None and number < self._newest:
            raise errors.Gone(
                f"watch {self.kind}: the server's resourceVersion went back from"
                f" {self._newest} to {number} (restored or reset): listing again",
                reason="ResourceVersionWentBack",
            )
        if advance:
            self._newest = number

    def _check_server_went_back(self) -> None:
        """After a failed watch: a server that came back with an older state (an etcd
        restore) answers a watch from our newer resourceVersion with silence, so read
        its current resourceVersion first (raises Gone when it went back). It is not
        the newest seen: the watch resumes from an older one and replays up to it."""
        self._seen(self._source.current_resource_version(), advance=False)
        self._verify = False

    def _relist(self) -> None:
        """List into the cache and emit the differences from what was cached."""
        items, resource_version = self._source.list()
        number = _number(resource_version)
        if number is not None and self._newest is not None and number < self._newest:
            self._log.warning(
                "the server's resourceVersion went back: cache replaced by the new list",
                newest_seen=self._newest,
                listed=number,
            )
        self._newest = number if number is not None else self._newest
        fresh = {_name(item): item for item in items}
        with self._lock:
            previous = self._cache
            self._cache = fresh
        self._listed_at = self._monotonic()
        if self._current or self._synced.is_set():
            self.relists += 1
        self._current = True
        self._verify = False
        events = [
            WatchEvent(self.kind, "MODIFIED" if name in previous else "ADDED", obj)
            for name, obj in fresh.items()
            if name not in previous or _rv(previous[name]) != _rv(obj)
        ]
        events += [
            WatchEvent(self.kind, "DELETED", obj)
            for name, obj in previous.items()
            if name not in fresh
        ]
        self._resource_version = resource_version
        self._failures = 0
        self._log.info("listed", objects=len(fresh), changes=len(events), rv=resource_version)
        for event in events:
            self._emit(event)
        self._synced.set()

    def _watch_once(self) -> None:
        """Stream one watch request until it ends (server timeout, stop or failure).

        The server-side timeout is shortened so the watch ends when the periodic resync is due.

        Raises:
            errors.Gone: the resourceVersion is too old (HTTP 410 or an ERROR event), or
                an event is older than one seen before (the server went back).
            errors.ApiError: the request failed or the stream broke.
        """
        started = self._monotonic()
        received = False
        until_resync = None
        if self._resync_period is not None:
            until_resync = math.ceil(self._resync_period - (started - self._listed_at))
        response = self._source.watch(self._resource_version or "", timeout_seconds=until_resync)
        with self._lock:
            self._response = response
        try:
            if self._stop.is_set():
                return
            for line in _lines(response):
                if self._stop.is_set():
                    return
                received = True
                self._failures = 0
                self._handle(json.loads(line))
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            if self._stop.is_set():
                return
            raise errors.from_transport_error(exc, context=f"watch {self.kind}") from exc
        finally:
            with self._lock:
                self._response = None
            response.close()
            response.release_conn()
        if not received and self._monotonic() - started < SHORT_WATCH and not self._stop.is_set():
            # As client-go's reflector: a server that ends every watch at once
            # must not be hammered in a tight loop.
            raise errors.Retryable(
                f"watch {self.kind}: ended at once with no event", reason="ShortWatch"
            )

    def _handle(self, event: dict[str, Any]) -> None:
        """Apply one watch event to the cache and pass it on."""
        event_type = str(event.get("type", ""))
        obj = event.get("object") or {}
        if event_type == "ERROR":
            code = obj.get("code")
            raise errors.from_status(
                int(code) if isinstance(code, int) else None, obj, context=f"watch {self.kind}"
            )
        resource_version = _rv(obj)
        self._seen(resource_version)
        if event_type == "BOOKMARK":
            if resource_version:
                self._resource_version = resource_version
            return
        if event_type not in ("ADDED", "MODIFIED", "DELETED"):
            self._log.warning("unknown watch event type ignored", type=event_type)
            return
        obj = slim(obj)
        obj.setdefault("apiVersion", API_VERSIONS[self.kind])
        obj.setdefault("kind", self.kind)
        name = _name(obj)
        with self._lock:
            current = self._cache.get(name)
            if current is None or not _is_older(resource_version, _rv(current)):
                if event_type == "DELETED":
                    self._cache.pop(name, None)
                else:
                    self._cache[name] = obj
        if resource_version:
            self._resource_version = resource_version
        self._emit(WatchEvent(self.kind, event_type, obj))

    def _emit(self, event: WatchEvent) -> None:
        try:
            self._on_event(event)
        except Exception:
            self._log.exception("on_event failed", type=event.type, name=_name(event.obj))


def _shutdown(response: urllib3.BaseHTTPResponse) -> None:
    """End a blocked read on a streaming response from another thread (best effort)."""
    try:
        response.shutdown()
    except (ValueError, RuntimeError, OSError) as exc:
        log.debug("watch shutdown skipped", reason=str(exc))
