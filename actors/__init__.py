"""The actor system: supervisor (leader lease), table poller, one actor per endpoint.

`actors` decides *when* to compute and apply what should exist; `k8s` and
`store` do the talking. `actors` may import both; neither imports `actors`.
"""
