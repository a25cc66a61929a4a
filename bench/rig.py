"""The parts every sub-benchmark stands on: a local table and cluster (`Rig`), the daemon
in-process or as a subprocess of its own (`DaemonProcess`), figures, and the machine.

Each sub-benchmark builds its own `Rig`, so no figure carries state from another.
"""

from __future__ import annotations

import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actors.app.config import Settings, load_settings
from actors.app.daemon import Daemon
from actors.endpoint import EndpointActor
from k8s.sim import SimCluster
from k8s.sim.errors import StatusError
from k8s.sim.kinds import DEPLOYMENTS, LEASES, ResourceKind
from store.dynamo import DynamoEndpointStore
from store.errors import StoreError
from store.local import LocalDynamo
from store.model import utc_timestamp

REPO_ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
NAMESPACE = "gco-inference"
#: Client-side Kubernetes rate limit of every benchmarked daemon (the daemon's default,
#: 10 qps / burst 100, caps a 1,000-endpoint cold start at ~290 s: see README).
BENCH_QPS = "1000"
BENCH_BURST = "1000"
#: The sim's delay from a Deployment write to its pods being ready.
READY_DELAY = 0.5


@dataclass
class Figure:
    """One measured figure, its target and whether it met it (None: no target)."""

    name: str
    value: float | None
    unit: str
    target: str = ""
    met: bool | None = None
    predecessor: str = ""
    note: str = ""

    def shown(self) -> str:
        """The value as printed: a few significant digits and the unit."""
        if self.value is None:
            return "n/a"
        if abs(self.value) >= 100 or float(self.value).is_integer():
            text = f"{self.value:,.0f}"
        elif abs(self.value) >= 1:
            text = f"{self.value:.2f}"
        else:
            text = f"{self.value:.3g}"
        return f"{text} {self.unit}".strip()


@dataclass
class Section:
    """One sub-benchmark's output: its figures, parameters and any series for plots."""

    name: str
    figures: list[Figure] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    series: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, name: str, value: float | None, unit: str = "", **extra: Any) -> Figure:
        """Append and return a figure."""
        figure = Figure(name, value, unit, **extra)
        self.figures.append(figure)
        return figure


def at_most(value: float | None, limit: float) -> bool | None:
    """Met-or-not of an upper-bound target (None when nothing was measured)."""
    return None if value is None else value <= limit


