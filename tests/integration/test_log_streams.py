"""Per-endpoint log streams (architecture section 7): with a log directory, every line an
endpoint actor logs - the gateway's and the store's included - lands in that
endpoint's own JSONL file, carrying endpoint, region and cluster."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.app.logsetup import close_log_files, configure_logging, reset_logging
from tests.integration.harness import Harness


@pytest.fixture
def log_dir(tmp_path: Path) -> Iterator[Path]:
    configure_logging(fmt="json", log_dir=str(tmp_path))
    try:
        yield tmp_path
    finally:
        close_log_files()
        reset_logging()


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_each_endpoint_gets_its_own_stream(kit: Harness, log_dir: Path) -> None:
    kit.put("m1")
    kit.put("m2")
    daemon = kit.start_daemon()
    kit.wait_state("m1", "running")
    kit.wait_state("m2", "running")
    daemon.stop()
    close_log_files()
    for name in ("m1", "m2"):
        events = _events(log_dir / f"{name}.jsonl")
        assert events, f"{name}.jsonl is empty"
        assert {e["endpoint"] for e in events} == {name}
        assert {(e["region"], e["cluster"]) for e in events} == {("us-east-1", "test-cluster")}
        assert any(e["event"] == "status written" for e in events)
        assert any(e.get("logger", "").startswith("k8s.") for e in events), "gateway lines too"
    daemon_events = _events(log_dir / "_daemon.jsonl")
    assert any(e["event"] == "leadership changed" for e in daemon_events)
    assert all("endpoint" not in e for e in daemon_events)
