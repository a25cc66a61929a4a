"""`k8s.sim`: a local Kubernetes API server for the demo, CI tests and benchmarks.

`SimCluster(port=0).start()` serves the real REST paths (stdlib
`ThreadingHTTPServer`, HTTP/1.1 keep-alive, JSON only) for namespaces,
Deployments (with `/status` and `/scale`), Services, Ingresses, HPAs
(autoscaling/v2), Leases and read-only Pods derived from Deployments, plus
discovery (`/api`, `/apis`, `/version`) and kubectl's Table view.

Behaves like a real server for what the daemon uses: one global resourceVersion,
409 AlreadyExists/Conflict, generation bumped on spec changes only (and on a
Deployment's annotation changes), unchanged writes are no-ops, server defaults
filled in, strict schema validation (422 with causes),
merge/strategic/json/apply patches, label and field selectors, paging, watches
(resume, 410 Expired, bookmarks, sendInitialEvents, timeoutSeconds), a
Deployment controller (ready after `ready_delay`, never for images containing
`never_ready_pattern`, rollouts) and an HPA that holds its target within [min,
max]. Faults (latency, 500/429 by verb and kind, dropped watches), counters and
a request log are available in process and under `/_sim/`.

Finalizers: a DELETE of an object with `metadata.finalizers` sets
`deletionTimestamp` (MODIFIED) and keeps it until an update empties them
(then DELETED); `SimCluster(ingress_finalizer_delay=...)` or
`set_ingress_finalizer()` simulates the AWS Load Balancer Controller's Ingress
finalizer. Empty values Go's `omitempty` drops (an empty `env[].value`) are
dropped. `SimCluster.restart(empty=True)` (or `POST /_sim/restart`) brings the
server back as after an etcd restore: empty, resourceVersions starting over.

Known differences: deletes without finalizers are immediate (no graceful pod
termination), no ReplicaSet objects, a watch from a resourceVersion newer than
the server's is 410 Expired (a real watch cache stays silent until it gets
there), no authentication, no protobuf, no
OpenAPI documents (`kubectl apply` needs `--validate=false`), unknown fields
are a 422 (a real server drops them with a warning unless
`fieldValidation=Strict`), HPAs see no metrics.
"""

from k8s.sim.server import SimCluster

__all__ = ["SimCluster"]
