"""The pod template shared by the primary and canary Deployments.

Follows the predecessor: container `inference`, probes on `health_check_path`,
GPU/Neuron devices and tolerations, default accelerator node selectors plus the
Karpenter capacity type, the model volume (PVC `efs-claim` at `/models`), a
model-sync init container for an `s3://` source (a bucket root included; any other
source, such as a Hugging Face id, only mounts the volume), and `--root-path` for
vLLM/TGI images. Unlike the predecessor, the init container is an argument list and
always syncs, and the fields its daemon ignored are served: the item's `tolerations`
(after the accelerator's own) and `gpu_type` (a node selector, `GPU_NAME_LABEL` for a
GPU name such as `a10g`, `INSTANCE_TYPE_LABEL` for an instance type such as `g5.xlarge`).
"""

from __future__ import annotations

from typing import Any

from k8s.manifests.common import ACCELERATOR_RESOURCES
from k8s.workload import Toleration, Workload

MODEL_CLAIM = "efs-claim"
MODEL_MOUNT_PATH = "/models"
MODEL_VOLUME = "model-storage"
MODEL_SYNC_IMAGE = "amazon/aws-cli:latest"
SERVICE_ACCOUNT = "gco-service-account"
CONTAINER_NAME = "inference"
# Image name fragments of servers that take `--root-path` (vLLM, TGI), as the predecessor matched.
ROOT_PATH_IMAGES = ("vllm", "text-generation-inference", "tgi")
ROOT_PATH_FLAG = "--root-path"
DEFAULT_GPU_NODE_SELECTORS = {
    "nvidia": {"eks.amazonaws.com/instance-gpu-manufacturer": "nvidia"},
    "neuron": {"accelerator": "neuron"},
}
CAPACITY_TYPE_LABEL = "karpenter.sh/capacity-type"
# `gpu_type` (the predecessor's "GPU instance type hint"): EKS Auto Mode's GPU-name node
# label, the same family as the `eks.amazonaws.com/instance-gpu-manufacturer` default above
# (self-managed Karpenter spells it `karpenter.k8s.aws/instance-gpu-name`; an operator
# there passes that key in `node_selector`). Values are lower-case (`a10g`, `l40s`, `h100`).
# A value shaped like an instance type (`g5.xlarge`, as the predecessor's CLI help shows)
# selects the well-known instance-type label instead.
GPU_NAME_LABEL = "eks.amazonaws.com/instance-gpu-name"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"


def _uses_root_path(image: str, command: tuple[str, ...] | None) -> bool:
    """True for vLLM/TGI images run with their own entrypoint (a command replaces it)."""
    return not command and any(tag in image.lower() for tag in ROOT_PATH_IMAGES)


def _container_args(w: Workload, image: str) -> list[str] | None:
    """The item's args, plus `--root-path <ingress path>` for servers that need it.

    The root path is the Ingress path for primary and canary alike (the ALB does
    not strip it), and is not added twice when the item already passes one.
    """
    args = list(w.args) if w.args is not None else None
    if _uses_root_path(image, w.command):
        given = args or []
        if not any(a == ROOT_PATH_FLAG or a.startswith(f"{ROOT_PATH_FLAG}=") for a in given):
            args = [*given, ROOT_PATH_FLAG, w.path]
    return args


def _resources(w: Workload) -> dict[str, dict[str, str]]:
    """Container requests/limits with the accelerator devices added to both."""
    requests, limits = dict(w.requests), dict(w.limits)
    if w.gpu_count > 0:
        device = ACCELERATOR_RESOURCES[w.accelerator]
        requests[device] = str(w.gpu_count)
        limits[device] = str(w.gpu_count)
    return {key: value for key, value in (("requests", requests), ("limits", limits)) if value}


def _probe(w: Workload, *, initial_delay: int, period: int, failures: int) -> dict[str, Any]:
    """An HTTP probe on `health_check_path`, straight at the container port."""
    return {
        "httpGet": {"path": w.health_check_path, "port": w.port},
        "initialDelaySeconds": initial_delay,
        "periodSeconds": period,
        "failureThreshold": failures,
    }


