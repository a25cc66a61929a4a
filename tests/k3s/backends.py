"""The clusters the shared scenarios run against, behind one small interface.

`Cluster` is what a test sees: a kubeconfig for the daemon, a kubernetes
`ApiClient` for assertions, the namespace to use, the images to deploy and how
long real pods may take. `sim_cluster()` backs it with a fresh `k8s.sim`
server; `RealSession` starts the real control plane of `k8s.realcluster`
(etcd, kube-apiserver, kube-controller-manager, the pod-status driver) once per
session; `K3sSession` starts k3s once per session with testcontainers, imports
the tiny model server image (`docker/model-server`) into it. Both sessions hand
out one fresh namespace per test.
"""

from __future__ import annotations

import os
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

# Optional: without them the k3s backend skips, the sim backend still runs.
try:
    import docker  # the Docker SDK, a dependency of testcontainers
except ImportError:
    docker = None
try:
    from testcontainers.community.k3s import K3SContainer
except ImportError:
    try:  # testcontainers before 4.10 kept the module at the top level
        from testcontainers.k3s import K3SContainer
    except ImportError:
        K3SContainer = None

from k8s.gateway import make_api_client
from k8s.realcluster import build
from k8s.realcluster.control_plane import RealCluster
from k8s.sim import SimCluster

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_SERVER_DIR = REPO_ROOT / "docker" / "model-server"
# The image the daemon deploys on k3s; tags v1..v3 are the same build, so an image
# change is a real rollout without three builds. "model-server" matches none of the
# sim's never-ready pattern or the root-path image names.
MODEL_IMAGE = "inference-supervisor-test/model-server"
MODEL_TAGS = ("v1", "v2", "v3")
# Pinned so a run is repeatable; any k3s >= 1.29 serves every API the daemon uses.
K3S_IMAGE = "rancher/k3s:v1.31.4-k3s1"
DOCKER_SOCKET = Path("/var/run/docker.sock")
DEFAULT_NAMESPACE = "gco-inference"
# The pod template names this service account (k8s/manifests/pod.py); a real
# ReplicaSet cannot create pods until it exists.
POD_SERVICE_ACCOUNT = "gco-service-account"
REQUEST_TIMEOUT = 15
# Real pods take tens of seconds per rollout; the project's 300 s default is for the sim.
K3S_TIMEOUT_SECONDS = 900
K3S_PATIENCE_SECONDS = 240.0
# The real control plane's pods follow the sim's convention but its controllers keep
# their own pace (a ReplicaSet sync, an HPA every 15 s).
REAL_PATIENCE_SECONDS = 60.0
# Short, so a compaction happens within a test (kube-apiserver's default is 5m).
REAL_COMPACTION_INTERVAL = "10s"
# The control plane without a watch cache compacts every second: a revision is compacted
# two or three seconds after it was written (the first compaction comes one interval
# after the apiserver recorded the revision it compacts to).
FAST_COMPACTION_INTERVAL = "1s"
# Every real-control-plane test at most (the session's start included in the first).
REAL_TIMEOUT_SECONDS = 600
REAL_SKIP_PREFIX = "real control plane: "
# Set (by .ci/run) to make an unusable real control plane fail its tests, not skip them.
REQUIRE_REAL = "REQUIRE_REAL_CONTROL_PLANE"


def real_required() -> bool:
    """True when `REQUIRE_REAL_CONTROL_PLANE` is set (not empty, not 0)."""
    return os.environ.get(REQUIRE_REAL, "") not in ("", "0")


SIM_READY_DELAY = 0.2


def docker_unavailable_reason() -> str | None:
    """None when a Docker engine answers within 2 s, else one line saying why not."""
    if docker is None or K3SContainer is None:
        return "testcontainers or the docker package is missing (pip install -e '.[local,test]')"
    if not os.environ.get("DOCKER_HOST") and not DOCKER_SOCKET.exists():
        return f"DOCKER_HOST is unset and {DOCKER_SOCKET} does not exist"
    try:
        engine = docker.from_env(timeout=2)
    except Exception as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return f"no Docker engine reachable ({first[:160]})"
    try:
        engine.ping()
    except Exception as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return f"Docker engine did not answer a ping ({first[:160]})"
    finally:
        engine.close()
    return None


