"""`local-cluster --real`: the real control plane (etcd, kube-apiserver,
kube-controller-manager, the pod-status driver) as a person starts it, and what it
says when it cannot be built."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import urllib3
import yaml
from kubernetes import client

from k8s.gateway import make_api_client
from k8s.realcluster import build
from tests.k3s.backends import REAL_SKIP_PREFIX, real_required
from tests.sim_aids import wait_for

NAMESPACE = "gco-inference"
START_SECONDS = 120


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "actors", "local-cluster", *args]


def _children(pid: int) -> set[int]:
    """Pids whose parent is `pid` (from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_without_go_and_without_binaries_it_exits_2_saying_what_it_needs(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {
        **os.environ,
        "PATH": str(empty),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "PYTHONPATH": os.getcwd(),
    }
    result = subprocess.run(
        _command("--real", "--port", "0"),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "needs Go" in lines[0]
    assert "--build-only" in lines[0]
    assert result.stdout == ""


def _require_binaries() -> None:
    if not build.built():
        message = f"{REAL_SKIP_PREFIX}{build.not_built_message()}"
        if real_required():
            pytest.fail(message)
        pytest.skip(message)


@pytest.mark.timeout(300)
def test_real_cluster_runs_pods_enforces_rbac_and_sigterm_stops_every_process(
    tmp_path: Path,
) -> None:
    _require_binaries()
    kubeconfig = tmp_path / "kubeconfig"
    process = subprocess.Popen(
        _command("--real", "--port", "0", "--kubeconfig", str(kubeconfig), "--ready-delay", "0.2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    api = None
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("https://127.0.0.1:"), url
        children = _children(process.pid)
        assert len(children) == 3, children  # etcd, kube-apiserver, kube-controller-manager

        api = make_api_client(kubeconfig=str(kubeconfig))
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        template = {
            "metadata": {"labels": {"app": "r1"}},
            "spec": {"containers": [{"name": "server", "image": "repo/model:v1"}]},
        }
        apps.create_namespaced_deployment(
            NAMESPACE,
            {
                "metadata": {"name": "r1"},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": "r1"}},
                    "template": template,
                },
            },
            _request_timeout=10,
        )
        wait_for(
            lambda: (apps.read_namespaced_deployment_status("r1", NAMESPACE).status).ready_replicas
            == 2,
            timeout=60,
            what="two ready pods made by the real controllers and the driver",
        )

        # RBAC: anonymous is denied; a service account's issued token has only what
        # a Role grants it (none here).
        config = yaml.safe_load(kubeconfig.read_text())
        ca = tmp_path / "ca.crt"
        ca.write_bytes(base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"]))
        anonymous = urllib3.PoolManager(ca_certs=str(ca))
        denied = anonymous.request("GET", f"{url}/api/v1/namespaces", timeout=10)
        assert denied.status == 403
        token = core.create_namespaced_service_account_token(
            "gco-service-account",
            NAMESPACE,
            {"spec": {"expirationSeconds": 600}},
            _request_timeout=10,
        ).status.token
        as_account = anonymous.request(
            "GET",
            f"{url}/api/v1/namespaces/{NAMESPACE}/pods",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert as_account.status == 403
        assert b"system:serviceaccount:gco-inference:gco-service-account" in as_account.data

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        assert [pid for pid in children if _alive(pid)] == []
    finally:
        if api is not None:
            api.close()
        if process.poll() is None:
            process.kill()
            process.wait()
