"""What one endpoint needs from one cluster, in Kubernetes terms.

`Workload` is the input of every manifest builder. It is already resolved for a
region (the region's image override applied, a stopped endpoint's replicas set
to 0, the watchdog's decision to cut traffic applied), so builders stay pure and
free of table semantics. The actors map a table item to a `Workload`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "inference-supervisor"
INSTANCE_LABEL = "app.kubernetes.io/instance"
SPEC_HASH_ANNOTATION = "inference-supervisor.io/spec-hash"
# Present on a desired Deployment whose spec.replicas belongs to an HPA: the
# gateway keeps the live value instead of writing ours.
REPLICAS_OWNER_ANNOTATION = "inference-supervisor.io/replicas-owner"
# On a Deployment's metadata: the hash of the inputs its pod template was built from
# (`k8s.manifests.template_spec_hash`), and the hash of the pod template as the API server
# stored it when we applied (or adopted) it (`k8s.drift.template_hash`). Together they tell
# a spec change (roll), a hand edit (repair) and a new builder output (no write) apart.
TEMPLATE_SPEC_HASH_ANNOTATION = "inference-supervisor.io/template-spec-hash"
TEMPLATE_HASH_ANNOTATION = "inference-supervisor.io/template-hash"
# On the pod template, as `kubectl rollout restart` sets it: a new value rolls the pods.
RESTARTED_AT_ANNOTATION = "kubectl.kubernetes.io/restartedAt"


@dataclass(frozen=True)
class HpaMetric:
    """One metric of the HPA and its target.

    `cpu` and `memory`: a Resource metric, target = average utilisation in percent of
    the requests (above 100 is allowed). `gpu`: a Pods metric (see
    `Autoscaling.gpu_metric_name`), target = its average value per pod.
    """

    resource: str
    target: int


@dataclass(frozen=True)
class Autoscaling:
    """HPA bounds and metrics; present on a `Workload` only when autoscaling is enabled."""

    min_replicas: int = 1
    max_replicas: int = 10
    metrics: tuple[HpaMetric, ...] = (HpaMetric("cpu", 70),)
    #: Name of the per-pod metric a `gpu` metric scales on; None means the builders'
    #: default `k8s.manifests.GPU_METRIC_NAME` (the DCGM exporter's GPU utilisation).
    gpu_metric_name: str | None = None


@dataclass(frozen=True)
class Toleration:
    """One pod toleration, as the item gives it (camelCase `tolerationSeconds` in the API)."""

    key: str | None = None
    operator: str | None = None
    value: str | None = None
    effect: str | None = None
    toleration_seconds: int | None = None


@dataclass(frozen=True)
class CanaryWorkload:
    """The canary Deployment's image and size, and its share of traffic in percent (0-100).

    `pod` is the workload whose pod the canary runs. None (a hand-made `spec.canary`, the
    predecessor's canary): the primary's pod with the canary's own image. A rollout step
    (architecture section 12) sets it to the new revision's workload, so the canary runs the new
    spec's
    whole pod (env, resources, args, ports, probes, model source), not only its image;
    it must be the same endpoint's (name, namespace and Ingress path as the primary's).
    """

    image: str
    weight: int = 10
    replicas: int = 1
    pod: Workload | None = None


@dataclass(frozen=True)
class Workload:
    """Everything the builders need to produce one endpoint's objects in one region.

    `replicas` is what the primary Deployment should run (0 when stopped).
    `serve_traffic` False means the watchdog has cut traffic: no Ingress.
    `autoscaling` is None when disabled or when the endpoint is stopped.
    `gpu_type` is a GPU name (`a10g`, `l40s`) or an instance type (`g5.xlarge`) for the
    node selector; `tolerations` are the item's own, added to the accelerator's.
    `labels` are the item's labels as text; those Kubernetes would refuse as labels
    go on the objects as annotations instead.
    """

    name: str
    namespace: str
    image: str
    replicas: int = 1
    port: int = 8000
    gpu_count: int = 1
    accelerator: str = "nvidia"
    health_check_path: str = "/health"
    env: tuple[tuple[str, str], ...] = ()
    requests: tuple[tuple[str, str], ...] = (("cpu", "1"), ("memory", "4Gi"))
    limits: tuple[tuple[str, str], ...] = (("cpu", "4"), ("memory", "16Gi"))
    command: tuple[str, ...] | None = None
    args: tuple[str, ...] | None = None
    model_path: str | None = None
    model_source: str | None = None
    node_selector: tuple[tuple[str, str], ...] = ()
    capacity_type: str | None = None
    gpu_type: str | None = None
    tolerations: tuple[Toleration, ...] = ()
    ingress_path: str = ""
    autoscaling: Autoscaling | None = None
    canary: CanaryWorkload | None = None
    stopped: bool = False
    serve_traffic: bool = True
    labels: tuple[tuple[str, str], ...] = field(default=())
    #: The item's restart request (`endpoints restart`): the pod template's
    #: `RESTARTED_AT_ANNOTATION`, so a new value rolls the pods once. None: no annotation.
    restarted_at: str | None = None

    @property
    def path(self) -> str:
        """The Ingress path: the item's `ingress_path`, or `/inference/{name}`."""
        return self.ingress_path or f"/inference/{self.name}"