def _model_sync(w: Workload) -> dict[str, Any]:
    """Init container syncing `model_source` to `/models/{name}` on every pod start.

    An argument list (no shell), so item content stays one argv element; `--delete`
    removes files gone from the source, so a stale or partial model never stays.
    """
    destination = f"{MODEL_MOUNT_PATH}/{w.name}"
    return {
        "name": "model-sync",
        "image": MODEL_SYNC_IMAGE,
        "command": ["aws", "s3", "sync", w.model_source, destination, "--delete", "--no-progress"],
        "volumeMounts": [{"name": MODEL_VOLUME, "mountPath": MODEL_MOUNT_PATH}],
        "resources": {
            "requests": {"cpu": "1", "memory": "2Gi"},
            "limits": {"cpu": "4", "memory": "8Gi"},
        },
    }


def gpu_type_selector(gpu_type: str) -> tuple[str, str]:
    """The node-selector entry for `gpu_type`: an instance type (it has a '.') selects
    `INSTANCE_TYPE_LABEL` as given, a GPU name `GPU_NAME_LABEL` in lower case."""
    if "." in gpu_type:
        return INSTANCE_TYPE_LABEL, gpu_type
    return GPU_NAME_LABEL, gpu_type.lower()


def _node_selector(w: Workload) -> dict[str, str]:
    """The item's node selector (or the accelerator's default), plus `gpu_type` unless the
    item's selector already sets that key, plus the capacity type."""
    selector = dict(w.node_selector)
    if w.gpu_count > 0 and not selector:
        selector = dict(DEFAULT_GPU_NODE_SELECTORS[w.accelerator])
    if w.gpu_type:
        key, value = gpu_type_selector(w.gpu_type)
        selector.setdefault(key, value)
    if w.capacity_type is not None:
        selector[CAPACITY_TYPE_LABEL] = w.capacity_type
    return selector


def _toleration(t: Toleration) -> dict[str, Any]:
    """A toleration in the API's shape, without the fields the item leaves unset."""
    fields = (
        ("key", t.key),
        ("operator", t.operator),
        ("value", t.value),
        ("effect", t.effect),
        ("tolerationSeconds", t.toleration_seconds),
    )
    return {name: value for name, value in fields if value is not None}


def _tolerations(w: Workload) -> list[dict[str, Any]]:
    """The accelerator's toleration (the predecessor's), then the item's, without repeats."""
    device = ACCELERATOR_RESOURCES[w.accelerator]
    merged = [{"key": device, "operator": "Equal", "value": "true", "effect": "NoSchedule"}]
    for toleration in w.tolerations:
        entry = _toleration(toleration)
        if entry not in merged:
            merged.append(entry)
    return merged


def pod_spec(w: Workload, image: str) -> dict[str, Any]:
    """The pod spec shared by primary and canary; only the image differs."""
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": image,
        "ports": [{"containerPort": w.port, "protocol": "TCP"}],
        "resources": _resources(w),
        "livenessProbe": _probe(w, initial_delay=120, period=15, failures=5),
        "readinessProbe": _probe(w, initial_delay=30, period=10, failures=3),
    }
    if w.env:
        container["env"] = [{"name": key, "value": str(value)} for key, value in w.env]
    if w.command:
        container["command"] = list(w.command)
    args = _container_args(w, image)
    if args:
        container["args"] = args
    with_model = bool(w.model_path or w.model_source)
    if with_model:
        container["volumeMounts"] = [{"name": MODEL_VOLUME, "mountPath": MODEL_MOUNT_PATH}]
    spec: dict[str, Any] = {
        "serviceAccountName": SERVICE_ACCOUNT,
        "containers": [container],
        "tolerations": _tolerations(w),
    }
    if w.model_source and w.model_source.startswith("s3://"):
        spec["initContainers"] = [_model_sync(w)]
    node_selector = _node_selector(w)
    if node_selector:
        spec["nodeSelector"] = node_selector
    if with_model:
        spec["volumes"] = [
            {"name": MODEL_VOLUME, "persistentVolumeClaim": {"claimName": MODEL_CLAIM}}
        ]
    return spec
