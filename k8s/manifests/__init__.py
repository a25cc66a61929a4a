"""Pure manifest builders: one endpoint's `Workload` in, plain Kubernetes objects out.

No client calls here; the gateway applies what these functions return. Names,
selectors and the predecessor's labels follow GCO's inference monitor so its
objects can be adopted in place (a Deployment's selector is immutable): the
Deployment selector is `{"app": name}` (`{"app": name-canary}` for the canary),
exactly the predecessor's. Our own labels go on metadata and the pod template
only, never into the selector.

Every object carries `SPEC_HASH_ANNOTATION`, a short sha256 of the object as
built, so the drift check sees any change in what we would build.

Modules: `common` (names, labels, validation, hash), `pod` (the pod template
shared by primary and canary), `objects` (the builders).
"""

from k8s.manifests.common import (
    CANARY_LABEL,
    HEALTHCHECK_INTERVAL_ANNOTATION,
    HEALTHCHECK_PATH_ANNOTATION,
    KINDS,
    LABEL_ANNOTATION_PREFIX,
    LABELS_ANNOTATION,
    NAME_LIMITS,
    OWNED_ANNOTATIONS,
    OWNED_LABELS,
    PREDECESSOR_LABELS,
    REPLICAS_OWNER_HPA,
    WEIGHTED_ACTION,
    WEIGHTED_ACTION_ANNOTATION,
    ManifestError,
    object_key,
    spec_hash,
)
from k8s.manifests.objects import (
    GPU_METRIC_NAME,
    build_canary_deployment,
    build_canary_service,
    build_deployment,
    build_hpa,
    build_ingress,
    build_objects,
    build_service,
)
from k8s.manifests.pod import GPU_NAME_LABEL, INSTANCE_TYPE_LABEL, MODEL_CLAIM, MODEL_MOUNT_PATH
from k8s.naming import MAX_CANARY_NAME_LENGTH, MAX_NAME_LENGTH, canary_name, ingress_name

__all__ = [
    "CANARY_LABEL",
    "GPU_METRIC_NAME",
    "GPU_NAME_LABEL",
    "HEALTHCHECK_INTERVAL_ANNOTATION",
    "HEALTHCHECK_PATH_ANNOTATION",
    "INSTANCE_TYPE_LABEL",
    "KINDS",
    "LABELS_ANNOTATION",
    "LABEL_ANNOTATION_PREFIX",
    "MAX_CANARY_NAME_LENGTH",
    "MAX_NAME_LENGTH",
    "MODEL_CLAIM",
    "MODEL_MOUNT_PATH",
    "NAME_LIMITS",
    "OWNED_ANNOTATIONS",
    "OWNED_LABELS",
    "PREDECESSOR_LABELS",
    "REPLICAS_OWNER_HPA",
    "WEIGHTED_ACTION",
    "WEIGHTED_ACTION_ANNOTATION",
    "ManifestError",
    "build_canary_deployment",
    "build_canary_service",
    "build_deployment",
    "build_hpa",
    "build_ingress",
    "build_objects",
    "build_service",
    "canary_name",
    "ingress_name",
    "object_key",
    "spec_hash",
]
