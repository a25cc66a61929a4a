"""The sim's objects (its etcd): objects by kind, one global resourceVersion, a
bounded event history for watches.

Stored objects are never mutated after they are stored (every write builds a
new dict), so readers may serialise them outside the lock. Every write takes
the next value of one counter shared by all kinds (like an etcd revision) and
appends one event to the history that watches read from.
"""

from __future__ import annotations

import bisect
import copy
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import yaml

from k8s.sim import defaults, managed_fields
from k8s.sim.errors import StatusError, already_exists, bad_request, conflict, invalid, not_found
from k8s.sim.kinds import (
    DEPLOYMENTS,
    HPAS,
    INGRESSES,
    NAMESPACES,
    STORED_KINDS,
    VALIDATED,
    ResourceKind,
)
from k8s.sim.patches import json_patch, merge_patch, strategic_merge_patch
from k8s.sim.selectors import ObjectPredicate, selector_string

Key = tuple[str, str]
# Metadata the server owns: a write never changes these from the client's body.
_SERVER_METADATA = (
    "uid",
    "creationTimestamp",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
)
# Kinds whose writes the controllers hear about.
_CONTROLLED = (DEPLOYMENTS, HPAS, INGRESSES)
PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)


def rfc3339(seconds: float) -> str:
    """Returns a Kubernetes `Time` string (second precision, UTC, `Z`)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class WatchEvent:
    """One write as watches see it: the object after it (`obj`) and before it (`old`)."""

    rv: int
    plural: str
    namespace: str
    type: str
    obj: dict[str, Any]
    old: dict[str, Any] | None = None
    lines: dict[str, bytes] = field(default_factory=dict)


class WatchExpired(Exception):
    """The resourceVersion a watch asked for is older than the history kept, or newer
    than the server's (its history was reset, as by an etcd restore)."""

    def __init__(
        self, requested: int, oldest: int, *, message: str | None = None, future: bool = False
    ) -> None:
        super().__init__(message or f"too old resource version: {requested} ({oldest})")
        self.message = str(self)
        self.requested = requested
        self.future = future


