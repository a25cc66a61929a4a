"""Fixtures of the integration tests: a `Harness` on the session's moto server and a
fresh `k8s.sim` per test; the CLI run on the test's table; a fake-time cluster."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from actors.app.cli import main
from actors.clock import FakeClock
from k8s.sim import SimCluster
from store.dynamo import DynamoEndpointStore
from tests.integration.harness import CliResult, Harness, harness


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
