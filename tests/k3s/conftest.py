"""Fixtures of the k3s harness: every test here runs once against `k8s.sim` and once
against a real k3s started by testcontainers (skipped, with one line, when no Docker
engine answers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.k3s.backends import (
    K3S_TIMEOUT_SECONDS,
    Cluster,
    K3sSession,
    docker_unavailable_reason,
    sim_cluster,
)
from tests.k3s.kit import EndpointKit, endpoint_kit

DEFAULT_SIM_HISTORY = 10000
SKIP_PREFIX = "k3s backend needs a Docker engine: "


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put every k3s run in the xdist group `k3s` (one worker, one k3s); skip them all,
    with one reason per module, when no Docker engine answers;
    mark the sim runs of the checks a module lists in `SIM_DEVIATIONS` (test name ->
    how the sim differs from a real server) as strict expected failures."""
    unusable: str | None = None
    probed = False
    for item in items:
        callspec = getattr(item, "callspec", None)
        kind = callspec.params.get("backend_kind") if callspec else None
        if kind == "k3s":
            # One worker runs every k3s test, so the session's k3s starts once under xdist.
            item.add_marker(pytest.mark.xdist_group("k3s"))
            if not probed:
                unusable, probed = docker_unavailable_reason(), True
            if unusable is not None:
                item.add_marker(pytest.mark.skip(reason=f"{SKIP_PREFIX}{unusable}"))
        deviations = getattr(getattr(item, "module", None), "SIM_DEVIATIONS", {})
        name = getattr(item, "originalname", item.name)
        if kind == "sim" and name in deviations:
            item.add_marker(
                pytest.mark.xfail(reason=f"sim deviation: {deviations[name]}", strict=True)
            )


@pytest.fixture(
    scope="session",
    params=[
        pytest.param("sim", id="sim"),
        pytest.param(
            "k3s",
            id="k3s",
            marks=[pytest.mark.k3s, pytest.mark.timeout(K3S_TIMEOUT_SECONDS)],
        ),
    ],
)
def backend_kind(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[K3sSession | None]:
    """Yields None for "sim" (each test starts its own sim); for "k3s" starts k3s once for the
    session, or skips every k3s test with the one-line reason Docker is unusable.

    Session-scoped so k3s (and the threads and sockets it opens) exists before any
    test's thread accounting starts.
    """
    if request.param == "sim":
        yield None
        return
    reason = docker_unavailable_reason()
    if reason is not None:
        pytest.skip(f"{SKIP_PREFIX}{reason}")
    session = K3sSession(tmp_path_factory.mktemp("k3s")).start()
    try:
        yield session
    finally:
        session.stop()


@pytest.fixture
def backend(
    request: pytest.FixtureRequest, backend_kind: K3sSession | None, tmp_path: Path
) -> Iterator[Cluster]:
    """The cluster a test runs against: a fresh sim, or a fresh namespace in k3s.

    A test module may set `SIM_HISTORY` to keep fewer watch events in its sim.
    """
    if backend_kind is None:
        history = getattr(request.module, "SIM_HISTORY", DEFAULT_SIM_HISTORY)
        with sim_cluster(tmp_path, history=history) as cluster:
            yield cluster
    else:
        with backend_kind.cluster() as cluster:
            yield cluster


@pytest.fixture
def kit(backend: Cluster, dynamo_url: str, table_name: str) -> Iterator[EndpointKit]:
    """The daemon harness on `backend` with a fresh table."""
    with endpoint_kit(backend, dynamo_url=dynamo_url, table_name=table_name) as endpoint:
        yield endpoint