class ObjectStore:
    """All objects of the cluster plus the watch history; every method is thread-safe.

    Args:
        history: how many write events watches can resume from.
        clock: wall time in seconds for every timestamp written.
        validate: check objects with strict schemas (422 on invalid) when True.
        on_write: called with (kind, (namespace, name), object or None when
            deleted) after each write of a Deployment or an HPA (under the store
            lock; it must not call back into the store).
    """

    def __init__(
        self,
        *,
        history: int,
        clock: Callable[[], float],
        validate: bool,
        on_write: Callable[[ResourceKind, Key, dict[str, Any] | None], None] | None = None,
    ) -> None:
        self.cond = threading.Condition(threading.Lock())
        self._history = max(1, history)
        self._clock = clock
        self._objects: dict[str, dict[Key, dict[str, Any]]] = {k.plural: {} for k in STORED_KINDS}
        self._rv = 0
        self._events: list[WatchEvent] = []
        self._base = 0
        self._compacted_rv = 0
        self._on_write = on_write
        self.closed = False
        self.watch_epoch = 0
        self.abrupt_drop = False
        self._validators = None
        if validate:
            # kubernetes-validate is only needed when validating (an optional dependency).
            from k8s.sim.validation import SchemaValidators  # noqa: PLC0415 - loads schemas: only when asked

            self._validators = SchemaValidators.shared()
        for name in ("default", "gco-inference", "kube-system"):
            self.create(NAMESPACES, "", {"metadata": {"name": name}})

    # ---- reads -------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        """The newest resourceVersion written (0 before the first write)."""
        return self._rv

    def now(self) -> float:
        """Wall time from the injected clock."""
        return self._clock()

    def get(self, kind: ResourceKind, namespace: str, name: str) -> dict[str, Any]:
        """Returns the stored object, or raises the 404 `StatusError`."""
        obj = self._objects[kind.plural].get((namespace, name))
        if obj is None:
            raise not_found(kind.qualified, name, group=kind.group, plural=kind.plural)
        return obj

    def list(
        self, kind: ResourceKind, namespace: str | None, match: ObjectPredicate | None
    ) -> tuple[list[dict[str, Any]], int]:
        """Returns the matching objects sorted by (namespace, name) and the list resourceVersion."""
        with self.cond:
            table = self._objects[kind.plural]
            rv = self._rv
            keys = (
                sorted(table)
                if namespace is None
                else sorted(k for k in table if k[0] == namespace)
            )
            objects = [table[k] for k in keys]
        if match is not None:
            objects = [o for o in objects if match(o)]
        return objects, rv

    def all_deployments(self, namespace: str | None) -> list[dict[str, Any]]:
        """Returns the Deployments of one namespace (or all), for deriving Pods."""
        objects, _ = self.list(DEPLOYMENTS, namespace, None)
        return objects

    # ---- writes ------------------------------------------------------------

    def _check_type(self, kind: ResourceKind, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request("the body of the request was not a JSON object")
        body.setdefault("apiVersion", kind.api_version)
        body.setdefault("kind", kind.kind)
        if body["apiVersion"] != kind.api_version:
            raise bad_request(
                f"the API version in the data ({body['apiVersion']}) does not match"
                f" the expected API version ({kind.api_version})"
            )
        if body["kind"] != kind.kind:
            raise bad_request(
                f"the kind in the data ({body['kind']}) does not match the expected"
                f" kind ({kind.kind})"
            )
        if not isinstance(body.get("metadata") or {}, dict):
            raise bad_request("metadata must be an object")
        body["metadata"] = body.get("metadata") or {}
        return body

    def _validate(self, kind: ResourceKind, obj: dict[str, Any]) -> None:
        if self._validators is None or kind.kind not in VALIDATED:
            return
        causes = self._validators.causes(obj)
        if causes:
            raise invalid(kind.kind, obj["metadata"].get("name", ""), causes, group=kind.group)

    def _commit(
        self,
        kind: ResourceKind,
        key: Key,
        obj: dict[str, Any] | None,
        event_type: str,
        old: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """Stores `obj` (None deletes) with the next resourceVersion; caller holds the lock."""
        self._rv += 1
        table = self._objects[kind.plural]
        if obj is None:
            assert old is not None
            shown = {**old, "metadata": {**old["metadata"], "resourceVersion": str(self._rv)}}
            del table[key]
        else:
            obj["metadata"]["resourceVersion"] = str(self._rv)
            table[key] = obj
            shown = obj
        self._events.append(WatchEvent(self._rv, kind.plural, key[0], event_type, shown, old))
        overflow = len(self._events) - self._history
        if overflow > 0:
            self._compacted_rv = self._events[overflow - 1].rv
            del self._events[:overflow]
            self._base += overflow
        self.cond.notify_all()
        if kind in _CONTROLLED and self._on_write is not None:
            self._on_write(kind, key, obj)
        return shown

    def create(self, kind: ResourceKind, namespace: str, body: Any) -> dict[str, Any]:
        """Creates an object from a client body; returns the stored object.

        Raises:
            StatusError: 400 (resourceVersion set, mismatched type or namespace), 404
                (namespace missing), 409 AlreadyExists, 422 Invalid.
        """
        obj = self._check_type(kind, body)
        meta = obj["metadata"]
        name = meta.get("name")
        if not name:
            raise invalid(
                kind.kind,
                "",
                [
                    {
                        "reason": "FieldValueRequired",
                        "message": "Required value: name or generateName is required",
                        "field": "metadata.name",
                    }
                ],
                group=kind.group,
            )
        if meta.get("resourceVersion"):
            raise bad_request("resourceVersion should not be set on objects to be created")
        if kind.namespaced:
            if meta.get("namespace", namespace) != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the"
                    " namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        for server_field in _SERVER_METADATA:
            meta.pop(server_field, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = rfc3339(self._clock())
        if kind.has_generation:
            meta["generation"] = 1
        if kind.has_status:
            obj.pop("status", None)
        defaults.apply_defaults(obj, None)
        self._validate(kind, obj)
        self._record_manager(kind, obj, managed_fields.DEFAULT_MANAGER, None)
        key = (namespace if kind.namespaced else "", name)
        with self.cond:
            if self.closed:
                raise StatusError(503, "the server is shutting down", reason="ServiceUnavailable")
            if kind.namespaced and ("", namespace) not in self._objects[NAMESPACES.plural]:
                raise not_found("namespaces", namespace, group="", plural="namespaces")
            if key in self._objects[kind.plural]:
                raise already_exists(kind.qualified, name, group=kind.group, plural=kind.plural)
            return self._commit(kind, key, obj, "ADDED", None)

    def _prepare_update(
        self, kind: ResourceKind, current: dict[str, Any], proposed: Any, subresource: str | None
    ) -> dict[str, Any]:
        """Builds the object a write would store from the client's full proposed object."""
        proposed = self._check_type(kind, proposed)
        meta = proposed["metadata"]
        cur_meta = current["metadata"]
        if meta.get("name", cur_meta["name"]) != cur_meta["name"]:
            raise bad_request(
                f"the name of the object ({meta.get('name')}) does not match the"
                f" name on the URL ({cur_meta['name']})"
            )
        if (
            kind.namespaced
            and meta.get("namespace", cur_meta["namespace"]) != cur_meta["namespace"]
        ):
            raise bad_request(
                "the namespace of the provided object does not match the namespace"
                " sent on the request"
            )
        wanted_rv = meta.get("resourceVersion")
        if wanted_rv and str(wanted_rv) != cur_meta["resourceVersion"]:
            raise conflict(kind.qualified, cur_meta["name"], group=kind.group, plural=kind.plural)
        if cur_meta.get("deletionTimestamp"):
            added = [
                f for f in meta.get("finalizers") or [] if f not in cur_meta.get("finalizers", [])
            ]
            if added:
                raise invalid(
                    kind.kind,
                    cur_meta["name"],
                    [
                        {
                            "reason": "FieldValueForbidden",
                            "message": "Forbidden: no new finalizers can be added if the"
                            f" object is being deleted, found new finalizers {json.dumps(added)}",
                            "field": "metadata.finalizers",
                        }
                    ],
                    group=kind.group,
                )
        if subresource == "status":
            obj = copy.deepcopy(current)
            if "status" in proposed:
                obj["status"] = proposed["status"]
            else:
                obj.pop("status", None)
            return obj
        obj = proposed
        new_meta = {k: v for k, v in meta.items() if k not in _SERVER_METADATA}
        for server_field in (*_SERVER_METADATA, "name", "namespace"):
            if server_field in cur_meta:
                new_meta[server_field] = cur_meta[server_field]
        new_meta["resourceVersion"] = cur_meta["resourceVersion"]
        obj["metadata"] = new_meta
        if kind.has_status:
            if "status" in current:
                obj["status"] = copy.deepcopy(current["status"])
            else:
                obj.pop("status", None)
        defaults.apply_defaults(obj, current)
        if kind is DEPLOYMENTS:
            old_selector = (current.get("spec") or {}).get("selector")
            new_selector = (obj.get("spec") or {}).get("selector")
            if old_selector != new_selector:
                raise invalid(
                    kind.kind,
                    cur_meta["name"],
                    [
                        {
                            "reason": "FieldValueInvalid",
                            "message": f"Invalid value: {json.dumps(new_selector)}:"
                            " field is immutable",
                            "field": "spec.selector",
                        }
                    ],
                    group=kind.group,
                )
        annotations_changed = kind.generation_counts_annotations and (
            new_meta.get("annotations") or {}
        ) != (cur_meta.get("annotations") or {})
        if kind.has_generation and (obj.get("spec") != current.get("spec") or annotations_changed):
            new_meta["generation"] = int(cur_meta.get("generation", 1)) + 1
        return obj

    def _record_manager(
        self, kind: ResourceKind, obj: dict[str, Any], manager: str, subresource: str | None
    ) -> None:
        managed_fields.record(
            obj, manager, subresource, api_version=kind.api_version, time=rfc3339(self._clock())
        )

    def _write_update(
        self,
        kind: ResourceKind,
        key: Key,
        expected: dict[str, Any],
        obj: dict[str, Any],
        manager: tuple[str, str | None],
    ) -> dict[str, Any]:
        """Stores `obj` unless the object changed since `expected` was read (then 409);
        `manager` (field manager, subresource) is recorded in its managedFields."""
        self._validate(kind, obj)
        with self.cond:
            current = self._objects[kind.plural].get(key)
            if current is None:
                raise not_found(kind.qualified, key[1], group=kind.group, plural=kind.plural)
            if current is not expected:
                raise conflict(kind.qualified, key[1], group=kind.group, plural=kind.plural)
            if obj == current:
                # A write that changes nothing is not a write: no new resourceVersion, no event.
                return current
            self._record_manager(kind, obj, *manager)
            shown = self._commit(kind, key, obj, "MODIFIED", current)
            if _finalized(shown):
                # Deletion was pending on finalizers and the last one went: the object goes.
                self._commit(kind, key, None, "DELETED", shown)
            return shown

    def replace(
        self,
        kind: ResourceKind,
        namespace: str,
        name: str,
        body: Any,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """PUT: replaces the object (or only its status); returns the stored object."""
        key = (namespace if kind.namespaced else "", name)
        for _ in range(3):
            current = self.get(kind, key[0], name)
            # _prepare_update consumes its input; a retry needs the client's body unchanged.
            obj = self._prepare_update(kind, current, copy.deepcopy(body), subresource)
            try:
                return self._write_update(
                    kind, key, current, obj, (managed_fields.DEFAULT_MANAGER, subresource)
                )
            except StatusError as error:
                # Lost a race with another writer between read and write: an unconditional
                # PUT retries on the newer object, a conditional one is a real conflict.
                if error.code != 409 or (body.get("metadata") or {}).get("resourceVersion"):
                    raise
        raise conflict(kind.qualified, name, group=kind.group, plural=kind.plural)

    def patch(
        self,
        kind: ResourceKind,
        namespace: str,
        name: str,
        raw: bytes,
        *,
        content_type: str,
        subresource: str | None = None,
        field_manager: str | None = None,
    ) -> dict[str, Any]:
        """PATCH with one of the four patch types; returns the stored object."""
        key = (namespace if kind.namespaced else "", name)
        patch_body = parse_patch(raw, content_type, field_manager)
        for _ in range(5):
            current = self.get(kind, key[0], name)
            patched = apply_patch(current, patch_body, content_type)
            obj = self._prepare_update(kind, current, patched, subresource)
            try:
                return self._write_update(
                    kind,
                    key,
                    current,
                    obj,
                    (field_manager or managed_fields.DEFAULT_MANAGER, subresource),
                )
            except StatusError as error:
                if error.code != 409 or _patch_carries_rv(patch_body):
                    raise
        raise conflict(kind.qualified, name, group=kind.group, plural=kind.plural)

    def write_status(self, kind: ResourceKind, key: Key, status: dict[str, Any]) -> None:
        """Controller write of an object's status (no generation change; no-op when equal)."""
        with self.cond:
            current = self._objects[kind.plural].get(key)
            if current is None or current.get("status") == status or self.closed:
                return
            obj = {**current, "metadata": dict(current["metadata"]), "status": status}
            self._record_manager(kind, obj, managed_fields.CONTROLLER_MANAGER, "status")
            self._commit(kind, key, obj, "MODIFIED", current)

    def delete(
        self, kind: ResourceKind, namespace: str, name: str, options: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Deletes the object (a namespace with everything in it); returns the deleted object.

        An object with finalizers is only marked: `deletionTimestamp` set (generation
        bumped), kept until an update empties its finalizers; returned as marked.
        """
        key = (namespace if kind.namespaced else "", name)
        preconditions = (options or {}).get("preconditions") or {}
        with self.cond:
            current = self._objects[kind.plural].get(key)
            if current is None:
                raise not_found(kind.qualified, name, group=kind.group, plural=kind.plural)
            meta = current["metadata"]
            if preconditions.get("resourceVersion") not in (None, meta["resourceVersion"]):
                raise conflict(kind.qualified, name, group=kind.group, plural=kind.plural)
            if preconditions.get("uid") not in (None, meta["uid"]):
                raise StatusError(
                    409,
                    f"Precondition failed: UID in precondition:"
                    f" {preconditions['uid']}, UID in object meta: {meta['uid']}",
                    reason="Conflict",
                )
            if kind is not NAMESPACES and meta.get("finalizers"):
                # Finalizers pending: mark the object deleted and keep it until an update
                # empties them (the controllers owning them finish first).
                if meta.get("deletionTimestamp"):
                    return current
                new_meta = {
                    **meta,
                    "deletionTimestamp": rfc3339(self._clock()),
                    "deletionGracePeriodSeconds": 0,
                }
                if kind.has_generation:
                    new_meta["generation"] = int(meta.get("generation", 1)) + 1
                return self._commit(
                    kind, key, {**current, "metadata": new_meta}, "MODIFIED", current
                )
            if kind is NAMESPACES:
                for other in STORED_KINDS:
                    if other.namespaced:
                        for other_key in [k for k in self._objects[other.plural] if k[0] == name]:
                            self._commit(
                                other,
                                other_key,
                                None,
                                "DELETED",
                                self._objects[other.plural][other_key],
                            )
            shown = self._commit(kind, key, None, "DELETED", current)
        if kind is NAMESPACES:
            shown = {
                **shown,
                "metadata": {**shown["metadata"], "deletionTimestamp": rfc3339(self._clock())},
                "status": {"phase": "Terminating"},
            }
        return shown

    # ---- watches -----------------------------------------------------------

    def watch_start(
        self,
        kind: ResourceKind,
        namespace: str | None,
        rv_text: str | None,
        *,
        send_initial: bool = False,
    ) -> tuple[int, list[dict[str, Any]] | None, int]:
        """Positions a new watch: returns (cursor, initial objects or None, resourceVersion).

        No resourceVersion (or "0"), or `send_initial`, gives the current objects
        of the kind (a synthetic list, taken atomically with the cursor so no
        event is lost or doubled); otherwise the watch resumes after `rv_text`.

        Raises:
            WatchExpired: `rv_text` is older than the history kept.
            StatusError: 400 when `rv_text` is not a number.
        """
        rv: int | None = None
        if rv_text not in (None, "", "0"):
            try:
                rv = int(str(rv_text))
            except ValueError as error:
                raise bad_request(f"invalid resource version: {rv_text}") from error
        with self.cond:
            if rv is None or send_initial:
                table = self._objects.get(kind.plural, {})
                keys = sorted(k for k in table if namespace is None or k[0] == namespace)
                return self._base + len(self._events), [table[k] for k in keys], self._rv
            if rv < self._compacted_rv:
                raise WatchExpired(rv, self._compacted_rv)
            if rv > self._rv:
                # A resourceVersion from another history (the store was reset, as after
                # an etcd restore): nothing to resume from. Answered like a compacted one,
                # 410 Expired, so the client lists again. (A real kube-apiserver's watch
                # cache answers this with silence until it reaches that version; clients
                # must also notice a list older than what they saw, see k8s.informer.)
                raise WatchExpired(
                    rv,
                    self._rv,
                    message=f"too old resource version: {rv} ({self._rv}):"
                    " newer than the server's, its history was reset",
                    future=True,
                )
            offset = bisect.bisect_right(self._events, rv, key=lambda e: e.rv)
            return self._base + offset, None, self._rv

    def watch_wait(
        self, cursor: int, timeout: float, epoch: int
    ) -> tuple[list[WatchEvent], int, int]:
        """Waits up to `timeout` for events at or after `cursor`.

        Returns (events, next cursor, resourceVersion seen). Returns no events
        when the store closes or `drop_watches` bumped the epoch.

        Raises:
            WatchExpired: the watcher fell behind the history kept.
        """
        with self.cond:
            self.cond.wait_for(
                lambda: (
                    self.closed
                    or self.watch_epoch != epoch
                    or self._base + len(self._events) > cursor
                ),
                timeout,
            )
            if cursor < self._base:
                raise WatchExpired(
                    self._events[0].rv - 1 if self._events else self._rv, self._compacted_rv
                )
            events = self._events[cursor - self._base :]
            return events, cursor + len(events), self._rv

    def reopen(self) -> None:
        """Accepts writes and watches again after `close()` (an API server restart)."""
        with self.cond:
            self.closed = False

    def close(self) -> None:
        """Ends every watch; later writes are refused."""
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def drop_watches(self, *, abrupt: bool = False) -> None:
        """Ends every open watch stream now (clients reconnect from their last RV)."""
        with self.cond:
            self.abrupt_drop = abrupt
            self.watch_epoch += 1
            self.cond.notify_all()


def _finalized(obj: dict[str, Any]) -> bool:
    """True for an object whose deletion was requested and has no finalizer left."""
    meta = obj["metadata"]
    return bool(meta.get("deletionTimestamp")) and not meta.get("finalizers")


def parse_patch(raw: bytes, content_type: str, field_manager: str | None) -> Any:
    """Decodes a PATCH body for `content_type`; raises 400/415 like the API server."""
    if content_type not in PATCH_TYPES:
        raise StatusError(
            415,
            f"the body of the request was in an unknown format - accepted media"
            f" types include: {', '.join(PATCH_TYPES)}",
        )
    if content_type == "application/apply-patch+yaml":
        if not field_manager:
            raise bad_request("PATCH, application/apply-patch+yaml requires fieldManager parameter")
        try:
            return yaml.safe_load(raw.decode() or "{}")
        except yaml.YAMLError as error:
            raise bad_request(f"error decoding YAML: {error}") from error
    try:
        body = json.loads(raw or b"null")
    except ValueError as error:
        raise bad_request(f"error decoding patch: {error}") from error
    if content_type != "application/json-patch+json" and not isinstance(body, dict):
        raise bad_request(
            "json: cannot unmarshal array into Go value of type map[string]interface {}"
        )
    return body


def apply_patch(current: dict[str, Any], patch_body: Any, content_type: str) -> dict[str, Any]:
    """Returns a fresh copy of `current` with the decoded patch applied."""
    if content_type == "application/json-patch+json":
        result = json_patch(current, patch_body)
    elif content_type == "application/merge-patch+json":
        result = merge_patch(current, patch_body)
    else:
        result = strategic_merge_patch(current, patch_body)
    if not isinstance(result, dict):
        raise bad_request("the patch did not produce a JSON object")
    return copy.deepcopy(result)


def _patch_carries_rv(patch_body: Any) -> bool:
    if isinstance(patch_body, dict):
        return bool((patch_body.get("metadata") or {}).get("resourceVersion"))
    return any(
        isinstance(op, dict) and "resourceVersion" in str(op.get("path", ""))
        for op in patch_body or []
    )


def scale_of(deployment: dict[str, Any]) -> dict[str, Any]:
    """Returns the `autoscaling/v1` `Scale` view of a Deployment."""
    meta = deployment["metadata"]
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": spec.get("replicas", 1)},
        "status": {
            "replicas": status.get("replicas", 0),
            "selector": selector_string((spec.get("selector") or {}).get("matchLabels") or {}),
        },
    }
