"""The endpoints table's DynamoDB stream, read shard by shard (architecture section 4, change feed).

`TableStream` is the one place that talks to the `dynamodbstreams` API: it finds the
table's stream (DescribeTable), lists its shards (DescribeStream, paginated), opens
iterators and reads records. `StreamReader` follows every shard from where it was:
new shards found later (the children of a closed one, split or rotated) are read from
their start, a closed shard is dropped once read to its end, an expired iterator is
re-acquired `AFTER_SEQUENCE_NUMBER` the last record read, and anything that loses the
position (trimmed data, a stream replaced, an expired iterator with nothing read yet)
is reported as `lost`, for the caller to answer with a full scan.

Records come back as `StreamChange`s: the new image of an item (loaded like a scanned
one) or the name of a removed one. A removal is only news: deleting goes through the
scan path and its guard.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import structlog
from boto3.dynamodb.types import TypeDeserializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from store import errors
from store.dynamo import EPOCH_RECORD_PREFIX, request_reporter, shared_client
from store.item import KEY, LoadedItem, load_item

log = structlog.get_logger(__name__)

_DESERIALIZER = TypeDeserializer()
#: Stream view types that carry the new image of an item (what the feed needs).
_IMAGE_VIEWS = frozenset({"NEW_IMAGE", "NEW_AND_OLD_IMAGES"})
#: Errors that mean the position in a shard is gone: answered with a full scan.
_LOST = frozenset({"TrimmedDataAccessException", "ResourceNotFoundException"})


@dataclass(frozen=True)
class StreamChange:
    """One record: `item` is the new image (None for a REMOVE of `name`)."""

    name: str
    item: LoadedItem | None
    sequence: str


@dataclass
class ShardCursor:
    """Where the reader is in one shard."""

    shard_id: str
    iterator: str | None = None
    #: The sequence number of the last record read (None: nothing read yet).
    last_sequence: str | None = None
    #: The iterator type used to open the shard when nothing was read from it yet.
    start: str = "TRIM_HORIZON"
    #: The shard it was split from: read only once that one is read to its end, so the
    #: records of one item come in order.
    parent: str | None = None


@dataclass
class ReadResult:
    """What one `StreamReader.read()` returned."""

    changes: list[StreamChange] = field(default_factory=list)
    #: The position was lost somewhere (trimmed, stream replaced): a full scan must repair.
    lost: bool = False


class TableStream:
    """The `dynamodbstreams` calls for one table, with timeouts and bounded retries.

    Args:
        table_name, region_name, endpoint_url, timeout, max_attempts, on_request, waiting:
            as for `DynamoEndpointStore` (a local server serves both APIs on one URL).
    """

    def __init__(
        self,
        table_name: str,
        *,
        region_name: str = "us-east-1",
        endpoint_url: str | None = None,
        timeout: float = 10.0,
        max_attempts: int = 3,
        on_request: Callable[[str, str], None] | None = None,
        waiting: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext,
    ) -> None:
        self.table_name = table_name
        self.waiting = waiting
        config = Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"max_attempts": max_attempts, "mode": "standard"},
        )
        self._table = shared_client("dynamodb", region_name, endpoint_url, config)
        self._streams = shared_client("dynamodbstreams", region_name, endpoint_url, config)
        if on_request is not None:
            report = request_reporter(on_request)
            self._table.meta.events.register("needs-retry.dynamodb", report)
            self._streams.meta.events.register("needs-retry.dynamodbstreams", report)

    @property
    def client(self) -> Any:
        """The boto3 `dynamodbstreams` client (tests register botocore event hooks on it)."""
        return self._streams

    def close(self) -> None:
        self._table.close()
        self._streams.close()

    def arn(self) -> str | None:
        """The table's current stream ARN, or None when it has none that carries new images."""
        table = self._call(self._table, "describe_table", TableName=self.table_name)["Table"]
        spec = table.get("StreamSpecification") or {}
        if not spec.get("StreamEnabled") or spec.get("StreamViewType") not in _IMAGE_VIEWS:
            return None
        return table.get("LatestStreamArn")

    def shards(self, arn: str) -> list[dict[str, Any]]:
        """Every shard of the stream (DescribeStream, all pages)."""
        found: list[dict[str, Any]] = []
        arguments: dict[str, Any] = {"StreamArn": arn}
        for _ in range(10_000):
            description = self._call(self._streams, "describe_stream", **arguments)
            description = description["StreamDescription"]
            found.extend(description.get("Shards", []))
            last = description.get("LastEvaluatedShardId")
            if not last or last == arguments.get("ExclusiveStartShardId"):
                return found
            arguments["ExclusiveStartShardId"] = last
        raise errors.StoreError(f"stream {arn}: DescribeStream did not end its pages")

    def iterator(self, arn: str, cursor: ShardCursor) -> str | None:
        """A new iterator for `cursor`: after its last record, else from its start."""
        arguments: dict[str, Any] = {"StreamArn": arn, "ShardId": cursor.shard_id}
        if cursor.last_sequence is not None:
            arguments.update(
                ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=cursor.last_sequence
            )
        else:
            arguments["ShardIteratorType"] = cursor.start
        return self._call(self._streams, "get_shard_iterator", **arguments).get("ShardIterator")

    def records(self, iterator: str) -> tuple[list[dict[str, Any]], str | None]:
        """One GetRecords: the records and the next iterator (None: the shard is closed
        and read to its end)."""
        response = self._call(self._streams, "get_records", ShardIterator=iterator, Limit=1000)
        return response.get("Records", []), response.get("NextShardIterator")

    def _call(self, client: Any, method: str, **arguments: Any) -> dict[str, Any]:
        try:
            with self.waiting():
                response: dict[str, Any] = getattr(client, method)(**arguments)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            result = errors.StoreError(f"DynamoDB Streams {method} failed: {code}: {error}")
            result.code = code
            raise result from error
        except BotoCoreError as error:
            raise errors.Unavailable(f"DynamoDB Streams {method} failed: {error}") from error
        return response


