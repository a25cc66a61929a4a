"""The HTTP side of the sim: REST routing, watch streams, the `/_sim/` admin
endpoint, and `SimCluster`, which owns the server, the store and the controller.

Built on `http.server.ThreadingHTTPServer` (HTTP/1.1 keep-alive, one thread per
connection); per request it does dict lookups only. `stop()` ends every watch,
closes every connection and joins every thread it started.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import structlog
import yaml

from k8s.sim.controller import DeploymentController, IngressFinalizerController
from k8s.sim.errors import StatusError, bad_request
from k8s.sim.faults import (
    FaultPlan,
    RequestArrival,
    RequestRecord,
    RequestStats,
    make_plan,
)
from k8s.sim.kinds import (
    BY_PATH,
    BY_PLURAL,
    DEPLOYMENTS,
    INGRESSES,
    NAMESPACES,
    PODS,
    ResourceKind,
    discovery_documents,
)
from k8s.sim.objects import (
    ObjectStore,
    WatchEvent,
    WatchExpired,
    apply_patch,
    parse_patch,
    scale_of,
)
from k8s.sim.selectors import parse_field_selector, parse_label_selector
from k8s.sim.tables import table, wants_table

log = structlog.get_logger(__name__)

DEFAULT_NAMESPACE = "gco-inference"
_JSON = "application/json"
_TYPE_FIELDS = frozenset({"apiVersion", "kind"})
_BY_KIND_NAME = {k.kind.lower(): k for k in BY_PLURAL.values()}


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _list_item(obj: dict[str, Any]) -> dict[str, Any]:
    """List items carry no apiVersion/kind, as in a real server's JSON."""
    return {k: v for k, v in obj.items() if k not in _TYPE_FIELDS}


class _Route:
    """A parsed resource URL: kind, namespace, name, subresource."""

    __slots__ = ("kind", "name", "namespace", "subresource")

    def __init__(
        self, kind: ResourceKind, namespace: str | None, name: str | None, subresource: str | None
    ) -> None:
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.subresource = subresource

    @property
    def resource(self) -> str:
        """The counter's resource label: `deployments` or `deployments/status`."""
        return f"{self.kind.plural}/{self.subresource}" if self.subresource else self.kind.plural


