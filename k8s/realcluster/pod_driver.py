"""The pod-status driver: a kubelet stand-in for a control plane without nodes.

A real control plane without a kubelet creates pods (the ReplicaSet controller) but
nothing binds or runs them. The driver does what kwok's default stages do, through the
API server's own subresources, for one Node it registers (`local-node`, Ready):

- a pod without `spec.nodeName` is bound to the node (`pods/binding`, as a scheduler);
- a bound pod that has not started gets `Running` (`pods/status`: started containers,
  not ready, a pod IP);
- `ready_delay` seconds later it gets `Ready` and `ContainersReady` True, except a pod
  with a container image containing `never_ready_pattern` (default `crashloop`, the
  convention of `k8s.sim`): its container stays waiting in `CrashLoopBackOff` with
  restarts, never ready;
- a bound pod with a `deletionTimestamp` is deleted at once (grace 0, the kubelet's
  confirmation), uid-preconditioned.

Readiness probes and `initialDelaySeconds` are not run: a pod is ready `ready_delay`
after it starts. One thread lists every pod and then watches for `WATCH_SECONDS`, over
and over (each relist retries whatever failed); a second thread applies the delayed
readiness. `stop()` ends both within a watch's read timeout.
"""

from __future__ import annotations

import heapq
import ipaddress
import itertools
import json
import threading
import time
from datetime import UTC, datetime
from typing import Any

import structlog
import urllib3
from kubernetes import client

log = structlog.get_logger(__name__)

NODE_NAME = "local-node"
NODE_IP = "127.0.0.1"
POD_NETWORK = ipaddress.ip_network("10.244.0.0/16")
# Each watch ends after this long; the relist that follows retries any failed step.
WATCH_SECONDS = 5
REQUEST_TIMEOUT = 10
STRATEGIC = "application/strategic-merge-patch+json"

BIND, START, READY, DELETE = "bind", "start", "ready", "delete"


def now_rfc3339() -> str:
    """The current UTC time as the API server writes it (seconds, `Z`)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def never_ready(pod: dict[str, Any], pattern: str) -> bool:
    """True when a container image of `pod` contains `pattern`."""
    containers = (pod.get("spec") or {}).get("containers") or []
    return any(pattern in (c.get("image") or "") for c in containers)


def next_step(pod: dict[str, Any], pattern: str) -> str | None:
    """What the driver does next with `pod`: BIND, START, READY, DELETE or None."""
    meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    if meta.get("deletionTimestamp"):
        return DELETE if spec.get("nodeName") else None
    if not spec.get("nodeName"):
        return BIND
    if not status.get("containerStatuses"):
        return START
    if never_ready(pod, pattern):
        return None
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    return None if conditions.get("Ready") == "True" else READY


def _condition(kind: str, ready: bool, at: str) -> dict[str, Any]:
    body: dict[str, Any] = {"type": kind, "status": "True" if ready else "False"}
    body["lastTransitionTime"] = at
    body["lastProbeTime"] = None
    if not ready:
        body["reason"] = "ContainersNotReady"
    return body


def status_patch(pod: dict[str, Any], *, ready: bool, pod_ip: str, pattern: str) -> dict[str, Any]:
    """The `pods/status` patch of a started pod (`ready` or not), as a kubelet writes it."""
    at = now_rfc3339()
    crashing = never_ready(pod, pattern)
    ready = ready and not crashing
    started = (pod.get("status") or {}).get("startTime") or at
    containers = []
    for container in (pod.get("spec") or {}).get("containers") or []:
        state: dict[str, Any] = (
            {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off restarting"}}
            if crashing
            else {"running": {"startedAt": started}}
        )
        containers.append(
            {
                "name": container.get("name", ""),
                "image": container.get("image", ""),
                "imageID": "",
                "ready": ready,
                "started": not crashing,
                "restartCount": 5 if crashing else 0,
                "state": state,
            }
        )
    return {
        "status": {
            "phase": "Running",
            "hostIP": NODE_IP,
            "hostIPs": [{"ip": NODE_IP}],
            "podIP": pod_ip,
            "podIPs": [{"ip": pod_ip}],
            "startTime": started,
            "conditions": [
                {"type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": at},
                {"type": "Initialized", "status": "True", "lastTransitionTime": at},
                _condition("ContainersReady", ready, at),
                _condition("Ready", ready, at),
            ],
            "containerStatuses": containers,
        }
    }


def node_object() -> dict[str, Any]:
    """The one Node pods are bound to: Ready, room for every test's pods."""
    capacity = {"cpu": "64", "memory": "256Gi", "pods": "1000", "ephemeral-storage": "1Ti"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": NODE_NAME,
            "labels": {"kubernetes.io/hostname": NODE_NAME, "kubernetes.io/os": "linux"},
        },
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "addresses": [{"type": "InternalIP", "address": NODE_IP}],
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "pod-status driver",
                    "lastHeartbeatTime": now_rfc3339(),
                    "lastTransitionTime": now_rfc3339(),
                }
            ],
        },
    }


