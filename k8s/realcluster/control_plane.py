"""A real Kubernetes control plane on loopback: etcd, kube-apiserver,
kube-controller-manager and the pod-status driver.

`RealCluster(binaries, port=0).start()` generates certificates (`pki.py`), starts etcd
(no fsync: a throwaway data directory), then kube-apiserver (TLS, client-certificate
authentication, `Node,RBAC` authorization, a service-account token issuer), waits for
its `/readyz`, registers the driver's Node and starts the controllers the daemon's
objects need (`CONTROLLERS`). `write_kubeconfig()` writes an admin kubeconfig
(`system:masters` client certificate), as `k8s.sim.SimCluster` does for the sim.
`stop()` stops the driver and every process, newest first. Every process runs with
an argument list (no shell); its output goes to `<workdir>/logs/<name>.log`.
"""

from __future__ import annotations

import base64
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import yaml
from kubernetes import client

from k8s.gateway import make_api_client
from k8s.manifests.pod import SERVICE_ACCOUNT as POD_SERVICE_ACCOUNT
from k8s.realcluster import pki
from k8s.realcluster.build import Binaries
from k8s.realcluster.pod_driver import PodDriver

DEFAULT_NAMESPACE = "gco-inference"
SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
# What a Deployment's life needs: ReplicaSets and their pods, cascading deletion,
# HPAs, namespace deletion, each namespace's `default` ServiceAccount.
CONTROLLERS = (
    "deployment-controller",
    "replicaset-controller",
    "garbage-collector-controller",
    "horizontal-pod-autoscaler-controller",
    "namespace-controller",
    "serviceaccount-controller",
)
START_TIMEOUT_SECONDS = 180.0
# kube-apiserver's graceful stop can wait on open connections for longer; nothing of
# a throwaway cluster needs it to finish.
STOP_TIMEOUT_SECONDS = 5.0
PROBE_TIMEOUT_SECONDS = 2.0


class ControlPlaneFailed(RuntimeError):
    """A process of the control plane did not start; the message names it and its last
    log line."""


