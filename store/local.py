"""A local DynamoDB: moto's server in a thread of this process.

Used by the tests, the demo and `inference-supervisor local-dynamodb`. Port 0
picks a free port; `url` reports the port actually bound.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from types import FrameType
from typing import Self

from moto.server import ThreadedMotoServer


class LocalDynamo:
    """A moto server on `host:port` (port 0 = a free port), started by `start()`."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._server: ThreadedMotoServer | None = None

    def start(self) -> Self:
        """Start serving; returns self once the socket is bound."""
        # werkzeug logs every request to stderr by default; the URL is all a user needs.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        server = ThreadedMotoServer(ip_address=self._host, port=self._port, verbose=False)
        server.start()
        self._server = server
        self._port = server.get_host_and_port()[1]
        return self

    @property
    def url(self) -> str:
        """The endpoint URL, e.g. "http://127.0.0.1:8000" (the real port once started)."""
        return f"http://{self._host}:{self._port}"

    def stop(self) -> None:
        """Stop serving and join the server thread (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `inference-supervisor local-dynamodb`."""
    parser.add_argument(
        "--port", type=int, default=8000, help="port to listen on; 0 picks a free one (8000)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")


def run(args: argparse.Namespace) -> int:
    """Serve in the foreground until Ctrl-C or SIGTERM; prints the URL on one line."""
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    previous = signal.signal(signal.SIGTERM, request_stop)
    server = LocalDynamo(host=args.host, port=args.port)
    try:
        server.start()
    except OSError as error:
        signal.signal(signal.SIGTERM, previous)
        print(f"inference-supervisor local-dynamodb: cannot listen: {error}", flush=True)
        return 1
    print(server.url, flush=True)
    try:
        # A timed wait lets the main thread handle Ctrl-C promptly.
        while not stop_requested.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)
    return 0
