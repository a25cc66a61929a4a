"""An experiment, not the product: the daemon with at most `PERMITS` endpoint actors
handling a message at once (a process-wide semaphore around the real handler).

`python -m bench.bounded_daemon` runs like `inference-supervisor run` (same environment)
until SIGTERM. The `bounded` benchmark compares its cold start at 5,000 endpoints with
the real daemon's, to size the fix suggested in bench/README.md: with thousands of
runnable actor threads, the GIL hand-off starves the lease renewal.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

from actors.config import load_settings
from actors.daemon import Daemon
from actors.endpoint import EndpointActor
from actors.logsetup import configure_logging

PERMITS = int(os.environ.get("BENCH_HANDLER_PERMITS", "32"))
_HANDLERS = threading.BoundedSemaphore(PERMITS)


class BoundedEndpointActor(EndpointActor):
    """The real endpoint actor; its handler waits for one of `PERMITS` permits."""

    def on_receive(self, message: Any) -> None:
        with _HANDLERS:
            super().on_receive(message)


def main() -> int:
    """Run the bounded daemon until SIGTERM/SIGINT."""
    settings = load_settings(os.environ)
    configure_logging(fmt=settings.log_format, log_dir=settings.log_dir)
    daemon = Daemon(settings, actor_factory=BoundedEndpointActor).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass
    daemon.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
