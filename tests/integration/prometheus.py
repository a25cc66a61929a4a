"""A real Prometheus server for the analysis gate's tests (architecture section 12): the
Debian package's `prometheus` binary, started on a free port with a temporary config that
scrapes, every second, a small HTTP exporter whose values the test sets. Both are stopped
when the `served` context ends. `BINARY` is None where the binary is absent (the tests
then skip with one line)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BINARY = shutil.which("prometheus")
#: Seconds the server has to answer /-/ready.
START_DEADLINE = 30.0


@dataclass
class Exporter:
    """Serves `/metrics` with the gauges in `values` (the test changes them)."""

    values: dict[str, float] = field(default_factory=dict)

    def text(self) -> bytes:
        lines = [f"{name} {value}" for name, value in sorted(dict(self.values).items())]
        return ("\n".join(lines) + "\n").encode()


@dataclass
class Served:
    url: str
    exporter: Exporter


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def served(tmp: Path) -> Iterator[Served]:
    """An exporter and a Prometheus scraping it every second, up and ready."""
    assert BINARY is not None
    exporter = Exporter()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = exporter.text()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            """Quiet: a scrape a second is not news."""

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    port = _free_port()
    config = tmp / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: test\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{http.server_address[1]}']\n"
    )
    log = (tmp / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            BINARY,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_DEADLINE
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert process.poll() is None, (tmp / "prometheus.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "prometheus not ready in time"
            time.sleep(0.1)
        yield Served(url, exporter)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        log.close()
        http.shutdown()
        http.server_close()
        thread.join(timeout=5)
