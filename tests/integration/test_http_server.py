"""/metrics, /healthz and /readyz over real HTTP; the metrics parse and move.

Also the test model server (docker/model-server/server.py) the harness deploys.
"""

from __future__ import annotations

import importlib.util
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from prometheus_client.parser import text_string_to_metric_families

from actors.app.http_server import HealthServer
from actors.app.metrics import Metrics

MODEL_SERVER = Path(__file__).resolve().parents[2] / "docker" / "model-server" / "server.py"


def get(url: str, *, data: bytes | None = None) -> tuple[int, str, str]:
    """Status, content type and body of a request to `url`, errors included."""
    request = urllib.request.Request(url, data=data)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page by (name, sorted labels)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


class Probes:
    """What the daemon would report; a test flips the answers."""

    def __init__(self) -> None:
        self.health: tuple[bool, str] = (True, "ok")
        self.readiness: tuple[bool, str] = (True, "standby")
        self.health_error: Exception | None = None

    def healthy(self) -> tuple[bool, str]:
        if self.health_error is not None:
            raise self.health_error
        return self.health

    def ready(self) -> tuple[bool, str]:
        return self.readiness


@pytest.fixture
def probes() -> Probes:
    return Probes()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def server(metrics: Metrics, probes: Probes) -> Iterator[str]:
    health = HealthServer(
        metrics, port=0, host="127.0.0.1", healthy=probes.healthy, ready=probes.ready
    ).start()
    try:
        yield f"http://127.0.0.1:{health.port}"
    finally:
        health.stop()


def test_metrics_render_parses_and_counters_move(metrics: Metrics) -> None:
    before = samples(metrics.render().decode())

    metrics.actors_alive.set(3)
    metrics.actor_restarts.labels(endpoint="m1").inc()
    metrics.parked_endpoints.set(1)
    metrics.reconcile_duration.observe(0.02)
    metrics.k8s_requests.labels(verb="patch", kind="Deployment", outcome="ok").inc(2)
    metrics.dynamodb_requests.labels(operation="Scan", outcome="ok").inc()
    metrics.leader.set(1)
    metrics.lease_transitions.inc()
    metrics.mailbox_depth.set(7)
    metrics.status_writes.inc()
    after = samples(metrics.render().decode())

    assert before[("inference_supervisor_actors_alive", ())] == 0
    assert after[("inference_supervisor_actors_alive", ())] == 3
    assert after[("inference_supervisor_actor_restarts_total", (("endpoint", "m1"),))] == 1
    assert after[("inference_supervisor_parked_endpoints", ())] == 1
    assert after[("inference_supervisor_reconcile_duration_seconds_count", ())] == 1
    assert (
        after[("inference_supervisor_reconcile_duration_seconds_bucket", (("le", "0.025"),))] == 1
    )
    assert after[("inference_supervisor_reconcile_duration_seconds_bucket", (("le", "0.01"),))] == 0
    k8s_key = (("kind", "Deployment"), ("outcome", "ok"), ("verb", "patch"))
    assert after[("inference_supervisor_k8s_requests_total", k8s_key)] == 2
    assert (
        after[
            (
                "inference_supervisor_dynamodb_requests_total",
                (("operation", "Scan"), ("outcome", "ok")),
            )
        ]
        == 1
    )
    assert after[("inference_supervisor_leader", ())] == 1
    assert after[("inference_supervisor_lease_transitions_total", ())] == 1
    assert after[("inference_supervisor_mailbox_depth", ())] == 7
    assert after[("inference_supervisor_status_writes_total", ())] == 1


def test_two_daemons_in_one_process_keep_separate_metrics() -> None:
    first, second = Metrics(), Metrics()

    first.status_writes.inc()

    assert samples(first.render().decode())[("inference_supervisor_status_writes_total", ())] == 1
    assert samples(second.render().decode())[("inference_supervisor_status_writes_total", ())] == 0


def test_metrics_over_http(server: str, metrics: Metrics) -> None:
    metrics.k8s_requests.labels(verb="get", kind="Lease", outcome="ok").inc()

    status, content_type, body = get(f"{server}/metrics")

    assert status == 200
    assert content_type.startswith("text/plain; version=0.0.4")
    key = (
        "inference_supervisor_k8s_requests_total",
        (("kind", "Lease"), ("outcome", "ok"), ("verb", "get")),
    )
    assert samples(body)[key] == 1


def test_healthz_is_200_then_503_with_the_reason(server: str, probes: Probes) -> None:
    assert get(f"{server}/healthz")[::2] == (200, "ok\n")

    probes.health = (False, "scheduler has not ticked for 47s (3 periods = 45s)")

    assert get(f"{server}/healthz")[::2] == (
        503,
        "scheduler has not ticked for 47s (3 periods = 45s)\n",
    )


def test_readyz_says_leader_or_standby_or_why_not(server: str, probes: Probes) -> None:
    assert get(f"{server}/readyz")[::2] == (200, "standby\n")

    probes.readiness = (True, "leader")
    assert get(f"{server}/readyz")[::2] == (200, "leader\n")

    probes.readiness = (False, "table unreachable: ResourceNotFoundException")
    assert get(f"{server}/readyz")[::2] == (503, "table unreachable: ResourceNotFoundException\n")


def test_a_probe_that_raises_is_a_503_not_a_dead_server(server: str, probes: Probes) -> None:
    probes.health_error = RuntimeError("lost track")

    assert get(f"{server}/healthz")[::2] == (503, "probe failed: lost track\n")
    assert get(f"{server}/readyz")[0] == 200


def test_unknown_path_is_404(server: str) -> None:
    assert get(f"{server}/nope")[0] == 404


def test_stop_frees_the_port_and_leaves_no_thread(metrics: Metrics, probes: Probes) -> None:
    health = HealthServer(
        metrics, port=0, host="127.0.0.1", healthy=probes.healthy, ready=probes.ready
    ).start()
    port = health.port
    assert get(f"http://127.0.0.1:{port}/healthz")[0] == 200

    health.stop()

    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)


# --- the test model server -----------------------------------------------------------


@pytest.fixture(scope="module")
def model_server_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("model_server", MODEL_SERVER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def model_server(model_server_module: ModuleType) -> Iterator[str]:
    server = model_server_module.make_server(host="127.0.0.1", port=0, root_path="/inference/m1")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_model_server_health_with_and_without_root_path(
    model_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert get(f"{model_server}/health")[::2] == (200, "ok\n")
    assert get(f"{model_server}/inference/m1/health")[::2] == (200, "ok\n")

    monkeypatch.setenv("UNHEALTHY", "1")

    assert get(f"{model_server}/inference/m1/health")[0] == 503


def test_model_server_answers_completions(
    model_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODEL_VERSION", "canary")
    body = json.dumps({"prompt": "hello there", "max_tokens": 4}).encode()

    status, content_type, text = get(f"{model_server}/inference/m1/v1/completions", data=body)

    reply = json.loads(text)
    assert (status, content_type) == (200, "application/json")
    assert reply["object"] == "text_completion"
    assert reply["choices"][0]["text"]
    assert reply["usage"] == {"prompt_tokens": 2, "completion_tokens": 4, "total_tokens": 6}
    assert reply["version"] == "canary"
