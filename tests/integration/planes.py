"""Real control planes for the multi-region scenarios (architecture sections 12 and 13).

`ControlPlanes` starts three `k8s.realcluster` control planes (etcd, kube-apiserver,
kube-controller-manager, the pod-status driver) once per test session; a scenario gives
its i-th region the i-th, and each test works in a fresh namespace of its own, so tests
sharing them stay independent. A test runs on them when marked `SIM_AND_REAL`: its
`planes` fixture (tests/integration/conftest.py) is None for the sim run and these
control planes for the real one. The real runs are in the xdist group "real";
collection skips them with one line when the binaries are absent and Go cannot build
them (a failure under `REQUIRE_REAL_CONTROL_PLANE`), as tests/k3s does.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from kubernetes import client

from k8s.gateway import make_api_client
from k8s.realcluster import build
from k8s.realcluster.control_plane import RealCluster, ensure_workspace
from tests.k3s.backends import REAL_TIMEOUT_SECONDS, SIM_READY_DELAY

#: Control planes started for the session: one per region of the largest scenario.
COUNT = 3
REQUEST_TIMEOUT = 15

#: Run a test on the sim and on the real control planes (its `planes` fixture: None, then
#: a `ControlPlanes`). The real run gets the real control plane's time limit and the
#: xdist group `real`, so one worker runs them all and the control planes start once; the
#: group is a mark of the parameter because xdist reads the groups before a
#: `trylast` collection hook could add one.
SIM_AND_REAL = pytest.mark.parametrize(
    "planes",
    [
        pytest.param("sim", id="sim"),
        pytest.param(
            "real",
            id="real",
            marks=[pytest.mark.timeout(REAL_TIMEOUT_SECONDS), pytest.mark.xdist_group("real")],
        ),
    ],
    indirect=True,
)


class ControlPlanes:
    """`COUNT` real control planes for a test session, each with an admin kubeconfig."""

    def __init__(self, workdir: Path, count: int = COUNT) -> None:
        self.workdir = workdir
        self.count = count
        self.clusters: list[RealCluster] = []
        self.kubeconfigs: list[Path] = []

    def start(self) -> ControlPlanes:
        """Start every control plane one after the other (built binaries required); on
        failure stop those started and raise."""
        try:
            for index in range(self.count):
                cluster = RealCluster(
                    build.binaries(),
                    workdir=self.workdir / f"plane-{index}",
                    ready_delay=SIM_READY_DELAY,
                )
                self.clusters.append(cluster.start())
                self.kubeconfigs.append(cluster.write_kubeconfig(self.workdir / f"{index}.yaml"))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every process of every control plane, all at once: each stop may wait out
        a grace period, one per control plane in turn would add up."""
        stopping = [threading.Thread(target=cluster.stop) for cluster in self.clusters]
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join()
        self.clusters.clear()
        self.kubeconfigs.clear()

    @contextmanager
    def namespace(self) -> Iterator[str]:
        """A fresh namespace on every control plane, with the ServiceAccount the pod
        template names (a real ReplicaSet makes no pod without it); deleted on exit (not
        waited for: the next test has its own), and the pods' ready delay reset."""
        name = f"t-{uuid.uuid4().hex[:10]}"
        try:
            for cluster in self.clusters:
                ensure_workspace(cluster, name)
            yield name
        finally:
            for cluster in self.clusters:
                cluster.set_ready_delay(SIM_READY_DELAY)
                api = make_api_client(kubeconfig=str(cluster.admin_kubeconfig))
                try:
                    client.CoreV1Api(api).delete_namespace(name, _request_timeout=REQUEST_TIMEOUT)
                except client.ApiException as error:
                    if error.status != 404:
                        raise
                finally:
                    api.close()
