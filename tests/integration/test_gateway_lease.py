"""Lease calls for leader election, the namespace, client configuration and the
mapping of API errors to our own, against the local API server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from k8s import errors
from k8s.gateway import ClusterGateway, GatewaySettings, make_api_client
from k8s.manifests import build_service
from k8s.workload import Workload
from tests.sim_aids import NAMESPACE, lease


def _gateway(url: str, namespace: str = NAMESPACE) -> ClusterGateway:
    return ClusterGateway(make_api_client(url=url), GatewaySettings(namespace=namespace))


def test_lease_lifecycle_with_optimistic_concurrency(sim: Any) -> None:
    gw = _gateway(sim.url)
    assert gw.get_lease("leader", timeout=1.0) is None
    created = gw.create_lease(lease("leader", holder="a"), timeout=1.0)
    assert created["spec"]["holderIdentity"] == "a"
    read = gw.get_lease("leader", timeout=1.0)
    assert read["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]

    renewed_body = {**read, "spec": {**read["spec"], "holderIdentity": "b"}}
    renewed = gw.replace_lease(renewed_body, timeout=1.0)
    assert renewed["spec"]["holderIdentity"] == "b"
    assert renewed["metadata"]["resourceVersion"] != read["metadata"]["resourceVersion"]

    # A candidate still holding the old version loses the race.
    stale = {**read, "spec": {**read["spec"], "holderIdentity": "c"}}
    with pytest.raises(errors.Conflict) as caught:
        gw.replace_lease(stale, timeout=1.0)
    assert caught.value.status == 409
    with pytest.raises(errors.AlreadyExists):
        gw.create_lease(lease("leader", holder="d"), timeout=1.0)
    assert gw.get_lease("leader")["spec"]["holderIdentity"] == "b"


def test_ensure_namespace_creates_a_missing_one_once(sim: Any) -> None:
    gw = _gateway(sim.url, namespace="brand-new")
    gw.ensure_namespace()
    gw.ensure_namespace()
    names = {ns["metadata"]["name"] for ns in sim.objects("namespaces")}
    assert "brand-new" in names
    counts = gw.request_counts()
    assert counts[("create", "Namespace", "ok")] == 1
    assert counts[("get", "Namespace", "ok")] == 1


def test_an_invalid_object_is_a_permanent_invalid_error(sim: Any) -> None:
    gw = _gateway(sim.url)
    bad = build_service(Workload(name="m1", namespace=NAMESPACE, image="x:1"))
    bad["metadata"]["name"] = "Not_A_DNS_Name"
    with pytest.raises(errors.Invalid) as caught:
        gw.ensure(bad)
    assert caught.value.status == 422
    assert "create Service Not_A_DNS_Name: HTTP 422" in str(caught.value)
    assert isinstance(caught.value.__cause__, ApiException)
    assert list(sim.objects("services", NAMESPACE)) == []


def test_a_body_the_client_cannot_serialise_is_invalid_without_a_request(sim: Any) -> None:
    gw = _gateway(sim.url)
    bad = build_service(Workload(name="m1", namespace=NAMESPACE, image="x:1"))
    bad["spec"]["notAField"] = True
    with pytest.raises(errors.Invalid, match="client rejected the body") as caught:
        gw.ensure(bad)
    assert caught.value.reason == "ClientValidation"
    assert ("create", "Service", "ok") not in gw.request_counts()


def test_make_api_client_reads_a_kubeconfig(sim: Any, tmp_path: Path) -> None:
    path = sim.write_kubeconfig(tmp_path / "config")
    gw = ClusterGateway(make_api_client(kubeconfig=str(path)), GatewaySettings())
    assert gw.get_lease("absent") is None


def test_make_api_client_without_any_config_says_so_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(errors.ApiError, match="no Kubernetes configuration found") as caught:
        make_api_client(kubeconfig=str(tmp_path / "missing"))
    assert caught.value.reason == "NoConfig"
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("status", "body", "context", "expected"),
    [
        pytest.param(404, {"reason": "NotFound"}, "get Service m1", errors.NotFound, id="404"),
        pytest.param(
            409,
            {"reason": "AlreadyExists"},
            "create Service m1",
            errors.AlreadyExists,
            id="409-exists",
        ),
        pytest.param(
            409, {"reason": "Conflict"}, "update Service m1", errors.Conflict, id="409-conflict"
        ),
        pytest.param(409, {}, "create Service m1", errors.AlreadyExists, id="409-bare-create"),
        pytest.param(410, {"reason": "Expired"}, "watch Service", errors.Gone, id="410"),
        pytest.param(400, {"reason": "BadRequest"}, "update Service m1", errors.Invalid, id="400"),
        pytest.param(422, {"reason": "Invalid"}, "create Service m1", errors.Invalid, id="422"),
        pytest.param(401, {}, "get Service m1", errors.Forbidden, id="401"),
        pytest.param(403, {"reason": "Forbidden"}, "get Service m1", errors.Forbidden, id="403"),
        pytest.param(429, {}, "get Service m1", errors.Retryable, id="429"),
        pytest.param(500, {}, "get Service m1", errors.Retryable, id="500"),
        pytest.param(504, {"reason": "Timeout"}, "get Service m1", errors.Retryable, id="504"),
        pytest.param(418, {}, "get Service m1", errors.ApiError, id="other"),
    ],
)
def test_status_codes_map_to_our_errors(
    status: int, body: dict[str, str], context: str, expected: type[errors.ApiError]
) -> None:
    error = errors.from_status(status, body, context=context)
    assert type(error) is expected
    assert error.status == status
    assert str(error).startswith(f"{context}: HTTP {status}")
