"""The Deployment controller of the sim: one background thread for all Deployments.

After each write of a Deployment the store tells the controller, which
recomputes that Deployment's `status` at once (so `observedGeneration` catches
up) and again whenever a simulated pod becomes ready. The pod model follows the
real controller's ReplicaSets:

- creating a Deployment makes `spec.replicas` pods that become ready
  `ready_delay` seconds later;
- changing the pod template starts a rollout. RollingUpdate (the default)
  resolves `maxSurge` (rounded up, default 25%) and `maxUnavailable` (rounded
  down, default 25%; 1 when both come to 0) against `spec.replicas`, then
  repeats the real sync: create new pods while all pods < replicas + maxSurge,
  delete old pods that are not ready, then old ready pods while available pods
  stay >= replicas - maxUnavailable. Recreate deletes every old pod first and
  then creates all the new ones. Going back to an older template reuses its
  pods, as the real controller reuses the old ReplicaSet;
- a container image containing `never_ready_pattern` gives pods that exist
  (`replicas`, `updatedReplicas`) but never become ready or available, so a
  rolling update to it stalls with the old pods serving and at most maxSurge
  new pods;
- scaling adds pods that become ready after the delay, or removes pods (not
  ready ones first).

Status follows the real controller: `replicas` counts every pod, old and new,
`updatedReplicas` every new pod whether ready or not, `readyReplicas` and
`availableReplicas` the ready ones, zero counts omitted, `Available` True when
`availableReplicas >= replicas - maxUnavailable`, `Progressing` with
`NewReplicaSetCreated` / `ReplicaSetUpdated` / `NewReplicaSetAvailable` /
`ProgressDeadlineExceeded`, timestamps from the injected wall clock.

HPAs: like a real HPA controller without a metrics server, an HPA holds its
target Deployment's `spec.replicas` within [minReplicas, maxReplicas] (a
target at 0 replicas disables it), immediately rather than every 15 s, and
reports `currentReplicas`/`desiredReplicas` and its conditions in `status`.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import structlog

from k8s.sim.errors import StatusError
from k8s.sim.kinds import DEPLOYMENTS, HPAS, INGRESSES, ResourceKind
from k8s.sim.objects import Key, ObjectStore, rfc3339

log = structlog.get_logger(__name__)

_HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: Any) -> str:
    """Returns a 10-character `pod-template-hash` for a pod template."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    return "".join(_HASH_ALPHABET[b % len(_HASH_ALPHABET)] for b in digest[:10])


@dataclass(slots=True)
class _Pod:
    """One simulated pod: the template it runs and when it becomes ready."""

    template: Any
    hash: str
    ready_at: float
    serial: int
    crashing: bool

    def ready(self, now: float) -> bool:
        """True once the pod is ready (and so available: minReadySeconds is not modelled)."""
        return self.ready_at <= now


@dataclass(slots=True)
class _Rollout:
    """What the controller remembers of one Deployment: its current template and the
    pods of that template (`new`, the new ReplicaSet) and of older ones (`old`)."""

    template: Any
    hash: str
    never_ready: bool
    last_progress: float
    new: list[_Pod] = field(default_factory=list)
    old: list[_Pod] = field(default_factory=list)
    replaced: bool = False
    serials: int = 0
    rolled_out: bool = False
    progress_mark: tuple[int, int, int] | None = None


