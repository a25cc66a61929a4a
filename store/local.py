"""A local DynamoDB: moto's server in a thread of this process.

Used by the tests, the demo and `inference-supervisor local-dynamodb`
(`actors/app/local_dynamodb.py`). Port 0 picks a free port; `url` reports the port actually bound.
"""

from __future__ import annotations

import logging
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
