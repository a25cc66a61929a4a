"""`inference-supervisor demo`: three regions side by side, each with the real daemon and
its own local Kubernetes API server (`k8s.sim`), sharing one local DynamoDB (moto).
Same code paths as production; only the URLs differ.

Timeline (seconds, roughly):

- 0: three endpoints are created: `chat` in every region, with a rollout policy (wave 1
  us-east-1, then eu-west-1 and ap-south-1; a 50 % canary step, a short bake); `embed`
  (autoscaled, with a canary) and `broken` (its image never becomes ready) in us-east-1.
- ~3: the healthy ones are `running`; 8: the `chat` actor of us-east-1 is crashed on
  purpose and restarted ~0.5 s later while the others carry on.
- ~10: `chat` gets a good image: us-east-1 serves it at 50 %, then as the primary,
  bakes it, and only then do eu-west-1 and ap-south-1 take it (architecture section 12).
- ~15: the watchdog cuts traffic to `broken` by removing its Ingress.
- once the good image is done everywhere: `chat` gets a bad image; us-east-1's canary
  never becomes ready, the revision is halted there and every region returns to the
  good image, the other regions never serving the bad one.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client

from actors.app.cli import UsageError
from actors.app.config import load_settings
from actors.app.daemon import Daemon
from actors.app.live_view import LiveView
from actors.app.logsetup import close_log_files, configure_logging
from actors.app.rollout_status import RolloutView, short
from actors.messages import CrashEndpoint, EventKind
from k8s.gateway import GatewaySettings, make_api_client
from k8s.naming import ingress_name
from store.dynamo import DynamoEndpointStore
from store.item import LoadedItem
from store.model import utc_timestamp
from store.rollout import revision
from store.rollout_commands import update_and_seed

REGIONS = ("us-east-1", "eu-west-1", "ap-south-1")
HOME = REGIONS[0]
WATCHDOG_SECONDS = 12.0
CRASH_AT = 8.0
GOOD_AT = 10.0
GOOD_IMAGE = "vllm/vllm-openai:v0.6.4"
#: The sim never makes an image containing "crashloop" ready (`k8s.sim.controller`).
BAD_IMAGE = "vllm/vllm-openai:v0.6.5-crashloop"
POLICY: dict[str, Any] = {
    "waves": [[HOME], [r for r in REGIONS if r != HOME]],
    "steps": [50],
    "step_seconds": 3,
    "bake_seconds": 5,
    "progress_deadline_seconds": 8,
}
#: What the demo must show; `--duration` exits 1 naming any it did not.
STORY = (
    "converged",
    "crashed actor restarted",
    "watchdog cut traffic",
    "good image rolled wave by wave",
    "bad image halted and rolled back",
)

ENDPOINTS: tuple[dict[str, Any], ...] = (
    {
        "endpoint_name": "chat",
        "regions": REGIONS,
        "spec": {"image": "vllm/vllm-openai:v0.6.3", "replicas": 2, "rollout": POLICY},
    },
    {
        "endpoint_name": "embed",
        "regions": (HOME,),
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
    {
        "endpoint_name": "broken",
        "regions": (HOME,),
        "spec": {"image": "ghcr.io/example/model:crashloop"},
    },
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help="seconds to run at most, then exit (0 if everything was shown, 1 naming what "
        "was not); the story takes about a minute and ends the demo when shown",
    )
    parser.add_argument(
        "--log-dir", default=None, help="where per-endpoint logs go (default: a temporary folder)"
    )
    parser.add_argument(
        "--real",
        action="store_true",
        help="one real control plane per region (`local-cluster --real`) instead of the sim",
    )


@dataclass
class DemoCluster:
    """One region's cluster: its URL, the daemon's settings that reach it, the
    `make_api_client` arguments of the demo's own reads, and how to stop it."""

    url: str
    connection: dict[str, str]
    client_args: dict[str, str]
    stop: Callable[[], None]


def _sim_clusters() -> dict[str, DemoCluster]:
    from k8s.sim import SimCluster  # noqa: PLC0415 - needs the optional 'local' extra

    clusters = {}
    for region in REGIONS:
        sim = SimCluster(port=0, ready_delay=1.0).start()
        clusters[region] = DemoCluster(
            url=sim.url, connection={"K8S_API_URL": sim.url}, client_args={"url": sim.url},
            stop=sim.stop,
        )  # fmt: skip
    return clusters


