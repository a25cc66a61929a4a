"""The daemon as an operator runs it: a real `inference-supervisor run` process against
the local servers - /healthz, /readyz and /metrics answer, SIGTERM exits 0 and releases
the lease, and a bad setting stops start-up with one line and exit status 2."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.harness import Harness, wait_for

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read().decode().strip()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode().strip()
    except OSError:
        return 0, ""


def _env(kit: Harness, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KUBE"))}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "CLUSTER_NAME": "proc-cluster",
            "REGION": "us-east-1",
            "INFERENCE_ENDPOINTS_TABLE_NAME": kit.table_name,
            "AWS_ENDPOINT_URL_DYNAMODB": kit.dynamo_url,
            "K8S_API_URL": kit.sim_url,
            "RECONCILE_INTERVAL_SECONDS": "0.5",
            "POD_NAME": "proc-daemon",
            "LOG_FORMAT": "json",
        }
    )
    env.update(extra)
    return env


@pytest.fixture
def daemon_process(kit: Harness) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "actors", "run"],
        env=_env(kit, METRICS_PORT=str(port)),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def _metric(text: str, name: str, **labels: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def test_health_metrics_and_sigterm(kit: Harness, daemon_process) -> None:
    process, port = daemon_process
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: _get(f"{base}/readyz") == (200, "leader"), timeout=30, what="/readyz leader")
    assert _get(f"{base}/healthz")[0] == 200
    before = _metric(
        _get(f"{base}/metrics")[1], "inference_supervisor_k8s_requests_total", verb="create"
    )
    kit.put("m1")
    kit.wait_state("m1", "running")
    metrics = _get(f"{base}/metrics")[1]
    assert _metric(metrics, "inference_supervisor_k8s_requests_total", verb="create") >= before + 3
    assert _metric(metrics, "inference_supervisor_leader") == 1
    assert _metric(metrics, "inference_supervisor_reconcile_duration_seconds_count") > 0
    assert _metric(metrics, "inference_supervisor_status_writes_total") >= 2, (
        "creating, then running"
    )
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0
    lease = kit.kube.get("Lease", "inference-monitor-leader")
    assert lease["spec"]["holderIdentity"] == "", "the lease is released on SIGTERM"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        pytest.param(
            "RECONCILE_INTERVAL_SECONDS", "abc", "RECONCILE_INTERVAL_SECONDS", id="interval"
        ),
        pytest.param("K8S_API_TIMEOUT", "-1", "K8S_API_TIMEOUT", id="timeout"),
        pytest.param("METRICS_PORT", "70000", "METRICS_PORT", id="port"),
    ],
)
def test_bad_setting_stops_start_up_with_one_line(
    kit: Harness, variable: str, value: str, message: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "actors", "run"],
        env=_env(kit, **{variable: value}),
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert message in lines[0]
    assert "Traceback" not in result.stderr.decode()


def test_check_reports_connectivity_and_exits(kit: Harness) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "actors", "run", "--check"],
        env=_env(kit),
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert b"ok: table" in ok.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "actors", "run", "--check", "--table", "no-such-table"],
        env=_env(kit),
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 1
    assert b"check failed: table no-such-table is not reachable" in missing.stdout


class _SlowClient(threading.Thread):
    """Holds a connection open by sending a request's header one byte at a time, each
    byte before the server's read timeout: a scraper or probe that stopped talking."""

    def __init__(self, port: int, path: str) -> None:
        super().__init__(name=f"slow-client-{path}")
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.request = f"GET {path} HTTP/1.1\r\nHost: x\r\nX-Slow: {'y' * 200}\r\n\r\n".encode()
        self.done = threading.Event()

    def run(self) -> None:
        try:
            for byte in self.request:
                self.sock.sendall(bytes([byte]))
                if self.done.wait(0.5):
                    return
        except OSError:
            return  # the server closed the connection
        finally:
            self.sock.close()


def test_sigterm_exits_within_seconds_whatever_http_clients_do(
    kit: Harness, daemon_process
) -> None:
    """Issue 22, case 5: slow clients on /metrics and /healthz kept the process alive
    (45 s+) after the lease was released; a pod would be SIGKILLed at its grace period."""
    process, port = daemon_process
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: _get(f"{base}/readyz") == (200, "leader"), timeout=30, what="/readyz leader")
    clients = [_SlowClient(port, path) for path in ("/metrics", "/healthz", "/readyz")]
    for client in clients:
        client.start()
    try:
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        try:
            status: int | None = process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            status = None
        took = time.monotonic() - started
    finally:
        for client in clients:
            client.done.set()
            client.join()
    assert status is not None, "still running 20 s after SIGTERM, held by slow HTTP clients"
    assert status == 0
    assert took < 5, f"exit took {took:.1f}s with slow HTTP clients"
    lease = kit.kube.get("Lease", "inference-monitor-leader")
    assert lease["spec"]["holderIdentity"] == "", "the lease is released first"