class PodDriver:
    """Binds, starts and readies every pod of the cluster (see the module doc)."""

    def __init__(
        self,
        api: client.ApiClient,
        *,
        ready_delay: float = 0.5,
        never_ready_pattern: str = "crashloop",
    ) -> None:
        self._core = client.CoreV1Api(api)
        self._ready_delay = ready_delay
        self._pattern = never_ready_pattern
        self._stopping = threading.Event()
        self._timers: list[tuple[float, int, str, str, str]] = []
        self._timer_lock = threading.Condition()
        self._scheduled: set[str] = set()
        self._sequence = itertools.count()
        self._addresses = itertools.count(2)  # next() is atomic: both threads draw
        self._pod_ips: dict[str, str] = {}
        self._response: urllib3.HTTPResponse | None = None
        self._threads = [
            threading.Thread(target=self._watch_loop, name="pod-driver-watch", daemon=True),
            threading.Thread(target=self._timer_loop, name="pod-driver-ready", daemon=True),
        ]

    def start(self) -> PodDriver:
        """Registers the Node, then starts the threads."""
        body = node_object()
        try:
            self._core.create_node(body, _request_timeout=REQUEST_TIMEOUT)
        except client.ApiException as error:
            if error.status != 409:
                raise
        # Node create keeps status today, but the status subresource is the contract.
        self._core.patch_node_status(
            NODE_NAME,
            {"status": body["status"]},
            _content_type=STRATEGIC,
            _request_timeout=REQUEST_TIMEOUT,
        )
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Ends both threads (a blocked watch read is cut by shutting its socket)."""
        self._stopping.set()
        with self._timer_lock:
            self._timer_lock.notify_all()
        response = self._response
        if response is not None:
            try:
                response.shutdown()  # unblocks the watch thread's read at once
            except (ValueError, RuntimeError, OSError) as error:
                log.debug("pod driver watch shutdown skipped", reason=str(error))
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=REQUEST_TIMEOUT + WATCH_SECONDS)

    # -- watch thread -----------------------------------------------------

    def _watch_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                listed = self._core.list_pod_for_all_namespaces(
                    _preload_content=False, _request_timeout=REQUEST_TIMEOUT
                )
                body = json.loads(listed.data)
                for pod in body.get("items") or []:
                    self._handle(pod)
                self._watch(body["metadata"]["resourceVersion"])
            except Exception as error:  # a failed round is retried by the next relist
                if not self._stopping.is_set():
                    log.warning("pod driver round failed", error=str(error)[:200])
                    self._stopping.wait(1.0)

    def _watch(self, resource_version: str) -> None:
        response = self._core.list_pod_for_all_namespaces(
            watch=True,
            resource_version=resource_version,
            timeout_seconds=WATCH_SECONDS,
            allow_watch_bookmarks=False,
            _preload_content=False,
            _request_timeout=(REQUEST_TIMEOUT, WATCH_SECONDS + REQUEST_TIMEOUT),
        )
        self._response = response
        try:
            buffer = b""
            # read1, as the informer reads: stream() raises at the server's normal end
            # of a timed watch ("Response ended prematurely").
            while chunk := response.read1(65536):
                buffer += chunk
                *complete, buffer = buffer.split(b"\n")
                for line in complete:
                    if line.strip() and not self._event(json.loads(line)):
                        return
        finally:
            self._response = None
            response.release_conn()

    def _event(self, event: dict[str, Any]) -> bool:
        """Handles one watch event; False when the watch must end (an ERROR event)."""
        kind = event.get("type")
        if kind == "ERROR":
            return False
        if kind in ("ADDED", "MODIFIED"):
            self._handle(event["object"])
        elif kind == "DELETED":
            self._pod_ips.pop(event["object"]["metadata"].get("uid", ""), None)
        return True

    def _handle(self, pod: dict[str, Any]) -> None:
        step = next_step(pod, self._pattern)
        meta = pod["metadata"]
        name, namespace = meta["name"], meta["namespace"]
        try:
            if step == BIND:
                self._core.create_namespaced_pod_binding(
                    name,
                    namespace,
                    {
                        "apiVersion": "v1",
                        "kind": "Binding",
                        "metadata": {"name": name, "uid": meta["uid"]},
                        "target": {"apiVersion": "v1", "kind": "Node", "name": NODE_NAME},
                    },
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT,
                )
            elif step == START:
                self._patch_status(pod, ready=False)
                self._schedule(pod)
            elif step == READY:
                self._schedule(pod)
            elif step == DELETE:
                self._core.delete_namespaced_pod(
                    name,
                    namespace,
                    body={"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}},
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT,
                )
        except client.ApiException as error:
            # 404/409: the pod went or moved on; its next event (or relist) says what next.
            if error.status not in (404, 409):
                log.warning("pod driver step failed", step=step, pod=name, status=error.status)

    def _patch_status(self, pod: dict[str, Any], *, ready: bool) -> None:
        meta = pod["metadata"]
        uid = meta["uid"]
        pod_ip = self._pod_ips.get(uid) or (pod.get("status") or {}).get("podIP")
        if not pod_ip:
            pod_ip = str(POD_NETWORK[next(self._addresses)])
        self._pod_ips[uid] = pod_ip
        self._core.patch_namespaced_pod_status(
            meta["name"],
            meta["namespace"],
            status_patch(pod, ready=ready, pod_ip=pod_ip, pattern=self._pattern),
            _content_type=STRATEGIC,
            _preload_content=False,
            _request_timeout=REQUEST_TIMEOUT,
        )

    def set_ready_delay(self, seconds: float) -> None:
        """Changes the delay for pods scheduled from now on (as the sim's `set_ready_delay`)."""
        with self._timer_lock:
            self._ready_delay = float(seconds)

    # -- readiness thread -------------------------------------------------

    def _schedule(self, pod: dict[str, Any]) -> None:
        if never_ready(pod, self._pattern):
            return
        meta = pod["metadata"]
        with self._timer_lock:
            if meta["uid"] in self._scheduled:
                return
            self._scheduled.add(meta["uid"])
            due = time.monotonic() + self._ready_delay
            entry = (due, next(self._sequence), meta["namespace"], meta["name"], meta["uid"])
            heapq.heappush(self._timers, entry)
            self._timer_lock.notify_all()

    def _timer_loop(self) -> None:
        while not self._stopping.is_set():
            with self._timer_lock:
                wait = (self._timers[0][0] - time.monotonic()) if self._timers else 1.0
                if wait > 0:
                    self._timer_lock.wait(timeout=wait)
                    continue
                _due, _seq, namespace, name, uid = heapq.heappop(self._timers)
                self._scheduled.discard(uid)
            self._make_ready(namespace, name, uid)

    def _make_ready(self, namespace: str, name: str, uid: str) -> None:
        try:
            response = self._core.read_namespaced_pod(
                name, namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
            )
            pod = json.loads(response.data)
            if pod["metadata"]["uid"] == uid and next_step(pod, self._pattern) == READY:
                self._patch_status(pod, ready=True)
        except client.ApiException as error:
            if error.status != 404:
                log.warning("pod driver ready failed", pod=name, status=error.status)
