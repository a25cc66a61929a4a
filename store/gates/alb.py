"""The ALB weights gate (policy field `verify_weights`): after a step sets the Ingress's
weights, the region waits until the load balancer carries them (architecture section 12).

The weights are found as the AWS Load Balancer Controller publishes them (argo-rollouts'
`utils/aws` does the same): the load balancer whose `DNSName` is the Ingress's
`status.loadBalancer.ingress[].hostname` (DescribeLoadBalancers), its target groups
(DescribeTargetGroups) identified by the tag `ingress.k8s.aws/resource` =
`<namespace>/<ingress>-<service>:<port>` (DescribeTags), and the forward weights of its
listeners' rules (DescribeListeners, DescribeRules). Weights are compared as shares of
their sum (the controller passes the annotation's numbers through; a plain backend is one
target group with all the traffic).

An Ingress without a hostname, a hostname no load balancer has, no rule forwarding to the
Ingress's target groups, or an ELBv2 that cannot be read: each is `pending` with its
reason (shown, never taken as fine); past the progress deadline the rollout halts with it.
Every call has a timeout and bounded retries (botocore "standard" mode); while the weights
are pending the gate reads them again with backoff, and a verified answer is reused for
`cache_seconds`. boto3 finds the endpoint itself (`AWS_ENDPOINT_URL_ELBV2`, read here, then
boto3's own `AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2` / `AWS_ENDPOINT_URL`), so moto's
server serves the tests.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

import boto3
import structlog
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from store.gates import GateQuery, GateReading
from store.rollout import RolloutPolicy

__all__ = ["AlbWeightsGate", "expected_weights", "same_shares"]

log = structlog.get_logger(__name__)

#: The tag the AWS Load Balancer Controller puts on each target group of an Ingress.
RESOURCE_TAG = "ingress.k8s.aws/resource"
#: The Ingress backend port name that points at an `actions.<name>` annotation.
USE_ANNOTATION = "use-annotation"
ACTION_ANNOTATION_PREFIX = "alb.ingress.kubernetes.io/actions."
#: Our own variable naming an ELBv2 endpoint (boto3's is the longer
#: AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2, which it reads itself).
ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL_ELBV2"
LOCAL_VARIABLES = (
    ENDPOINT_VARIABLE,
    "AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2",
    "AWS_ENDPOINT_URL",
)
#: DescribeTags accepts at most this many ARNs per call.
TAGS_PER_CALL = 20


def expected_weights(ingress: Mapping[str, Any]) -> dict[tuple[str, int], int] | None:
    """{(service, port): weight} the Ingress asks its load balancer for (its first path's
    backend: a Service, or a weighted forward action annotation); None: no backend."""
    paths = [
        path
        for rule in (ingress.get("spec") or {}).get("rules") or []
        for path in ((rule.get("http") or {}).get("paths") or [])
    ]
    if not paths:
        return None
    service = ((paths[0].get("backend") or {}).get("service")) or {}
    port = service.get("port") or {}
    if port.get("name") != USE_ANNOTATION:
        return {(str(service.get("name")), int(port.get("number") or 80)): 1}
    annotations = (ingress.get("metadata") or {}).get("annotations") or {}
    try:
        action = json.loads(annotations.get(ACTION_ANNOTATION_PREFIX + str(service.get("name"))))
        groups = action["forwardConfig"]["targetGroups"]
        return {(str(g["serviceName"]), int(g["servicePort"])): int(g["weight"]) for g in groups}
    except (TypeError, ValueError, KeyError):
        return None


def same_shares(a: Mapping[Any, int], b: Mapping[Any, int]) -> bool:
    """Both split traffic the same way (each key's share of the sum; absent = 0)."""
    total_a, total_b = sum(a.values()), sum(b.values())
    if total_a <= 0 or total_b <= 0:
        return False
    return all(a.get(k, 0) * total_b == b.get(k, 0) * total_a for k in {*a, *b})


def _text(weights: Mapping[tuple[str, int], int]) -> str:
    return " / ".join(f"{service} {weight}" for (service, _), weight in sorted(weights.items()))


@dataclasses.dataclass
class _Entry:
    """The last answer about one Ingress: what it was asked (hostname and weights), the
    reading, when it was taken, and the wait before the next read while pending."""

    asked: tuple[Any, ...]
    reading: GateReading
    taken: float
    delay: float


class AlbWeightsGate:
    """`store.gates.Gate`: the load balancer carries the Ingress's weights.

    Args:
        region: the AWS region of the load balancers (the daemon's `REGION`).
        monotonic: the clock of the cache and the backoff (the daemon's).
        timeout: connect and read timeout of each ELBv2 request, seconds (default 2).
        max_attempts: attempts per call including the first (default 2).
        cache_seconds: how long a verified answer is reused (default 10).
        backoff: first and largest delay between two reads while pending (1 s, 15 s).
        on_request: called as `on_request(outcome)` once per read-back of a load balancer
            (the reading's state: verified, pending, no-lb, no-rule, unreadable).
    """

    name = "weights"
    #: A region under this gate looks again this often; the gate itself calls ELBv2 only
    #: when its backoff allows.
    poll_seconds = 2.0
    paces_steps = True

    def __init__(
        self,
        region: str,
        *,
        monotonic: Callable[[], float],
        timeout: float = 2.0,
        max_attempts: int = 2,
        cache_seconds: float = 10.0,
        backoff: tuple[float, float] = (1.0, 15.0),
        on_request: Callable[[str], None] | None = None,
    ) -> None:
        self.region = region
        self._monotonic = monotonic
        self._config = Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"max_attempts": max_attempts, "mode": "standard"},
        )
        self._cache_seconds = cache_seconds
        self._backoff = backoff
        self._on_request = on_request
        self._lock = threading.Lock()
        self._client: Any = None
        # (namespace, ingress) -> the last answer (one per Ingress: the cache stays small)
        self._cache: dict[tuple[str, str], _Entry] = {}

    def applies(self, policy: RolloutPolicy) -> bool:
        return policy.verify_weights

    def read(self, query: GateQuery) -> GateReading:
        ingress = query.ingress or {}
        name = str((ingress.get("metadata") or {}).get("name") or "")
        expected = expected_weights(ingress)
        if not name or expected is None:
            return _pending("no-ingress", "the endpoint has no Ingress with a backend")
        hosts = [
            str(entry.get("hostname"))
            for entry in ((ingress.get("status") or {}).get("loadBalancer") or {}).get("ingress")
            or []
            if entry.get("hostname")
        ]
        if not hosts:
            return _pending("no-lb", f"Ingress {name} has no load balancer hostname yet")
        key = (query.namespace, name)
        asked = (hosts[0], tuple(sorted(expected.items())))
        now = self._monotonic()
        with self._lock:
            entry = self._cache.get(key)
        if entry is not None and entry.asked != asked:
            # New weights (a step moved): read at once, back off afresh.
            entry = None
        if entry is not None:
            age = now - entry.taken
            fresh = self._cache_seconds if entry.reading.pending is None else entry.delay
            if age < fresh and (query.max_age is None or age <= query.max_age):
                return dataclasses.replace(entry.reading, age=age)
        reading = self.check(query.namespace, name, hosts[0], expected)
        if self._on_request is not None:
            self._on_request(reading.state)
        delay = self._backoff[0]
        if entry is not None and entry.reading.pending is not None:
            delay = min(entry.delay * 2, self._backoff[1])
        with self._lock:
            self._cache[key] = _Entry(asked, reading, now, delay)
        return reading

    def check(
        self, namespace: str, ingress: str, hostname: str, expected: Mapping[tuple[str, int], int]
    ) -> GateReading:
        """Read the load balancer now (no cache); never raises."""
        want = _text(expected)
        try:
            found = self._carried(namespace, ingress, hostname)
        except (BotoCoreError, ClientError) as error:
            reason = _outcome(error)
            log.warning("load balancer not readable", ingress=ingress, error=reason)
            return _pending("unreadable", f"load balancer not readable: {reason}")
        if isinstance(found, str):
            return _pending("no-lb", found)
        if not found:
            return _pending(
                "no-rule", f"no listener rule of {hostname} forwards to Ingress {ingress}"
            )
        for carried in found:
            if not same_shares(expected, carried):
                return _pending(
                    "pending",
                    f"load balancer carries {_text(carried) or 'nothing'}, not {want}",
                )
        return GateReading("verified", want)

    def close(self) -> None:
        """Close the client's connections (idempotent)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _carried(
        self, namespace: str, ingress: str, hostname: str
    ) -> str | list[dict[tuple[str, int], int]]:
        """The weights of every rule forwarding to the Ingress's target groups, or why the
        load balancer was not found."""
        client = self._get_client()
        arn = None
        for page in client.get_paginator("describe_load_balancers").paginate():
            for lb in page.get("LoadBalancers", []):
                if str(lb.get("DNSName", "")).lower() == hostname.lower():
                    arn = lb["LoadBalancerArn"]
        if arn is None:
            return f"no load balancer has the DNS name {hostname}"
        forwards = [
            weights
            for page in client.get_paginator("describe_listeners").paginate(LoadBalancerArn=arn)
            for listener in page.get("Listeners", [])
            for rule in client.describe_rules(ListenerArn=listener["ListenerArn"]).get("Rules", [])
            for action in rule.get("Actions", [])
            if (weights := _forward(action))
        ]
        # The load balancer's target groups, and those its rules name (a group a rule only
        # just started to use may not be listed as the load balancer's yet).
        groups = list(
            dict.fromkeys(
                [
                    tg["TargetGroupArn"]
                    for page in client.get_paginator("describe_target_groups").paginate(
                        LoadBalancerArn=arn
                    )
                    for tg in page.get("TargetGroups", [])
                ]
                + [group for weights in forwards for group in weights]
            )
        )
        prefix = f"{namespace}/{ingress}-"
        ours: dict[str, tuple[str, int]] = {}
        for start in range(0, len(groups), TAGS_PER_CALL):
            answer = client.describe_tags(ResourceArns=groups[start : start + TAGS_PER_CALL])
            for description in answer.get("TagDescriptions", []):
                for tag in description.get("Tags", []):
                    value = str(tag.get("Value", ""))
                    if tag.get("Key") == RESOURCE_TAG and value.startswith(prefix):
                        service, _, port = value[len(prefix) :].rpartition(":")
                        if service and port.isdigit():
                            ours[description["ResourceArn"]] = (service, int(port))
        return [
            {ours.get(group, (group, 0)): weight for group, weight in weights.items()}
            for weights in forwards
            if set(weights) & set(ours)
        ]

    def _get_client(self) -> Any:
        """The boto3 client, built on first use (no policy verifies weights: never built)."""
        with self._lock:
            if self._client is None:
                session = boto3.session.Session()
                credentials: dict[str, str] = {}
                if any(map(os.environ.get, LOCAL_VARIABLES)) and session.get_credentials() is None:
                    # A local server accepts any credentials; a fresh machine has none.
                    credentials = {
                        "aws_access_key_id": "testing",
                        "aws_secret_access_key": "testing",
                    }
                self._client = session.client(
                    "elbv2",
                    region_name=self.region,
                    endpoint_url=os.environ.get(ENDPOINT_VARIABLE) or None,
                    config=self._config,
                    **credentials,
                )
            return self._client


def _forward(action: Mapping[str, Any]) -> dict[str, int]:
    """{target group ARN: weight} of a forward action ({} for any other action)."""
    if action.get("Type") != "forward":
        return {}
    groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
    if groups:
        return {g["TargetGroupArn"]: int(g.get("Weight", 1)) for g in groups}
    return {action["TargetGroupArn"]: 1} if action.get("TargetGroupArn") else {}


def _pending(state: str, reason: str) -> GateReading:
    return GateReading(state, reason, pending=reason)


def _outcome(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code") or "ClientError")
    return type(error).__name__