def _real_clusters(log_dir: str) -> dict[str, DemoCluster]:
    """A real control plane per region (built first if needed, progress on stderr)."""
    from k8s.realcluster import build  # noqa: PLC0415 - needs the optional 'local' extra
    from k8s.realcluster.control_plane import (  # noqa: PLC0415
        ControlPlaneFailed,
        RealCluster,
        ensure_workspace,
    )

    def progress(line: str) -> None:
        print(f"demo: {line}", file=sys.stderr, flush=True)

    try:
        binaries = build.ensure_binaries(progress=progress)
    except (build.GoMissing, build.BuildFailed) as error:
        raise UsageError(str(error)) from error
    clusters: dict[str, DemoCluster] = {}
    try:
        for region in REGIONS:
            progress(f"starting the control plane of {region}")
            real = RealCluster(binaries, ready_delay=1.0).start()
            clusters[region] = DemoCluster(
                url=real.url, connection={}, client_args={}, stop=real.stop
            )
            ensure_workspace(real)
            kubeconfig = str(real.write_kubeconfig(Path(log_dir) / f"{region}.kubeconfig"))
            clusters[region].connection = {"KUBECONFIG": kubeconfig}
            clusters[region].client_args = {"kubeconfig": kubeconfig}
    except ControlPlaneFailed as error:
        for cluster in clusters.values():
            cluster.stop()
        raise UsageError(f"a control plane did not start: {error}") from error
    return clusters


def _item(template: dict[str, Any]) -> dict[str, Any]:
    now = utc_timestamp()
    name = template["endpoint_name"]
    return {
        "endpoint_name": name,
        "desired_state": "running",
        "target_regions": list(template["regions"]),
        "namespace": "gco-inference",
        "ingress_path": f"/inference/{name}",
        "created_at": now,
        "updated_at": now,
        "created_by": "demo",
        "spec": template["spec"],
        "region_status": {},
    }


def run(args: argparse.Namespace) -> int:
    """Start the local servers and a daemon per region, show a live table, exit after
    --duration (or once the whole story was shown)."""
    try:
        from store.local import LocalDynamo  # noqa: PLC0415 - needs the optional 'local' extra
    except ImportError as error:
        raise UsageError(
            f"the demo needs the 'local' extra: pip install 'inference-supervisor[local]' ({error})"
        ) from error
    if args.duration is not None and args.duration <= 0:
        raise UsageError(f"--duration must be a positive number of seconds, got {args.duration}")
    log_dir = args.log_dir or tempfile.mkdtemp(prefix="inference-supervisor-demo-")
    configure_logging(fmt="json", log_dir=log_dir, level="warning", stream=_NullStream())
    clusters = _real_clusters(log_dir) if args.real else _sim_clusters()
    dynamo = LocalDynamo(port=0).start()
    daemons: dict[str, Daemon] = {}
    story = Story()
    try:
        store = DynamoEndpointStore("gco-inference-endpoints", endpoint_url=dynamo.url)
        store.create_table()
        for template in ENDPOINTS:
            store.create_item(_item(template))
        for region in REGIONS:
            settings = load_settings(
                {
                    "CLUSTER_NAME": f"demo-{region}",
                    "REGION": region,
                    "DYNAMODB_REGION": HOME,
                    "INFERENCE_ENDPOINTS_TABLE_NAME": store.table_name,
                    "AWS_ENDPOINT_URL_DYNAMODB": dynamo.url,
                    **clusters[region].connection,
                    "RECONCILE_INTERVAL_SECONDS": "1",
                    "INFERENCE_UNHEALTHY_THRESHOLD_SECONDS": str(WATCHDOG_SECONDS),
                    "METRICS_PORT": "0",
                    "LOG_DIR": log_dir,
                }
            )
            daemons[region] = Daemon(settings, on_event=story.on_event(region)).start()
        print(f"local DynamoDB {dynamo.url}; one local cluster and daemon per region:")
        for region in REGIONS:
            health = daemons[region].health
            port = health.port if health else "-"
            print(
                f"  {region}: cluster {clusters[region].url}, "
                f"metrics http://127.0.0.1:{port}/metrics"
            )
        print(f"per-endpoint logs: inference-supervisor logs NAME --log-dir {log_dir}")
        _show(daemons, store=store, clusters={r: c.client_args for r, c in clusters.items()},
              story=story, duration=args.duration)  # fmt: skip
    except KeyboardInterrupt:
        print("\ninterrupted")
    finally:
        for daemon in daemons.values():
            daemon.stop()
        for cluster in clusters.values():
            cluster.stop()
        dynamo.stop()
        close_log_files()
    missed = [what for what in STORY if what not in story.seen]
    if args.duration is not None and missed:
        print(f"demo ended without showing: {', '.join(missed)}", file=sys.stderr)
        return 1
    print(f"demo done: {', '.join(STORY)}")
    return 0


