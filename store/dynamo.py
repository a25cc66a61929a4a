"""DynamoDB access for the endpoints table: the only module that talks to boto3.

`DynamoEndpointStore` owns one boto3 client with timeouts and bounded retries
(botocore "standard" mode backs off on throttling, 5xx and timeouts). Every
write is an update expression or a conditional put, never a whole-item put of
old data, so attributes written by the predecessor survive. Spec changes are
conditional on the `updated_at` read just before (a lost race raises
`ConditionFailed`, nothing is overwritten); status writes touch only
`region_status.<region>`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import boto3
import structlog
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from store import clusters, errors
from store.commands import Rule
from store.convert import plain, to_dynamo
from store.item import KEY, LoadedItem, load_item
from store.model import (
    Endpoint,
    RegionStatus,
    next_timestamp,
)
from store.pagination import PageGuard
from store.rollout import ATTRIBUTE as ROLLOUT
from store.rollout import Halt
from store.validation import validate_item

log = structlog.get_logger(__name__)

#: Key prefix of the per-region leader epoch records (`take_epoch`). `#` is never part of
#: an endpoint name (a DNS-1035 label), so no endpoint can collide with one, and they
#: carry no `target_regions`, so the predecessor, which filters on it, skips them too.
EPOCH_RECORD_PREFIX = "#leader-epoch/"
#: Attribute of an epoch record per cluster of the region: the epoch it last took.
CLUSTER_ATTRIBUTE_PREFIX = "cluster/"
_THROTTLING = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "Throttling",
    }
)
_UNAVAILABLE = frozenset({"InternalServerError", "ServiceUnavailable", "InternalFailure"})
_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()
# The first write on an item without a region_status map, and its race with
# another region doing the same, converge within a few rounds.
_STATUS_WRITE_ROUNDS = 4
_SESSION: boto3.session.Session | None = None
_SESSION_LOCK = threading.RLock()


class _Expression:
    """Collects attribute names and values for one DynamoDB expression set."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def path(self, dotted: str) -> str:
        """Return `dotted` ("spec.image") as placeholders ("#n1.#n2")."""
        segments = dotted.split(".")
        if not all(segments):
            raise ValueError(f"bad attribute path {dotted!r}")
        return self.names_of(*segments)

    def names_of(self, *segments: str) -> str:
        """Return the path of `segments` as placeholders, none of them split on dots
        (a cluster name is the operator's, and may hold one)."""
        parts = []
        for segment in segments:
            placeholder = next((p for p, s in self.names.items() if s == segment), None)
            if placeholder is None:
                placeholder = f"#n{len(self.names)}"
                self.names[placeholder] = segment
            parts.append(placeholder)
        return ".".join(parts)

    def value(self, value: Any) -> str:
        """Return a placeholder for `value`, serialized for the low-level client."""
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = _SERIALIZER.serialize(to_dynamo(value))
        return placeholder

    def arguments(self) -> dict[str, Any]:
        """The ExpressionAttributeNames/Values arguments (only those that are non-empty)."""
        result: dict[str, Any] = {}
        if self.names:
            result["ExpressionAttributeNames"] = self.names
        if self.values:
            result["ExpressionAttributeValues"] = self.values
        return result


