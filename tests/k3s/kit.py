"""The daemon under test against either backend: one table on the session's moto
server, any number of in-process daemons pointed at the cluster's kubeconfig, and
reads of the cluster through the real kubernetes client."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from kubernetes import client

from actors.app.config import load_settings
from actors.app.daemon import Daemon
from store.dynamo import DynamoEndpointStore
from store.model import RegionStatus, utc_timestamp
from tests.integration.harness import wait_for
from tests.k3s.backends import BASE_SPEC, REQUEST_TIMEOUT, Cluster

REGION = "us-east-1"

# kind -> (API class, method suffix): read_namespaced_X, list_namespaced_X, ...
APIS = {
    "Deployment": (client.AppsV1Api, "deployment"),
    "ReplicaSet": (client.AppsV1Api, "replica_set"),
    "Service": (client.CoreV1Api, "service"),
    "Pod": (client.CoreV1Api, "pod"),
    "Ingress": (client.NetworkingV1Api, "ingress"),
    "HorizontalPodAutoscaler": (client.AutoscalingV2Api, "horizontal_pod_autoscaler"),
    "Lease": (client.CoordinationV1Api, "lease"),
}
# What an endpoint can leave behind in its namespace.
WORKLOAD_KINDS = (
    "Deployment",
    "ReplicaSet",
    "Service",
    "Pod",
    "Ingress",
    "HorizontalPodAutoscaler",
)


class Objects:
    """The cluster's objects in one namespace, as plain dicts, through the real client."""

    def __init__(self, cluster: Cluster) -> None:
        self.api = cluster.api
        self.namespace = cluster.namespace

    def _call(self, kind: str, verb: str, *args: Any, **kwargs: Any) -> tuple[int, Any]:
        api_class, suffix = APIS[kind]
        method = getattr(api_class(self.api), f"{verb}_namespaced_{suffix}")
        try:
            response = method(
                *args, _preload_content=False, _request_timeout=REQUEST_TIMEOUT, **kwargs
            )
        except client.ApiException as error:
            return error.status, json.loads(error.body or "{}")
        return response.status, json.loads(response.data or b"{}")

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        """The object, or None when the server answers 404."""
        status, body = self._call(kind, "read", name, self.namespace)
        if status == 404:
            return None
        assert status == 200, body
        return body

    def items(self, kind: str, label_selector: str | None = None) -> list[dict[str, Any]] | None:
        """Every object of `kind` in the namespace; None when the server does not serve
        the kind (the sim keeps no ReplicaSets)."""
        kwargs = {"label_selector": label_selector} if label_selector else {}
        status, body = self._call(kind, "list", self.namespace, **kwargs)
        if status == 404:
            return None
        assert status == 200, body
        return body["items"]


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    """The first container of a Deployment's pod template."""
    return deployment["spec"]["template"]["spec"]["containers"][0]


def rolled_out(deployment: dict[str, Any] | None, replicas: int) -> bool:
    """`kubectl rollout status`'s test: the controller saw the latest spec and every one
    of `replicas` pods is updated and available, with no old pod left."""
    if deployment is None:
        return False
    spec, status = deployment["spec"], deployment.get("status") or {}
    return (
        spec.get("replicas") == replicas
        and status.get("observedGeneration", 0) >= deployment["metadata"]["generation"]
        and status.get("updatedReplicas", 0) == replicas
        and status.get("availableReplicas", 0) == replicas
        and status.get("readyReplicas", 0) == replicas
        and status.get("replicas", 0) == replicas
    )


class EndpointKit:
    """One table, one cluster, any number of daemons (stopped by `close`)."""

    def __init__(self, cluster: Cluster, *, dynamo_url: str, table_name: str) -> None:
        self.cluster = cluster
        self.dynamo_url = dynamo_url
        self.table_name = table_name
        self.store = DynamoEndpointStore(table_name, endpoint_url=dynamo_url)
        self.store.create_table(stream=False)
        self.kube = Objects(cluster)
        self.daemons: list[Daemon] = []

    def start_daemon(self, **env: str) -> Daemon:
        """Start a daemon in-process, configured like the real one by environment."""
        settings = {
            "CLUSTER_NAME": f"{self.cluster.name}-cluster",
            "REGION": REGION,
            "INFERENCE_ENDPOINTS_TABLE_NAME": self.table_name,
            "AWS_ENDPOINT_URL_DYNAMODB": self.dynamo_url,
            "KUBECONFIG": str(self.cluster.kubeconfig),
            "INFERENCE_NAMESPACE": self.cluster.namespace,
            "RECONCILE_INTERVAL_SECONDS": "0.3",
            "LEASE_DURATION_SECONDS": "3",
            "LEASE_RENEW_DEADLINE_SECONDS": "2",
            "LEASE_RETRY_PERIOD_SECONDS": "0.5",
            "K8S_API_TIMEOUT": "10",
            "K8S_QPS": "500",
            "K8S_BURST": "500",
            "METRICS_PORT": "0",
            **env,
        }
        daemon = Daemon(load_settings(settings), serve_http=False).start()
        self.daemons.append(daemon)
        return daemon

    def close(self) -> None:
        """Stop every daemon (releasing its lease) and close the clients."""
        for daemon in self.daemons:
            daemon.stop()
        self.store.close()

    # -- table ------------------------------------------------------------

    def put(self, name: str, *, desired_state: str = "running", **spec: Any) -> None:
        """Create an item the way the predecessor's CLI writes it, on top of `BASE_SPEC`."""
        now = utc_timestamp()
        self.store.create_item(
            {
                "endpoint_name": name,
                "desired_state": desired_state,
                "target_regions": [REGION],
                "namespace": self.cluster.namespace,
                "ingress_path": f"/inference/{name}",
                "created_at": now,
                "updated_at": now,
                "created_by": "test",
                "spec": {**BASE_SPEC, **self.cluster.healthy_spec(), **spec},
                "region_status": {},
            }
        )

    def status(self, name: str) -> RegionStatus | None:
        """This region's status entry of the item, or None."""
        item = self.store.get(name)
        return None if item is None else item.region_status.get(REGION)

    def state(self, name: str) -> str | None:
        """This region's reported state of the item, or None."""
        status = self.status(name)
        return None if status is None else status.state

    def wait_state(self, name: str, state: str) -> RegionStatus:
        """Wait (up to the cluster's patience) until the item reports `state`."""
        wait_for(
            lambda: self.state(name) == state,
            timeout=self.cluster.patience,
            what=f"{name} to report {state} (now {self.state(name)})",
        )
        status = self.status(name)
        assert status is not None
        return status

    def wait(self, predicate: Callable[[], Any], what: str) -> Any:
        """`wait_for` with the cluster's patience."""
        return wait_for(predicate, timeout=self.cluster.patience, what=what)


@contextmanager
def endpoint_kit(cluster: Cluster, *, dynamo_url: str, table_name: str) -> Iterator[EndpointKit]:
    """An `EndpointKit` closed on exit."""
    kit = EndpointKit(cluster, dynamo_url=dynamo_url, table_name=table_name)
    try:
        yield kit
    finally:
        kit.close()