@dataclass
class Story:
    """What the demo has shown so far, and the events to list under the table."""

    seen: set[str] = field(default_factory=set)
    events: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: The rollout step reached: "" (none), "good", "bad".
    stage: str = ""
    good: str | None = None
    bad: str | None = None
    #: {(region, revision)}: a region reported running a revision (primary or canary).
    served: set[tuple[str, str]] = field(default_factory=set)
    phases: dict[str, str] = field(default_factory=dict)
    #: A later wave took the good revision before the first had baked it (never expected).
    out_of_order: bool = False

    def note(self, text: str) -> None:
        with self.lock:
            self.events.append(text)

    def take(self) -> list[str]:
        with self.lock:
            taken, self.events = self.events, []
        return taken

    def on_event(self, region: str) -> Callable[[EventKind, dict[str, Any]], None]:
        def record(kind: EventKind, fields: dict[str, Any]) -> None:
            if kind == EventKind.DIED:
                self.seen.add("crashed actor restarted")
                self.note(
                    f"{region}: actor of {fields['endpoint']} died ({fields['error']}); "
                    f"restarting in {fields['restart_in']:.1f}s"
                )
            elif kind in (EventKind.LEADING, EventKind.STANDBY):
                self.note(f"{region}: the daemon is now {kind}")

        return record


def _show(
    daemons: dict[str, Daemon],
    *,
    store: DynamoEndpointStore,
    clusters: dict[str, dict[str, str]],
    story: Story,
    duration: float | None,
) -> None:
    apis = {region: make_api_client(**kwargs) for region, kwargs in clusters.items()}
    timeout = GatewaySettings().timeout
    started = time.monotonic()
    crashed = False
    tick = threading.Event()
    live = sys.stdout.isatty()
    header = ("ENDPOINT", *(f"{r} (state image rev phase)" for r in REGIONS))
    view_out = LiveView(header, live=live)
    done_at: float | None = None
    try:
        while duration is None or time.monotonic() - started < duration:
            elapsed = time.monotonic() - started
            if not crashed and elapsed >= CRASH_AT and daemons[HOME].supervisor is not None:
                crashed = True
                story.note(f"demo: crashing the actor of chat in {HOME} on purpose")
                daemons[HOME].supervisor.tell(CrashEndpoint("chat", "demo: crash injected"))
            items = {item.name: item for item in store.scan()}
            images = {
                region: _deployment_images(client.AppsV1Api(api), timeout)
                for region, api in apis.items()
            }
            ingresses = {
                i.metadata.name
                for i in client.NetworkingV1Api(apis[HOME])
                .list_namespaced_ingress("gco-inference", _request_timeout=timeout)
                .items
            }
            _follow(
                story, items=items, images=images, ingresses=ingresses, store=store, elapsed=elapsed
            )
            rows = [
                _row(item, images, now=time.time() if live else None)
                for _, item in sorted(items.items())
            ]
            roles = " ".join(
                f"{r}:{'leader' if d.snapshot().leading else 'standby'}" for r, d in daemons.items()
            )
            events = [f"[{elapsed:5.1f}s] {event}" for event in story.take()]
            view_out.update(f"[{elapsed:5.1f}s] daemons {roles}", rows, events)
            if all(what in story.seen for what in STORY):
                # Everything was shown: keep the last table a moment, then end.
                done_at = elapsed if done_at is None else done_at
                if duration is not None and elapsed - done_at >= 2.0:
                    break
            tick.wait(1.0)
    finally:
        view_out.close()
        for api in apis.values():
            api.close()


def _deployment_images(apps: client.AppsV1Api, timeout: Any) -> dict[str, str]:
    """{Deployment name: image} in one region's cluster."""
    return {
        d.metadata.name: d.spec.template.spec.containers[0].image
        for d in apps.list_namespaced_deployment("gco-inference", _request_timeout=timeout).items
    }