@dataclass
class Cluster:
    """One test's view of a Kubernetes API server, the same for the sim and k3s.

    Attributes:
        name: "sim", "real" or "k3s".
        kubeconfig: path of a kubeconfig the daemon uses (`KUBECONFIG`).
        api: a kubernetes `ApiClient` for the test's own reads and writes.
        namespace: the namespace the test and its daemons work in.
        patience: seconds a wait on pods may take (real pods start in tens of seconds).
        kubelet: True where a kubelet runs the pods (k3s: the model server really runs
            and its probes really fail); False where pods follow the sim's convention
            (the sim, and the real control plane's pod-status driver).
    """

    name: str
    kubeconfig: Path
    api: client.ApiClient
    namespace: str
    patience: float
    kubelet: bool

    def image(self, version: str) -> str:
        """A model server image that becomes ready; `version` is one of v1, v2, v3."""
        if self.kubelet:
            return f"{MODEL_IMAGE}:{version}"
        return f"repo/model:{version}"

    def healthy_spec(self, version: str = "v1") -> dict[str, Any]:
        """Item spec fields of a model server whose pods become ready."""
        return {"image": self.image(version)}

    def never_ready_spec(self) -> dict[str, Any]:
        """Item spec fields of a model server whose pods never pass their readiness probe.

        With a kubelet the real server answers 503 on /health (`UNHEALTHY=1`); on the sim an
        image containing "crashloop" never becomes ready.
        """
        if self.kubelet:
            return {"image": self.image("v1"), "env": {"UNHEALTHY": "1"}}
        return {"image": "repo/model:crashloop"}

    def pod_template(self, version: str = "v1", *, healthy: bool = True) -> dict[str, Any]:
        """A plain pod template (for fidelity checks): the model server with a fast
        readiness probe, failing it when not `healthy`."""
        container: dict[str, Any] = {
            "name": "server",
            "image": self.image(version) if healthy or self.kubelet else "repo/model:crashloop",
            "ports": [{"containerPort": 8000}],
            "readinessProbe": {
                "httpGet": {"path": "/health", "port": 8000},
                "periodSeconds": 1,
                "failureThreshold": 1,
            },
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
        }
        if not healthy and self.kubelet:
            container["env"] = [{"name": "UNHEALTHY", "value": "1"}]
        return {"spec": {"containers": [container], "terminationGracePeriodSeconds": 1}}


# Spec fields every scenario item carries: no accelerator (k3s has no GPU) and
# requests a small node can schedule. The sim accepts them alike.
BASE_SPEC: dict[str, Any] = {
    "gpu_count": 0,
    "resources": {
        "requests": {"cpu": "20m", "memory": "32Mi"},
        "limits": {"cpu": "500m", "memory": "128Mi"},
    },
}


@contextmanager
def sim_cluster(workdir: Path, *, history: int = 10000) -> Iterator[Cluster]:
    """A fresh `k8s.sim` server with fast rollouts and `history` watch events, stopped on exit."""
    sim = SimCluster(port=0, ready_delay=SIM_READY_DELAY, history=history).start()
    api: client.ApiClient | None = None
    try:
        kubeconfig = sim.write_kubeconfig(workdir / "sim-kubeconfig.yaml")
        api = make_api_client(kubeconfig=str(kubeconfig))
        cluster = Cluster(
            name="sim",
            kubeconfig=kubeconfig,
            api=api,
            namespace=DEFAULT_NAMESPACE,
            patience=20.0,
            kubelet=False,
        )
        yield cluster
    finally:
        if api is not None:
            api.close()
        sim.stop()


def _one_line(output: bytes | None) -> str:
    text = (output or b"").decode(errors="replace").strip().splitlines()
    return text[-1] if text else ""


class K3sSession:
    """k3s in a container for the whole test session, with the model server imported.

    `start()` runs the container (privileged, as k3s needs), writes its kubeconfig,
    waits for the node to be Ready, builds `docker/model-server` with the local
    Docker engine and imports it into k3s's containerd under every `MODEL_TAGS`.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.kubeconfig = workdir / "k3s-kubeconfig.yaml"
        self._container: Any = None

    def start(self) -> K3sSession:
        """Start k3s and load the images; raises on any failure (the container is removed)."""
        self._container = K3SContainer(image=K3S_IMAGE)
        self._container.start()
        try:
            self.kubeconfig.write_text(self._container.config_yaml())
            self._wait_for_node()
            self._import_model_server()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Remove the k3s container (idempotent)."""
        if self._container is not None:
            self._container.stop()
            self._container = None

    def _exec(self, argv: list[str]) -> bytes:
        """Run `argv` (an argument list, no shell) inside the k3s container."""
        result = self._container.get_wrapped_container().exec_run(argv)
        if result.exit_code != 0:
            raise RuntimeError(f"{argv[:4]} failed in k3s: {_one_line(result.output)}")
        return result.output

    def _wait_for_node(self) -> None:
        api = make_api_client(kubeconfig=str(self.kubeconfig))
        try:
            core = client.CoreV1Api(api)

            def node_ready() -> bool:
                try:
                    nodes = core.list_node(_request_timeout=REQUEST_TIMEOUT).items
                except (client.ApiException, OSError):
                    return False
                return any(
                    c.type == "Ready" and c.status == "True"
                    for n in nodes
                    for c in n.status.conditions or []
                )

            deadline = time.monotonic() + 180
            while not node_ready():
                if time.monotonic() > deadline:
                    raise RuntimeError("k3s node not Ready after 180 s")
                time.sleep(1)
        finally:
            api.close()

    def _import_model_server(self) -> None:
        engine = docker.from_env(timeout=300)
        try:
            first = f"{MODEL_IMAGE}:{MODEL_TAGS[0]}"
            image, _logs = engine.images.build(path=str(MODEL_SERVER_DIR), tag=first, rm=True)
            saved = self.workdir / "model-server.tar"
            with saved.open("wb") as out:
                for chunk in image.save(named=first):
                    out.write(chunk)
        finally:
            engine.close()
        # put_archive takes a tar whose members land under the target directory ("/"
        # always exists; the k3s image is minimal).
        bundle = self.workdir / "bundle.tar"
        with tarfile.open(bundle, mode="w") as tar:
            tar.add(saved, arcname="model-server.tar")
        with bundle.open("rb") as data:
            copied = self._container.get_wrapped_container().put_archive("/", data)
        if not copied:
            raise RuntimeError("could not copy the model server image into k3s")
        ctr = ["k3s", "ctr", "--namespace", "k8s.io", "images"]
        self._exec([*ctr, "import", "/model-server.tar"])
        # `docker save` names the image docker.io/<repo>:<tag>, as kubelet resolves it.
        source = f"docker.io/{first}"
        for tag in MODEL_TAGS[1:]:
            self._exec([*ctr, "tag", source, f"docker.io/{MODEL_IMAGE}:{tag}"])

    @contextmanager
    def cluster(self) -> Iterator[Cluster]:
        """A fresh namespace (with the pods' service account) for one test, deleted after."""
        with namespace_cluster(
            "k3s", self.kubeconfig, patience=K3S_PATIENCE_SECONDS, kubelet=True
        ) as cluster:
            yield cluster


