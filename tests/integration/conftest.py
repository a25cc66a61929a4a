"""Fixtures of the integration tests: a `Harness` on the session's moto server and a
fresh `k8s.sim` per test; the CLI run on the test's table; a fake-time cluster; the real
control planes of the tests marked `SIM_AND_REAL` (tests/integration/planes.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from actors.app.cli import main
from actors.clock import FakeClock
from k8s.realcluster import build
from k8s.sim import SimCluster
from store.dynamo import DynamoEndpointStore
from tests.integration.harness import CliResult, Harness, harness
from tests.integration.planes import ControlPlanes
from tests.k3s.backends import (
    REAL_SKIP_PREFIX,
    ensure_real_binaries,
    real_required,
    real_unavailable_reason,
)


@pytest.hookimpl(trylast=True)  # after -k/-m deselection: build only for tests that run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Build the real control plane (once, progress on the terminal) when a real run of a
    `SIM_AND_REAL` test is selected and Go is there, else skip those runs with one line
    (a failure under `REQUIRE_REAL_CONTROL_PLANE`)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    unusable: str | None = None
    probed = False

    def progress(line: str) -> None:
        if reporter is not None:
            reporter.write_line(f"real control plane: {line}")

    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or callspec.params.get("planes") != "real":
            continue
        if not probed:
            unusable, probed = ensure_real_binaries(progress), True
        if unusable is not None and not real_required():
            item.add_marker(pytest.mark.skip(reason=f"{REAL_SKIP_PREFIX}{unusable}"))


@pytest.fixture(scope="session")
def planes(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlanes | None]:
    """None (the sim), or for a `SIM_AND_REAL` test's real run the session's real control
    planes, started on first use (absent binaries fail the test under
    `REQUIRE_REAL_CONTROL_PLANE`, else skip it).

    Session-scoped so the control planes (and their threads) exist before any test's
    thread accounting starts."""
    if getattr(request, "param", "sim") == "sim":
        yield None
        return
    reason = real_unavailable_reason()
    if reason is not None or not build.built():
        message = f"{REAL_SKIP_PREFIX}{reason or build.not_built_message()}"
        if real_required():
            pytest.fail(message)
        pytest.skip(message)
    started = ControlPlanes(tmp_path_factory.mktemp("planes")).start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def kit(dynamo_url: str, table_name: str, sim) -> Iterator[Harness]:
    with harness(dynamo_url, table_name, sim.url) as h:
        yield h


@pytest.fixture
def store(dynamo_url: str, table_name: str) -> Iterator[DynamoEndpointStore]:
    with DynamoEndpointStore(table_name, endpoint_url=dynamo_url) as store:
        store.create_table(stream=False)
        yield store


@pytest.fixture
def cli(
    dynamo_url: str,
    table_name: str,
    store: DynamoEndpointStore,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., CliResult]:
    """Run `inference-supervisor endpoints ARGS` on the test's table; returns its CliResult.
    CloudWatch (the check of a policy's alarm names) is the moto server's."""
    monkeypatch.delenv("REGION", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", dynamo_url)
    monkeypatch.setenv("USER", "alice")

    def run(*argv: str) -> CliResult:
        capsys.readouterr()
        status = main(["endpoints", *argv, "--endpoint-url", dynamo_url, "--table", table_name])
        out, err = capsys.readouterr()
        return CliResult(status, out, err)

    return run


@pytest.fixture
def clock() -> FakeClock:
    """The fake clock of a fake-time test (its daemons and its `fake_time_kit` cluster)."""
    return FakeClock()


@pytest.fixture
def fake_time_kit(dynamo_url: str, table_name: str, clock: FakeClock) -> Iterator[Harness]:
    """A harness whose cluster runs on `clock` (Deployment conditions carry fake times)."""
    cluster = SimCluster(port=0, ready_delay=0.2, clock=clock.time).start()
    try:
        with harness(dynamo_url, table_name, cluster.url) as kit:
            yield kit
    finally:
        cluster.stop()