def route(path: str) -> _Route | None:
    """Parses a resource path; returns None when no resource lives there."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        prefix, rest = f"/api/{parts[1]}", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        prefix, rest = f"/apis/{parts[1]}/{parts[2]}", parts[3:]
    else:
        return None
    if not rest:
        return None
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3 and (prefix, rest[2]) in BY_PATH:
        namespace, rest = rest[1], rest[2:]
    kind = BY_PATH.get((prefix, rest[0]))
    if kind is None or len(rest) > 3:
        return None
    if kind.namespaced == (namespace is None) and len(rest) > 1:
        return None
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if sub is not None and not (
        (sub == "status" and kind.has_status) or (sub == "scale" and kind.has_scale)
    ):
        return None
    return _Route(kind, namespace, name, sub)


class _HttpServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that remembers its open connections so stop() can close them."""

    daemon_threads = True
    # Benchmarks open many connections at once; the default backlog of 5 refuses bursts.
    request_queue_size = 128
    cluster: SimCluster

    def __init__(self, address: tuple[str, int], cluster: SimCluster) -> None:
        self.cluster = cluster
        self.connections: set[socket.socket] = set()
        self.threads: set[threading.Thread] = set()
        self.connections_lock = threading.Lock()
        # Watch streams still being written: stop() lets them send their end first.
        self.streaming = 0
        self.streaming_done = threading.Condition(self.connections_lock)
        super().__init__(address, _Handler)

    def wait_streams_ended(self, timeout: float) -> None:
        """Wait (bounded) until every watch stream has written its last chunk."""
        with self.streaming_done:
            self.streaming_done.wait_for(lambda: self.streaming == 0, timeout=timeout)

    def process_request(self, request: Any, client_address: Any) -> None:
        # socketserver does not join daemon threads on close; track them to join in stop().
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"k8s-sim-conn-{client_address[1]}",
            daemon=True,
        )
        with self.connections_lock:
            self.connections.add(request)
            self.threads = {t for t in self.threads if t.is_alive()}
            self.threads.add(thread)
        thread.start()

    def join_threads(self) -> None:
        """Waits for every connection thread (after close_connections())."""
        with self.connections_lock:
            threads = list(self.threads)
        for thread in threads:
            thread.join()

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up is normal; anything else is logged, never printed."""
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            return
        log.error("k8s_sim_request_failed", client=str(client_address), exc_info=error)

    def close_connections(self) -> None:
        """Shuts every open connection so idle keep-alive threads end."""
        with self.connections_lock:
            open_now = list(self.connections)
        for conn in open_now:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _StreamClosed(Exception):
    """The client went away in the middle of a response."""


class _Handler(BaseHTTPRequestHandler):
    """One connection: parses each request and dispatches to the cluster."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, the body waits for the
    # client's delayed ACK (~40 ms per request).
    disable_nagle_algorithm = True
    server_version = "k8s-sim/1"
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silences the per-request stderr lines (the cluster keeps its own log)."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # ---- plumbing ----------------------------------------------------------

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _json_body(self) -> Any:
        raw = self._body()
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as error:
            raise bad_request(f"the body of the request could not be decoded: {error}") from error

    def _send(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = _dumps(body)
        self.send_response(code)
        self.send_header("Content-Type", _JSON)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, error: StatusError) -> None:
        headers = {"Retry-After": str(error.retry_after)} if error.retry_after else None
        self._send(error.code, error.status(), headers)

    def _dispatch(self, method: str) -> None:
        cluster = self.server.cluster
        arrived = time.monotonic()
        user_agent = self.headers.get("User-Agent") or ""
        # One handler serves every request of a keep-alive connection: reset per request.
        self._body_read = False
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if path.startswith("/_sim/"):
            self._admin(method, path)
            return
        found = route(path)
        verb = method
        status = 200
        try:
            if found is None:
                if method == "GET" and path in cluster.discovery:
                    self._send(200, cluster.discovery[path])
                    return
                raise StatusError(
                    404, "the server could not find the requested resource", details={}
                )
            verb = _verb(method, found, query)
            resource = found.resource
            cluster.stats.count(verb, resource)
            cluster.stats.arrive(verb, self.path, arrived=arrived, user_agent=user_agent)
            cluster.inject_faults(verb, found.kind.plural, user_agent)
            if verb == "WATCH":
                status = self._watch(found, query)
            else:
                status, body = self._resource(method, found, query)
                if (
                    method == "GET"
                    and found.subresource is None
                    and wants_table(self.headers.get("Accept"))
                ):
                    body = self._as_table(found, body)
                self._send(status, body)
        except StatusError as error:
            status = error.code
            self._drain_body()
            self._send_error(error)
        except _StreamClosed:
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as error:  # a bug in the sim answers 500, like an apiserver panic
            status = 500
            self._drain_body()
            self.close_connection = True
            self._send_error(StatusError(500, f"Internal error occurred: {error!r}"))
        finally:
            if found is not None:
                cluster.stats.record(
                    verb, self.path, status, arrived=arrived, user_agent=user_agent
                )

    def _as_table(self, r: _Route, body: dict[str, Any]) -> dict[str, Any]:
        """The kubectl `Table` view of a GET answer (one object or a list)."""
        objects = body.get("items", [body])
        resource_version = body.get("metadata", {}).get("resourceVersion", "")
        result = table(r.kind.plural, objects, resource_version, self.server.cluster.store.now())
        if "continue" in body.get("metadata", {}):
            result["metadata"]["continue"] = body["metadata"]["continue"]
        return result

    def _drain_body(self) -> None:
        """Reads an unread request body so the keep-alive connection stays in sync."""
        if not getattr(self, "_body_read", False) and self.command in ("POST", "PUT", "PATCH"):
            try:
                self._body()
            except OSError:
                self.close_connection = True

    # ---- resources ---------------------------------------------------------

    def _resource(self, method: str, r: _Route, query: dict[str, str]) -> tuple[int, Any]:
        cluster = self.server.cluster
        store = cluster.store
        kind = r.kind
        namespace = r.namespace or ""
        if kind is PODS:
            return self._pods(method, r, query)
        if method == "GET" and r.name is None:
            return 200, self._list(r, query)
        if method == "POST" and r.name is None:
            body = self._read_json()
            return 201, store.create(kind, namespace, body)
        if r.name is None:
            raise StatusError(
                405, f"{method} is not supported on the collection", reason="MethodNotAllowed"
            )
        if method == "GET":
            obj = store.get(kind, namespace, r.name)
            return 200, scale_of(obj) if r.subresource == "scale" else obj
        if method == "PUT":
            body = self._read_json()
            if r.subresource == "scale":
                return 200, self._write_scale(r, body)
            return 200, store.replace(kind, namespace, r.name, body, r.subresource)
        if method == "PATCH":
            raw = self._read_raw()
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            if r.subresource == "scale":
                patch_body = parse_patch(raw, content_type, query.get("fieldManager"))
                current = scale_of(store.get(kind, namespace, r.name))
                return 200, self._write_scale(r, apply_patch(current, patch_body, content_type))
            if content_type == "application/apply-patch+yaml":
                return self._apply(r, raw, query)
            return 200, store.patch(
                kind,
                namespace,
                r.name,
                raw,
                content_type=content_type,
                subresource=r.subresource,
                field_manager=query.get("fieldManager"),
            )
        if method == "DELETE":
            if r.subresource:
                raise StatusError(
                    405, "DELETE is not supported on a subresource", reason="MethodNotAllowed"
                )
            options = self._read_json() or {}
            deleted = store.delete(kind, namespace, r.name, options)
            if kind is DEPLOYMENTS and not deleted["metadata"].get("deletionTimestamp"):
                return 200, _deleted_status(kind, deleted)
            return 200, deleted
        raise StatusError(405, f"{method} is not supported", reason="MethodNotAllowed")

    def _read_raw(self) -> bytes:
        self._body_read = True
        return self._body()

    def _read_json(self) -> Any:
        self._body_read = True
        return self._json_body()

    def _apply(self, r: _Route, raw: bytes, query: dict[str, str]) -> tuple[int, Any]:
        """Server-side apply, simplified: create when absent, else a strategic merge."""
        store = self.server.cluster.store
        namespace = r.namespace or ""
        body = parse_patch(raw, "application/apply-patch+yaml", query.get("fieldManager"))
        try:
            store.get(r.kind, namespace, r.name or "")
        except StatusError as error:
            if error.code != 404:
                raise
            return 201, store.create(r.kind, namespace, body)
        return 200, store.patch(
            r.kind,
            namespace,
            r.name or "",
            _dumps(body),
            content_type="application/strategic-merge-patch+json",
            subresource=r.subresource,
        )

    def _write_scale(self, r: _Route, scale: Any) -> dict[str, Any]:
        store = self.server.cluster.store
        if not isinstance(scale, dict) or not isinstance(
            (scale.get("spec") or {}).get("replicas", 0), int
        ):
            raise bad_request("the body must be a Scale with spec.replicas")
        namespace = r.namespace or ""
        name = r.name or ""
        current = store.get(DEPLOYMENTS, namespace, name)
        wanted_rv = (scale.get("metadata") or {}).get("resourceVersion")
        patch = {
            "spec": {"replicas": (scale.get("spec") or {}).get("replicas", 0)},
            "metadata": {"resourceVersion": wanted_rv or current["metadata"]["resourceVersion"]},
        }
        try:
            updated = store.patch(
                DEPLOYMENTS,
                namespace,
                name,
                _dumps(patch),
                content_type="application/merge-patch+json",
            )
        except StatusError as error:
            if error.code == 409 and not wanted_rv:
                updated = store.patch(
                    DEPLOYMENTS,
                    namespace,
                    name,
                    _dumps({"spec": patch["spec"]}),
                    content_type="application/merge-patch+json",
                )
            else:
                raise
        return scale_of(updated)

    def _selectors(
        self, query: dict[str, str], plural: str = ""
    ) -> Callable[[dict[str, Any]], bool] | None:
        labels = parse_label_selector(query.get("labelSelector"))
        fields = parse_field_selector(query.get("fieldSelector"), plural)
        if labels is None and fields is None:
            return None

        def matches(obj: dict[str, Any]) -> bool:
            if labels is not None and not labels(obj["metadata"].get("labels") or {}):
                return False
            return fields is None or fields(obj)

        return matches

    def _list(self, r: _Route, query: dict[str, str]) -> dict[str, Any]:
        objects, rv = self.server.cluster.store.list(
            r.kind, r.namespace, self._selectors(query, r.kind.plural)
        )
        return self._page(r.kind, objects, rv, query)

    def _page(
        self, kind: ResourceKind, objects: list[dict[str, Any]], rv: int, query: dict[str, str]
    ) -> dict[str, Any]:
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        token = query.get("continue")
        if token:
            try:
                after = tuple(json.loads(base64.urlsafe_b64decode(token.encode())))
            except ValueError as error:
                raise bad_request("continue key is not valid") from error
            objects = [
                o
                for o in objects
                if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > after
            ]
        limit = int(query.get("limit") or 0)
        if limit > 0 and len(objects) > limit:
            last = objects[limit - 1]["metadata"]
            meta["continue"] = base64.urlsafe_b64encode(
                _dumps([last.get("namespace", ""), last["name"]])
            ).decode()
            meta["remainingItemCount"] = len(objects) - limit
            objects = objects[:limit]
        return {
            "apiVersion": kind.api_version,
            "kind": kind.list_kind,
            "metadata": meta,
            "items": [_list_item(o) for o in objects],
        }

    def _pods(self, method: str, r: _Route, query: dict[str, str]) -> tuple[int, Any]:
        if method != "GET" or r.subresource:
            raise StatusError(405, "pods are read-only in the sim", reason="MethodNotAllowed")
        pods = sorted(
            self.server.cluster.controller.pods(r.namespace),
            key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"]),
        )
        match = self._selectors(query)
        if r.name is not None:
            for pod in pods:
                if pod["metadata"]["name"] == r.name:
                    return 200, pod
            raise StatusError(
                404, f'pods "{r.name}" not found', details={"name": r.name, "kind": "pods"}
            )
        selected = [p for p in pods if match is None or match(p)]
        return 200, self._page(PODS, selected, self.server.cluster.store.resource_version, query)

    # ---- watches -----------------------------------------------------------

    def _watch(self, r: _Route, query: dict[str, str]) -> int:
        """Streams watch events until timeoutSeconds, stop(), drop_watches() or a client close."""
        server = self.server
        with server.connections_lock:
            server.streaming += 1
        try:
            return self._stream_watch(r, query)
        finally:
            with server.streaming_done:
                server.streaming -= 1
                server.streaming_done.notify_all()

    def _stream_watch(self, r: _Route, query: dict[str, str]) -> int:
        cluster = self.server.cluster
        store = cluster.store
        match = self._selectors(query, r.kind.plural)
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        timeout = float(query["timeoutSeconds"]) if query.get("timeoutSeconds") else 1800.0
        deadline = time.monotonic() + timeout
        epoch = store.watch_epoch
        send_initial = query.get("sendInitialEvents") in ("true", "1")
        initial: list[dict[str, Any]] | None = None
        expired: WatchExpired | None = None
        start_rv = 0
        # Nothing at or below this resourceVersion is sent (a watch from the future).
        after = 0
        try:
            cursor, initial, start_rv = store.watch_start(
                r.kind, r.namespace, query.get("resourceVersion"), send_initial=send_initial
            )
            if initial is not None and r.kind is PODS:
                initial = cluster.controller.pods(r.namespace)
        except WatchExpired as error:
            cursor, expired = 0, error
            if error.future and not cluster.expire_future_watches:
                # As a real watch cache: wait, silently, for the server to get there.
                cursor, _, start_rv = store.watch_start(
                    r.kind, r.namespace, str(store.resource_version)
                )
                expired, after = None, error.requested
        self.send_response(200)
        self.send_header("Content-Type", _JSON)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if expired is not None:
            self._chunk(_expired_line(expired))
            self._end_chunks()
            return 200
        for obj in initial or ():
            if match is None or match(obj):
                self._chunk(_dumps({"type": "ADDED", "object": obj}) + b"\n")
        if send_initial:
            # The watch-list protocol: a bookmark marks the end of the initial objects.
            self._chunk(_bookmark(r.kind, start_rv, initial_events_end=True))
        last_sent = time.monotonic()
        interval = cluster.bookmark_interval
        while not store.closed and store.watch_epoch == epoch:
            now = time.monotonic()
            if now >= deadline:
                break
            wait = min(deadline - now, max(0.0, interval - (now - last_sent)) or interval)
            try:
                events, cursor, rv = store.watch_wait(cursor, wait, epoch)
            except WatchExpired as error:
                self._chunk(_expired_line(error))
                break
            for event in events:
                line = _event_line(event, r, match) if event.rv > after else None
                if line is not None:
                    self._chunk(line)
                    last_sent = time.monotonic()
            if bookmarks and time.monotonic() - last_sent >= interval and rv > after:
                self._chunk(_bookmark(r.kind, rv))
                last_sent = time.monotonic()
        if store.watch_epoch != epoch and store.abrupt_drop:
            # A dropped connection: no terminating chunk, the client sees a broken stream.
            self.close_connection = True
            raise _StreamClosed
        self._end_chunks()
        return 200

    def _chunk(self, data: bytes) -> None:
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        except OSError as error:
            raise _StreamClosed from error

    def _end_chunks(self) -> None:
        try:
            self.wfile.write(b"0\r\n\r\n")
        except OSError as error:
            raise _StreamClosed from error

    # ---- admin ---------------------------------------------------------------

    def _admin(self, method: str, path: str) -> None:
        cluster = self.server.cluster
        try:
            body = self._json_body() if method in ("POST", "PUT") else None
            if method == "GET" and path == "/_sim/counters":
                self._send(200, cluster.counters())
            elif method == "GET" and path == "/_sim/requests":
                self._send(200, [list(entry) for entry in cluster.requests_log()])
            elif method == "POST" and path == "/_sim/faults":
                options = body or {}
                if options:
                    cluster.set_faults(**options)
                else:
                    cluster.clear_faults()
                self._send(200, {"faults": options})
            elif method in ("POST", "DELETE") and path in ("/_sim/faults", "/_sim/clear-faults"):
                cluster.clear_faults()
                self._send(200, {"faults": {}})
            elif method == "POST" and path == "/_sim/drop-watches":
                cluster.drop_watches(abrupt=bool((body or {}).get("abrupt", False)))
                self._send(200, {"dropped": True})
            elif method == "POST" and path == "/_sim/reset-counters":
                cluster.reset_counters()
                self._send(200, {"reset": True})
            elif method == "POST" and path == "/_sim/restart":
                empty = bool((body or {}).get("empty", True))
                self.close_connection = True
                self._send(202, {"restarting": True, "empty": empty})
                cluster.restart_later(empty=empty)
            elif method == "POST" and path == "/_sim/ingress-finalizer":
                delay = (body or {}).get("delay")
                cluster.set_ingress_finalizer(None if delay is None else float(delay))
                self._send(200, {"delay": cluster.ingress_controller.delay})
            elif method == "POST" and path == "/_sim/ready-delay":
                cluster.set_ready_delay(float((body or {})["seconds"]))
                self._send(200, {"readyDelay": cluster.controller.ready_delay})
            else:
                self._send(404, {"error": f"no admin endpoint {method} {path}"})
        except (TypeError, ValueError, KeyError, StatusError) as error:
            self._send(400, {"error": str(error)})


