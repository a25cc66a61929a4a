"""A daemon-under-test kit: the real daemon (in-process) against the moto server and
`k8s.sim`, with helpers to write items the way the predecessor's CLI does and to
read the cluster through the real kubernetes client."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from types import FrameType
from typing import Any

import boto3
import pykka
from kubernetes import client

from actors.app.config import load_settings
from actors.app.daemon import Daemon
from actors.clock import Clock, FakeClock
from actors.endpoint import EndpointActor
from actors.pooled import PooledActor
from k8s.gateway import make_api_client
from store.dynamo import DynamoEndpointStore
from store.item import LoadedItem
from store.model import RegionStatus, utc_timestamp
from tests.sim_aids import wait_for

REGION = "us-east-1"
NAMESPACE = "gco-inference"

# kind -> (API class, method suffix): read_namespaced_X, list_namespaced_X, ...
APIS = {
    "Deployment": (client.AppsV1Api, "deployment"),
    "Service": (client.CoreV1Api, "service"),
    "Pod": (client.CoreV1Api, "pod"),
    "Ingress": (client.NetworkingV1Api, "ingress"),
    "HorizontalPodAutoscaler": (client.AutoscalingV2Api, "horizontal_pod_autoscaler"),
    "Lease": (client.CoordinationV1Api, "lease"),
}


class Kube:
    """Reads and writes objects of one cluster through the real kubernetes client, as dicts:
    the sim's (by `url`) or a real control plane's (by `kubeconfig`). `namespace` is the
    one a call works in when it names none."""

    def __init__(
        self, url: str | None = None, *, kubeconfig: str | None = None, namespace: str = NAMESPACE
    ) -> None:
        if kubeconfig is not None:
            self.api = make_api_client(kubeconfig=kubeconfig)
        else:
            config = client.Configuration()
            config.host = url
            self.api = client.ApiClient(config)
        self.namespace = namespace

    def close(self) -> None:
        self.api.close()

    def _call(self, kind: str, verb: str, *args: Any, **kwargs: Any) -> tuple[int, Any]:
        api_class, suffix = APIS[kind]
        method = getattr(api_class(self.api), f"{verb}_namespaced_{suffix}")
        try:
            response = method(*args, _preload_content=False, _request_timeout=10, **kwargs)
        except client.exceptions.ApiException as error:
            return error.status, json.loads(error.body or "{}")
        return response.status, json.loads(response.data or b"{}")

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict | None:
        status, body = self._call(kind, "read", name, namespace or self.namespace)
        return body if status == 200 else None

    def items(self, kind: str, namespace: str | None = None) -> list[dict]:
        """Every object of `kind` in the namespace."""
        _, body = self._call(kind, "list", namespace or self.namespace)
        return body.get("items", [])

    def names(self, kind: str, namespace: str | None = None) -> set[str]:
        return {i["metadata"]["name"] for i in self.items(kind, namespace)}

    def delete(self, kind: str, name: str, namespace: str | None = None) -> int:
        """Delete an object by hand; returns the HTTP status."""
        status, _ = self._call(kind, "delete", name, namespace or self.namespace)
        return status

    def create_namespace(self, name: str) -> None:
        """Create a namespace (the sim starts with `default`, `gco-inference`, `kube-system`)."""
        client.CoreV1Api(self.api).create_namespace(
            {"metadata": {"name": name}}, _request_timeout=10
        )

    def merge_patch(self, kind: str, name: str, patch: dict) -> dict:
        status, body = self._call(
            kind,
            "patch",
            name,
            self.namespace,
            patch,
            _content_type="application/merge-patch+json",
        )
        assert status == 200, body
        return body

    def create(self, kind: str, obj: dict) -> dict:
        status, body = self._call(kind, "create", self.namespace, obj)
        assert status == 201, body
        return body


class Harness:
    """One table, one cluster, any number of daemons: the sim at `sim_url`, or the real
    control plane of `kubeconfig`, the daemons and items in `namespace`."""

    def __init__(
        self,
        dynamo_url: str,
        table_name: str,
        sim_url: str | None = None,
        *,
        kubeconfig: str | None = None,
        namespace: str = NAMESPACE,
    ) -> None:
        self.dynamo_url = dynamo_url
        self.table_name = table_name
        self.sim_url = sim_url
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.store = DynamoEndpointStore(table_name, endpoint_url=dynamo_url)
        # The scan path; tests/integration/test_change_feed.py recreates it with a stream.
        self.store.create_table(stream=False)
        self.kube = Kube(sim_url, kubeconfig=kubeconfig, namespace=namespace)
        self.daemons: list[Daemon] = []

    def settings(self, **env: str):
        base = {
            "CLUSTER_NAME": "test-cluster",
            "REGION": REGION,
            "INFERENCE_ENDPOINTS_TABLE_NAME": self.table_name,
            "AWS_ENDPOINT_URL_DYNAMODB": self.dynamo_url,
            **(
                {"KUBECONFIG": self.kubeconfig}
                if self.kubeconfig is not None
                else {"K8S_API_URL": self.sim_url}
            ),
            "INFERENCE_NAMESPACE": self.namespace,
            "RECONCILE_INTERVAL_SECONDS": "0.3",
            "LEASE_DURATION_SECONDS": "3",
            "LEASE_RENEW_DEADLINE_SECONDS": "2",
            "LEASE_RETRY_PERIOD_SECONDS": "0.5",
            "K8S_QPS": "500",
            "K8S_BURST": "500",
            "METRICS_PORT": "0",
        }
        base.update(env)
        return load_settings(base)

    def start_daemon(
        self,
        *,
        clock: Clock | None = None,
        actor_factory: type[EndpointActor] = EndpointActor,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
        serve_http: bool = False,
        gateway_retries: tuple[int, float, float] | None = (3, 0.01, 0.05),
        start: bool = True,
        **env: str,
    ) -> Daemon:
        """A daemon on this table and cluster, started unless `start` is False (to hook
        its clients first; `close` stops it either way)."""
        daemon = Daemon(
            self.settings(**env),
            clock=clock,
            actor_factory=actor_factory,
            on_event=on_event,
            serve_http=serve_http,
            gateway_retries=gateway_retries,
        )
        self.daemons.append(daemon)
        return daemon.start() if start else daemon

    def close(self) -> None:
        for daemon in self.daemons:
            daemon.stop()
        self.kube.close()
        self.store.close()

    # -- table ------------------------------------------------------------

    def put(
        self,
        name: str,
        *,
        desired_state: str = "running",
        regions: tuple[str, ...] = (REGION,),
        namespace: str | None = None,
        **spec: Any,
    ) -> None:
        """Create an item the way the predecessor's CLI writes it (`-n namespace`, the
        harness's namespace when None)."""
        now = utc_timestamp()
        self.store.create_item(
            {
                "endpoint_name": name,
                "desired_state": desired_state,
                "target_regions": list(regions),
                "namespace": namespace or self.namespace,
                "ingress_path": f"/inference/{name}",
                "created_at": now,
                "updated_at": now,
                "created_by": "test",
                "spec": {"image": "repo/model:v1", **spec},
                "region_status": {},
            }
        )

    def raw_table(self) -> Any:
        """The table through plain boto3, for writes our store would refuse or never make."""
        return boto3.resource(
            "dynamodb",
            endpoint_url=self.dynamo_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).Table(self.table_name)

    def put_raw(self, name: str, **spec: Any) -> None:
        """Write an item with plain boto3, unvalidated: what a buggy or older writer leaves."""
        now = utc_timestamp()
        self.raw_table().put_item(
            Item={
                "endpoint_name": name,
                "desired_state": "running",
                "target_regions": [REGION],
                "namespace": NAMESPACE,
                "created_at": now,
                "updated_at": now,
                "spec": {"image": "repo/model:v1", **spec},
            }
        )

    def item(self, name: str) -> LoadedItem | None:
        return self.store.get(name)

    def status(self, name: str, region: str = REGION) -> RegionStatus | None:
        item = self.store.get(name)
        return None if item is None else item.region_status.get(region)

    def state(self, name: str, region: str = REGION) -> str | None:
        status = self.status(name, region)
        return None if status is None else status.state

    def wait_state(self, name: str, state: str, *, timeout: float = 20.0) -> RegionStatus:
        wait_for(
            lambda: self.state(name) == state,
            timeout=timeout,
            what=f"{name} to report {state} (now {self.state(name)})",
        )
        status = self.status(name)
        assert status is not None
        return status