def _scaled(value: Any, desired: int, *, round_up: bool) -> int:
    """An int-or-percent rolling-update field resolved against `desired` replicas."""
    if isinstance(value, str) and value.endswith("%"):
        try:
            percent = int(value[:-1])
        except ValueError:
            return 0
        share = desired * percent
        return -(-share // 100) if round_up else share // 100
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def rolling_bounds(spec: dict[str, Any], desired: int) -> tuple[int, int]:
    """Returns (maxSurge, maxUnavailable) of a Deployment spec for `desired` replicas.

    As the real controller resolves them: maxSurge rounds up, maxUnavailable rounds
    down, both default to 25%; when both come to 0, maxUnavailable becomes 1 (the
    controller's fencepost rule); maxUnavailable never exceeds `desired`. A Recreate
    Deployment has (0, 0).
    """
    strategy = spec.get("strategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return 0, 0
    rolling = strategy.get("rollingUpdate") or {}
    surge = _scaled(rolling.get("maxSurge", "25%"), desired, round_up=True)
    unavailable = _scaled(rolling.get("maxUnavailable", "25%"), desired, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, desired)


def _without_unready_first(pods: list[_Pod], count: int, now: float) -> list[_Pod]:
    """`pods` less `count` of them, not-ready ones first, as a ReplicaSet scales down."""
    if count <= 0:
        return pods
    doomed = sorted(pods, key=lambda p: (p.ready(now), -p.ready_at))[:count]
    return [p for p in pods if not any(p is d for d in doomed)]


class _ControllerLoop:
    """One controller thread woken through `_cond`; `start()` and `stop()` (which joins)."""

    def __init__(self, name: str) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Starts the controller thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stops the controller thread and waits for it."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        raise NotImplementedError


class DeploymentController(_ControllerLoop):
    """Simulates the Deployment controller and the pods behind each Deployment.

    Args:
        store: the object store whose Deployments it drives.
        ready_delay: real seconds from pod creation to ready.
        never_ready_pattern: substring of an image that never becomes ready.
    """

    def __init__(self, store: ObjectStore, *, ready_delay: float, never_ready_pattern: str) -> None:
        super().__init__("k8s-sim-controller")
        self._store = store
        self.ready_delay = ready_delay
        self._pattern = never_ready_pattern
        self._due: dict[Key, float] = {}
        self._rollouts: dict[Key, _Rollout] = {}
        # Guards `_rollouts` between the controller thread and requests listing pods.
        self._pods_lock = threading.Lock()
        # HPA (namespace, name) -> target Deployment key, and the reverse index.
        self._hpa_target: dict[Key, Key] = {}
        self._hpas_of: dict[Key, set[str]] = {}

    def notify(self, kind: ResourceKind, key: Key, obj: dict[str, Any] | None) -> None:
        """Hears of a write (called by the store): reconciles the Deployment concerned now."""
        with self._cond:
            if kind is HPAS:
                # Keep the target index current; both the old and the new target need a look.
                old_target = self._hpa_target.pop(key, None)
                if old_target is not None:
                    self._hpas_of.get(old_target, set()).discard(key[1])
                    self._due[old_target] = 0.0
                ref = ((obj or {}).get("spec") or {}).get("scaleTargetRef") or {}
                if obj is not None and ref.get("kind") == "Deployment" and ref.get("name"):
                    target = (key[0], ref["name"])
                    self._hpa_target[key] = target
                    self._hpas_of.setdefault(target, set()).add(key[1])
                    self._due[target] = 0.0
            else:
                self._due[key] = 0.0
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
                now = time.monotonic()
                due = [k for k, at in self._due.items() if at <= now]
                for key in due:
                    del self._due[key]
                if not due:
                    wake = min(self._due.values(), default=now + 1.0)
                    self._cond.wait(max(0.001, wake - now))
                    continue
            for key in due:
                try:
                    self._reconcile(key)
                except Exception:  # a bug in one Deployment must not stop the others
                    log.exception("k8s_sim_controller_failed", namespace=key[0], name=key[1])

    def _schedule(self, key: Key, at: float) -> None:
        with self._cond:
            if key not in self._due or self._due[key] > at:
                self._due[key] = at

    def _never_ready(self, template: dict[str, Any]) -> bool:
        spec = template.get("spec") or {}
        containers = [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]
        return bool(self._pattern) and any(
            self._pattern in str(c.get("image", "")) for c in containers if isinstance(c, dict)
        )

    def _track(self, key: Key, spec: dict[str, Any], now: float) -> _Rollout:
        """Updates the pod model of `key` for its current spec; returns it."""
        template = spec.get("template") or {}
        state = self._rollouts.get(key)
        if state is None:
            state = _Rollout(
                template=template,
                hash=template_hash(template),
                never_ready=self._never_ready(template),
                last_progress=now,
            )
            self._rollouts[key] = state
        elif state.template != template and not spec.get("paused"):
            # A new ReplicaSet, or an older one again when the template goes back to it.
            pods = [*state.old, *state.new]
            state.template = template
            state.hash = template_hash(template)
            state.never_ready = self._never_ready(template)
            state.new = [p for p in pods if p.hash == state.hash]
            state.old = [p for p in pods if p.hash != state.hash]
            state.replaced = True
            state.last_progress = now
        self._sync(state, spec, now)
        return state

    def _sync(self, state: _Rollout, spec: dict[str, Any], now: float) -> None:
        """Creates and deletes pods as the real controller's sync would, until stable."""
        desired = int(spec.get("replicas", 1) or 0)
        if not state.old or spec.get("paused"):
            # Scaling only: a paused Deployment scales but does not roll.
            if not state.old:
                self._scale_new(state, desired, now)
            return
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            state.old = []  # every old pod goes before any new one is created
            self._scale_new(state, desired, now)
            return
        surge, unavailable = rolling_bounds(spec, desired)
        min_available = desired - unavailable
        while True:
            before = (len(state.new), len(state.old))
            # Scaled down mid-rollout: shed what exceeds the surge bound (simplified from
            # the real proportional scaling) and any new pods beyond `desired`.
            state.new = _without_unready_first(state.new, len(state.new) - desired, now)
            excess = len(state.new) + len(state.old) - desired - surge
            state.old = _without_unready_first(state.old, excess, now)
            # reconcileNewReplicaSet: new pods while all pods stay within replicas + maxSurge.
            room = desired + surge - len(state.new) - len(state.old)
            grow = min(room, desired - len(state.new))
            if grow > 0:
                self._scale_new(state, len(state.new) + grow, now)
            # reconcileOldReplicaSets: unhealthy old pods first, then ready ones while
            # available pods stay >= replicas - maxUnavailable.
            new_unavailable = sum(1 for p in state.new if not p.ready(now))
            budget = len(state.new) + len(state.old) - min_available - new_unavailable
            if budget > 0:
                unhealthy = sum(1 for p in state.old if not p.ready(now))
                state.old = _without_unready_first(state.old, min(budget, unhealthy), now)
                available = sum(1 for p in [*state.new, *state.old] if p.ready(now))
                state.old = _without_unready_first(state.old, available - min_available, now)
            if (len(state.new), len(state.old)) == before:
                return

    def _scale_new(self, state: _Rollout, count: int, now: float) -> None:
        """Scales the new ReplicaSet to `count` pods (created pods are ready after the delay)."""
        if len(state.new) > count:
            state.new = _without_unready_first(state.new, len(state.new) - count, now)
        ready_at = math.inf if state.never_ready else now + self.ready_delay
        while len(state.new) < count:
            state.serials += 1
            state.new.append(
                _Pod(
                    template=state.template,
                    hash=state.hash,
                    ready_at=ready_at,
                    serial=state.serials,
                    crashing=state.never_ready,
                )
            )

    def _reconcile(self, key: Key) -> None:
        try:
            deployment = self._store.get(DEPLOYMENTS, key[0], key[1])
        except StatusError:
            with self._pods_lock:
                self._rollouts.pop(key, None)
            return
        if self._autoscale(key, deployment):
            return  # the replicas write comes back as a new reconcile
        spec = deployment.get("spec") or {}
        now = time.monotonic()
        with self._pods_lock:
            state = self._track(key, spec, now)
            status = self._status(deployment, state, now)
            pending = [p.ready_at for p in [*state.new, *state.old] if now < p.ready_at < math.inf]
        self._store.write_status(DEPLOYMENTS, key, status)
        deadline = state.last_progress + float(spec.get("progressDeadlineSeconds", 600) or 600)
        if pending:
            self._schedule(key, min(pending))
        elif not state.rolled_out and spec.get("replicas", 1) and deadline >= now:
            self._schedule(key, deadline + 0.001)

    def _autoscale(self, key: Key, deployment: dict[str, Any]) -> bool:
        """Applies the HPA targeting `key`, if any; True when it rewrote spec.replicas."""
        with self._cond:
            names = sorted(self._hpas_of.get(key, ()))
        if not names:
            return False
        try:
            hpa = self._store.get(HPAS, key[0], names[0])
        except StatusError:
            return False
        spec = hpa.get("spec") or {}
        replicas = int((deployment.get("spec") or {}).get("replicas", 1) or 0)
        low = int(spec.get("minReplicas", 1) or 0)
        high = int(spec.get("maxReplicas", 1) or 1)
        stamp = rfc3339(self._store.now())
        previous = {c.get("type"): c for c in (hpa.get("status") or {}).get("conditions") or []}
        status: dict[str, Any] = {
            "currentReplicas": (deployment.get("status") or {}).get("replicas", 0),
            "desiredReplicas": replicas,
        }
        if "lastScaleTime" in (hpa.get("status") or {}):
            status["lastScaleTime"] = hpa["status"]["lastScaleTime"]
        if replicas == 0 and low != 0:
            active = (
                "False",
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
            )
            desired = 0
        else:
            active = (
                "False",
                "FailedGetResourceMetric",
                "the HPA was unable to compute the replica count: no metrics returned"
                " from resource metrics API",
            )
            desired = min(max(replicas, low), high)
        status["desiredReplicas"] = desired
        able = (
            "True",
            "SucceededGetScale",
            "the HPA controller was able to get the target's current scale",
        )
        status["conditions"] = [
            _condition("AbleToScale", able, previous.get("AbleToScale"), stamp),
            _condition("ScalingActive", active, previous.get("ScalingActive"), stamp),
        ]
        for condition in status["conditions"]:
            condition.pop("lastUpdateTime", None)
        if desired != replicas:
            status["lastScaleTime"] = stamp
            try:
                self._store.patch(
                    DEPLOYMENTS,
                    key[0],
                    key[1],
                    json.dumps(
                        {
                            # Conditional on what we read, like the real HPA's scale update.
                            "metadata": {
                                "resourceVersion": deployment["metadata"]["resourceVersion"]
                            },
                            "spec": {"replicas": desired},
                        }
                    ).encode(),
                    content_type="application/merge-patch+json",
                )
            except StatusError:
                self._schedule(key, time.monotonic() + 0.05)
                return False
        self._store.write_status(HPAS, (key[0], names[0]), status)
        return desired != replicas

    def _status(self, deployment: dict[str, Any], state: _Rollout, now: float) -> dict[str, Any]:
        spec = deployment.get("spec") or {}
        desired = int(spec.get("replicas", 1) or 0)
        new_ready = sum(1 for p in state.new if p.ready(now))
        available = new_ready + sum(1 for p in state.old if p.ready(now))
        total = len(state.new) + len(state.old)
        complete = len(state.new) == desired and new_ready == desired and not state.old
        state.rolled_out = complete
        # Progress as the real controller counts it: more new pods, more ready pods, or
        # fewer old pods than at the last look.
        mark = (len(state.new), available, len(state.old))
        previous_mark = state.progress_mark
        if previous_mark is None or (
            mark[0] > previous_mark[0] or mark[1] > previous_mark[1] or mark[2] < previous_mark[2]
        ):
            state.last_progress = now
        state.progress_mark = mark
        deadline = float(spec.get("progressDeadlineSeconds", 600) or 600)
        rs_name = f"{deployment['metadata']['name']}-{state.hash}"
        if complete:
            progressing = (
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{rs_name}" has successfully progressed.',
            )
        elif now - state.last_progress >= deadline:
            progressing = (
                "False",
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{rs_name}" has timed out progressing.',
            )
        elif new_ready == 0 and not state.replaced:
            progressing = ("True", "NewReplicaSetCreated", f'Created new replica set "{rs_name}"')
        else:
            progressing = ("True", "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.')
        is_available = available >= desired - rolling_bounds(spec, desired)[1]
        available_cond = (
            ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
            if is_available
            else (
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            )
        )
        previous = {
            c.get("type"): c for c in (deployment.get("status") or {}).get("conditions") or []
        }
        stamp = rfc3339(self._store.now())
        conditions = [
            _condition("Available", available_cond, previous.get("Available"), stamp),
            _condition("Progressing", progressing, previous.get("Progressing"), stamp),
        ]
        status: dict[str, Any] = {"observedGeneration": deployment["metadata"].get("generation", 1)}
        for name, value in (
            ("replicas", total),
            ("updatedReplicas", len(state.new)),
            ("readyReplicas", available),
            ("availableReplicas", available),
            ("unavailableReplicas", max(0, total - available)),
        ):
            if value:
                status[name] = value
        status["conditions"] = conditions
        return status

    def pods(self, namespace: str | None) -> list[dict[str, Any]]:
        """Returns the simulated Pods of every Deployment (in one namespace or all)."""
        deployments = self._store.all_deployments(namespace)
        now = time.monotonic()
        with self._pods_lock:
            members = {key: [*state.old, *state.new] for key, state in self._rollouts.items()}
        pods: list[dict[str, Any]] = []
        for deployment in deployments:
            meta = deployment["metadata"]
            for pod in members.get((meta["namespace"], meta["name"]), []):
                pods.append(_pod(deployment, pod, ready=pod.ready(now)))
        return pods


def _condition(
    kind: str, value: tuple[str, str, str], previous: dict[str, Any] | None, stamp: str
) -> dict[str, Any]:
    status, reason, message = value
    if previous and previous.get("status") == status:
        transition = previous.get("lastTransitionTime", stamp)
        same = previous.get("reason") == reason and previous.get("message") == message
        update = previous.get("lastUpdateTime", stamp) if same else stamp
    else:
        transition = update = stamp
    return {
        "type": kind,
        "status": status,
        "lastUpdateTime": update,
        "lastTransitionTime": transition,
        "reason": reason,
        "message": message,
    }


def _pod(deployment: dict[str, Any], pod: _Pod, *, ready: bool) -> dict[str, Any]:
    meta = deployment["metadata"]
    template, pod_hash, crashing = pod.template, pod.hash, pod.crashing
    suffix = template_hash([meta["uid"], pod_hash, pod.serial])[:5]
    name = f"{meta['name']}-{pod_hash}-{suffix}"
    spec = dict(template.get("spec") or {})
    spec["nodeName"] = "sim-node"
    containers = [c for c in spec.get("containers") or [] if isinstance(c, dict)]
    state: dict[str, Any] = (
        {
            "waiting": {
                "reason": "CrashLoopBackOff",
                "message": "back-off 5m0s restarting failed container",
            }
        }
        if crashing
        else {"running": {"startedAt": meta.get("creationTimestamp")}}
        if ready
        else {"waiting": {"reason": "ContainerCreating"}}
    )
    ready_text = "True" if ready else "False"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{meta['uid']}/{name}")),
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta.get("creationTimestamp"),
            "labels": {
                **((template.get("metadata") or {}).get("labels") or {}),
                "pod-template-hash": pod_hash,
            },
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": f"{meta['name']}-{pod_hash}",
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec,
        "status": {
            "phase": "Running" if ready or crashing else "Pending",
            "conditions": [
                {"type": "Ready", "status": ready_text},
                {"type": "ContainersReady", "status": ready_text},
            ],
            "podIP": f"10.244.0.{pod.serial % 250 + 2}",
            "containerStatuses": [
                {
                    "name": c.get("name", ""),
                    "image": c.get("image", ""),
                    "imageID": "",
                    "ready": ready,
                    "started": ready,
                    "restartCount": 5 if crashing else 0,
                    "state": state,
                }
                for c in containers
            ],
        },
    }


# The finalizer the AWS Load Balancer Controller puts on every Ingress it manages.
ALB_FINALIZER = "ingress.k8s.aws/resources"


class IngressFinalizerController(_ControllerLoop):
    """Simulates the AWS Load Balancer Controller's finalizer on Ingresses (off by default).

    While enabled (`delay` not None), it adds `ingress.k8s.aws/resources` to every
    Ingress it sees written without it, and removes it `delay` seconds after the
    Ingress's deletion was requested (a DELETE sets `deletionTimestamp` and keeps the
    object while a finalizer remains), as the real controller does once the load
    balancer is gone. One thread; started and stopped with the sim.

    Args:
        store: the object store whose Ingresses it finalizes.
        delay: seconds between the deletion request and the finalizer's removal, or
            None to leave Ingresses alone.
    """

    def __init__(self, store: ObjectStore, *, delay: float | None = None) -> None:
        super().__init__("k8s-sim-ingress")
        self._store = store
        self.delay = delay
        # (namespace, name) -> (monotonic due time, "add" or "remove")
        self._due: dict[Key, tuple[float, str]] = {}

    def notify(self, key: Key, obj: dict[str, Any] | None) -> None:
        """Hears of an Ingress write (called by the store, under its lock)."""
        delay = self.delay
        if obj is None or delay is None:
            return
        meta = obj["metadata"]
        finalizers = meta.get("finalizers") or []
        with self._cond:
            if meta.get("deletionTimestamp"):
                if ALB_FINALIZER in finalizers and self._due.get(key, (0.0, ""))[1] != "remove":
                    self._due[key] = (time.monotonic() + delay, "remove")
            elif ALB_FINALIZER not in finalizers:
                self._due[key] = (time.monotonic(), "add")
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
                now = time.monotonic()
                due = [(k, action) for k, (at, action) in self._due.items() if at <= now]
                for key, _ in due:
                    del self._due[key]
                if not due:
                    wake = min((at for at, _ in self._due.values()), default=now + 1.0)
                    self._cond.wait(max(0.001, wake - now))
                    continue
            for key, action in due:
                try:
                    self._apply(key, action)
                except StatusError:
                    pass  # gone or changed meanwhile: the next write brings it back here
                except Exception:  # a bug here must not stop the thread
                    log.exception("k8s_sim_ingress_controller_failed", name=key[1])

    def _apply(self, key: Key, action: str) -> None:
        current = self._store.get(INGRESSES, key[0], key[1])
        meta = current["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        if action == "add":
            if ALB_FINALIZER in finalizers or meta.get("deletionTimestamp"):
                return
            finalizers.append(ALB_FINALIZER)
        else:
            if ALB_FINALIZER not in finalizers:
                return
            finalizers.remove(ALB_FINALIZER)
        patch = {
            "metadata": {
                "resourceVersion": meta["resourceVersion"],
                "finalizers": finalizers or None,
            }
        }
        try:
            self._store.patch(
                INGRESSES,
                key[0],
                key[1],
                json.dumps(patch).encode(),
                content_type="application/merge-patch+json",
            )
        except StatusError as error:
            if error.code == 409:
                # Written meanwhile: try again on the newer object.
                with self._cond:
                    self._due.setdefault(key, (time.monotonic() + 0.01, action))
                    self._cond.notify_all()
                return
            raise
