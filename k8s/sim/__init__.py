"""`k8s.sim`: a local Kubernetes API server for the demo, CI tests and benchmarks.

Speaks the real REST paths for namespaces, Deployments (with `/status` and
`/scale`), Services, Ingresses, HPAs (autoscaling/v2), derived Pods and Leases;
resourceVersions, watches with bookmarks and 410s, strict validation, a
Deployment controller simulation and fault injection. See `SimCluster`.
"""

from k8s.sim.server import SimCluster

__all__ = ["SimCluster"]
