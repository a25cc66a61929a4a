"""`inference-supervisor run`: the daemon (leader election, poller, one actor per endpoint).

Configuration is `actors.app.config`; the wiring is `actors.app.daemon.Daemon`.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from typing import Any

import structlog

from actors.app.config import add_run_arguments, load_settings
from actors.app.daemon import Daemon, check
from actors.app.logsetup import configure_logging

log = structlog.get_logger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `run`: every setting (flags override environment) plus --check."""
    add_run_arguments(parser)
    parser.add_argument(
        "--check", action="store_true", help="validate configuration and connectivity, then exit"
    )


def run(args: argparse.Namespace) -> int:
    """Run the daemon until SIGTERM/SIGINT; exit status 0 after a clean stop, 2 on bad config."""
    settings = load_settings(os.environ, args)
    configure_logging(fmt=settings.log_format, log_dir=settings.log_dir)
    if args.check:
        return check(settings)
    daemon = Daemon(settings).start()
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("signal received: shutting down", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stop.wait(1.0):
        pass
    daemon.stop()
    return 0
