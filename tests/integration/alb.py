"""A stand-in for the AWS Load Balancer Controller (architecture section 12, the weights
gate): on moto's ELBv2 it builds one Ingress's load balancer as the controller does (a VPC
and subnets from moto's EC2, an application load balancer, a target group per Service
tagged `ingress.k8s.aws/resource`, a listener whose rule forwards to them), writes the
Ingress's `status.loadBalancer` hostname, and mirrors the Ingress's weights (its weighted
forward action annotation, or its plain Service backend) to the rule `lag` fake seconds
after it first sees them, or never (`lag=None`).

`sync()` is called at every turn of fake time (`Regions.drive`'s check), so the lag is
measured on the rollout's own clock, without a thread of its own."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
from kubernetes import client

from actors.clock import FakeClock
from tests.integration.harness import NAMESPACE, Kube

PORT = 80


class FakeAlbController:
    """One Ingress's load balancer in one region, kept by a controller that lags."""

    def __init__(
        self,
        url: str,
        region: str,
        kube: Kube | None,
        clock: FakeClock,
        *,
        endpoint: str,
        lag: float | None,
    ) -> None:
        self.kube = kube
        self.clock = clock
        self.lag = lag
        self.ingress = f"inference-{endpoint}"
        self.services = (endpoint, f"{endpoint}-canary")
        session = {
            "region_name": region,
            "endpoint_url": url,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        ec2 = boto3.client("ec2", **session)
        self.elb = boto3.client("elbv2", **session)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(
                VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{region}{z}"
            )["Subnet"]["SubnetId"]
            for i, z in ((1, "a"), (2, "b"))
        ]
        # One moto server serves a worker's tests: names carry a token so two tests'
        # load balancers never collide (the gate finds them by DNS name and tags).
        token = uuid.uuid4().hex[:8]
        lb = self.elb.create_load_balancer(
            Name=f"k8s-{token}-{endpoint}"[:32], Subnets=subnets, Type="application"
        )["LoadBalancers"][0]
        self.hostname = lb["DNSName"]
        self.groups: dict[str, str] = {}
        for service in self.services:
            arn = self.elb.create_target_group(
                Name=f"k8s-{token}-{service}"[:32],
                Protocol="HTTP",
                Port=PORT,
                VpcId=vpc,
                TargetType="ip",
            )["TargetGroups"][0]["TargetGroupArn"]
            self.elb.add_tags(
                ResourceArns=[arn],
                Tags=[
                    {
                        "Key": "ingress.k8s.aws/resource",
                        "Value": f"{NAMESPACE}/{self.ingress}-{service}:{PORT}",
                    }
                ],
            )
            self.groups[service] = arn
        listener = self.elb.create_listener(
            LoadBalancerArn=lb["LoadBalancerArn"],
            Protocol="HTTP",
            Port=80,
            DefaultActions=[
                {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}
            ],
        )["Listeners"][0]
        self.applied = {endpoint: 1}
        self.rule = self.elb.create_rule(
            ListenerArn=listener["ListenerArn"],
            Priority=1,
            Conditions=[{"Field": "path-pattern", "Values": [f"/inference/{endpoint}*"]}],
            Actions=self._actions(self.applied),
        )["Rules"][0]["RuleArn"]
        #: (fake time the rule took them, weights {service: weight}) in order.
        self.history: list[tuple[float, dict[str, int]]] = [(clock.time(), dict(self.applied))]
        self._seen: tuple[dict[str, int], float] | None = None

    def _actions(self, weights: dict[str, int]) -> list[dict[str, Any]]:
        groups = [{"TargetGroupArn": self.groups[s], "Weight": w} for s, w in weights.items()]
        return [{"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}]

    def sync(self) -> None:
        """Do what the controller would by now: publish the hostname, and apply the
        Ingress's weights once they are `lag` old."""
        assert self.kube is not None, "a controller without a cluster only builds the load balancer"
        obj = self.kube.get("Ingress", self.ingress)
        if obj is None:
            return
        if not ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress"):
            client.NetworkingV1Api(self.kube.api).patch_namespaced_ingress_status(
                self.ingress,
                NAMESPACE,
                {"status": {"loadBalancer": {"ingress": [{"hostname": self.hostname}]}}},
                _content_type="application/merge-patch+json",
                _request_timeout=10,
            )
        wanted = _weights(obj)
        now = self.clock.time()
        if self._seen is None or self._seen[0] != wanted:
            self._seen = (wanted, now)
        if self.lag is None or wanted == self.applied or now < self._seen[1] + self.lag:
            return
        self.apply(wanted)

    def apply(self, weights: dict[str, int]) -> None:
        """Put `weights` ({service: weight}) on the rule now, as the controller does."""
        self.elb.modify_rule(RuleArn=self.rule, Actions=self._actions(weights))
        self.applied = weights
        self.history.append((self.clock.time(), dict(weights)))

    def carried(self) -> dict[str, int]:
        """{service: weight} the rule forwards with, read back from ELBv2."""
        rule = self.elb.describe_rules(RuleArns=[self.rule])["Rules"][0]
        names = {arn: service for service, arn in self.groups.items()}
        groups = rule["Actions"][0]["ForwardConfig"]["TargetGroups"]
        return {names[g["TargetGroupArn"]]: int(g.get("Weight", 1)) for g in groups}


def _weights(ingress: dict[str, Any]) -> dict[str, int]:
    """{service: weight} the Ingress asks for, read as the controller reads it."""
    path = ingress["spec"]["rules"][0]["http"]["paths"][0]
    service = path["backend"]["service"]
    if service["port"].get("name") != "use-annotation":
        return {service["name"]: 1}
    annotation = ingress["metadata"]["annotations"][
        f"alb.ingress.kubernetes.io/actions.{service['name']}"
    ]
    groups = json.loads(annotation)["forwardConfig"]["targetGroups"]
    return {g["serviceName"]: int(g["weight"]) for g in groups}
