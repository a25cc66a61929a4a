"""The daemon's /readyz answer (`Daemon._ready`) and its per-endpoint metric series:
the table check is reused for a few seconds (counted in the daemon's own DynamoDB
request counter, on a fake clock), the supervisor's detail is shown, and a retired
endpoint's restart series is dropped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from actors.app.daemon import READY_TABLE_CHECK_SECONDS, Daemon
from actors.app.metrics import Metrics
from actors.clock import FakeClock
from actors.messages import CrashEndpoint, SupervisorView
from tests.integration.harness import Harness, wait_for


def _samples(metrics: Metrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name == name
    }


def describe_tables(daemon: Daemon) -> float:
    """DescribeTable requests the daemon has made (its own
    inference_supervisor_dynamodb_requests_total)."""
    return sum(
        value
        for labels, value in _samples(
            daemon.metrics, "inference_supervisor_dynamodb_requests_total"
        ).items()
        if ("operation", "DescribeTable") in labels
    )


def restarts(daemon: Daemon) -> dict[str, float]:
    """inference_supervisor_actor_restarts_total by endpoint."""
    return {
        dict(labels)["endpoint"]: value
        for labels, value in _samples(
            daemon.metrics, "inference_supervisor_actor_restarts_total"
        ).items()
    }


@pytest.fixture
def idle_daemon(kit: Harness, clock: FakeClock) -> Iterator[Daemon]:
    """A daemon that is built but not started: /readyz answers `standby`."""
    daemon = Daemon(kit.settings(), clock=clock, serve_http=False)
    try:
        yield daemon
    finally:
        daemon.stop()


def test_readyz_reuses_its_table_check_for_a_few_seconds(
    idle_daemon: Daemon, clock: FakeClock
) -> None:
    for _ in range(20):
        assert idle_daemon._ready() == (True, "standby")
    assert describe_tables(idle_daemon) == 1

    clock.advance(READY_TABLE_CHECK_SECONDS - 0.5)
    assert idle_daemon._ready() == (True, "standby")
    assert describe_tables(idle_daemon) == 1

    clock.advance(1.0)
    assert idle_daemon._ready() == (True, "standby")
    assert idle_daemon._ready() == (True, "standby")
    assert describe_tables(idle_daemon) == 2


def test_readyz_notices_a_vanished_table_within_the_check_interval(
    kit: Harness, idle_daemon: Daemon, clock: FakeClock
) -> None:
    assert idle_daemon._ready() == (True, "standby")
    kit.raw_table().delete()

    assert idle_daemon._ready() == (True, "standby"), "still the cached answer"
    clock.advance(READY_TABLE_CHECK_SECONDS)
    ok, text = idle_daemon._ready()
    assert not ok
    assert text.startswith(f"table {kit.table_name} not reachable: "), text
    assert "does not exist" in text


@pytest.mark.parametrize(
    ("leading", "detail", "expected"),
    [
        (True, "", "leader"),
        (False, "", "standby"),
        (
            True,
            "refusing to delete 9 endpoints absent from the table (limit 5)",
            "leader: refusing to delete 9 endpoints absent from the table (limit 5)",
        ),
    ],
)
def test_readyz_shows_the_supervisors_detail(
    idle_daemon: Daemon,
    monkeypatch: pytest.MonkeyPatch,
    leading: bool,
    detail: str,
    expected: str,
) -> None:
    view = SupervisorView(leading=leading, alive=frozenset(), parked=frozenset(), detail=detail)
    monkeypatch.setattr(idle_daemon, "snapshot", lambda timeout=10.0: view)

    assert idle_daemon._ready() == (True, expected)


def test_a_retired_endpoints_restart_series_is_dropped(kit: Harness) -> None:
    kit.put("m1", regions=("us-east-1", "eu-west-1"))
    kit.put("m2")
    daemon = kit.start_daemon()
    kit.wait_state("m1", "running")
    kit.wait_state("m2", "running")
    assert daemon.supervisor is not None
    for name in ("m1", "m2"):
        daemon.supervisor.tell(CrashEndpoint(name, "test: crash"))
    wait_for(lambda: restarts(daemon) == {"m1": 1, "m2": 1}, what="one restart each")

    item = kit.item("m1")
    kit.store.update(
        "m1", set_={"target_regions": ["eu-west-1"]}, expected_updated_at=item.updated_at
    )
    wait_for(lambda: kit.status("m1") is None, what="m1 retired from this region")

    wait_for(lambda: restarts(daemon) == {"m2": 1}, what="m1's series dropped")
    assert "m1" not in daemon.metrics.render().decode()


def test_forget_endpoint_drops_only_that_endpoint_and_ignores_unknown_names() -> None:
    metrics = Metrics()
    metrics.actor_restarts.labels(endpoint="a").inc(3)
    metrics.actor_restarts.labels(endpoint="b").inc()

    metrics.forget_endpoint("a")
    metrics.forget_endpoint("never-seen")

    assert {
        dict(labels)["endpoint"]: value
        for labels, value in _samples(metrics, "inference_supervisor_actor_restarts_total").items()
    } == {"b": 1}
