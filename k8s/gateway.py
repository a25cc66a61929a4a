"""The daemon's only door to the Kubernetes API.

`ClusterGateway` keeps an informer cache per managed kind (list once, then
watch) so that `ensure` compares against the cache and a steady state costs no
request at all; it writes only on a difference, repairs drift with a
conditional replace, never touches objects that are not ours (or the
predecessor's), and confirms deletes. Every request goes through one
`Transport`: client-side rate limit, per-call timeout, bounded retries with
backoff on 429/5xx/timeouts, and a counter by (verb, kind, outcome). Lease calls
for leader election are single attempts with their own short timeout and skip
the rate limiter, so a throttled renew cannot cost the leadership.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import structlog
from kubernetes import client, config

from k8s import drift, errors
from k8s.fence import FenceSource
from k8s.informer import ApiListWatch, KindInformer, WatchEvent
from k8s.manifests import KINDS, object_key
from k8s.naming import base_of_canary, endpoint_of_ingress
from k8s.ratelimit import TokenBucket
from k8s.resources import json_headers, resource_apis
from k8s.retry import BackoffPolicy
from k8s.transport import RequestCounter, Transport
from k8s.workload import INSTANCE_LABEL

__all__ = ["ClusterGateway", "GatewaySettings", "WatchEvent", "make_api_client"]

log = structlog.get_logger(__name__)

# Re-reads and retries of a replace that met a 409 (the object changed under us).
CONFLICT_RETRIES = 3
# Connections kept per host: 4 long-lived watches plus concurrent calls from
# many actor threads; beyond this urllib3 opens extra connections and discards them.
CONNECTION_POOL_SIZE = 64
# How long stop() waits for each watch thread after unblocking it, in seconds.
STOP_JOIN_TIMEOUT = 5.0
# The predecessor's label naming the endpoint.
PREDECESSOR_APP_LABEL = "app"


@dataclass(frozen=True)
class GatewaySettings:
    """How the gateway talks to the API server.

    Attributes:
        namespace: the namespace of every managed object and watch (default `gco-inference`).
        timeout: per-request timeout in seconds, `K8S_API_TIMEOUT` (default 30.0).
        qps: client-side rate limit, requests per second (default 10.0, as client-go).
        burst: requests allowed back to back (default 100, as client-go).
        max_retries: retries of a temporary failure before `Retryable` (default 5).
        backoff_base: first retry delay in seconds (default 0.2).
        backoff_cap: largest retry delay in seconds (default 5.0).
        watch_timeout: server-side `timeoutSeconds` of each watch request, in whole
            seconds (default 300, client-go uses 5-10 min); stop() does not wait
            for it, since it shuts the stream down.
        resync_period: seconds between periodic relists of every kind (default 600), so
            a cache that missed a change without noticing (a server restored to another
            history) converges anyway; None turns it off.
    """

    namespace: str = "gco-inference"
    timeout: float = 30.0
    qps: float = 10.0
    burst: int = 100
    max_retries: int = 5
    backoff_base: float = 0.2
    backoff_cap: float = 5.0
    watch_timeout: int = 300
    resync_period: float | None = 600.0


def make_api_client(
    *, url: str | None = None, kubeconfig: str | None = None, in_cluster: bool = False
) -> client.ApiClient:
    """Build the one `ApiClient` the process shares.

    Order: an explicit `url` (plain http, for the local sim), else the `kubeconfig`
    file, else the in-cluster service account (when `in_cluster` or when running
    in a pod), else the default kubeconfig (`$KUBECONFIG` or `~/.kube/config`).

    Raises:
        errors.ApiError: no usable configuration (reason `NoConfig`), one line.
    """
    configuration = client.Configuration()
    try:
        if url:
            configuration.host = url.rstrip("/")
        elif kubeconfig:
            config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
        elif in_cluster or os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)
        else:
            config.load_kube_config(client_configuration=configuration)
    except (config.ConfigException, OSError, ValueError, TypeError) as exc:
        source = kubeconfig or ("in-cluster" if in_cluster else "default kubeconfig")
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise errors.ApiError(
            f"no Kubernetes configuration found ({source}): {first_line}", reason="NoConfig"
        ) from exc
    configuration.connection_pool_maxsize = CONNECTION_POOL_SIZE
    # Our Transport retries and counts every attempt; urllib3 must not retry behind it.
    configuration.retries = False
    # TCP keepalive, as client-go: a watch on a dead peer is noticed.
    configuration.keep_alive = True
    return client.ApiClient(configuration)


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def _uid(obj: dict[str, Any]) -> str | None:
    return (obj.get("metadata") or {}).get("uid")


def _resource_version(obj: dict[str, Any]) -> str | None:
    return (obj.get("metadata") or {}).get("resourceVersion")


class ClusterGateway:
    """Everything the daemon says to one namespace of one cluster.

    Thread-safe: actors call it concurrently; the watch threads update the cache.

    Args:
        api_client: the shared client (`make_api_client`).
        settings: namespace, timeouts, rate limit, retries.
        sleep: how retries and the rate limiter wait (injected in tests).
        monotonic: the rate limiter's clock.
        on_request: called with (verb, kind, outcome) after every request, for metrics.
        random: jitter source in [0, 1).
        waiting: entered around every wait on the API (see `Transport`).
        fence: the leader's write fence (see `k8s.fence`): every request of this gateway
            is refused once it closes, and no attempt outlasts the lease. None (the
            lease's own gateway, the CLI) for an unfenced gateway.
        limiter: a rate limiter shared with other gateways of the same client (one per
            watched namespace: `qps`/`burst` stay the process's budget); None builds this
            gateway's own from `settings`.
    """

    def __init__(
        self,
        api_client: client.ApiClient,
        settings: GatewaySettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        on_request: Callable[[str, str, str], None] | None = None,
        random: Callable[[], float] = random.random,
        waiting: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext,
        fence: FenceSource | None = None,
        limiter: TokenBucket | None = None,
    ) -> None:
        self._settings = settings
        self._namespace = settings.namespace
        self._random = random
        self._monotonic = monotonic
        self._counter = RequestCounter(on_request)
        self._backoff = BackoffPolicy(
            base=settings.backoff_base,
            cap=settings.backoff_cap,
            max_retries=settings.max_retries,
        )
        self._transport = Transport(
            limiter=limiter
            or TokenBucket(settings.qps, settings.burst, monotonic=monotonic, sleep=sleep),
            policy=self._backoff,
            timeout=settings.timeout,
            counter=self._counter,
            sleep=sleep,
            random=random,
            waiting=waiting,
            fence=fence,
            monotonic=monotonic,
        )
        self._apis = resource_apis(api_client)
        self._core = client.CoreV1Api(api_client)
        self._informers: dict[str, KindInformer] = {}
        self._lifecycle = threading.Lock()

    # -- watches and cache ---------------------------------------------------

    def start(self, on_event: Callable[[WatchEvent], None]) -> None:
        """List every managed kind into the cache, then watch each in its own thread.

        Returns once every kind's initial list is cached (its ADDED events delivered).
        A failing initial list is retried `max_retries` times with backoff.

        Raises:
            errors.ApiError: an initial list failed; no watch thread is left running.
        """
        with self._lifecycle:
            if self._informers:
                raise RuntimeError("ClusterGateway already started")
            informers = {
                kind: KindInformer(
                    ApiListWatch(
                        self._apis[kind],
                        self._transport,
                        namespace=self._namespace,
                        request_timeout=self._settings.timeout,
                        watch_timeout=self._settings.watch_timeout,
                    ),
                    on_event=on_event,
                    backoff=self._backoff,
                    random=self._random,
                    monotonic=self._monotonic,
                    resync_period=self._settings.resync_period,
                )
                for kind in KINDS
            }
            # Visible before the first event, so on_event can read the cache.
            self._informers = informers
            for informer in informers.values():
                informer.start()
            try:
                for informer in informers.values():
                    informer.wait_synced()
            except errors.ApiError:
                self._informers = {}
                _stop_all(informers)
                raise
        log.info("watches started", namespace=self._namespace, kinds=list(KINDS))

    def stop(self) -> None:
        """End the watch threads and wait for them; the cache is dropped. Idempotent."""
        with self._lifecycle:
            informers, self._informers = self._informers, {}
        _stop_all(informers)

    def quiesce(self, timeout: float) -> bool:
        """Wait up to `timeout` s until no request of this gateway is in flight (watch
        streams aside); True when none is. After the fence closed nothing new starts."""
        return self._transport.quiesce(timeout)

    def has_synced(self) -> bool:
        """True while the watches run, every kind's list is cached and no kind is
        waiting for a relist (after a watch that could not resume)."""
        informers = self._informers
        return bool(informers) and all(i.has_synced for i in informers.values())

    def relists(self) -> dict[str, int]:
        """Lists each kind's watch made after its initial one (410, a server that went
        back, periodic resync), by kind."""
        return {kind: informer.relists for kind, informer in self._informers.items()}

    def _synced(self, kind: str) -> KindInformer:
        """The informer of `kind`, when its cache can answer.

        Raises:
            errors.NotSynced: not started or stopped, initial list not done, a relist
                pending, or the watch thread dead.
        """
        informer = self._informers.get(kind)
        if informer is None or not informer.has_synced:
            state = "not watched" if informer is None else "not synced"
            raise errors.NotSynced(
                f"cache of {kind}: {state} (watch starting, relisting or stopped)",
                reason="NotSynced",
            )
        return informer

    def cached(self, kind: str, name: str) -> dict[str, Any] | None:
        """The cached object (read-only), or None when the synced cache has none.

        Raises:
            errors.NotSynced: the cache cannot answer (never read that as "absent").
        """
        return self._synced(kind).get(name)

    def cached_objects(self, kind: str) -> list[dict[str, Any]]:
        """All cached objects of a kind (read-only dicts).

        Raises:
            errors.NotSynced: the cache cannot answer.
        """
        return self._synced(kind).objects()

    def instances(self, *, when_unsynced: set[str] | None = None) -> set[str]:
        """Endpoint names with at least one cached object that is ours or adoptable.

        Ours name the endpoint in `app.kubernetes.io/instance`; the predecessor's
        in their `app` label (`{name}-canary` for its canary objects, mapped back to
        `{name}` when that endpoint has objects too).

        Args:
            when_unsynced: returned instead of raising when a cache cannot answer.

        Raises:
            errors.NotSynced: a kind's cache cannot answer and `when_unsynced` is None.
        """
        try:
            cached = [(kind, obj) for kind in KINDS for obj in self.cached_objects(kind)]
        except errors.NotSynced:
            if when_unsynced is None:
                raise
            return set(when_unsynced)
        names: set[str] = set()
        predecessor: set[str] = set()
        for kind, obj in cached:
            if drift.is_managed(obj):
                instance = _labels(obj).get(INSTANCE_LABEL)
                if instance:
                    names.add(instance)
            elif drift.is_adoptable(obj):
                predecessor.add(endpoint_candidates(kind, obj)[0])
        for name in predecessor:
            base = base_of_canary(name)
            if name != base and (base in predecessor or base in names):
                names.add(base)
            else:
                names.add(name)
        return names

    # -- writes ----------------------------------------------------------------

    def ensure(self, desired: dict[str, Any]) -> str:
        """Make the live object match `desired`, writing only on a difference.

        The desired object's `app.kubernetes.io/instance` label names the endpoint that
        asks; a live object whose label names another endpoint is never written. A live
        Deployment keeps its pod template unless `drift.template_plan` gives a reason to
        write ours (spec change, restart request, hand edit); the template's hash is recorded
        on the Deployment's metadata in the same write.

        Returns:
            `created`, `updated`, `unchanged` (no request when the cache is warm),
            or `unmanaged` (a live object without our label that is not the
            predecessor's: never touched; a warning is logged).

        Raises:
            errors.OwnedElsewhere: the live object belongs to another endpoint (nothing sent).
            errors.Conflict: still conflicting after 3 re-reads.
            errors.ApiError: any other failure (`Retryable` after retries).
        """
        kind, name = object_key(desired)
        self._check_namespace(desired)
        asking = _labels(desired).get(INSTANCE_LABEL)
        live = self._live(kind, name)
        for attempt in range(CONFLICT_RETRIES + 1):
            if live is None:
                try:
                    self._write("create", kind, name, drift.for_live(None, desired))
                except errors.AlreadyExists:
                    # Created meanwhile (or our earlier attempt landed): compare with it.
                    live = self._read(kind, name)
                    if live is None:
                        continue
                else:
                    log.info("k8s object created", kind=kind, name=name)
                    return "created"
            if not drift.is_managed(live) and not drift.is_adoptable(live):
                log.warning("k8s object exists and is not ours, left alone", kind=kind, name=name)
                return "unmanaged"
            holder = _owned_elsewhere(live, asking)
            if holder is not None:
                log.warning(
                    "k8s object belongs to another endpoint, left alone",
                    kind=kind,
                    name=name,
                    owner=holder,
                )
                raise errors.OwnedElsewhere(
                    f"{kind} {name} belongs to endpoint {holder!r}", owner=holder
                )
            # A Deployment's pod template is written only for a reason (spec change, hand
            # edit, restart request); else the live one stands and no pod restarts.
            target = drift.for_live(live, desired)
            if not drift.needs_update(live, target):
                return "unchanged"
            try:
                self._write("update", kind, name, drift.replacement(live, target))
            except errors.Conflict:
                if attempt == CONFLICT_RETRIES:
                    raise
                log.info("k8s update conflict, re-reading", kind=kind, name=name)
                live = self._read(kind, name)
            except errors.NotFound:
                self._discard(kind, name)
                live = None
            else:
                adopted = drift.is_adoptable(live)
                template = (
                    drift.template_plan(live, desired).reason if kind == "Deployment" else None
                )
                log.info(
                    "k8s object updated", kind=kind, name=name, adopted=adopted, template=template
                )
                return "updated"
        raise errors.Conflict(f"ensure {kind} {name}: object kept changing", reason="Conflict")

    def remove(self, kind: str, name: str, *, owner: str) -> bool:
        """Delete endpoint `owner`'s object (ours, or the predecessor's) and confirm it is gone.

        A 404 on delete counts as done. With the watch running, an object absent
        from the cache is taken as gone without a request. An object whose
        `app.kubernetes.io/instance` names another endpoint is never deleted (logged):
        `owner` has nothing there to remove.

        Returns:
            True when no object of `owner` is left under that name (confirmed absent,
            or it belongs to another endpoint); False when it still exists (finalizers
            running) or is not ours (never deleted; logged).

        Raises:
            errors.ApiError: the delete or the confirming read failed.
        """
        live = self._live(kind, name)
        for _ in range(CONFLICT_RETRIES + 1):
            if live is None:
                self._discard(kind, name)
                return True
            if not drift.is_managed(live) and not drift.is_adoptable(live):
                log.warning("k8s object is not ours, not deleting", kind=kind, name=name)
                return False
            holder = _owned_elsewhere(live, owner)
            if holder is not None:
                log.warning(
                    "k8s object belongs to another endpoint, not deleting",
                    kind=kind,
                    name=name,
                    owner=holder,
                    asked_by=owner,
                )
                return True
            try:
                self._delete(kind, name, _uid(live), _resource_version(live))
            except errors.Conflict:
                # A precondition failed: the object changed since it was seen (or a
                # different object took the name): decide again on the server's copy.
                live = self._read(kind, name)
                continue
            live = self._read(kind, name)
            if live is None:
                self._discard(kind, name)
                log.info("k8s object deleted", kind=kind, name=name)
                return True
            if (live.get("metadata") or {}).get("deletionTimestamp"):
                log.info("k8s object deletion pending", kind=kind, name=name)
                return False
        return False

    def ensure_namespace(self) -> None:
        """Create the namespace when it does not exist."""
        name = self._namespace
        try:
            self._transport.call(
                "get",
                "Namespace",
                name,
                lambda timeout: self._core.read_namespace(
                    name, _preload_content=False, _request_timeout=timeout
                ),
            )
            return
        except errors.NotFound:
            pass
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        try:
            self._transport.call(
                "create",
                "Namespace",
                name,
                lambda timeout: self._core.create_namespace(
                    body, _preload_content=False, _request_timeout=timeout, _headers=json_headers()
                ),
            )
            log.info("namespace created", namespace=name)
        except errors.AlreadyExists:
            pass

    # -- events ------------------------------------------------------------------

    def record_event(self, event: dict[str, Any]) -> bool:
        """Create a core/v1 Event (`k8s.events.build_event`) in this gateway's namespace.

        Best effort: fenced and rate limited like every request, one attempt (an Event is
        not worth holding a reconcile through retries); a failure is logged and answered
        False, never raised, so a decision is never undone by its Event.
        """
        name = str((event.get("metadata") or {}).get("name", ""))
        try:
            self._check_namespace(event)
            self._transport.call(
                "create",
                "Event",
                name,
                lambda timeout: self._core.create_namespaced_event(
                    self._namespace,
                    event,
                    _preload_content=False,
                    _request_timeout=timeout,
                    _headers=json_headers(),
                ),
                retry=False,
            )
        except errors.ApiError as error:
            log.warning(
                "k8s event not recorded",
                reason=event.get("reason"),
                event=name,
                error=str(error),
            )
            return False
        return True

    # -- leases ------------------------------------------------------------------

    def get_lease(self, name: str, *, timeout: float | None = None) -> dict[str, Any] | None:
        """The Lease, or None when absent. One attempt, not rate limited.

        Raises:
            errors.ApiError: `Retryable` for a timeout or 5xx, else permanent.
        """
        api = self._apis["Lease"]
        try:
            return self._transport.call(
                "get",
                "Lease",
                name,
                lambda request_timeout: api.read(
                    name, self._namespace, _preload_content=False, _request_timeout=request_timeout
                ),
                retry=False,
                limited=False,
                timeout=timeout,
            )
        except errors.NotFound:
            return None

    def create_lease(self, body: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        """Create a Lease; `AlreadyExists` when another candidate was first. One attempt."""
        api = self._apis["Lease"]
        name = str(body.get("metadata", {}).get("name", ""))
        return self._transport.call(
            "create",
            "Lease",
            name,
            lambda request_timeout: api.create(
                self._namespace,
                body,
                _preload_content=False,
                _request_timeout=request_timeout,
                _headers=json_headers(),
            ),
            retry=False,
            limited=False,
            timeout=timeout,
        )

    def replace_lease(
        self, body: dict[str, Any], *, timeout: float | None = None
    ) -> dict[str, Any]:
        """Replace a Lease conditionally on `body.metadata.resourceVersion`.

        Raises:
            errors.Conflict: the Lease changed since it was read (another candidate won).
        """
        api = self._apis["Lease"]
        name = str(body.get("metadata", {}).get("name", ""))
        return self._transport.call(
            "update",
            "Lease",
            name,
            lambda request_timeout: api.replace(
                name,
                self._namespace,
                body,
                _preload_content=False,
                _request_timeout=request_timeout,
                _headers=json_headers(),
            ),
            retry=False,
            limited=False,
            timeout=timeout,
        )

    # -- metrics -------------------------------------------------------------------

    def request_counts(self) -> dict[tuple[str, str, str], int]:
        """Requests so far by (verb, kind, outcome); outcome `ok`, an HTTP status,
        `timeout` or `error`. Verbs: get, list, watch, create, update, delete."""
        return self._counter.snapshot()

    # -- internals -----------------------------------------------------------------

    def _check_namespace(self, obj: dict[str, Any]) -> None:
        namespace = (obj.get("metadata") or {}).get("namespace")
        if namespace not in (None, self._namespace):
            kind, name = object_key(obj)
            raise errors.Invalid(
                f"{kind} {name}: namespace {namespace!r} is not the gateway's {self._namespace!r}",
                reason="WrongNamespace",
            )

    def read(self, kind: str, name: str) -> dict[str, Any] | None:
        """GET the object from the server, never the cache (None when absent); the
        cache is refreshed with it. For decisions a stale cache must not make (deletes).

        Raises:
            errors.ApiError: the read failed.
        """
        return self._read(kind, name)

    def _live(self, kind: str, name: str) -> dict[str, Any] | None:
        """The object as last known: from the cache when watching, else a GET."""
        informer = self._informers.get(kind)
        if informer is not None and informer.has_synced:
            return informer.get(name)
        return self._read(kind, name)

    def _read(self, kind: str, name: str) -> dict[str, Any] | None:
        """GET the object (None on 404) and refresh the cache with it."""
        api = self._apis[kind]
        try:
            obj = self._transport.call(
                "get",
                kind,
                name,
                lambda timeout: api.read(
                    name, self._namespace, _preload_content=False, _request_timeout=timeout
                ),
            )
        except errors.NotFound:
            return None
        self._remember(kind, obj)
        return obj

    def _write(self, verb: str, kind: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST (`create`) or PUT (`update`) the body; the cache takes the server's answer."""
        api = self._apis[kind]
        if verb == "create":

            def send(timeout: Any) -> Any:
                return api.create(
                    self._namespace,
                    body,
                    _preload_content=False,
                    _request_timeout=timeout,
                    _headers=json_headers(),
                )

        else:
            if not (body.get("metadata") or {}).get("resourceVersion"):
                # Every update is conditional on the version it was computed from.
                raise errors.Invalid(
                    f"update {kind} {name}: no resourceVersion to make the write conditional",
                    reason="Unconditional",
                )

            def send(timeout: Any) -> Any:
                return api.replace(
                    name,
                    self._namespace,
                    body,
                    _preload_content=False,
                    _request_timeout=timeout,
                    _headers=json_headers(),
                )

        obj = self._transport.call(verb, kind, name, send)
        self._remember(kind, obj)
        return obj

    def _delete(
        self, kind: str, name: str, uid: str | None, resource_version: str | None = None
    ) -> None:
        """DELETE with background propagation, only the object with `uid` (and, when given,
        still at `resource_version`: the version the decision was made on); 404 is fine,
        a failed precondition is a 409 `Conflict`."""
        api = self._apis[kind]
        options: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "propagationPolicy": "Background",
        }
        preconditions = {"uid": uid, "resourceVersion": resource_version}
        if uid or resource_version:
            options["preconditions"] = {k: v for k, v in preconditions.items() if v}
        with contextlib.suppress(errors.NotFound):
            self._transport.call(
                "delete",
                kind,
                name,
                lambda timeout: api.delete(
                    name,
                    self._namespace,
                    body=options,
                    _preload_content=False,
                    _request_timeout=timeout,
                    _headers=json_headers(),
                ),
            )

    def _remember(self, kind: str, obj: dict[str, Any]) -> None:
        informer = self._informers.get(kind)
        if informer is not None and obj.get("metadata", {}).get("name"):
            informer.put(obj)

    def _discard(self, kind: str, name: str) -> None:
        informer = self._informers.get(kind)
        if informer is not None:
            informer.discard(name)


