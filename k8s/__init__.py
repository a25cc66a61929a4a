"""Everything said to Kubernetes: pure manifest builders, the API gateway
(timeouts, rate limit, retries, watch cache, leases) and `k8s.sim`, a local API
server for the embedded default and the tests. Never imports `actors` or `store`.
"""
