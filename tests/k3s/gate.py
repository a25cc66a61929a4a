"""`ConnectionGate`: a loopback TCP forwarder a test can close and open again.

A daemon pointed at the gate (its kubeconfig names the gate's port) loses every
connection to the API server when the gate closes, and cannot open new ones until it
opens, while the test keeps talking to the server directly: the daemon misses what
happens meanwhile, as behind a network partition. Bytes pass unchanged (TLS ends at the
server, whose certificate names the same loopback address), all in one thread.
"""

from __future__ import annotations

import selectors
import socket
import threading

__all__ = ["ConnectionGate"]

# How long the gate's thread waits for traffic before it looks at close requests.
POLL_SECONDS = 0.05
CHUNK = 65536


class ConnectionGate:
    """Forwards connections on a free port of `host` to `upstream` (host, port), while open.

    `close()` ends every forwarded connection and makes new ones end at once (accepted,
    then closed); `open()` forwards again. `stop()` ends the thread and every socket.
    """

    def __init__(self, upstream: tuple[str, int], *, host: str = "127.0.0.1") -> None:
        self.upstream = upstream
        self.host = host
        self._listener = socket.create_server((host, 0))
        self._listener.setblocking(False)
        self.port = int(self._listener.getsockname()[1])
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        # Each side of a forwarded connection -> the other side.
        self._peers: dict[socket.socket, socket.socket] = {}
        self._open = threading.Event()
        self._open.set()
        # Set by close(), cleared by the thread once every connection has ended.
        self._cut = threading.Event()
        self._cut_done = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="connection-gate", daemon=True)

    @property
    def url(self) -> str:
        """The gate's https URL (for a kubeconfig)."""
        return f"https://{self.host}:{self.port}"

    def start(self) -> ConnectionGate:
        """Start forwarding; returns self."""
        self._thread.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        """End every forwarded connection and refuse new ones; returns once they ended."""
        self._open.clear()
        self._cut_done.clear()
        self._cut.set()
        if not self._cut_done.wait(timeout):
            raise TimeoutError("the gate did not close its connections")

    def open(self) -> None:
        """Forward new connections again."""
        self._open.set()

    def stop(self) -> None:
        """End the thread and close every socket. Idempotent."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._drop_all()
        self._selector.close()
        self._listener.close()

    # -- the gate's thread -------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._cut.is_set():
                self._drop_all()
                self._cut.clear()
                self._cut_done.set()
            for key, _events in self._selector.select(POLL_SECONDS):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._listener:
                    self._accept()
                else:
                    self._forward(sock)

    def _accept(self) -> None:
        try:
            downstream, _address = self._listener.accept()
        except BlockingIOError:
            return
        if not self._open.is_set():
            downstream.close()
            return
        try:
            upstream = socket.create_connection(self.upstream, timeout=5.0)
        except OSError:
            downstream.close()
            return
        for side, other in ((downstream, upstream), (upstream, downstream)):
            # Blocking sends: a loopback peer drains them at once.
            side.setblocking(True)
            self._peers[side] = other
            self._selector.register(side, selectors.EVENT_READ)

    def _forward(self, sock: socket.socket) -> None:
        other = self._peers.get(sock)
        if other is None:
            return
        try:
            data = sock.recv(CHUNK)
            if data:
                other.sendall(data)
                return
        except OSError:
            pass
        self._drop(sock)

    def _drop(self, sock: socket.socket) -> None:
        """Close one forwarded connection (both sides; each was registered once)."""
        other = self._peers.pop(sock)
        del self._peers[other]
        for side in (sock, other):
            self._selector.unregister(side)
            side.close()

    def _drop_all(self) -> None:
        while self._peers:
            self._drop(next(iter(self._peers)))