def _owned_elsewhere(live: dict[str, Any], asking: str | None) -> str | None:
    """The endpoint `live`'s instance label names when that is not `asking`, else None.
    Objects without the label (the predecessor's) follow the adoption rules instead."""
    holder = _labels(live).get(INSTANCE_LABEL)
    if asking and holder and holder != asking:
        return str(holder)
    return None


def endpoint_candidates(kind: str, obj: dict[str, Any]) -> list[str]:
    """The endpoint(s) an object may belong to, the most specific first.

    Ours name it in `app.kubernetes.io/instance`. The predecessor's name it in their
    `app` label, else their name (without the Ingress's `inference-` prefix); a
    `{name}-canary` may be endpoint `{name}`'s canary or an endpoint of that name,
    so both are given.
    """
    labels = _labels(obj)
    instance = labels.get(INSTANCE_LABEL)
    if instance:
        return [instance]
    name = labels.get(PREDECESSOR_APP_LABEL)
    if not name:
        name = str((obj.get("metadata") or {}).get("name", ""))
        if kind == "Ingress":
            name = endpoint_of_ingress(name)
    base = base_of_canary(name)
    return [name, base] if base != name else [name]


def _stop_all(informers: dict[str, KindInformer]) -> None:
    """Stop every informer: signal all first so they wind down in parallel, then wait."""
    for informer in informers.values():
        informer.stop(0)
    for kind, informer in informers.items():
        if not informer.stop(STOP_JOIN_TIMEOUT):
            log.error("watch thread did not stop", kind=kind)