class DynamoEndpointStore:
    """The endpoints table in DynamoDB (real AWS, or any endpoint URL such as moto's).

    Args:
        table_name: the table (hash key `endpoint_name`).
        region_name: AWS region of the table (default us-east-1).
        endpoint_url: a DynamoDB endpoint to use instead of AWS's (local server); with it and
            no AWS credentials configured, dummy credentials are used.
        timeout: connect and read timeout of each request, seconds (default 10).
        max_attempts: attempts per call including the first, with backoff (default 5).
        page_size: `Limit` of each scan page (default: DynamoDB's 1 MB pages).
        on_request: called as `on_request(operation, outcome)` once per HTTP request
            (each retry counts), outcome "ok" or the error code / exception name.
        waiting: entered around every call (the network wait and botocore's retries), so
            a caller can give back what it holds while it only waits.
        cluster: the cluster this store writes status for (`CLUSTER_NAME`); with it, a
            region served by several clusters keeps one entry per cluster
            (`store.clusters`). None: the region's entry is written whole (tools, tests).
    """

    def __init__(
        self,
        table_name: str,
        *,
        region_name: str = "us-east-1",
        endpoint_url: str | None = None,
        timeout: float = 10.0,
        max_attempts: int = 5,
        page_size: int | None = None,
        on_request: Callable[[str, str], None] | None = None,
        waiting: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext,
        cluster: str | None = None,
    ) -> None:
        self.waiting = waiting
        self.cluster = cluster
        # region -> its founder (`take_epoch`): whose entry a flat one is.
        self._founders: dict[str, str] = {}
        self.table_name = table_name
        self.endpoint_url = endpoint_url
        self._page_size = page_size
        self._client = shared_client(
            "dynamodb",
            region_name,
            endpoint_url,
            Config(
                connect_timeout=timeout,
                read_timeout=timeout,
                retries={"max_attempts": max_attempts, "mode": "standard"},
                # Endpoint actors write statuses concurrently; botocore's default pool
                # of 10 would open and drop a connection per call beyond that.
                max_pool_connections=64,
            ),
        )
        if on_request is not None:
            self._client.meta.events.register("needs-retry.dynamodb", request_reporter(on_request))

    @property
    def events(self) -> Any:
        """The client's botocore event system (instrumentation; tests inject faults at the
        boto3 boundary with it, e.g. `after-call.dynamodb.Scan`)."""
        return self._client.meta.events

    def close(self) -> None:
        """Close the client's connections (the server's per-connection threads end too)."""
        self._client.close()

    def __enter__(self) -> DynamoEndpointStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- table ---------------------------------------------------------------

    def create_table(self, *, stream: bool = True) -> bool:
        """Create the table (on-demand billing) and wait until it is ACTIVE.

        With `stream` (the default) the table gets a stream of new images, which the
        daemons read as their change feed (`store.stream`); an existing table is left as
        it is.

        Returns:
            True if this call created it, False if it already existed.
        """
        extra: dict[str, Any] = {}
        if stream:
            extra["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
        try:
            self._call(
                "CreateTable",
                TableName=self.table_name,
                AttributeDefinitions=[{"AttributeName": KEY, "AttributeType": "S"}],
                KeySchema=[{"AttributeName": KEY, "KeyType": "HASH"}],
                BillingMode="PAY_PER_REQUEST",
                **extra,
            )
            created = True
        except errors.StoreError as error:
            if error.code != "ResourceInUseException":
                raise
            created = False
        try:
            self._client.get_waiter("table_exists").wait(
                TableName=self.table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
            )
        except (BotoCoreError, ClientError) as error:
            raise errors.Unavailable(f"table {self.table_name} did not become active") from error
        return created

    def reachable(self) -> bool:
        """True when the table exists and answers."""
        return self.table_problem() is None

    def table_problem(self) -> str | None:
        """None when the table exists and answers a DescribeTable, else why not."""
        try:
            self._call("DescribeTable", TableName=self.table_name)
        except errors.StoreError as error:
            # The error code (e.g. ThrottlingException) is what an operator searches for.
            code = f"{error.code}: " if error.code else ""
            return f"table {self.table_name} not reachable: {code}{error}"
        return None

    # -- reads ---------------------------------------------------------------

    def scan(self) -> list[LoadedItem]:
        """Read every item (consistent, all pages); invalid items come back with problems.

        Raises:
            errors.ScanBroken: the pages never end (`store.pagination`).
        """
        arguments: dict[str, Any] = {"TableName": self.table_name, "ConsistentRead": True}
        if self._page_size:
            arguments["Limit"] = self._page_size
        loaded: list[LoadedItem] = []
        guard = PageGuard(self.table_name)
        while True:
            page = self._call("Scan", **arguments)
            items = page.get("Items", [])
            loaded.extend(
                load_item(_deserialize(item)) for item in items if not _is_epoch_record(item)
            )
            last_key = page.get("LastEvaluatedKey")
            # A repeated key or endless pages would spin here forever (ScanBroken).
            guard.page(
                (json.dumps(item.get(KEY), sort_keys=True) for item in items), last_key or None
            )
            if not last_key:
                return loaded
            arguments["ExclusiveStartKey"] = last_key

    def take_epoch(self, region: str, *, floor: int = 0) -> int:
        """Raise `region`'s leader epoch by one and return it (architecture section 4).

        A daemon takes one each time it starts leading; its status and item writes carry
        it and are refused once an entry carries a higher one. The counter lives in the
        table, not in the Lease, so it never goes back: not when the Lease is deleted by
        hand, nor when the cluster is rebuilt (a new Lease restarts `leaseTransitions` at
        0). `floor` seeds a region's first record (the Lease's `leaseTransitions`, what
        the entries written before this counter existed carry), so the first epoch is
        above them. One atomic `ADD`-like update: two leaders never get the same value.
        """
        expression = _Expression()
        counter = expression.path("epoch")
        taken = f"if_not_exists({counter}, {expression.value(floor)}) + {expression.value(1)}"
        assignments = [
            f"{counter} = {taken}",
            f"{expression.path('region')} = {expression.value(region)}",
            f"{expression.path('taken_at')} = {expression.value(next_timestamp(None))}",
        ]
        if self.cluster is not None:
            # Which clusters serve the region, and its founder (the first to lead here),
            # whose entries a flat one is (`store.clusters`). Same request, same epoch.
            cluster = expression.names_of(CLUSTER_ATTRIBUTE_PREFIX + self.cluster)
            founder = expression.path("founder")
            assignments += [
                f"{cluster} = {taken}",
                f"{founder} = if_not_exists({founder}, {expression.value(self.cluster)})",
            ]
        response = self._call(
            "UpdateItem",
            TableName=self.table_name,
            Key=_key(EPOCH_RECORD_PREFIX + region),
            UpdateExpression="SET " + ", ".join(assignments),
            ReturnValues="ALL_NEW",
            **expression.arguments(),
        )
        record = _deserialize(response["Attributes"])
        if isinstance(record.get("founder"), str):
            self._founders[region] = record["founder"]
        return int(record["epoch"])

    def founder(self, region: str) -> str | None:
        """The cluster whose entries the flat ones of `region` are (known once this store
        took an epoch there)."""
        return self._founders.get(region)

    def own_status(self, item: LoadedItem, region: str) -> RegionStatus | None:
        """This store's cluster's own entry for `region` in `item` (the region's entry when
        no cluster is set)."""
        if self.cluster is None:
            return item.region_status.get(region)
        entry = _region_entry(item.raw, region)
        return clusters.own_entry(entry, self.cluster, self.founder(region))

    def region_view(
        self, item: LoadedItem, region: str, own: RegionStatus | None
    ) -> RegionStatus | None:
        """What `region` as a whole reports once this cluster's entry is `own`: `own` alone
        when the region is not shared, else the summary with every other cluster's entry."""
        if self.cluster is None or own is None:
            return own
        entries = clusters.cluster_entries(_region_entry(item.raw, region), self.founder(region))
        entries[self.cluster] = own
        return own if len(entries) == 1 else clusters.summarize(entries)

    def get(self, name: str) -> LoadedItem | None:
        """Read one item (consistent); None when it does not exist."""
        response = self._call(
            "GetItem", TableName=self.table_name, Key=_key(name), ConsistentRead=True
        )
        item = response.get("Item")
        return None if item is None else load_item(_deserialize(item))

    # -- basic writes ----------------------------------------------------------

    def create(self, endpoint: Endpoint) -> None:
        """Write a new item for `endpoint`; refuses an existing name.

        Empty `created_at`/`updated_at` are set to the current time.

        Raises:
            InvalidEndpoint: the endpoint breaks a validation rule (nothing written).
            ItemExists: an item with this name exists.
        """
        item = endpoint.to_item()
        now = next_timestamp(None)
        for stamp in ("created_at", "updated_at"):
            item[stamp] = item[stamp] or now
        self.create_item(item)

    def create_item(self, item: Mapping[str, Any]) -> None:
        """Write a new item as given (attributes the model does not know are kept).

        Raises:
            InvalidEndpoint: the item breaks a validation rule (nothing written).
            ItemExists: an item with this name exists.
        """
        problems = validate_item(item)
        name = str(item.get(KEY, ""))
        if problems:
            raise errors.InvalidEndpoint(name, problems)
        try:
            self._call(
                "PutItem",
                TableName=self.table_name,
                Item={k: _SERIALIZER.serialize(to_dynamo(v)) for k, v in item.items()},
                ConditionExpression="attribute_not_exists(#k)",
                ExpressionAttributeNames={"#k": KEY},
            )
        except errors.ConditionFailed as error:
            raise errors.ItemExists(f"endpoint {name!r} already exists") from error

    def update(
        self,
        name: str,
        *,
        set_: Mapping[str, Any] | None = None,
        remove: Sequence[str] = (),
        expected_updated_at: str | None = None,
    ) -> str:
        """Set and remove dotted attribute paths of one item and bump `updated_at`.

        Args:
            name: the endpoint.
            set_: {path: value}, paths dotted like "spec.image" (the parent map must exist).
            remove: paths to remove.
            expected_updated_at: when given, write only if `updated_at` still has this value.

        Returns:
            The new `updated_at`.

        Raises:
            ItemNotFound: no such item. ConditionFailed: `updated_at` changed (a lost race).
        """
        return self._update(
            name, set_=set_ or {}, remove=remove, expected=expected_updated_at, check=False
        )

    def write_region_status(
        self,
        name: str,
        region: str,
        status: RegionStatus | None,
        *,
        epoch: int | None = None,
        holder: str = "",
    ) -> bool:
        """Write (or with None remove) only `region_status.<region>` of an existing item.

        With `epoch` (the writing leader's: the Lease's `leaseTransitions`, `holder` its
        identity) the entry is stamped with both and the write is conditional on them in
        the same request: refused (`Superseded`, nothing written) when the stored entry
        carries a higher epoch, or the same epoch of another holder. An entry without an
        epoch (the predecessor's) never refuses. Without `epoch`: unconditional, as before.

        No other region's entry and not `updated_at` is touched; an empty `last_sync` is
        filled with the current time. The item is never recreated.

        An item whose `region_status` exists but is not a map (a string left by an older
        writer or a hand edit) cannot take a status without its attribute being replaced:
        nothing is written (the attribute is the user's to fix), a warning is logged and
        False returned - one conditional request, not retried, so a caller that reports
        only on change writes at most once per status (`LoadedItem.status_problem` says
        why). Such an item is still served: the predecessor served it too.

        Returns:
            False when the item does not exist or its `region_status` is not a map, else True.
        """
        if status is not None and epoch is not None:
            status = dataclasses.replace(status, epoch=epoch, holder=holder)
        if self.cluster is not None:
            return self._write_cluster_status(name, region, status, epoch, holder)
        for _ in range(_STATUS_WRITE_ROUNDS):
            outcome = (
                self._remove_region_status(name, region, epoch, holder)
                if status is None
                else self._set_region_status(name, region, status, epoch, holder)
            )
            if outcome is not None:
                return outcome
        raise errors.ConditionFailed(
            f"status of {name!r} in {region} kept racing with other writers"
        )

    def retire_cluster(self, region: str, cluster: str) -> list[str]:
        """Take `cluster` out of `region` for good (architecture section 4, "several
        clusters in one region"): its status entries go from every item (the summaries
        recomputed from the clusters left, so a delete it held back can be purged), and
        it is no longer named on the region's epoch record (nor as its founder). For an
        operator retiring a cluster whose daemon is stopped: a daemon still running writes
        its entries again.

        Returns:
            The names of the items whose entries were removed.
        """
        record = self.get(EPOCH_RECORD_PREFIX + region)
        founder = record.raw.get("founder") if record is not None else None
        removed = []
        for loaded in self.scan():
            current = _region_entry(loaded.raw, region)
            if clusters.is_shared(current) and cluster in current[clusters.CLUSTERS]:
                for _ in range(_STATUS_WRITE_ROUNDS):
                    plan = clusters.plan_removal(current, cluster=cluster)
                    if plan is None:
                        break
                    done, current = self._apply_plan(
                        loaded.name, region, plan, cluster=cluster, epoch=None, holder=""
                    )
                    if done is not None:
                        break
                removed.append(loaded.name)
            elif current is not None and not clusters.is_shared(current) and cluster == founder:
                # A flat entry is the founder's own.
                self._remove_region_status(loaded.name, region, None, "")
                removed.append(loaded.name)
        expression = _Expression()
        update = "REMOVE " + expression.names_of(CLUSTER_ATTRIBUTE_PREFIX + cluster)
        if cluster == founder:
            left = [
                key[len(CLUSTER_ATTRIBUTE_PREFIX) :]
                for key in (record.raw if record is not None else {})
                if key.startswith(CLUSTER_ATTRIBUTE_PREFIX)
                and key != CLUSTER_ATTRIBUTE_PREFIX + cluster
            ]
            # The one cluster left founds the region (it writes flat again from its next
            # term); with several or none, the next to take an epoch here does.
            founding = expression.path("founder")
            if len(left) == 1:
                update = f"SET {founding} = {expression.value(left[0])} {update}"
            else:
                update += f", {founding}"
        with contextlib.suppress(errors.ConditionFailed):
            self._call(
                "UpdateItem",
                TableName=self.table_name,
                Key=_key(EPOCH_RECORD_PREFIX + region),
                UpdateExpression=update,
                ConditionExpression=f"attribute_exists({expression.path(KEY)})",
                **expression.arguments(),
            )
        self._founders.pop(region, None)
        return removed

    def purge_if_deleted(
        self,
        name: str,
        regions: Sequence[str],
        *,
        region: str | None = None,
        epoch: int | None = None,
        holder: str = "",
    ) -> bool:
        """Delete the item if its desired_state and every listed region's state are `deleted`.

        With `region` and `epoch`, also only if that region's entry was not written by a
        newer leader (see `write_region_status`).

        Returns:
            True if deleted; False if the item is gone or the condition does not hold.
        """
        expression = _Expression()
        conditions = _every_region_in(
            expression, "deleted", "deleted", regions, region=region, epoch=epoch, holder=holder
        )
        try:
            self._call(
                "DeleteItem",
                TableName=self.table_name,
                Key=_key(name),
                ConditionExpression=" AND ".join(conditions),
                **expression.arguments(),
            )
        except errors.ConditionFailed:
            return False
        return True

    def mark_running(
        self,
        name: str,
        regions: Sequence[str],
        *,
        region: str | None = None,
        epoch: int | None = None,
        holder: str = "",
    ) -> bool:
        """Move `desired_state` from `deploying` to `running` once every listed region's
        status says `running`, as the predecessor does (its CLI filters on it). Any
        region may make the move; it is conditional on all of that in one request, so a
        stop or delete that landed first wins. `updated_at` is left alone: a person's
        write conditional on the `updated_at` they read still goes through.

        With `region` and `epoch`, also only if that region's entry was not written by a
        newer leader (see `write_region_status`).

        Returns:
            True if this call made the move; False if the item is gone or the condition
            does not hold (another region made it first, or something changed).
        """
        expression = _Expression()
        conditions = _every_region_in(
            expression, "deploying", "running", regions, region=region, epoch=epoch, holder=holder
        )
        state, running = expression.path("desired_state"), expression.value("running")
        try:
            self._call(
                "UpdateItem",
                TableName=self.table_name,
                Key=_key(name),
                UpdateExpression=f"SET {state} = {running}",
                ConditionExpression=" AND ".join(conditions),
                **expression.arguments(),
            )
        except errors.ConditionFailed:
            return False
        return True

    # -- rollout transitions (architecture section 12): any region may make them first ------------

    def record_rollout_completion(
        self,
        name: str,
        revision: str,
        spec: Mapping[str, Any],
        regions: Sequence[str],
        *,
        expected_updated_at: str | None,
        region: str | None = None,
        epoch: int | None = None,
        holder: str = "",
    ) -> bool:
        """Record `revision` (whose spec map is `spec`) as completed everywhere, only if
        the item is still the one read (`updated_at`: its spec is still that revision)
        and every region in `regions` reports it `done`. `updated_at` is left alone.

        Returns:
            True if this call wrote it; False if the condition does not hold (another
            region recorded it first, or something changed) or the item is gone.
        """

        def conditions(expression: _Expression) -> list[str]:
            done, rev = expression.value("done"), expression.value(revision)
            found = []
            for target in regions:
                entry = f"{expression.path('region_status')}.{expression.path(target)}"
                found.append(f"{entry}.{expression.path('revision')} = {rev}")
                found.append(f"{entry}.{expression.path('rollout')} = {done}")
            return found

        return self._set_rollout(
            name,
            {"completed_revision": revision, "completed_spec": dict(spec)},
            conditions,
            expected_updated_at=expected_updated_at,
            fence=(region, epoch, holder),
        )

    def record_rollout_halt(
        self,
        name: str,
        halt: Halt,
        *,
        expected_updated_at: str | None,
        region: str | None = None,
        epoch: int | None = None,
        holder: str = "",
    ) -> bool:
        """Record that `halt.revision` failed, once per revision (a halt of the same
        revision already there wins), only if the item is still the one read.

        Returns:
            True if this call wrote it; False if a halt of that revision is there, the
            item changed, or it is gone.
        """

        def conditions(expression: _Expression) -> list[str]:
            stored = f"{expression.path(ROLLOUT)}.{expression.path('halt')}"
            return [
                f"NOT ({stored}.{expression.path('revision')} = {expression.value(halt.revision)})"
            ]

        return self._set_rollout(
            name,
            {"halt": halt.to_item()},
            conditions,
            expected_updated_at=expected_updated_at,
            fence=(region, epoch, holder),
        )

    def _set_rollout(
        self,
        name: str,
        fields: Mapping[str, Any],
        conditions: Callable[[_Expression], list[str]],
        *,
        expected_updated_at: str | None,
        fence: tuple[str | None, int | None, str],
    ) -> bool:
        """Set `fields` of the item's `rollout` map in one conditional request (creating
        the map when the item has none), with `conditions`, the `updated_at` token and
        the leader's epoch condition."""
        region, epoch, holder = fence
        for create in (False, True):
            expression = _Expression()
            record = expression.path(ROLLOUT)
            if create:
                update = f"SET {record} = {expression.value(dict(fields))}"
                found = [f"attribute_not_exists({record})"]
            else:
                update = "SET " + ", ".join(
                    f"{record}.{expression.path(k)} = {expression.value(v)}"
                    for k, v in fields.items()
                )
                found = [f"attribute_type({record}, {expression.value('M')})"]
            # The caller's conditions hold whether or not the map exists yet (a condition
            # on a missing `rollout.halt` is simply not met, so `NOT (...)` passes).
            found += conditions(expression)
            stamp = expression.path("updated_at")
            if expected_updated_at is None:
                found.append(f"attribute_not_exists({stamp})")
            else:
                found.append(f"{stamp} = {expression.value(expected_updated_at)}")
            if region is not None and epoch is not None:
                found.append(_epoch_condition(expression, region, epoch, holder))
            try:
                self._call(
                    "UpdateItem",
                    TableName=self.table_name,
                    Key=_key(name),
                    UpdateExpression=update,
                    ConditionExpression=" AND ".join(
                        [f"attribute_exists({expression.path(KEY)})", *found]
                    ),
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    **expression.arguments(),
                )
            except errors.ConditionFailed as error:
                if error.current_item is None or isinstance(error.current_item.get(ROLLOUT), dict):
                    return False
                if create:
                    return False
                continue
            return True
        return False

    # -- commands (each conditional on the updated_at just read) ----------------

    def apply(self, name: str, rule: Rule, *args: Any, **kwargs: Any) -> str:
        """Read the item, compute the change with `rule(loaded, *args, **kwargs)` (one of
        `store.commands`) and write it, conditional on `updated_at` being what was read
        (and, when the change asks, on the endpoint not being stopped or deleted).

        Returns:
            The new `updated_at`.

        Raises:
            whatever the rule refuses with (OperationRefused, InvalidEndpoint...); ItemNotFound;
            ConditionFailed (the item changed since it was read: nothing written).
        """
        loaded = self._require(name)
        change = rule(loaded, *args, **kwargs)
        return self._update(
            name,
            set_=change.set_,
            remove=change.remove,
            expected=loaded.updated_at,
            check=True,
            extra_condition=_not_stopped_or_deleted if change.unless_stopped else None,
        )

    # -- internals -------------------------------------------------------------

    def _require(self, name: str) -> LoadedItem:
        loaded = self.get(name)
        if loaded is None:
            raise errors.ItemNotFound(f"endpoint {name!r} not found")
        return loaded

    def _update(
        self,
        name: str,
        *,
        set_: Mapping[str, Any] | None = None,
        remove: Sequence[str] = (),
        expected: str | None,
        check: bool,
        extra_condition: Callable[[_Expression], str] | None = None,
    ) -> str:
        """One conditional UpdateItem. `check`: the condition includes `updated_at == expected`
        (or its absence when `expected` is None); `update` checks only when `expected` is set."""
        expression = _Expression()
        now = next_timestamp(expected)
        assignments = [
            f"{expression.path(p)} = {expression.value(v)}" for p, v in (set_ or {}).items()
        ]
        assignments.append(f"{expression.path('updated_at')} = {expression.value(now)}")
        update = "SET " + ", ".join(assignments)
        if remove:
            update += " REMOVE " + ", ".join(expression.path(p) for p in remove)
        conditions = [f"attribute_exists({expression.path(KEY)})"]
        stamp = expression.path("updated_at")
        if expected is not None:
            conditions.append(f"{stamp} = {expression.value(expected)}")
        elif check:
            conditions.append(f"attribute_not_exists({stamp})")
        if extra_condition is not None:
            conditions.append(extra_condition(expression))
        try:
            self._call(
                "UpdateItem",
                TableName=self.table_name,
                Key=_key(name),
                UpdateExpression=update,
                ConditionExpression=" AND ".join(conditions),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **expression.arguments(),
            )
        except errors.ConditionFailed as error:
            if error.current_item is None:
                raise errors.ItemNotFound(f"endpoint {name!r} not found") from error
            state = error.current_item.get("desired_state")
            raise errors.ConditionFailed(
                f"endpoint {name!r} changed since it was read (desired_state now {state}); "
                "nothing was written"
            ) from error
        return now

    def _set_region_status(
        self, name: str, region: str, status: RegionStatus, epoch: int | None, holder: str
    ) -> bool | None:
        """Returns True/False when done, None to try again (the map appeared meanwhile)."""
        entry = status.to_item()
        if not entry["last_sync"]:
            entry["last_sync"] = next_timestamp(None)
        expression = _Expression()
        status_map = expression.path("region_status")
        fenced = (
            "" if epoch is None else f" AND {_epoch_condition(expression, region, epoch, holder)}"
        )
        try:
            self._call(
                "UpdateItem",
                TableName=self.table_name,
                Key=_key(name),
                UpdateExpression=(
                    f"SET {status_map}.{expression.path(region)} = {expression.value(entry)}"
                ),
                ConditionExpression=(
                    f"attribute_exists({expression.path(KEY)}) "
                    f"AND attribute_type({status_map}, {expression.value('M')})" + fenced
                ),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **expression.arguments(),
            )
        except errors.ConditionFailed as error:
            if error.current_item is None:
                return False
            _raise_if_superseded(error, name, region, epoch, holder)
            found = error.current_item.get("region_status")
            if found is not None and not isinstance(found, dict):
                # A region_status that is not a map (an older writer or a hand edit): writing
                # ours would mean replacing the user's attribute, so nothing is written.
                log.warning(
                    "status not written: region_status is not a map",
                    endpoint=name,
                    region=region,
                    found=type(found).__name__,
                )
                return False
        else:
            return True
        # The item has no region_status map: create it, unless another region just did.
        return self._create_status_map(name, region, entry)

    def _write_cluster_status(
        self, name: str, region: str, status: RegionStatus | None, epoch: int | None, holder: str
    ) -> bool:
        """`write_region_status` for this store's cluster (`store.clusters`): a write is
        planned from the entry as last seen - first a guess (the founder's flat entry, or
        none), then what a refused write returns - and retried a few rounds."""
        cluster, founder = self.cluster or "", self.founder(region)
        own: dict[str, Any] | None = None
        current: Any = None
        if status is None:
            loaded = self.get(name)
            if loaded is None:
                return False
            current = _region_entry(loaded.raw, region)
        else:
            own = status.to_item()
            if not own["last_sync"]:
                own["last_sync"] = next_timestamp(None)
        for _ in range(_STATUS_WRITE_ROUNDS):
            if own is None:
                plan = clusters.plan_removal(current, cluster=cluster)
                if plan is None:
                    # Not shared: the flat entry is removed only by its owner, the founder.
                    return cluster != founder or bool(
                        self._remove_region_status(name, region, epoch, holder)
                    )
            else:
                plan = clusters.plan_write(current, own, cluster=cluster, founder=founder)
            done, current = self._apply_plan(
                name, region, plan, cluster=cluster, epoch=epoch, holder=holder
            )
            if done is not None:
                return done
        raise errors.ConditionFailed(
            f"status of {name!r} in {region} (cluster {cluster}) kept racing with other writers"
        )

    def _apply_plan(
        self,
        name: str,
        region: str,
        plan: clusters.Plan,
        *,
        cluster: str,
        epoch: int | None,
        holder: str,
    ) -> tuple[bool | None, Any]:
        """Make one planned write. Returns (True/False, _) when done, or (None, the entry
        found) to plan again: the entry was not what the plan was computed from."""
        expression = _Expression()
        status_map = expression.path("region_status")
        entry = f"{status_map}.{expression.names_of(region)}"
        members = f"{entry}.{expression.path(clusters.CLUSTERS)}"
        conditions = [
            f"attribute_exists({expression.path(KEY)})",
            f"attribute_type({status_map}, {expression.value('M')})",
        ]
        if plan.whole is not None and plan.collapse:
            update = f"SET {entry} = {expression.value(plan.whole)}"
            mine = f"{members}.{expression.names_of(cluster)}"
            conditions += [f"attribute_exists({mine})", f"size({members}) = {expression.value(1)}"]
            if epoch is not None:
                conditions.append(_fence_condition(expression, mine, epoch, holder))
        elif plan.whole is not None:
            update = f"SET {entry} = {expression.value(plan.whole)}"
            conditions.append(f"attribute_not_exists({members})")
            if plan.absent:
                conditions.append(f"attribute_not_exists({entry})")
            if plan.read is not None:
                conditions += _unchanged(expression, entry, plan.read)
            if plan.flat and epoch is not None:
                conditions.append(_epoch_condition(expression, region, epoch, holder))
        else:
            read = plan.read or {}
            others = dict(read.get(clusters.CLUSTERS, {}))
            mine = f"{members}.{expression.names_of(cluster)}"
            others.pop(cluster, None)
            conditions.append(
                f"size({members}) = {expression.value(len(read.get(clusters.CLUSTERS, {})))}"
            )
            for other, value in sorted(others.items()):
                conditions += _unchanged(
                    expression, f"{members}.{expression.names_of(other)}", value
                )
            if epoch is not None:
                conditions.append(_fence_condition(expression, mine, epoch, holder))
            if not others and plan.own is None:
                update = f"REMOVE {entry}"
            else:
                sets = [
                    f"{entry}.{expression.path(k)} = {expression.value(v)}"
                    for k, v in plan.summary.items()
                ]
                removes = [
                    f"{entry}.{expression.path(k)}"
                    for k in clusters.OPTIONAL_SUMMARY
                    if k not in plan.summary
                ]
                if plan.own is None:
                    removes.append(mine)
                else:
                    sets.append(f"{mine} = {expression.value(plan.own)}")
                update = "SET " + ", ".join(sets)
                # None to remove when every optional field is set (as a rollout's are).
                if removes:
                    update += " REMOVE " + ", ".join(removes)
        try:
            self._call(
                "UpdateItem",
                TableName=self.table_name,
                Key=_key(name),
                UpdateExpression=update,
                ConditionExpression=" AND ".join(conditions),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **expression.arguments(),
            )
        except errors.ConditionFailed as error:
            return self._replan(
                error,
                name=name,
                region=region,
                plan=plan,
                cluster=cluster,
                epoch=epoch,
                holder=holder,
            )
        return True, None

    def _replan(
        self,
        error: errors.ConditionFailed,
        *,
        name: str,
        region: str,
        plan: clusters.Plan,
        cluster: str,
        epoch: int | None,
        holder: str,
    ) -> tuple[bool | None, Any]:
        """What a refused planned write found: the item gone (False), a newer leader of
        this cluster (`Superseded`), no status map yet (created with the whole entry), or
        the entry to plan from again."""
        found = error.current_item
        if found is None:
            return False, None
        statuses = found.get("region_status")
        if statuses is not None and not isinstance(statuses, dict):
            log.warning(
                "status not written: region_status is not a map", endpoint=name, region=region
            )
            return False, None
        current = _region_entry(found, region)
        if epoch is not None:
            stored = (
                current[clusters.CLUSTERS].get(cluster)
                if clusters.is_shared(current)
                else current
                if plan.flat
                else None
            )
            _raise_if_newer(error, stored, name=name, region=region, epoch=epoch, holder=holder)
        if statuses is None and plan.whole is not None:
            return self._create_status_map(name, region, plan.whole), None
        return None, current

    def _create_status_map(self, name: str, region: str, entry: dict[str, Any]) -> bool | None:
        """Create the item's `region_status` map holding `entry` for `region`, unless
        another writer just did (None: try again)."""
        expression = _Expression()
        status_map = expression.path("region_status")
        try:
            self._call(
                "UpdateItem",
                TableName=self.table_name,
                Key=_key(name),
                UpdateExpression=f"SET {status_map} = {expression.value({region: entry})}",
                ConditionExpression=(
                    f"attribute_exists({expression.path(KEY)}) "
                    f"AND attribute_not_exists({status_map})"
                ),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **expression.arguments(),
            )
        except errors.ConditionFailed as error:
            return False if error.current_item is None else None
        return True

    def _remove_region_status(
        self, name: str, region: str, epoch: int | None, holder: str
    ) -> bool | None:
        expression = _Expression()
        status_map = expression.path("region_status")
        fenced = (
            "" if epoch is None else f" AND {_epoch_condition(expression, region, epoch, holder)}"
        )
        try:
            self._call(
                "UpdateItem",
                TableName=self.table_name,
                Key=_key(name),
                UpdateExpression=f"REMOVE {status_map}.{expression.path(region)}",
                ConditionExpression=(
                    f"attribute_exists({expression.path(KEY)}) "
                    f"AND attribute_type({status_map}, {expression.value('M')})" + fenced
                ),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **expression.arguments(),
            )
        except errors.ConditionFailed as error:
            if error.current_item is not None:
                _raise_if_superseded(error, name, region, epoch, holder)
            # Item gone: False. No status map at all: nothing to remove.
            return error.current_item is not None
        return True

    def _call(self, operation: str, **arguments: Any) -> dict[str, Any]:
        """Call one DynamoDB operation, mapping library errors to the store's own."""
        method = getattr(self._client, _snake(operation))
        try:
            with self.waiting():
                response: dict[str, Any] = method(**arguments)
        except ClientError as error:
            raise _translate(error, self.table_name) from error
        except NoCredentialsError as error:
            raise errors.StoreError(
                "no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID, "
                "or use --endpoint-url for a local table)"
            ) from error
        except BotoCoreError as error:
            raise errors.Unavailable(f"DynamoDB {operation} failed: {error}") from error
        return response


def _shared_session() -> boto3.session.Session:
    """One boto3 session per process: a new one reloads the service models (~0.1 s);
    clients are created under a lock because sessions are not thread-safe."""
    global _SESSION  # noqa: PLW0603 - a lazily created process-wide cache
    with _SESSION_LOCK:
        if _SESSION is None:
            _SESSION = boto3.session.Session()
        return _SESSION


def request_reporter(on_request: Callable[[str, str], None]) -> Callable[..., None]:
    """A botocore `needs-retry` hook that calls `on_request(operation, outcome)` once per
    HTTP attempt (outcome "ok" or the error code / exception name)."""

    def report(
        *,
        response: tuple[Any, dict[str, Any]] | None = None,
        caught_exception: Exception | None = None,
        operation: Any = None,
        **_: Any,
    ) -> None:
        if caught_exception is not None:
            outcome = type(caught_exception).__name__
        elif response is not None:
            outcome = response[1].get("Error", {}).get("Code") or "ok"
        else:
            outcome = "unknown"
        on_request(getattr(operation, "name", str(operation)), outcome)

    return report


def shared_client(service: str, region_name: str, endpoint_url: str | None, config: Config) -> Any:
    """A boto3 client of `service` from the process's one session; with an `endpoint_url`
    (a local server) and no AWS credentials configured, dummy ones (a local server accepts
    any; a fresh machine has none)."""
    session = _shared_session()
    credentials: dict[str, str] = {}
    with _SESSION_LOCK:
        if endpoint_url and session.get_credentials() is None:
            credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        return session.client(
            service,
            region_name=region_name,
            endpoint_url=endpoint_url,
            config=config,
            **credentials,
        )


def _epoch_condition(expression: _Expression, region: str, epoch: int, holder: str) -> str:
    """The fencing condition of a leader's write to `region_status.<region>`: the stored
    entry has no epoch (the predecessor's, or none), a lower one, or ours (same epoch and
    holder). DynamoDB evaluates it atomically with the write."""
    entry = f"{expression.path('region_status')}.{expression.path(region)}"
    stored = f"{entry}.{expression.path('epoch')}"
    mine = expression.value(epoch)
    return (
        f"(attribute_not_exists({stored}) OR {stored} < {mine} OR "
        f"({stored} = {mine} AND {entry}.{expression.path('holder')} = "
        f"{expression.value(holder)}))"
    )


def _raise_if_superseded(
    error: errors.ConditionFailed, name: str, region: str, epoch: int | None, holder: str
) -> None:
    """Raise `Superseded` when the item that failed the condition carries a newer leader's
    entry for `region` (the same test as `_epoch_condition`, on the returned old item)."""
    if epoch is None or error.current_item is None:
        return
    _raise_if_newer(
        error,
        _region_entry(error.current_item, region),
        name=name,
        region=region,
        epoch=epoch,
        holder=holder,
    )


def _fence_condition(expression: _Expression, entry: str, epoch: int, holder: str) -> str:
    """`_epoch_condition` for the entry at the placeholder path `entry` (a cluster's)."""
    stored = f"{entry}.{expression.path('epoch')}"
    mine = expression.value(epoch)
    return (
        f"(attribute_not_exists({stored}) OR {stored} < {mine} OR "
        f"({stored} = {mine} AND {entry}.{expression.path('holder')} = "
        f"{expression.value(holder)}))"
    )


def _unchanged(expression: _Expression, path: str, read: Mapping[str, Any]) -> list[str]:
    """Conditions: the entry at `path` is still the one read (its `seq` and `last_sync`,
    which every write of it changes)."""
    found = []
    for key in ("seq", "last_sync"):
        field_path = f"{path}.{expression.path(key)}"
        if read.get(key) is None:
            found.append(f"attribute_not_exists({field_path})")
        else:
            found.append(f"{field_path} = {expression.value(read[key])}")
    return found


def _region_entry(item: Mapping[str, Any], region: str) -> Any:
    """The raw entry of `region` in an item (None when there is none)."""
    statuses = item.get("region_status")
    return statuses.get(region) if isinstance(statuses, dict) else None


def _raise_if_newer(
    error: errors.ConditionFailed,
    entry: Any,
    *,
    name: str,
    region: str,
    epoch: int,
    holder: str,
) -> None:
    """Raise `Superseded` when the stored `entry` (raw) was written by a newer leader."""
    if not isinstance(entry, Mapping):
        return
    stored = RegionStatus.from_item(entry)
    if stored.epoch is None:
        return
    if stored.epoch > epoch or (stored.epoch == epoch and (stored.holder or "") != holder):
        raise errors.Superseded(
            f"status of {name!r} in {region} not written: it was written by leader "
            f"{stored.holder!r} at epoch {stored.epoch}, ours is {holder!r} at epoch {epoch}",
            current_item=error.current_item,
            epoch=stored.epoch,
            holder=stored.holder,
        ) from error


def _not_stopped_or_deleted(expression: _Expression) -> str:
    state = expression.path("desired_state")
    return f"NOT ({state} IN ({expression.value('stopped')}, {expression.value('deleted')}))"


def _translate(error: ClientError, table_name: str) -> errors.StoreError:
    """Map a botocore ClientError to the store's error (caller raises it `from` the original)."""
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", str(error))
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    result: errors.StoreError
    if code == "ConditionalCheckFailedException":
        old = error.response.get("Item")
        result = errors.ConditionFailed(
            message, current_item=None if old is None else plain(_deserialize(old))
        )
    elif code == "ResourceNotFoundException":
        result = errors.TableNotFound(f"table {table_name} does not exist")
    elif code == "ValidationException" and "maximum allowed size" in message:
        result = errors.ItemTooLarge(f"DynamoDB refused the request: {code}: {message}")
    elif code in _THROTTLING:
        result = errors.Throttled(f"DynamoDB throttled the request: {message}")
    elif code in _UNAVAILABLE or status >= 500:
        result = errors.Unavailable(f"DynamoDB failed: {code}: {message}")
    else:
        result = errors.StoreError(f"DynamoDB refused the request: {code}: {message}")
    result.code = code
    return result


def _every_region_in(
    expression: _Expression,
    desired_state: str,
    state: str,
    regions: Sequence[str],
    *,
    region: str | None,
    epoch: int | None,
    holder: str,
) -> list[str]:
    """Conditions: `desired_state` is `desired_state` and every region in `regions` reports
    `state`; with `region` and `epoch`, that region's entry was not written by a newer
    leader."""
    conditions = [f"{expression.path('desired_state')} = {expression.value(desired_state)}"]
    value = expression.value(state)
    for target in regions:
        path = expression.path("region_status") + "." + expression.path(target)
        conditions.append(f"{path}.{expression.path('state')} = {value}")
    if region is not None and epoch is not None:
        conditions.append(_epoch_condition(expression, region, epoch, holder))
    return conditions


def _is_epoch_record(item: Mapping[str, Any]) -> bool:
    """True for a leader epoch record (a raw scanned item), which is not an endpoint."""
    return str(item.get(KEY, {}).get("S", "")).startswith(EPOCH_RECORD_PREFIX)


def _key(name: str) -> dict[str, Any]:
    return {KEY: {"S": name}}


def _deserialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _DESERIALIZER.deserialize(value) for key, value in item.items()}


def _snake(operation: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")