class StreamReader:
    """Follows every shard of the table's stream; one `read()` per poll.

    The first `read()` opens the shards that are open now at LATEST (the caller scans
    the table when it starts, so nothing before is needed); shards that appear later are
    read from TRIM_HORIZON, so no record of a child shard is skipped.
    """

    def __init__(self, stream: TableStream, *, describe_every: int = 20) -> None:
        self._stream = stream
        self._arn: str | None = None
        self._cursors: dict[str, ShardCursor] = {}
        self._finished: set[str] = set()
        self._describe_every = describe_every
        self._reads = 0

    @property
    def shard_count(self) -> int:
        return len(self._cursors)

    def read(self) -> ReadResult:
        """Read what every shard has now. Raises `StoreError` when the stream cannot be
        found or described (the caller falls back to scans); per-shard errors that lose
        the position are reported in `lost`."""
        result = ReadResult()
        first = self._arn is None
        if first or self._reads % self._describe_every == 0:
            result.lost |= self._discover(first=first)
        self._reads += 1
        for cursor in list(self._cursors.values()):
            if cursor.parent is None or cursor.parent not in self._cursors:
                self._read_shard(cursor, result)
        return result

    def _discover(self, *, first: bool) -> bool:
        """Find the stream and its shards; True when the stream changed (position lost)."""
        arn = self._stream.arn()
        if arn is None:
            raise errors.StoreError(
                f"table {self._stream.table_name} has no stream with new images"
            )
        lost = False
        if arn != self._arn:
            lost = self._arn is not None
            self._arn, self._cursors, self._finished = arn, {}, set()
        for shard in self._stream.shards(arn):
            shard_id = shard["ShardId"]
            if shard_id in self._cursors or shard_id in self._finished:
                continue
            closed = bool(shard.get("SequenceNumberRange", {}).get("EndingSequenceNumber"))
            if first and closed:
                continue  # read before this daemon started: the start-up scan covers it
            self._cursors[shard_id] = ShardCursor(
                shard_id,
                start="LATEST" if first or lost else "TRIM_HORIZON",
                parent=shard.get("ParentShardId"),
            )
        return lost

    def _read_shard(self, cursor: ShardCursor, result: ReadResult) -> None:
        assert self._arn is not None
        try:
            if cursor.iterator is None:
                cursor.iterator = self._stream.iterator(self._arn, cursor)
            if cursor.iterator is None:
                self._close(cursor)
                return
            try:
                records, cursor.iterator = self._stream.records(cursor.iterator)
            except errors.StoreError as error:
                if error.code != "ExpiredIteratorException":
                    raise
                if cursor.last_sequence is None and cursor.start == "LATEST":
                    # Nothing read yet and the iterator was "now": what came since is unknown.
                    result.lost = True
                cursor.iterator = self._stream.iterator(self._arn, cursor)
                if cursor.iterator is None:
                    self._close(cursor)
                    return
                records, cursor.iterator = self._stream.records(cursor.iterator)
        except errors.StoreError as error:
            if error.code in _LOST:
                log.warning("stream position lost; a full scan repairs", shard=cursor.shard_id)
                result.lost = True
                cursor.iterator, cursor.last_sequence, cursor.start = None, None, "LATEST"
                return
            raise
        for record in records:
            change = _change(record)
            cursor.last_sequence = change.sequence
            if not change.name.startswith(EPOCH_RECORD_PREFIX):
                result.changes.append(change)
        if cursor.iterator is None:
            self._close(cursor)

    def _close(self, cursor: ShardCursor) -> None:
        """A closed shard read to its end: forget it; its children are found by the next
        DescribeStream, which runs now rather than in `describe_every` reads."""
        self._cursors.pop(cursor.shard_id, None)
        self._finished.add(cursor.shard_id)
        self._reads = 0


def _change(record: dict[str, Any]) -> StreamChange:
    data = record.get("dynamodb", {})
    sequence = str(data.get("SequenceNumber", ""))
    name = str(data.get("Keys", {}).get(KEY, {}).get("S", ""))
    image = data.get("NewImage")
    if record.get("eventName") == "REMOVE" or not image:
        return StreamChange(name=name, item=None, sequence=sequence)
    plain = {key: _DESERIALIZER.deserialize(value) for key, value in image.items()}
    return StreamChange(name=name, item=load_item(plain), sequence=sequence)
