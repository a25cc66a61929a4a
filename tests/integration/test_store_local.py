"""The local DynamoDB (moto server): in-process for tests, and the `local-dynamodb` command."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

from store.dynamo import DynamoEndpointStore
from store.local import LocalDynamo

REPO = Path(__file__).resolve().parents[2]


def test_port_zero_reports_the_real_port_and_stop_leaves_no_thread() -> None:
    with LocalDynamo(port=0) as server:
        port = int(server.url.rsplit(":", 1)[1])
        assert port > 0
        with DynamoEndpointStore("t-local", endpoint_url=server.url) as store:
            assert store.create_table() is True
            assert store.reachable() is True
    # The autouse fixture checks that the server thread is gone.


def read_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The first line the process prints, waiting at most `timeout` seconds."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if selector.select(timeout=deadline - time.monotonic()):
                return process.stdout.readline().strip()
    raise AssertionError(f"no output within {timeout} s")


def test_local_dynamodb_command_prints_its_url_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "actors", "local-dynamodb", "--port", "0"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = read_line(process, timeout=60)
        assert url.startswith("http://127.0.0.1:")
        with DynamoEndpointStore("t-command", endpoint_url=url) as store:
            assert store.create_table() is True
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
