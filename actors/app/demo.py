"""`inference-supervisor demo`: the real daemon against a local DynamoDB (moto) and the
local Kubernetes API server (`k8s.sim`), with three endpoints that converge, fail,
restart and heal. Same code paths as production; only the URLs differ.

Timeline (seconds, roughly): 0 the endpoints are created; ~3 the healthy ones are
`running`; 10 the `chat` actor is crashed on purpose and restarted ~0.5 s later
while the others carry on; ~20 the watchdog cuts traffic to `broken` (its image
never becomes ready) by removing its Ingress.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from typing import Any

from kubernetes import client

from actors.app.cli import UsageError
from actors.app.config import load_settings
from actors.app.daemon import Daemon
from actors.app.live_view import LiveView
from actors.app.logsetup import close_log_files, configure_logging
from actors.messages import CrashEndpoint, EventKind
from k8s.gateway import GatewaySettings, make_api_client
from k8s.naming import ingress_name
from store.dynamo import DynamoEndpointStore
from store.model import utc_timestamp

REGION = "us-east-1"
WATCHDOG_SECONDS = 20.0
CRASH_AT = 10.0

ENDPOINTS: tuple[dict[str, Any], ...] = (
    {"endpoint_name": "chat", "spec": {"image": "vllm/vllm-openai:v0.6.3", "replicas": 2}},
    {
        "endpoint_name": "embed",
        "spec": {
            "image": "ghcr.io/example/embedder:1.0",
            "autoscaling": {
                "enabled": True,
                "min_replicas": 1,
                "max_replicas": 4,
                "metrics": [{"type": "cpu", "target": 60}],
            },
            "canary": {"image": "ghcr.io/example/embedder:1.1", "weight": 20, "replicas": 1},
        },
    },
    {"endpoint_name": "broken", "spec": {"image": "ghcr.io/example/model:crashloop"}},
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help="seconds to run, then exit (0 if everything was shown)",
    )
    parser.add_argument(
        "--log-dir", default=None, help="where per-endpoint logs go (default: a temporary folder)"
    )


def _item(template: dict[str, Any]) -> dict[str, Any]:
    now = utc_timestamp()
    name = template["endpoint_name"]
    return {
        "endpoint_name": name,
        "desired_state": "running",
        "target_regions": [REGION],
        "namespace": "gco-inference",
        "ingress_path": f"/inference/{name}",
        "created_at": now,
        "updated_at": now,
        "created_by": "demo",
        "spec": template["spec"],
        "region_status": {},
    }


def run(args: argparse.Namespace) -> int:
    """Start the local servers and the daemon, show a live table, exit after --duration."""
    try:
        from k8s.sim import SimCluster  # noqa: PLC0415 - needs the optional 'local' extra
        from store.local import LocalDynamo  # noqa: PLC0415 - needs the optional 'local' extra
    except ImportError as error:
        raise UsageError(
            f"the demo needs the 'local' extra: pip install 'inference-supervisor[local]' ({error})"
        ) from error
    if args.duration is not None and args.duration <= 0:
        raise UsageError(f"--duration must be a positive number of seconds, got {args.duration}")
    log_dir = args.log_dir or tempfile.mkdtemp(prefix="inference-supervisor-demo-")
    configure_logging(fmt="json", log_dir=log_dir, level="warning", stream=_NullStream())
    dynamo = LocalDynamo(port=0).start()
    cluster = SimCluster(port=0, ready_delay=2.0).start()
    daemon: Daemon | None = None
    seen = {"running": False, "watchdog": False, "restart": False}
    try:
        settings = load_settings(
            {
                "CLUSTER_NAME": "demo-cluster",
                "REGION": REGION,
                "INFERENCE_ENDPOINTS_TABLE_NAME": "gco-inference-endpoints",
                "AWS_ENDPOINT_URL_DYNAMODB": dynamo.url,
                "K8S_API_URL": cluster.url,
                "RECONCILE_INTERVAL_SECONDS": "3",
                "INFERENCE_UNHEALTHY_THRESHOLD_SECONDS": str(WATCHDOG_SECONDS),
                "METRICS_PORT": "0",
                "LOG_DIR": log_dir,
            }
        )
        store = DynamoEndpointStore(settings.table_name, endpoint_url=dynamo.url)
        store.create_table()
        for template in ENDPOINTS:
            store.create_item(_item(template))
        events: list[str] = []

        def on_event(kind: EventKind, fields: dict[str, Any]) -> None:
            if kind == EventKind.DIED:
                seen["restart"] = True
                events.append(
                    f"actor of {fields['endpoint']} died ({fields['error']}); "
                    f"restarting in {fields['restart_in']:.1f}s"
                )
            elif kind in (EventKind.LEADING, EventKind.STANDBY):
                events.append(f"this daemon is now {kind}")

        daemon = Daemon(settings, on_event=on_event).start()
        print(
            f"local DynamoDB {dynamo.url}, local cluster {cluster.url}, "
            f"metrics http://127.0.0.1:{daemon.health.port if daemon.health else '-'}/metrics"
        )
        print(f"per-endpoint logs: inference-supervisor logs NAME --log-dir {log_dir}")
        _show(
            daemon,
            store=store,
            cluster_url=cluster.url,
            namespace=settings.namespace,
            events=events,
            seen=seen,
            duration=args.duration,
        )
    except KeyboardInterrupt:
        print("\ninterrupted")
    finally:
        if daemon is not None:
            daemon.stop()
        cluster.stop()
        dynamo.stop()
        close_log_files()
    missed = [what for what, ok in seen.items() if not ok]
    if args.duration is not None and missed:
        print(f"demo ended without showing: {', '.join(missed)}", file=sys.stderr)
        return 1
    print("demo done: converged, watchdog cut traffic to a dead endpoint, crashed actor restarted")
    return 0


def _show(
    daemon: Daemon,
    *,
    store: DynamoEndpointStore,
    cluster_url: str,
    namespace: str,
    events: list[str],
    seen: dict[str, bool],
    duration: float | None,
) -> None:
    api = make_api_client(url=cluster_url)
    networking = client.NetworkingV1Api(api)
    timeout = GatewaySettings().timeout
    started = time.monotonic()
    crashed = False
    tick = threading.Event()
    view_out = LiveView(("ENDPOINT", "DESIRED", REGION, "READY", "INGRESS", "RESTARTS", "ERROR"))
    try:
        while duration is None or time.monotonic() - started < duration:
            elapsed = time.monotonic() - started
            if not crashed and elapsed >= CRASH_AT and daemon.supervisor is not None:
                crashed = True
                events.append("demo: crashing the actor of chat on purpose")
                daemon.supervisor.tell(CrashEndpoint("chat", "demo: crash injected"))
            ingresses = {
                i.metadata.name
                for i in networking.list_namespaced_ingress(
                    namespace, _request_timeout=timeout
                ).items
            }
            view = daemon.snapshot()
            rows = []
            for item in sorted(store.scan(), key=lambda i: i.name):
                status = item.region_status.get(REGION)
                state = status.state if status else "-"
                if item.name != "broken" and state == "running":
                    seen["running"] = True
                has_ingress = ingress_name(item.name) in ingresses
                if item.name == "broken" and not has_ingress and status and state == "error":
                    seen["watchdog"] = True
                rows.append(
                    (
                        item.name,
                        item.raw.get("desired_state", "?"),
                        state,
                        f"{status.replicas_ready}/{status.replicas_desired}" if status else "-",
                        "yes" if has_ingress else "no",
                        str(view.restarts.get(item.name, 0)),
                        ((status.error or "") if status else "")[:70],
                    )
                )
            role = "leader" if view.leading else "standby"
            new_events = [f"[{elapsed:5.1f}s] {event}" for event in events]
            events.clear()
            view_out.update(f"[{elapsed:5.1f}s] this daemon: {role}", rows, new_events)
            tick.wait(1.0)
    finally:
        view_out.close()
        api.close()


class _NullStream:
    """Log lines go to the per-endpoint files only; the terminal shows the table."""

    def write(self, _text: str) -> int:
        return 0

    def flush(self) -> None:
        return None

    def isatty(self) -> bool:
        return False