def percentile(values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile of `values` (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def wait_until(
    predicate: Callable[[], Any], *, timeout: float, period: float = 0.05, what: str = ""
) -> Any:
    """Poll `predicate` until it returns something truthy; raise TimeoutError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what or predicate}")
        time.sleep(period)


def machine() -> dict[str, Any]:
    """Cores, memory, CPU model, Python and OS of this machine."""
    model = platform.processor() or "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    total_kib = 0
    with open("/proc/meminfo", encoding="utf-8") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                total_kib = int(line.split()[1])
    return {
        "cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(total_kib / 1024 / 1024, 1),
        "cpu": model,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
    }


def free_port() -> int:
    """A TCP port free right now on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def item(name: str, *, image: str = "repo/model:v1", replicas: int = 1) -> dict[str, Any]:
    """A table item the way the predecessor's CLI writes it."""
    now = utc_timestamp()
    return {
        "endpoint_name": name,
        "desired_state": "running",
        "target_regions": [REGION],
        "namespace": NAMESPACE,
        "ingress_path": f"/inference/{name}",
        "created_at": now,
        "updated_at": now,
        "created_by": "bench",
        "labels": {},
        "spec": {"image": image, "replicas": replicas, "port": 8000, "gpu_count": 1},
        "region_status": {},
    }


def names(count: int, prefix: str = "ep") -> list[str]:
    """`count` endpoint names, in order."""
    return [f"{prefix}-{i:05d}" for i in range(count)]


class Rig:
    """A moto server, the sim, the table and a store client of the benchmark's own.

    The benchmark's own table reads and writes go through `store` and are not counted
    as the daemon's (the daemon counts its own in its metrics).
    """

    def __init__(self, *, ready_delay: float = READY_DELAY) -> None:
        self.dynamo = LocalDynamo().start()
        self.sim = SimCluster(port=0, ready_delay=ready_delay).start()
        # moto keeps its tables process-wide across servers: every rig gets a table of its own.
        self.table = f"bench-{uuid.uuid4().hex[:12]}"
        self.store = DynamoEndpointStore(self.table, endpoint_url=self.dynamo.url, timeout=30)
        self.store.create_table()
        self.daemons: list[Daemon] = []
        self.processes: list[DaemonProcess] = []

    def close(self) -> None:
        """Stop every daemon and process started here, then the servers."""
        for process in self.processes:
            process.stop()
        for daemon in self.daemons:
            daemon.stop()
        self.store.close()
        self.sim.stop()
        self.dynamo.stop()

    # -- table -------------------------------------------------------------

    def fill(self, endpoint_names: list[str], *, image: str = "repo/model:v1") -> float:
        """Write one item per name; returns the seconds it took."""
        started = time.monotonic()
        for name in endpoint_names:
            self.store.create_item(item(name, image=image))
        return time.monotonic() - started

    def states(self) -> dict[str, str | None]:
        """Every endpoint's state in this region, from one consistent scan."""
        result: dict[str, str | None] = {}
        for loaded in self.store.scan():
            status = loaded.region_status.get(REGION)
            result[loaded.name] = None if status is None else status.state
        return result

    def wait_all_running(self, *, timeout: float, what: str = "every item running") -> None:
        """Scan until every item reports `running`. The pause after each scan is 4x its
        duration (at least 0.2 s), so these scans take at most ~20 % of the moto server,
        which the daemon's own scans share."""
        deadline = time.monotonic() + timeout
        while True:
            began = time.monotonic()
            try:
                if all(state == "running" for state in self.states().values()):
                    return
            except StoreError:
                pass  # an overloaded moto server timed out: scan again after the pause
            took = time.monotonic() - began
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(max(0.2, 4 * took))

    # -- cluster (read in memory: no API request, nothing counted) ---------

    def deployment(self, name: str) -> dict[str, Any] | None:
        """The stored Deployment `name`, or None."""
        return self._stored(DEPLOYMENTS, name)

    def deployment_count(self) -> int:
        """How many Deployments exist in the namespace."""
        return len(list(self.sim.objects("deployments", NAMESPACE)))

    def lease_holder(self, lease_name: str = "inference-monitor-leader") -> str | None:
        """The holder of the leader Lease, or None."""
        lease = self._stored(LEASES, lease_name)
        return None if lease is None else lease.get("spec", {}).get("holderIdentity")

    def _stored(self, kind: ResourceKind, name: str) -> dict[str, Any] | None:
        try:
            return self.sim.store.get(kind, NAMESPACE, name)
        except StatusError:
            return None

    # -- daemons -----------------------------------------------------------

    def env(self, **overrides: str) -> dict[str, str]:
        """The daemon's environment for this rig (high qps; METRICS_PORT 0)."""
        env = {
            "CLUSTER_NAME": "bench-cluster",
            "REGION": REGION,
            "INFERENCE_ENDPOINTS_TABLE_NAME": self.table,
            "AWS_ENDPOINT_URL_DYNAMODB": self.dynamo.url,
            "K8S_API_URL": self.sim.url,
            "K8S_QPS": BENCH_QPS,
            "K8S_BURST": BENCH_BURST,
            "METRICS_PORT": "0",
            "LOG_FORMAT": "json",
        }
        env.update(overrides)
        return env

    def settings(self, **overrides: str) -> Settings:
        """Parsed settings of `env(**overrides)`."""
        return load_settings(self.env(**overrides))

    def start_daemon(
        self, *, actor_factory: type[EndpointActor] = EndpointActor, **overrides: str
    ) -> Daemon:
        """The real daemon in this process (no /metrics server)."""
        daemon = Daemon(
            self.settings(**overrides), actor_factory=actor_factory, serve_http=False
        ).start()
        self.daemons.append(daemon)
        return daemon

    def spawn(self, *, module: str = "actors", **overrides: str) -> DaemonProcess:
        """The daemon as a subprocess (`python -m actors run`, or `python -m MODULE` for an
        experiment) with /metrics on a port of its own."""
        process = DaemonProcess(
            self.env(METRICS_PORT=str(free_port()), **overrides), module=module
        ).start()
        self.processes.append(process)
        return process


@contextmanager
def rig(*, ready_delay: float = READY_DELAY) -> Iterator[Rig]:
    """A `Rig` closed on exit."""
    kit = Rig(ready_delay=ready_delay)
    try:
        yield kit
    finally:
        kit.close()


def daemon_counts(daemon: Daemon) -> dict[str, float]:
    """An in-process daemon's request counters as {"k8s VERB Kind": n, "dynamodb Op": n}."""
    counts: dict[str, float] = {}
    for metric in daemon.metrics.registry.collect():
        for sample in metric.samples:
            if sample.name == "inference_supervisor_k8s_requests_total":
                key = f"k8s {sample.labels['verb']} {sample.labels['kind']}"
            elif sample.name == "inference_supervisor_dynamodb_requests_total":
                key = f"dynamodb {sample.labels['operation']}"
            else:
                continue
            counts[key] = counts.get(key, 0) + sample.value
    return counts


def table_split(counts: Mapping[str, float]) -> tuple[float, float]:
    """(reads, writes) among a daemon's DynamoDB request counters."""
    reads = sum(v for k, v in counts.items() if k in ("dynamodb Scan", "dynamodb GetItem"))
    writes = sum(
        v
        for k, v in counts.items()
        if k.startswith("dynamodb ") and k.split()[1] in ("UpdateItem", "PutItem", "DeleteItem")
    )
    return reads, writes


def diff(after: Mapping[str, float], before: Mapping[str, float]) -> dict[str, float]:
    """Counter increments between two readings (zero increments left out)."""
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


class DaemonProcess:
    """`python -m actors run` (or an experiment's module) in a process of its own: real
    signals, its own RSS."""

    def __init__(self, env: Mapping[str, str], module: str = "actors") -> None:
        self.env = dict(env)
        self.module = module
        self.port = int(env["METRICS_PORT"])
        self.log_file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix="bench-daemon-", suffix=".log", delete=False
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> DaemonProcess:
        """Start the process (logs go to a temporary file) and wait for /healthz."""
        env = {**os.environ, **self.env, "PYTHONPATH": str(REPO_ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module, *(["run"] if self.module == "actors" else [])],
            cwd=REPO_ROOT,
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._serving, timeout=60, period=0.1, what="the daemon's /healthz")
        return self

    @property
    def pid(self) -> int:
        """The process id."""
        assert self.process is not None
        return self.process.pid

    @property
    def identity(self) -> str:
        """Its leader-election identity (`{hostname}-{pid}`)."""
        return f"{socket.gethostname()}-{self.pid}"

    def _serving(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"daemon exited with {self.process.returncode}: {self.log_tail()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2):
                return True
        except OSError:
            return False

    def metrics_text(self) -> str:
        """The /metrics page."""
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.read().decode()

    def counts(self) -> dict[str, float]:
        """Request counters from /metrics, keyed like `daemon_counts`, plus plain gauges."""
        counts: dict[str, float] = {}
        for line in self.metrics_text().splitlines():
            if not line or line.startswith("#"):
                continue
            series, _, value = line.rpartition(" ")
            metric, _, labels_text = series.partition("{")
            labels = dict(
                part.split("=", 1) for part in labels_text.rstrip("}").split(",") if "=" in part
            )
            labels = {k: v.strip('"') for k, v in labels.items()}
            if metric == "inference_supervisor_k8s_requests_total":
                key = f"k8s {labels['verb']} {labels['kind']}"
            elif metric == "inference_supervisor_dynamodb_requests_total":
                key = f"dynamodb {labels['operation']}"
            elif not labels_text:
                key = metric
            else:
                continue
            counts[key] = counts.get(key, 0) + float(value)
        return counts

    def status(self) -> dict[str, int]:
        """VmRSS and VmHWM (KiB) and Threads from /proc/PID/status."""
        wanted = {"VmRSS", "VmHWM", "Threads"}
        result: dict[str, int] = {}
        with open(f"/proc/{self.pid}/status", encoding="utf-8") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in wanted:
                    result[key] = int(value.split()[0])
        return result

    def signal(self, signum: signal.Signals) -> None:
        """Send `signum` to the process."""
        assert self.process is not None
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int | None:
        """Wait for the exit; returns the status, or None if still running."""
        assert self.process is not None
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 30 s; idempotent. Removes the log file."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            if self.wait(30) is None:
                self.process.kill()
                self.process.wait()
        if not self.log_file.closed:
            self.log_file.close()
            Path(self.log_file.name).unlink(missing_ok=True)

    def log_tail(self, lines: int = 5) -> str:
        """The last lines of the process's log."""
        self.log_file.flush()
        text = Path(self.log_file.name).read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


class Stopwatch(threading.Thread):
    """Samples `probe()` every `period` seconds from a thread until stopped; keeps the
    monotonic time of the first sample at which each key of the probe's set appeared."""

    def __init__(self, probe: Callable[[], set[str]], period: float) -> None:
        super().__init__(name="bench-stopwatch", daemon=True)
        self.probe = probe
        self.period = period
        self.first_seen: dict[str, float] = {}
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            now = time.monotonic()
            for key in self.probe():
                self.first_seen.setdefault(key, now)
            self._stop_event.wait(self.period)

    def stop(self) -> None:
        """Stop sampling and join the thread."""
        self._stop_event.set()
        self.join()


def random_times(count: int, window: float, *, seed: int = 8) -> list[float]:
    """`count` sorted offsets uniformly spread over `window` seconds (seeded)."""
    generator = random.Random(seed)
    return sorted(generator.uniform(0, window) for _ in range(count))


@dataclass(frozen=True)
class Options:
    """What the command line asked for.

    Attributes:
        quick: the small sizes and short windows (`--quick`, under 3 minutes in all).
        endpoints: `--endpoints N`: the endpoint count of every sub-benchmark that takes one.
        duration: `--duration S`: the window of a sub-benchmark that takes one (churn).
    """

    quick: bool = False
    endpoints: int | None = None
    #: `--duration S`: the window of the benchmarks that run one for a while (churn).
    duration: float | None = None

    def count(self, quick: int, full: int) -> int:
        """The endpoint count: `--endpoints`, else the quick or the full default."""
        if self.endpoints is not None:
            return self.endpoints
        return quick if self.quick else full
