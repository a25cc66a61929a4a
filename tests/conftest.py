"""Shared fixtures: a local DynamoDB (moto server) per session, a fresh table and
a fresh local Kubernetes API server per test, and a check that no test leaves a
thread behind.

The suite runs on several pytest-xdist workers (README's test line: `-n 4`). Each worker
is a process of its own, so a session-scoped fixture (the moto server here, k3s in
tests/k3s) starts once per worker, and tests stay independent by using free ports
(`port=0`), `tmp_path` and fresh table names. A heavy session fixture that should start
once for the whole run (a real cluster) marks its tests `pytest.mark.xdist_group(NAME)`
for `--dist loadgroup` (pyproject's addopts) to run the group on one worker - but with
pytest 9.2 and pytest-xdist 3.8 that grouping does not take effect (architecture section
9), so today each worker that draws such a test starts the fixture itself. Without `-n`,
everything runs in one process as before.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pykka
import pytest

from k8s.sim import SimCluster
from store.local import LocalDynamo


@pytest.fixture(scope="session")
def dynamo_url() -> Iterator[str]:
    """URL of a moto DynamoDB server shared by the session (tables are per test)."""
    server = LocalDynamo(port=0).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def table_name(dynamo_url: str) -> str:
    """A table name no other test uses; the table itself is created by the test or fixture."""
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def sim() -> Iterator[SimCluster]:
    """A fresh local Kubernetes API server (`k8s.sim.SimCluster`) with fast rollouts."""
    cluster = SimCluster(port=0, ready_delay=0.2).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(autouse=True)
def _no_thread_left_behind(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test stops what it started: actors and threads (session servers excepted)."""
    before = set(threading.enumerate())
    yield
    pykka.ActorRegistry.stop_all(timeout=10)
    deadline = time.monotonic() + 10
    leftover: list[threading.Thread] = []
    while time.monotonic() < deadline:
        leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leftover:
            break
        time.sleep(0.05)
    assert not leftover, f"threads left behind: {sorted(t.name for t in leftover)}"