def _verb(method: str, r: _Route, query: dict[str, str]) -> str:
    if method == "GET":
        if r.name is not None:
            return "GET"
        return "WATCH" if query.get("watch") in ("1", "true", "True") else "LIST"
    return {"POST": "CREATE", "PUT": "UPDATE", "PATCH": "PATCH", "DELETE": "DELETE"}.get(
        method, method
    )


def _deleted_status(kind: ResourceKind, deleted: dict[str, Any]) -> dict[str, Any]:
    """Returns the `Status` Success a real server answers to a DELETE of a kind whose
    storage does not return the deleted object (Deployments; pods, services, ingresses,
    HPAs, leases and namespaces return the object instead)."""
    meta = deleted["metadata"]
    details: dict[str, Any] = {"name": meta["name"]}
    if kind.group:
        details["group"] = kind.group
    details |= {"kind": kind.plural, "uid": meta["uid"]}
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }


def _bookmark(kind: ResourceKind, rv: int, *, initial_events_end: bool = False) -> bytes:
    """A BOOKMARK event: only the kind and metadata.resourceVersion (plus the watch-list mark)."""
    metadata: dict[str, Any] = {"resourceVersion": str(rv)}
    if initial_events_end:
        metadata["annotations"] = {"k8s.io/initial-events-end": "true"}
    event = {
        "type": "BOOKMARK",
        "object": {"kind": kind.kind, "apiVersion": kind.api_version, "metadata": metadata},
    }
    return _dumps(event) + b"\n"


