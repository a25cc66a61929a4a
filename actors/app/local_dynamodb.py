"""`inference-supervisor local-dynamodb`: run a local DynamoDB (moto server) in the foreground."""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType

from store.local import LocalDynamo


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