@contextmanager
def namespace_cluster(
    name: str, kubeconfig: Path, *, patience: float, kubelet: bool
) -> Iterator[Cluster]:
    """A fresh namespace (with the pods' service account) on a shared cluster for one
    test, deleted after."""
    api = make_api_client(kubeconfig=str(kubeconfig))
    core = client.CoreV1Api(api)
    namespace = f"t-{uuid.uuid4().hex[:10]}"
    created = False
    try:
        core.create_namespace({"metadata": {"name": namespace}}, _request_timeout=REQUEST_TIMEOUT)
        created = True
        core.create_namespaced_service_account(
            namespace,
            {"metadata": {"name": POD_SERVICE_ACCOUNT}},
            _request_timeout=REQUEST_TIMEOUT,
        )
        yield Cluster(
            name=name,
            kubeconfig=kubeconfig,
            api=api,
            namespace=namespace,
            patience=patience,
            kubelet=kubelet,
        )
    finally:
        try:
            if created:
                # Not waited for: the next test has its own namespace.
                core.delete_namespace(namespace, _request_timeout=REQUEST_TIMEOUT)
        finally:
            api.close()


def real_unavailable_reason() -> str | None:
    """None when the real control plane's binaries are built (or Go can build them), else
    one line saying how to get them."""
    if build.built() or build.go_command() is not None:
        return None
    return build.missing_go_message()


def ensure_real_binaries(progress: Callable[[str], None]) -> str | None:
    """Builds the real control plane when needed (Go present); None when the binaries
    are there, else one line saying why not."""
    reason = real_unavailable_reason()
    if reason is not None:
        return reason
    try:
        build.ensure_binaries(progress=progress)
    except (build.GoMissing, build.BuildFailed) as error:
        return str(error)
    return None


class RealSession:
    """A real control plane (`k8s.realcluster`) for the whole test session.

    The etcd compaction interval is short (`REAL_COMPACTION_INTERVAL`) so a relist after
    a real compaction can be seen within a test. With `watch_cache` False every watch
    goes to etcd, so a watch from a compacted resourceVersion gets etcd's own 410.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        compaction_interval: str = REAL_COMPACTION_INTERVAL,
        watch_cache: bool = True,
    ) -> None:
        self.workdir = workdir
        self.kubeconfig = workdir / "real-kubeconfig.yaml"
        self.compaction_interval = compaction_interval
        self.watch_cache = watch_cache
        self.cluster_process: RealCluster | None = None

    def start(self) -> RealSession:
        """Start etcd, kube-apiserver, kube-controller-manager and the pod driver (built
        binaries required); raises on failure, with nothing left running."""
        cluster = RealCluster(
            build.binaries(),
            workdir=self.workdir / "control-plane",
            etcd_compaction_interval=self.compaction_interval,
            watch_cache=self.watch_cache,
            ready_delay=SIM_READY_DELAY,
        )
        self.cluster_process = cluster.start()
        if self.watch_cache:
            # As on any cluster that has run for a while, the watch caches start after
            # resourceVersion 1 (a fresh server's cache covers its whole history, so a
            # watch from RV "1" would replay instead of answering 410).
            cluster.restart_apiserver()
        cluster.write_kubeconfig(self.kubeconfig)
        return self

    def stop(self) -> None:
        """Stop every process of the control plane."""
        if self.cluster_process is not None:
            self.cluster_process.stop()
            self.cluster_process = None

    @contextmanager
    def cluster(self) -> Iterator[Cluster]:
        """A fresh namespace (with the pods' service account) for one test, deleted after."""
        with namespace_cluster(
            "real", self.kubeconfig, patience=REAL_PATIENCE_SECONDS, kubelet=False
        ) as cluster:
            yield cluster
