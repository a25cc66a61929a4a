"""`inference-supervisor local-cluster`: run the local Kubernetes API server in the foreground."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from k8s.sim.server import SimCluster


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the command's flags to `parser`."""
    parser.add_argument(
        "--port",
        type=int,
        default=8001,
        help="TCP port (default 8001; 0 picks a free port and prints it)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--kubeconfig", metavar="PATH", help="write a kubeconfig for this server to PATH"
    )
    parser.add_argument(
        "--ready-delay",
        type=float,
        default=1.0,
        metavar="S",
        help="seconds until a Deployment's pods become ready (default 1.0)",
    )


def run(args: argparse.Namespace) -> int:
    """Serves until Ctrl-C or SIGTERM; prints the URL on one line. Returns the exit status."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    try:
        cluster = SimCluster(host=args.host, port=args.port, ready_delay=args.ready_delay).start()
    except OSError as error:
        print(f"local-cluster: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 2
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if args.kubeconfig:
            cluster.write_kubeconfig(args.kubeconfig)
        print(cluster.url, flush=True)
        stop.wait()
    finally:
        cluster.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