def _expired_line(error: WatchExpired) -> bytes:
    status = StatusError(410, error.message, reason="Expired").status()
    return _dumps({"type": "ERROR", "object": status}) + b"\n"


def _event_line(
    event: WatchEvent, r: _Route, match: Callable[[dict[str, Any]], bool] | None
) -> bytes | None:
    """The line a watch on `r` sends for `event`, or None when it does not concern it."""
    if event.plural != r.kind.plural or (
        r.namespace is not None and event.namespace != r.namespace
    ):
        return None
    event_type = event.type
    if match is not None:
        now_matches = match(event.obj)
        before = event.old is not None and match(event.old)
        if event_type == "MODIFIED":
            # An object entering or leaving the selection is ADDED or DELETED for this watch.
            if now_matches and not before:
                event_type = "ADDED"
            elif before and not now_matches:
                event_type = "DELETED"
            elif not now_matches:
                return None
        elif not now_matches:
            return None
    line = event.lines.get(event_type)
    if line is None:
        line = _dumps({"type": event_type, "object": event.obj}) + b"\n"
        event.lines[event_type] = line
    return line


class SimCluster:
    """A local Kubernetes API server for the demo, the tests and the benchmarks.

    Args:
        host: address to bind.
        port: TCP port; 0 picks a free one.
        ready_delay: real seconds until a Deployment's pods become ready.
        never_ready_pattern: image substring whose pods never become ready.
        history: write events kept for watch resumption (older RVs get 410).
        validate: strict schema validation of written objects (422 on invalid).
        clock: wall time for every timestamp the sim writes.
        bookmark_interval: idle seconds between BOOKMARK events on a watch.
        ingress_finalizer_delay: when not None, every Ingress gets the AWS Load Balancer
            Controller's finalizer, removed this many seconds after its deletion was
            requested (see `set_ingress_finalizer`).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ready_delay: float = 1.0,
        never_ready_pattern: str = "crashloop",
        history: int = 10000,
        validate: bool = True,
        clock: Callable[[], float] = time.time,
        bookmark_interval: float = 1.0,
        ingress_finalizer_delay: float | None = None,
    ) -> None:
        self._store_options: dict[str, Any] = {
            "history": history,
            "clock": clock,
            "validate": validate,
        }
        self._controller_options: dict[str, Any] = {
            "ready_delay": ready_delay,
            "never_ready_pattern": never_ready_pattern,
        }
        self._restarts: list[threading.Thread] = []
        # A watch from a resourceVersion newer than the server's: 410 Expired when True,
        # else silence until the server gets there (a real watch cache's answer).
        self.expire_future_watches = True
        self._host = host
        self._port = port
        self.stats = RequestStats()
        self.bookmark_interval = bookmark_interval
        self.discovery = discovery_documents()
        self._faults: tuple[FaultPlan, ...] = ()
        self._stopping = threading.Event()
        self.controller: DeploymentController
        self.store = ObjectStore(
            history=history,
            clock=clock,
            validate=validate,
            on_write=self._controlled_write,
        )
        self.controller = DeploymentController(
            self.store, ready_delay=ready_delay, never_ready_pattern=never_ready_pattern
        )
        self.ingress_controller = IngressFinalizerController(
            self.store, delay=ingress_finalizer_delay
        )
        self._server: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    def _controlled_write(
        self, kind: ResourceKind, key: tuple[str, str], obj: dict[str, Any] | None
    ) -> None:
        if kind is INGRESSES:
            self.ingress_controller.notify(key, obj)
        else:
            self.controller.notify(kind, key, obj)

    # ---- lifecycle -----------------------------------------------------------

    def start(self) -> Self:
        """Binds the port and serves in a background thread; returns self."""
        self._server = _HttpServer((self._host, self._port), self)
        self._port = self._server.server_address[1]
        self.controller.start()
        self.ingress_controller.start()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"k8s-sim-{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ends every watch, closes every connection, joins every thread."""
        for restart in self._restarts:
            restart.join()
        self._stopping.set()
        self._halt()

    def _halt(self) -> None:
        """Stops serving: ends every watch, closes connections, joins threads and controllers."""
        self.store.close()
        if self._server is not None:
            # A real server ends its watches cleanly on shutdown: the end chunk goes out
            # before the connections close (bounded, for a client that stopped reading).
            self._server.wait_streams_ended(timeout=2.0)
            self._server.shutdown()
            self._server.close_connections()
            self._server.server_close()
            self._server.join_threads()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.controller.stop()
        self.ingress_controller.stop()

    def restart(self, *, empty: bool = True) -> None:
        """Stops the API server and starts it again on the same port.

        Every watch and connection ends. With `empty` (the default) the cluster comes
        back as after an etcd restore to an empty snapshot: only the default
        namespaces, and the resourceVersion counter starts over (low), so a watch
        resuming from an older server's resourceVersion asks for one from the future
        (answered 410 Expired). Without it, the objects and resourceVersions stay (an
        API server restart). Faults, counters and settings stay either way.
        """
        self._halt()
        if empty:
            self.store = ObjectStore(**self._store_options, on_write=self._controlled_write)
        else:
            self.store.reopen()
        ready_delay = self.controller.ready_delay
        self.controller = DeploymentController(self.store, **self._controller_options)
        self.controller.ready_delay = ready_delay
        self.ingress_controller = IngressFinalizerController(
            self.store, delay=self.ingress_controller.delay
        )
        self.start()
        for deployment in self.store.all_deployments(None):
            meta = deployment["metadata"]
            self.controller.notify(DEPLOYMENTS, (meta["namespace"], meta["name"]), deployment)

    def restart_later(self, *, empty: bool = True) -> None:
        """`restart` on a thread of its own (for the admin endpoint, which is served by
        a thread the restart ends); `stop()` waits for it."""
        thread = threading.Thread(
            target=self.restart, kwargs={"empty": empty}, name="k8s-sim-restart", daemon=True
        )
        self._restarts = [t for t in self._restarts if t.is_alive()]
        self._restarts.append(thread)
        thread.start()

    def set_ingress_finalizer(self, delay: float | None) -> None:
        """Turns the simulated AWS Load Balancer Controller on (`delay`: seconds from an
        Ingress's deletion request to the removal of its finalizer) or off (None).
        Ingresses written from now on are concerned."""
        self.ingress_controller.delay = None if delay is None else float(delay)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound TCP port."""
        return self._port

    @property
    def url(self) -> str:
        """`http://HOST:PORT` of the API server."""
        return f"http://{self._host}:{self._port}"

    def write_kubeconfig(self, path: str | Path, *, namespace: str = DEFAULT_NAMESPACE) -> Path:
        """Writes a kubeconfig for this server (plain http, no credentials); returns its path."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "k8s-sim", "cluster": {"server": self.url}}],
            "users": [{"name": "k8s-sim", "user": {}}],
            "contexts": [
                {
                    "name": "k8s-sim",
                    "context": {"cluster": "k8s-sim", "user": "k8s-sim", "namespace": namespace},
                }
            ],
            "current-context": "k8s-sim",
            "preferences": {},
        }
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(config, sort_keys=False))
        return target

    # ---- faults and accounting ----------------------------------------------

    def inject_faults(self, verb: str, plural: str, user_agent: str = "") -> None:
        """Applies the fault plans to one API request, in order: each that covers it
        sleeps its latency, then maybe fails it."""
        for plan in self._faults:
            if plan.applies(verb, plural, user_agent):
                self._inject(plan)

    def _inject(self, plan: FaultPlan) -> None:
        if plan.latency > 0:
            self._stopping.wait(plan.latency)
        if plan.should_fail():
            if plan.error_status == 429:
                raise StatusError(
                    429,
                    "Too many requests, please try again later.",
                    details={"retryAfterSeconds": 1},
                    retry_after=1,
                )
            raise StatusError(plan.error_status, "Internal error occurred: injected fault")

    def set_faults(
        self,
        *,
        latency: float = 0.0,
        error_rate: float = 0.0,
        error_status: int = 500,
        verbs: Collection[str] = (),
        kinds: Collection[str] = (),
        user_agent: str = "",
    ) -> None:
        """Replaces every fault plan with this one (see `add_faults` to combine plans).

        `verbs` ("GET", "LIST", "WATCH", "CREATE", "UPDATE", "PATCH", "DELETE"),
        `kinds` (plurals such as "deployments", or kind names such as "Deployment")
        and `user_agent` (a substring of the client's `User-Agent`, to fault one
        client only) select the requests; empty means all.

        Raises:
            ValueError: an unknown kind, a status other than 429/500/503/504, a rate
                outside 0-1 or a negative latency.
        """
        plurals = []
        for name in kinds:
            kind = BY_PLURAL.get(name) or _BY_KIND_NAME.get(name.lower())
            if kind is None:
                raise ValueError(f"unknown kind {name!r}; known: {sorted(BY_PLURAL)}")
            plurals.append(kind.plural)
        self._faults = (
            make_plan(
                latency=latency,
                error_rate=error_rate,
                error_status=error_status,
                verbs=verbs,
                kinds=plurals,
                user_agent=user_agent,
            ),
        )

    def add_faults(self, **plan: Any) -> None:
        """Adds a fault plan (arguments as `set_faults`) to those in force; a request
        covered by several gets each one's latency and chance of failure, in order."""
        current = self._faults
        self.set_faults(**plan)
        self._faults = (*current, *self._faults)

    def clear_faults(self) -> None:
        """Removes every injected fault."""
        self._faults = ()

    def drop_watches(self, *, abrupt: bool = False) -> None:
        """Ends every open watch stream now.

        By default each stream ends cleanly (as on a server-side timeout); with
        `abrupt` the connections are cut mid-stream (as by a load balancer), so
        the client's read fails.
        """
        self.store.drop_watches(abrupt=abrupt)

    def counters(self) -> dict[str, int]:
        """Requests so far by "VERB kind" (e.g. "LIST deployments") plus "total"."""
        return self.stats.counters()

    def reset_counters(self) -> None:
        """Zeroes the counters and empties the request log."""
        self.stats.reset()

    def requests_log(self) -> list[tuple[str, str, int]]:
        """Every API request so far as (verb, path, status), oldest first."""
        return self.stats.log()

    def request_arrivals(self) -> list[RequestArrival]:
        """Every API request as it arrived (monotonic time, this process), with its verb,
        path and user agent, including those still being served: what clients sent."""
        return self.stats.arrivals()

    def request_records(self) -> list[RequestRecord]:
        """Every API request so far with its arrival and finish times (monotonic, this
        process), verb, path, status and user agent, in the order they finished."""
        return self.stats.records()

    def set_ready_delay(self, seconds: float) -> None:
        """Changes the delay for pods created from now on."""
        self.controller.ready_delay = float(seconds)

    def objects(self, plural: str, namespace: str | None = None) -> Iterable[dict[str, Any]]:
        """Returns the stored objects of a kind (for tests and benchmarks; no request counted)."""
        kind = BY_PLURAL[plural]
        if kind is PODS:
            return self.controller.pods(namespace)
        objects, _ = self.store.list(kind, namespace, None)
        return objects


__all__ = ["NAMESPACES", "SimCluster"]