def free_port(host: str) -> int:
    """A TCP port free on `host` now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


class RealCluster:
    """One control plane on `host`; the API server listens on `port` (0: a free one)."""

    def __init__(
        self,
        binaries: Binaries,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        workdir: Path | None = None,
        etcd_compaction_interval: str | None = None,
        watch_cache: bool = True,
        ready_delay: float = 0.5,
    ) -> None:
        self.binaries = binaries
        self.host = host
        self.port = port or free_port(host)
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="real-cluster-"))
        self.etcd_compaction_interval = etcd_compaction_interval
        self.watch_cache = watch_cache
        self.ready_delay = ready_delay
        self.etcd_url = ""
        self.admin_kubeconfig = self.workdir / "admin.kubeconfig"
        self._pki: pki.Pki | None = None
        self._processes: list[tuple[str, subprocess.Popen[bytes], Path]] = []
        self._apiserver_argv: list[str] = []
        self._api: client.ApiClient | None = None
        self._driver: PodDriver | None = None

    @property
    def url(self) -> str:
        """The API server's URL."""
        return f"https://{self.host}:{self.port}"

    def start(self, progress: Callable[[str], None] = lambda line: None) -> RealCluster:
        """Starts everything and waits until the API server is ready and the controllers
        run; on failure stops what it started and raises `ControlPlaneFailed`."""
        try:
            self._start(progress)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, progress: Callable[[str], None]) -> None:
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        self._pki = pki.generate(self.workdir / "pki", host=self.host)
        progress("starting etcd")
        self._start_etcd()
        progress("starting kube-apiserver")
        self._start_apiserver()
        self.write_kubeconfig(self.admin_kubeconfig, namespace="default")
        self._api = make_api_client(kubeconfig=str(self.admin_kubeconfig))
        progress("starting kube-controller-manager and the pod-status driver")
        self._start_controller_manager()
        self._driver = PodDriver(self._api, ready_delay=self.ready_delay).start()
        self._wait_for_controllers()

    def stop(self) -> None:
        """Stops the driver, then every process (SIGTERM to all, SIGKILL to any still
        running `STOP_TIMEOUT_SECONDS` later); removes a workdir it created. Idempotent."""
        if self._driver is not None:
            self._driver.stop()
            self._driver = None
        if self._api is not None:
            self._api.close()
            self._api = None
        # All at once, so the stop takes one grace period, not one per process.
        for _name, process, _log in reversed(self._processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for _name, process, _log in reversed(self._processes):
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes.clear()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def set_ready_delay(self, seconds: float) -> None:
        """Changes how long the pod driver waits before making a pod Ready, for pods
        created from now on (as `SimCluster.set_ready_delay`)."""
        self.ready_delay = float(seconds)
        if self._driver is not None:
            self._driver.set_ready_delay(seconds)

    def write_kubeconfig(self, path: str | Path, *, namespace: str = DEFAULT_NAMESPACE) -> Path:
        """Writes an admin kubeconfig (client certificate in `system:masters`, the CA
        embedded) for this server; returns its path."""
        assert self._pki is not None, "start() first"

        def data(file: Path) -> str:
            return base64.b64encode(file.read_bytes()).decode()

        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "real",
                    "cluster": {
                        "server": self.url,
                        "certificate-authority-data": data(self._pki.ca_cert),
                    },
                }
            ],
            "users": [
                {
                    "name": "admin",
                    "user": {
                        "client-certificate-data": data(self._pki.admin_cert),
                        "client-key-data": data(self._pki.admin_key),
                    },
                }
            ],
            "contexts": [
                {
                    "name": "real",
                    "context": {"cluster": "real", "user": "admin", "namespace": namespace},
                }
            ],
            "current-context": "real",
            "preferences": {},
        }
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch(mode=0o600)
        target.write_text(yaml.safe_dump(config, sort_keys=False))
        return target

    def logs(self) -> Path:
        """The directory of the processes' logs."""
        return self.workdir / "logs"

    # -- processes --------------------------------------------------------

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log_path = self.workdir / "logs" / f"{name}.log"
        with log_path.open("ab") as log_file:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )
        self._processes.append((name, process, log_path))
        return process

    def _wait(self, name: str, ready: Callable[[], bool]) -> None:
        """Polls `ready` until it holds; fails early when `name`'s process exits."""
        _, process, log_path = next(p for p in self._processes if p[0] == name)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not ready():
            if process.poll() is not None:
                raise ControlPlaneFailed(
                    f"{name} exited with {process.returncode}: {_last_line(log_path)}"
                )
            if time.monotonic() > deadline:
                raise ControlPlaneFailed(
                    f"{name} not ready after {START_TIMEOUT_SECONDS:.0f} s: {_last_line(log_path)}"
                )
            time.sleep(0.2)

    def _start_etcd(self) -> None:
        client_port, peer_port = free_port(self.host), free_port(self.host)
        self.etcd_url = f"http://{self.host}:{client_port}"
        peer_url = f"http://{self.host}:{peer_port}"
        self._spawn(
            "etcd",
            [
                str(self.binaries.etcd),
                "--name=local",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=local={peer_url}",
                # A throwaway data directory: durability buys nothing, fsync costs seconds.
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(
                    f"{self.etcd_url}/health", timeout=PROBE_TIMEOUT_SECONDS
                ) as response:
                    return b'"true"' in response.read()
            except (OSError, urllib.error.URLError):
                return False

        self._wait("etcd", healthy)

    def _start_apiserver(self) -> None:
        assert self._pki is not None
        keys = self._pki
        argv = [
            str(self.binaries.kube_apiserver),
            f"--bind-address={self.host}",
            f"--advertise-address={self.host}",
            f"--secure-port={self.port}",
            f"--etcd-servers={self.etcd_url}",
            f"--tls-cert-file={keys.server_cert}",
            f"--tls-private-key-file={keys.server_key}",
            f"--client-ca-file={keys.ca_cert}",
            "--authorization-mode=Node,RBAC",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={keys.service_account_public}",
            f"--service-account-signing-key-file={keys.service_account_key}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            # No kubelets and one loopback apiserver: nothing to publish as endpoints.
            "--endpoint-reconciler-type=none",
            f"--cert-dir={self.workdir / 'apiserver-certs'}",
            "--profiling=false",
        ]
        if self.etcd_compaction_interval:
            argv.append(f"--etcd-compaction-interval={self.etcd_compaction_interval}")
        if not self.watch_cache:
            # Every watch then goes to etcd, so a compacted revision is etcd's own 410.
            argv.append("--watch-cache=false")
        self._apiserver_argv = argv
        self._spawn("kube-apiserver", argv)
        self._wait_for_apiserver()

    def restart_apiserver(self) -> None:
        """Kills kube-apiserver (as a crash would; a graceful stop waits out its open
        watches) and starts it again on the same port and etcd: its watch caches then
        start at the current resourceVersion, as on a server that has run for a while.
        The controllers and the driver reconnect by themselves."""
        index, (name, process, _log) = next(
            (i, entry) for i, entry in enumerate(self._processes) if entry[0] == "kube-apiserver"
        )
        process.kill()
        process.wait()
        del self._processes[index]
        self._spawn(name, self._apiserver_argv)
        self._wait_for_apiserver()

    def _wait_for_apiserver(self) -> None:
        assert self._pki is not None
        keys = self._pki
        context = ssl.create_default_context(cafile=str(keys.ca_cert))
        context.load_cert_chain(str(keys.admin_cert), str(keys.admin_key))

        def ready() -> bool:
            try:
                with urllib.request.urlopen(
                    f"{self.url}/readyz", context=context, timeout=PROBE_TIMEOUT_SECONDS
                ) as response:
                    return response.status == 200
            except (OSError, urllib.error.URLError):
                return False

        self._wait("kube-apiserver", ready)

    def _start_controller_manager(self) -> None:
        assert self._pki is not None
        kubeconfig = str(self.admin_kubeconfig)
        self._spawn(
            "kube-controller-manager",
            [
                str(self.binaries.kube_controller_manager),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                f"--bind-address={self.host}",
                f"--secure-port={free_port(self.host)}",
                f"--cert-dir={self.workdir / 'controller-manager-certs'}",
                "--leader-elect=false",
                f"--controllers={','.join(CONTROLLERS)}",
                f"--root-ca-file={self._pki.ca_cert}",
                f"--service-account-private-key-file={self._pki.service_account_key}",
                "--use-service-account-credentials=false",
            ],
        )

    def _wait_for_controllers(self) -> None:
        """The controllers run once the service-account controller has made `default`'s
        ServiceAccount (every pod without one names it)."""
        assert self._api is not None
        core = client.CoreV1Api(self._api)

        def made() -> bool:
            try:
                core.read_namespaced_service_account(
                    "default", "default", _request_timeout=PROBE_TIMEOUT_SECONDS
                )
            except (client.ApiException, OSError):
                return False
            except Exception:  # urllib3 errors while the server settles
                return False
            return True

        self._wait("kube-controller-manager", made)


def ensure_workspace(cluster: RealCluster, namespace: str = DEFAULT_NAMESPACE) -> None:
    """Creates `namespace` and the ServiceAccount the daemon's pod template names, as
    the cluster's admin would before running the daemon (the sim needs neither)."""
    api = make_api_client(kubeconfig=str(cluster.admin_kubeconfig))
    try:
        core = client.CoreV1Api(api)
        for create, args in (
            (core.create_namespace, ({"metadata": {"name": namespace}},)),
            (
                core.create_namespaced_service_account,
                (namespace, {"metadata": {"name": POD_SERVICE_ACCOUNT}}),
            ),
        ):
            try:
                create(*args, _request_timeout=PROBE_TIMEOUT_SECONDS * 5)
            except client.ApiException as error:
                if error.status != 409:
                    raise
    finally:
        api.close()