@contextmanager
def harness(
    dynamo_url: str,
    table_name: str,
    sim_url: str | None = None,
    *,
    kubeconfig: str | None = None,
    namespace: str = NAMESPACE,
) -> Iterator[Harness]:
    """A `Harness` (on the sim at `sim_url`, or the real control plane of `kubeconfig`),
    closed on exit."""
    kit = Harness(dynamo_url, table_name, sim_url, kubeconfig=kubeconfig, namespace=namespace)
    try:
        yield kit
    finally:
        kit.close()


def metric_total(daemon, name: str, **labels: str) -> float:
    """The sum of an in-process daemon's samples `name` whose labels include `labels`."""
    return sum(
        sample.value
        for family in daemon.metrics.registry.collect()
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def scan_count(daemon) -> float:
    """Table scans the daemon has made so far (from its own /metrics counters)."""
    return metric_total(daemon, "inference_supervisor_dynamodb_requests_total", operation="Scan")


#: Under a fake clock racing ahead of real time, a lease call's real latency must stay far
#: below the renew deadline in fake seconds.
FAKE_TIME_LEASE = {
    "LEASE_DURATION_SECONDS": "90",
    "LEASE_RENEW_DEADLINE_SECONDS": "60",
    "LEASE_RETRY_PERIOD_SECONDS": "1",
}


#: The code of a pooled actor's turn (`actors.pooled`): a worker in it is busy.
_POOLED_TURN = PooledActor._turn.__code__


def _actor_idle(frame: FrameType | None) -> bool:
    """True unless `frame` is an actor's that is handling a message: a pykka actor thread's
    outside its inbox `get`, or a pool worker's inside a pooled actor's turn (a worker
    waiting for a turn is idle; any other thread counts as idle too)."""
    callee = None
    while frame is not None:
        if frame.f_code is _POOLED_TURN:
            return False
        if frame.f_code.co_name == "_actor_loop_running":
            return callee is not None and callee.f_code.co_name == "get"
        callee, frame = frame, frame.f_back
    return True


def quiet(clock: FakeClock) -> bool:
    """True when nothing is left to do before fake time moves on: no timer on `clock` is due
    or running, every actor's inbox is empty and every actor thread waits on it."""
    due = clock.next_due()
    if due is not None and due <= clock.monotonic():
        return False
    if any(not ref.actor_inbox.empty() for ref in pykka.ActorRegistry.get_all()):
        return False
    return all(_actor_idle(frame) for frame in sys._current_frames().values())


#: Real seconds `drive` waits for the daemons to go quiet before it moves time on anyway
#: (a test may hold a handler on purpose).
QUIET_TIMEOUT = 2.0


def _turn(
    clock: FakeClock, cap: float | None, pace: Callable[[], float | None] | None = None
) -> None:
    """One turn of fake time: wait until the daemons are quiet, then jump to the next due
    timer (at most `cap` fake seconds ahead, nor more than `pace()` when given; 1 s when
    no timer is pending)."""
    with suppress(AssertionError):
        wait_for(lambda: quiet(clock), timeout=QUIET_TIMEOUT, interval=0.005)
    due = clock.next_due()
    jump = 1.0 if due is None else due - clock.monotonic()
    if cap is not None:
        jump = min(jump, cap)
    if pace is not None and (bound := pace()) is not None:
        jump = min(jump, bound)
    if jump > 0:
        clock.advance(jump)


def drive(
    clock: FakeClock,
    until: Callable[[], Any],
    *,
    step: float | None = None,
    timeout: float = 60.0,
    what: str = "",
    pace: Callable[[], float | None] | None = None,
) -> Any:
    """Run fake time until `until()` holds, timer by timer: each turn waits until the
    daemons are quiet (every due timer ran, every actor waits on an empty inbox), then jumps
    to the next due timer (at most `step` fake seconds ahead). No real sleep paces it: fake
    time moves as fast as the daemons finish what each timer started - unless `pace` is
    given: called once the daemons are quiet, it may wait and returns how far this turn
    may jump (None: no bound), as a real cluster's controllers need real time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = until()
        if result:
            return result
        _turn(clock, step, pace)
    raise AssertionError(f"fake time ran {timeout}s of real time without: {what or until}")


def pass_time(clock: FakeClock, seconds: float, *, timeout: float = 60.0) -> None:
    """Let `seconds` of fake time pass the way `drive` moves it."""
    end = clock.time() + seconds
    deadline = time.monotonic() + timeout
    while clock.time() < end:
        assert time.monotonic() < deadline, f"{seconds} fake seconds took over {timeout}s"
        _turn(clock, end - clock.time())


@dataclass(frozen=True)
class CliResult:
    """What one CLI invocation did (the `cli` fixture of conftest.py returns these)."""

    status: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)