def _follow(
    story: Story,
    *,
    items: dict[str, LoadedItem],
    images: dict[str, dict[str, str]],
    ingresses: set[str],
    store: DynamoEndpointStore,
    elapsed: float,
) -> None:
    """Advance the story from what the table and the clusters say now."""
    chat = items.get("chat")
    if chat is None:
        return
    running = all(
        (s := chat.region_status.get(r)) is not None and s.state == "running" for r in REGIONS
    )
    if running:
        story.seen.add("converged")
    broken = items.get("broken")
    status = broken.region_status.get(HOME) if broken else None
    if (
        "watchdog cut traffic" not in story.seen
        and status is not None
        and status.state == "error"
        and ingress_name("broken") not in ingresses
    ):
        story.seen.add("watchdog cut traffic")
        story.note(f"{HOME}: watchdog cut traffic to broken (no ready replica): Ingress removed")
    view = RolloutView.of(chat, None)
    for row in view.regions:
        if row.revision and row.phase not in ("-", "waiting", "rolled_back"):
            story.served.add((row.region, row.revision))
        if story.phases.get(row.region) != f"{short(row.revision)} {row.phase}":
            if row.region in story.phases:
                story.note(f"{row.region}: chat {short(row.revision)} {row.phase}")
            story.phases[row.region] = f"{short(row.revision)} {row.phase}"
    later = [r for r in REGIONS if r != HOME]
    if story.stage == "" and running and elapsed >= GOOD_AT:
        story.stage = "good"
        story.good = _update(store, "chat", GOOD_IMAGE)
        story.note(f"demo: chat -> {GOOD_IMAGE}: wave 1 {HOME}, then {', '.join(later)}")
    elif story.stage == "good" and view.completed == story.good and story.good is not None:
        # Wave by wave: the later regions were never seen on it before the first baked it.
        if not story.out_of_order:
            story.seen.add("good image rolled wave by wave")
        story.stage = "bad"
        story.bad = _update(store, "chat", BAD_IMAGE)
        story.note(f"demo: chat -> {BAD_IMAGE} (never becomes ready)")
    elif story.stage == "bad" and view.halt is not None:
        back = all(row.phase == "rolled_back" for row in view.regions)
        on_good = all(images[r].get("chat") == GOOD_IMAGE for r in REGIONS)
        elsewhere = any(
            (r, story.bad) in story.served or BAD_IMAGE in images[r].values() for r in later
        )
        if back and on_good and not elsewhere and story.bad == view.halt["revision"]:
            if "bad image halted and rolled back" not in story.seen:
                story.note(
                    f"halted in {view.halt['region']}: {view.halt['reason']}; every region "
                    f"back on {GOOD_IMAGE}, {', '.join(later)} never served the bad image"
                )
            story.seen.add("bad image halted and rolled back")
    if story.stage == "good" and story.good is not None:
        first = chat.region_status.get(HOME)
        took = [r for r in later if (r, story.good) in story.served]
        baked = first is not None and first.revision == story.good and first.rollout == "done"
        if took and not baked and not story.out_of_order:
            story.out_of_order = True
            story.note(f"demo: {', '.join(took)} took the new revision before {HOME} baked it!")


def _update(store: DynamoEndpointStore, name: str, image: str) -> str:
    """`endpoints update NAME --image IMAGE`: the new spec (and the seed) in one write."""
    store.apply(name, update_and_seed, {"image": image})
    loaded = store.get(name)
    assert loaded is not None
    return revision(loaded.raw["spec"])


def _row(
    item: LoadedItem, images: dict[str, dict[str, str]], *, now: float | None
) -> tuple[str, ...]:
    view = RolloutView.of(item, now)
    phases = {row.region: row for row in view.regions}
    cells = [item.name]
    for region in REGIONS:
        status = item.region_status.get(region)
        if region not in item.target_regions:
            cells.append("")
            continue
        image = images[region].get(item.name, "")
        canary = images[region].get(f"{item.name}-canary")
        tag = image.rsplit(":", 1)[-1] if image else "-"
        if canary:
            tag += f"+{canary.rsplit(':', 1)[-1]}"
        row = phases.get(region)
        rollout = f" {short(row.revision)} {row.phase}" if row and view.policy else ""
        cells.append(f"{status.state if status else '-'} {tag}{rollout}")
    return tuple(cells)


class _NullStream:
    """Log lines go to the per-endpoint files only; the terminal shows the table."""

    def write(self, _text: str) -> int:
        return 0

    def flush(self) -> None:
        return None

    def isatty(self) -> bool:
        return False
