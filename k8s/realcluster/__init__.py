"""`k8s.realcluster`: a real Kubernetes control plane for tests and `local-cluster --real`.

`build.ensure_binaries()` builds kube-apiserver, kube-controller-manager and etcd from
Go modules into a cache keyed by version; `control_plane.RealCluster` runs them on
loopback with self-generated certificates, RBAC and a service-account token issuer;
`pod_driver.PodDriver` stands in for kubelets (pods bound, Running, then Ready).
"""
