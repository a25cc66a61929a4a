"""Fixtures of the k3s harness: every test here runs against `k8s.sim`, against the
real control plane of `k8s.realcluster` (built from Go modules; skipped, with one line
saying how to build, when its binaries are absent and Go is missing) and against a
real k3s started by testcontainers (skipped, with one line, when no Docker engine
answers).

`REQUIRE_REAL_CONTROL_PLANE=1` (set by `.ci/run`) turns the real control plane's skip
into a failure, so CI cannot pass without running those tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from k8s.realcluster import build
from tests.k3s.backends import (
    FAST_COMPACTION_INTERVAL,
    K3S_TIMEOUT_SECONDS,
    REAL_SKIP_PREFIX,
    REAL_TIMEOUT_SECONDS,
    Cluster,
    K3sSession,
    RealSession,
    docker_unavailable_reason,
    ensure_real_binaries,
    real_required,
    real_unavailable_reason,
    sim_cluster,
)
from tests.k3s.kit import EndpointKit, endpoint_kit

DEFAULT_SIM_HISTORY = 10000
SKIP_PREFIX = "k3s backend needs a Docker engine: "
#: A real-control-plane run's time limit and xdist group: one worker runs every such
#: test, so each session cluster starts once. The group is a mark of the parameter
#: because xdist reads the groups (into the node ids) before a `trylast` collection hook
#: could add one (the k3s group likewise).
REAL_MARKS = [pytest.mark.timeout(REAL_TIMEOUT_SECONDS), pytest.mark.xdist_group("real")]


@pytest.hookimpl(trylast=True)  # after -k/-m deselection: build only for tests that run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip every k3s run, with
    one reason per module, when no Docker engine answers; build the real control plane
    (once, progress on the terminal) when a selected test needs it and Go is there, else
    skip those tests with one line (a failure under `REQUIRE_REAL_CONTROL_PLANE`); mark
    the sim runs of the checks a module lists in `SIM_DEVIATIONS` (test name -> how the
    sim differs from a real server) as strict expected failures."""
    unusable: str | None = None
    probed = False
    real_unusable: str | None = None
    real_probed = False
    reporter = config.pluginmanager.get_plugin("terminalreporter")

    def progress(line: str) -> None:
        if reporter is not None:
            reporter.write_line(f"real control plane: {line}")

    for item in items:
        callspec = getattr(item, "callspec", None)
        params = callspec.params if callspec else {}
        kind = params.get("backend_kind") or params.get("compacting_kind")
        if kind == "k3s":
            if not probed:
                unusable, probed = docker_unavailable_reason(), True
            if unusable is not None:
                item.add_marker(pytest.mark.skip(reason=f"{SKIP_PREFIX}{unusable}"))
        if kind == "real":
            if not real_probed:
                real_unusable, real_probed = ensure_real_binaries(progress), True
            if real_unusable is not None and not real_required():
                item.add_marker(pytest.mark.skip(reason=f"{REAL_SKIP_PREFIX}{real_unusable}"))
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
        pytest.param("real", id="real", marks=REAL_MARKS),
        pytest.param(
            "k3s",
            id="k3s",
            marks=[
                pytest.mark.k3s,
                pytest.mark.timeout(K3S_TIMEOUT_SECONDS),
                pytest.mark.xdist_group("k3s"),
            ],
        ),
    ],
)
def backend_kind(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[K3sSession | RealSession | None]:
    """Yields None for "sim" (each test starts its own sim); for "real" starts the real
    control plane once for the session (built by collection; absent binaries fail the
    test under `REQUIRE_REAL_CONTROL_PLANE`); for "k3s" starts k3s once for the
    session, or skips every k3s test with the one-line reason Docker is unusable.

    Session-scoped so the cluster (and the threads and sockets it opens) exists before
    any test's thread accounting starts.
    """
    if request.param == "sim":
        yield None
        return
    if request.param == "real":
        with _started(RealSession(tmp_path_factory.mktemp("real"))) as real:
            yield real
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
    request: pytest.FixtureRequest, backend_kind: K3sSession | RealSession | None, tmp_path: Path
) -> Iterator[Cluster]:
    """The cluster a test runs against: a fresh sim, or a fresh namespace in the real
    control plane or k3s.

    A test module may set `SIM_HISTORY` to keep fewer watch events in its sim.
    """
    if backend_kind is None:
        history = getattr(request.module, "SIM_HISTORY", DEFAULT_SIM_HISTORY)
        with sim_cluster(tmp_path, history=history) as cluster:
            yield cluster
    else:
        with backend_kind.cluster() as cluster:
            yield cluster


@contextmanager
def _started(real: RealSession) -> Iterator[RealSession]:
    """`real` started, stopped on exit; skips (fails under `REQUIRE_REAL_CONTROL_PLANE`)
    when the binaries are not built."""
    reason = real_unavailable_reason()
    if reason is not None or not build.built():
        message = f"{REAL_SKIP_PREFIX}{reason or build.not_built_message()}"
        if real_required():
            pytest.fail(message)
        pytest.skip(message)
    real.start()
    try:
        yield real
    finally:
        real.stop()


@pytest.fixture(
    scope="session",
    params=[
        pytest.param("sim", id="sim"),
        pytest.param("real", id="real", marks=REAL_MARKS),
    ],
)
def compacting_kind(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RealSession | None]:
    """Yields None for "sim"; for "real" starts, once for the session and only for the
    tests that ask, a second real control plane whose API server has no watch cache and
    compacts etcd every `FAST_COMPACTION_INTERVAL`: a watch resuming from a compacted
    resourceVersion then gets etcd's own 410, not a watch cache's."""
    if request.param == "sim":
        yield None
        return
    compacting = RealSession(
        tmp_path_factory.mktemp("real-compacting"),
        compaction_interval=FAST_COMPACTION_INTERVAL,
        watch_cache=False,
    )
    with _started(compacting) as real:
        yield real


@pytest.fixture
def compacting_backend(
    request: pytest.FixtureRequest, compacting_kind: RealSession | None, tmp_path: Path
) -> Iterator[Cluster]:
    """A fresh sim (keeping the module's `SIM_HISTORY` watch events: older ones are its
    compaction), or a fresh namespace in the compacting real control plane."""
    if compacting_kind is None:
        history = getattr(request.module, "SIM_HISTORY", DEFAULT_SIM_HISTORY)
        with sim_cluster(tmp_path, history=history) as cluster:
            yield cluster
    else:
        with compacting_kind.cluster() as cluster:
            yield cluster


@pytest.fixture
def kit(backend: Cluster, dynamo_url: str, table_name: str) -> Iterator[EndpointKit]:
    """The daemon harness on `backend` with a fresh table."""
    with endpoint_kit(backend, dynamo_url=dynamo_url, table_name=table_name) as endpoint:
        yield endpoint
