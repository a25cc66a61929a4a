"""Fault injection, request counters, the `/_sim/` admin endpoint, the
kubeconfig and the `local-cluster` command."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from actors.app import local_cluster
from k8s.sim import SimCluster
from tests.sim_aids import NAMESPACE, api_client, deployment, raw_request, service, wait_for


@pytest.fixture
def core(sim: Any) -> Iterator[client.CoreV1Api]:
    api = api_client(sim.url)
    try:
        yield client.CoreV1Api(api)
    finally:
        api.close()


def admin(sim: Any, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{sim.url}/_sim/{path}", data=data, method=method)
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def test_injected_500_is_an_internal_error_status(sim: Any, core: client.CoreV1Api) -> None:
    sim.set_faults(error_rate=1.0, error_status=500, verbs={"LIST"})
    with pytest.raises(ApiException) as caught:
        core.list_namespaced_service(NAMESPACE)
    assert caught.value.status == 500
    assert json.loads(caught.value.body)["reason"] == "InternalError"
    core.create_namespaced_service(NAMESPACE, service("s1"))  # other verbs unaffected
    sim.clear_faults()
    assert [s.metadata.name for s in core.list_namespaced_service(NAMESPACE).items] == ["s1"]


def test_injected_429_carries_retry_after(sim: Any) -> None:
    sim.set_faults(error_rate=1.0, error_status=429, kinds={"services"})
    code, headers, status = raw_request(sim.url, "GET", f"/api/v1/namespaces/{NAMESPACE}/services")
    assert code == 429
    assert headers["Retry-After"] == "1"
    assert status["reason"] == "TooManyRequests"
    other, _, _ = raw_request(sim.url, "GET", "/apis/apps/v1/namespaces/gco-inference/deployments")
    assert other == 200


def test_injected_latency_trips_a_client_timeout(sim: Any, core: client.CoreV1Api) -> None:
    sim.set_faults(latency=0.5, verbs={"GET"})
    core.create_namespaced_service(NAMESPACE, service("s1"))
    with pytest.raises(Exception, match="timed out"):
        core.read_namespaced_service("s1", NAMESPACE, _request_timeout=0.1)
    sim.clear_faults()
    assert core.read_namespaced_service("s1", NAMESPACE, _request_timeout=2).metadata.name == "s1"


def test_faults_never_apply_to_the_admin_endpoint(sim: Any) -> None:
    sim.set_faults(error_rate=1.0, error_status=500)
    assert admin(sim, "GET", "counters")["total"] == 0


def test_counters_count_by_verb_and_kind(sim: Any) -> None:
    api = api_client(sim.url)
    try:
        apps = client.AppsV1Api(api)
        apps.create_namespaced_deployment(NAMESPACE, deployment("m1"))
        apps.read_namespaced_deployment("m1", NAMESPACE)
        apps.list_namespaced_deployment(NAMESPACE)
        apps.patch_namespaced_deployment(
            "m1", NAMESPACE, {"spec": {"replicas": 1}}, _content_type="application/merge-patch+json"
        )
        apps.replace_namespaced_deployment("m1", NAMESPACE, deployment("m1"))
        apps.delete_namespaced_deployment("m1", NAMESPACE)
        client.CoreV1Api(api).create_namespaced_service(NAMESPACE, service())
    finally:
        api.close()
    assert sim.counters() == {
        "total": 7,
        "CREATE deployments": 1,
        "GET deployments": 1,
        "LIST deployments": 1,
        "PATCH deployments": 1,
        "UPDATE deployments": 1,
        "DELETE deployments": 1,
        "CREATE services": 1,
    }
    assert admin(sim, "GET", "counters") == sim.counters()
    assert [entry[0] for entry in sim.requests_log()][:2] == ["CREATE", "GET"]
    admin(sim, "POST", "reset-counters")
    assert sim.counters() == {"total": 0}
    assert sim.requests_log() == []


def test_admin_endpoint_sets_and_clears_faults(sim: Any) -> None:
    admin(sim, "POST", "faults", {"error_rate": 1.0, "error_status": 429, "verbs": ["LIST"]})
    code, _, _ = raw_request(sim.url, "GET", f"/api/v1/namespaces/{NAMESPACE}/services")
    assert code == 429
    admin(sim, "POST", "faults", {})
    code, _, _ = raw_request(sim.url, "GET", f"/api/v1/namespaces/{NAMESPACE}/services")
    assert code == 200


def test_kubeconfig_loads_with_the_official_client(sim: Any, tmp_path: Path) -> None:
    path = sim.write_kubeconfig(tmp_path / "kubeconfig")
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(path), client_configuration=configuration)
    assert configuration.host == sim.url
    _, active = config.list_kube_config_contexts(config_file=str(path))
    assert active["context"]["namespace"] == NAMESPACE
    api = client.ApiClient(configuration)
    try:
        names = {n.metadata.name for n in client.CoreV1Api(api).list_namespace().items}
    finally:
        api.close()
    assert NAMESPACE in names


def test_stop_joins_every_thread_even_with_open_connections() -> None:
    before = set(threading.enumerate())
    cluster = SimCluster(validate=False).start()
    api = api_client(cluster.url)
    try:
        client.CoreV1Api(api).list_namespace()  # leaves a keep-alive connection open
        cluster.stop()
    finally:
        api.close()
    assert [t for t in threading.enumerate() if t not in before and t.is_alive()] == []


def test_local_cluster_command_prints_url_and_stops_on_sigterm(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "actors",
            "local-cluster",
            "--port",
            "0",
            "--kubeconfig",
            str(kubeconfig),
            "--ready-delay",
            "0.1",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        code, _, version = raw_request(url, "GET", "/version")
        assert code == 200
        assert version["major"] == "1"
        assert kubeconfig.exists()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_command_arguments_have_documented_defaults() -> None:
    parser = argparse.ArgumentParser()
    local_cluster.add_arguments(parser)
    args = parser.parse_args([])
    assert (args.port, args.host, args.kubeconfig, args.ready_delay) == (
        8001,
        "127.0.0.1",
        None,
        1.0,
    )


def ready_replicas(apps: client.AppsV1Api, name: str) -> int:
    """readyReplicas of a Deployment (0 while the controller has not written status)."""
    status = apps.read_namespaced_deployment(name, NAMESPACE).status
    return (status.ready_replicas or 0) if status is not None else 0


def test_ready_delay_set_over_admin_applies_to_new_pods() -> None:
    with SimCluster(ready_delay=3600, validate=False) as cluster:
        api = api_client(cluster.url)
        try:
            apps = client.AppsV1Api(api)
            apps.create_namespaced_deployment(NAMESPACE, deployment("slow", replicas=1))
            admin(cluster, "POST", "ready-delay", {"seconds": 0})
            apps.create_namespaced_deployment(NAMESPACE, deployment("fast", replicas=1))
            wait_for(lambda: ready_replicas(apps, "fast"), what="fast ready")
            assert ready_replicas(apps, "slow") == 0
        finally:
            api.close()
