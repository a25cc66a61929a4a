"""`inference-supervisor local-cluster`: run a local Kubernetes API server in the foreground.

By default the sim (`k8s.sim`); with `--real`, a real control plane built from Go
modules (`k8s.realcluster`: etcd, kube-apiserver, kube-controller-manager and the
pod-status driver), built first when its binaries are not cached.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from k8s.realcluster import build
from k8s.realcluster.control_plane import ControlPlaneFailed, RealCluster, ensure_workspace
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
    parser.add_argument(
        "--real",
        action="store_true",
        help="run a real control plane (etcd, kube-apiserver, kube-controller-manager) "
        "instead of the sim; builds it with Go on first use",
    )
    parser.add_argument(
        "--build-only",
        action="store_true",
        help="build (or find cached) the real control plane's binaries, print where, exit",
    )
    parser.add_argument(
        "--etcd-compaction-interval",
        metavar="DURATION",
        default=None,
        help="with --real: kube-apiserver's etcd compaction interval (e.g. 10s; default 5m)",
    )


def _progress(line: str) -> None:
    print(f"local-cluster: {line}", file=sys.stderr, flush=True)


def _run_real(args: argparse.Namespace, stop: threading.Event) -> int:
    """Builds (once) and runs the real control plane until `stop` is set."""
    try:
        binaries = build.ensure_binaries(progress=_progress)
    except build.GoMissing as error:
        print(f"local-cluster: {error}", file=sys.stderr)
        return 2
    except build.BuildFailed as error:
        print(f"local-cluster: {error}", file=sys.stderr)
        return 1
    if args.build_only:
        print(binaries.kube_apiserver.parent, flush=True)
        return 0
    if stop.is_set():
        return 0
    cluster = RealCluster(
        binaries,
        host=args.host,
        port=args.port,
        etcd_compaction_interval=args.etcd_compaction_interval,
        ready_delay=args.ready_delay,
    )
    try:
        cluster.start(progress=_progress)
    except (ControlPlaneFailed, OSError) as error:
        print(f"local-cluster: {error}", file=sys.stderr)
        return 1
    try:
        ensure_workspace(cluster)
        if args.kubeconfig:
            cluster.write_kubeconfig(args.kubeconfig)
        print(cluster.url, flush=True)
        stop.wait()
    finally:
        cluster.stop()
    return 0


def run(args: argparse.Namespace) -> int:
    """Serves until Ctrl-C or SIGTERM; prints the URL on one line. Returns the exit status."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    if args.real or args.build_only:
        # Handlers first: a SIGTERM during the start must still stop every process.
        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            return _run_real(args, stop)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    if args.etcd_compaction_interval:
        print("local-cluster: --etcd-compaction-interval needs --real", file=sys.stderr)
        return 2
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
