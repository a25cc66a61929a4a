"""The application around the actor system: the command line, one module per verb, and
the modules the verbs share.

Verbs (each exposes `add_arguments(parser)` and `run(args) -> int`, registered in
`actors.app.cli.COMMANDS`): `run`, `demo`, `endpoints`, `render`, `render_manifests`,
`logs`, `local_dynamodb`, `local_cluster`. Shared: `cli` (dispatch, `UsageError`),
`config` (settings from environment and flags), `daemon` (wires one process's parts),
`http_server` (/metrics, /healthz, /readyz), `logsetup`, `metrics`.

`actors.app` may import the actor system (`actors`), `k8s` and `store`; the actor system
never imports `actors.app` (tests/unit/test_layering.py).
"""
