"""`StreamReader` on an in-memory stream with shards that close and split, which moto's
one-shard stream never does: children are read from their start and only after their
parent is read to its end, an expired iterator resumes after the last record read, and
a trimmed position or a replaced stream is reported as lost (the caller scans)."""

from __future__ import annotations

from typing import Any

import pytest

from store import errors
from store.stream import ShardCursor, StreamReader


def _record(name: str, sequence: int, *, image: str = "repo/model:v1") -> dict[str, Any]:
    return {
        "eventName": "MODIFY",
        "dynamodb": {
            "SequenceNumber": str(sequence),
            "Keys": {"endpoint_name": {"S": name}},
            "NewImage": {
                "endpoint_name": {"S": name},
                "desired_state": {"S": "running"},
                "target_regions": {"L": [{"S": "us-east-1"}]},
                "spec": {"M": {"image": {"S": image}}},
            },
        },
    }


class Shard:
    def __init__(self, shard_id: str, parent: str | None = None) -> None:
        self.shard_id, self.parent = shard_id, parent
        self.records: list[dict[str, Any]] = []
        self.closed = False


class FakeStream:
    """The `TableStream` calls over in-memory shards; iterators are (shard, index)."""

    table_name = "t"

    def __init__(self) -> None:
        self.stream_arn = "arn:1"
        self.shard_list: list[Shard] = [Shard("s1")]
        self.expire_next = False
        self.trim_next = False

    def shard(self, shard_id: str) -> Shard:
        return next(s for s in self.shard_list if s.shard_id == shard_id)

    def arn(self) -> str | None:
        return self.stream_arn

    def shards(self, arn: str) -> list[dict[str, Any]]:
        return [
            {
                "ShardId": s.shard_id,
                **({"ParentShardId": s.parent} if s.parent else {}),
                "SequenceNumberRange": {"EndingSequenceNumber": "9"} if s.closed else {},
            }
            for s in self.shard_list
        ]

    def iterator(self, arn: str, cursor: ShardCursor) -> str | None:
        shard = self.shard(cursor.shard_id)
        if cursor.last_sequence is not None:
            sequences = [r["dynamodb"]["SequenceNumber"] for r in shard.records]
            index = sequences.index(cursor.last_sequence) + 1
        elif cursor.start == "LATEST":
            index = len(shard.records)
        else:
            index = 0
        return f"{shard.shard_id}:{index}"

    def records(self, iterator: str) -> tuple[list[dict[str, Any]], str | None]:
        for flag, code in (
            ("expire_next", "ExpiredIteratorException"),
            ("trim_next", "TrimmedDataAccessException"),
        ):
            if getattr(self, flag):
                setattr(self, flag, False)
                error = errors.StoreError(code)
                error.code = code
                raise error
        shard_id, index = iterator.split(":")
        shard = self.shard(shard_id)
        found = shard.records[int(index) :]
        end = int(index) + len(found)
        if shard.closed and end == len(shard.records):
            return found, None
        return found, f"{shard_id}:{end}"


def _names(reader: StreamReader) -> list[tuple[str, str]]:
    result = reader.read()
    assert not result.lost
    return [
        (c.name, c.item.endpoint.spec.image if c.item and c.item.endpoint else "")
        for c in result.changes
    ]


def test_the_first_read_starts_at_latest_and_then_follows_each_record() -> None:
    stream = FakeStream()
    stream.shard("s1").records.append(_record("old", 1))
    reader = StreamReader(stream)  # type: ignore[arg-type]
    assert _names(reader) == [], "what came before the start is the start-up scan's"
    stream.shard("s1").records.append(_record("m1", 2, image="repo/model:v2"))
    assert _names(reader) == [("m1", "repo/model:v2")]
    assert _names(reader) == []


def test_a_closed_shard_is_read_to_its_end_before_its_children() -> None:
    stream = FakeStream()
    reader = StreamReader(stream, describe_every=1000)  # type: ignore[arg-type]
    reader.read()
    parent = stream.shard("s1")
    parent.records.append(_record("m1", 1, image="repo/model:v2"))
    child = Shard("s2", parent="s1")
    child.records.append(_record("m1", 2, image="repo/model:v3"))
    stream.shard_list.append(child)
    parent.closed = True
    # The parent's last record first; its end makes the reader look for children at once.
    assert _names(reader) == [("m1", "repo/model:v2")]
    assert _names(reader) == [("m1", "repo/model:v3")], "the child from its first record"
    assert reader.shard_count == 1


def test_a_child_found_early_waits_for_its_parent() -> None:
    stream = FakeStream()
    reader = StreamReader(stream, describe_every=1)  # type: ignore[arg-type]
    reader.read()
    child = Shard("s2", parent="s1")
    child.records.append(_record("m1", 5, image="repo/model:v3"))
    stream.shard_list.append(child)
    stream.shard("s1").records.append(_record("m1", 4, image="repo/model:v2"))
    # Both known, the parent still open: only the parent is read.
    assert _names(reader) == [("m1", "repo/model:v2")]
    stream.shard("s1").closed = True
    # The parent read to its end, then the child in the same read.
    assert _names(reader) == [("m1", "repo/model:v3")]


def test_an_expired_iterator_resumes_after_the_last_record() -> None:
    stream = FakeStream()
    reader = StreamReader(stream)  # type: ignore[arg-type]
    reader.read()
    stream.shard("s1").records.append(_record("m1", 1))
    assert _names(reader) == [("m1", "repo/model:v1")]
    stream.shard("s1").records.append(_record("m1", 2, image="repo/model:v2"))
    stream.expire_next = True
    assert _names(reader) == [("m1", "repo/model:v2")]


def test_trimmed_data_and_a_replaced_stream_are_lost_positions() -> None:
    stream = FakeStream()
    reader = StreamReader(stream, describe_every=1)  # type: ignore[arg-type]
    reader.read()
    stream.trim_next = True
    assert reader.read().lost
    stream.stream_arn = "arn:2"
    stream.shard_list = [Shard("t1")]
    assert reader.read().lost
    stream.stream_arn = None  # type: ignore[assignment]
    with pytest.raises(errors.StoreError, match="no stream"):
        reader.read()
