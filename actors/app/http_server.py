"""The daemon's HTTP endpoints: /metrics, /healthz and /readyz, on a background thread.

`/healthz` answers whether the process is alive and working (the daemon's
`healthy` callable decides, e.g. "the scheduler ticked within 3 periods");
Kubernetes restarts the pod when it fails. `/readyz` answers with the role
("leader" or "standby", followed by `: detail` when the supervisor has something an
operator must see, e.g. a refused mass deletion) or why the pod cannot serve (e.g.
the table is unreachable). Both callables return `(ok, text)` and are called per
request on the server's threads, so they must be cheap and thread-safe (the daemon
reuses its table check for a few seconds rather than asking DynamoDB per request).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import structlog

from actors.app.metrics import CONTENT_TYPE, Metrics

log = structlog.get_logger(__name__)

Probe = Callable[[], tuple[bool, str]]
# A scraper or kubelet that stops talking must not pin a request thread.
REQUEST_TIMEOUT_SECONDS = 10
#: How long `stop()` waits for request threads once their connections are shut down.
STOP_TIMEOUT_SECONDS = 2.0


class _Server(ThreadingHTTPServer):
    """Tracks its open connections and request threads, so `close_connections` can end
    them within a bound, whatever the clients do (a slow client must not hold a pod past
    its grace period)."""

    # Joined by `close_connections` within its deadline, never waited on without one: a
    # request thread stuck in a probe must not keep the process alive.
    daemon_threads = True
    block_on_close = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._lock = threading.Lock()
        self._open: dict[threading.Thread, socket.socket] = {}
        super().__init__(*args, **kwargs)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self._open[threading.current_thread()] = request
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._open.pop(threading.current_thread(), None)

    def close_connections(self, deadline: float) -> list[str]:
        """Shut every open connection down (a blocked read or write returns at once), then
        join the request threads until `deadline` (time.monotonic()); returns the names of
        the threads still running then."""
        with self._lock:
            open_now = dict(self._open)
        for request in open_now.values():
            with contextlib.suppress(OSError):
                request.shutdown(socket.SHUT_RDWR)
        for thread in open_now:
            thread.join(max(0.0, deadline - time.monotonic()))
        return [thread.name for thread in open_now if thread.is_alive()]


class HealthServer:
    """Serves /metrics, /healthz and /readyz until `stop()`.

    Args:
        metrics: whose `render()` answers /metrics.
        port: TCP port; 0 picks a free one (read it from `.port` after `start()`).
        host: address to bind; the default listens on all interfaces, as a pod must.
        healthy: `() -> (ok, reason)` for /healthz: 200 "ok", or 503 with the reason.
        ready: `() -> (ok, text)` for /readyz: 200 with the text ("leader"/"standby"),
            or 503 with the reason.
    """

    def __init__(
        self,
        metrics: Metrics,
        *,
        port: int,
        # All interfaces by default: a pod's probes and scrapers come from outside.
        host: str = "0.0.0.0",
        healthy: Probe,
        ready: Probe,
    ) -> None:
        self._metrics = metrics
        self._address = (host, port)
        self._healthy = healthy
        self._ready = ready
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (the chosen one when constructed with port 0)."""
        if self._server is None:
            raise RuntimeError("HealthServer is not started")
        return int(self._server.server_address[1])

    def start(self) -> Self:
        """Bind the port and serve on a background thread; returns self.

        Raises:
            OSError: the port cannot be bound (in use, no permission).
        """
        self._server = _Server(self._address, self._handler_class())
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"health-http-{self.port}",
        )
        self._thread.start()
        log.info("http server listening", port=self.port)
        return self

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Stop serving, close the socket and every open connection, and join the serving
        and request threads, all within about `timeout` seconds whatever clients do."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        deadline = time.monotonic() + timeout
        server.shutdown()
        server.server_close()
        thread.join()
        left = server.close_connections(deadline)
        if left:
            log.warning("http request threads still running at stop", threads=left)
        self._server = self._thread = None

    def _answer(self, path: str) -> tuple[int, str, bytes]:
        """Status, content type and body for a GET of `path`."""
        if path == "/metrics":
            return HTTPStatus.OK, CONTENT_TYPE, self._metrics.render()
        probe = {"/healthz": self._healthy, "/readyz": self._ready}.get(path)
        if probe is None:
            return HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found\n"
        try:
            ok, text = probe()
        except Exception as error:
            # A probe that raises is an unhealthy answer, not a dead server.
            log.warning("probe raised", path=path, exc_info=True)
            ok, text = False, f"probe failed: {error}"
        status = HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE
        return status, "text/plain; charset=utf-8", f"{text}\n".encode()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        answer = self._answer

        class Handler(BaseHTTPRequestHandler):
            timeout = REQUEST_TIMEOUT_SECONDS

            def do_GET(self) -> None:
                status, content_type, body = answer(self.path.split("?", 1)[0])
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                # Probes arrive every few seconds: access lines only at debug level.
                log.debug("http request", client=self.client_address[0], line=format % args)

        return Handler
