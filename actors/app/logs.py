"""`inference-supervisor logs NAME [-f] [--since 10m]`: read one endpoint's log stream.

With a log directory (`--log-dir`, default `$LOG_DIR`) it prints
`{log_dir}/{NAME}.jsonl` (rotated backups first, oldest first); without one it
filters the daemon's JSON lines from stdin by their `endpoint` key, e.g.
`kubectl logs deploy/inference-supervisor | inference-supervisor logs m1`.
Each event is printed as one human-readable line: time, level, event, key=value.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from actors.app.cli import UsageError
from actors.app.logsetup import stream_path

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SHOWN_FIRST = ("timestamp", "level", "event")
# Checks for new lines while following; a human is reading, a quarter second is instant.
FOLLOW_POLL_SECONDS = 0.25


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add NAME, -f/--follow, --since and --log-dir to the `logs` command's parser."""
    parser.add_argument("name", metavar="NAME", help="endpoint name")
    parser.add_argument(
        "-f", "--follow", action="store_true", help="keep printing new events until Ctrl-C"
    )
    parser.add_argument(
        "--since", metavar="DURATION", help="only events newer than this: 30s, 10m, 2h, 1d"
    )
    parser.add_argument(
        "--log-dir",
        default=os.environ.get("LOG_DIR") or None,
        help="the daemon's --log-dir (default $LOG_DIR); without one, read JSON lines from stdin",
    )


def parse_since(text: str) -> timedelta:
    """`30s`, `10m`, `2h` or `1d` as a timedelta.

    Raises:
        UsageError: anything else.
    """
    match = _DURATION.match(text.strip())
    if match is None:
        raise UsageError(f"--since must be a duration like 30s, 10m, 2h or 1d, got {text!r}")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def parse_event(line: str) -> dict[str, Any] | None:
    """The JSON object in `line` (a prefix such as kubectl's `--timestamps` is skipped), or None."""
    text = line.strip()
    start = text.find("{")
    if start < 0:
        return None
    try:
        event = json.loads(text[start:])
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def event_time(event: dict[str, Any]) -> datetime | None:
    """When `event` happened (UTC), from its ISO `timestamp`; None when absent or unreadable."""
    stamp = event.get("timestamp")
    if not isinstance(stamp, str):
        return None
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _value(value: Any) -> str:
    if isinstance(value, str) and value and not any(c.isspace() for c in value):
        return value
    return json.dumps(value, default=str)


def format_event(event: dict[str, Any]) -> str:
    """One event as `time level event key=value ...`; a traceback follows on its own lines."""
    head = " ".join(
        [
            str(event.get("timestamp", "-")),
            f"{event.get('level', '-'):<7}",
            str(event.get("event", "")),
        ]
    )
    rest = {k: v for k, v in event.items() if k not in _SHOWN_FIRST and k != "exception"}
    pairs = " ".join(f"{key}={_value(value)}" for key, value in rest.items())
    line = f"{head}  {pairs}" if pairs else head
    exception = event.get("exception")
    return f"{line}\n{exception}" if exception else line


def follow_file(
    path: Path,
    *,
    stop: threading.Event,
    poll_interval: float = FOLLOW_POLL_SECONDS,
) -> Iterator[str]:
    """Yield the lines of `path` from its start, then new lines as they are written.

    Survives rotation (the file renamed and a new one created, as
    RotatingFileHandler does) and truncation. Ends when `stop` is set.
    """
    handle: TextIO | None = None
    partial = ""
    try:
        while not stop.is_set():
            if handle is None:
                try:
                    handle = path.open(encoding="utf-8")
                except FileNotFoundError:
                    # Between a rollover and the next write the file does not exist.
                    stop.wait(poll_interval)
                    continue
            chunk = handle.readline()
            if chunk:
                partial += chunk
                if partial.endswith("\n"):
                    yield partial[:-1]
                    partial = ""
                continue
            if _replaced_or_truncated(path, handle):
                # Whatever reached the old file before the switch comes first.
                rest = partial + handle.read()
                handle.close()
                handle = None
                partial = ""
                yield from rest.splitlines()
                continue
            stop.wait(poll_interval)
    finally:
        if handle is not None:
            handle.close()


def _replaced_or_truncated(path: Path, handle: TextIO) -> bool:
    """True when `path` now names another file than `handle`, or was cut below our position."""
    try:
        current = path.stat()
    except FileNotFoundError:
        return False
    return current.st_ino != os.fstat(handle.fileno()).st_ino or current.st_size < handle.tell()


def _history(path: Path) -> Iterator[str]:
    """Lines of the rotated backups of `path`, oldest first."""
    numbered = (
        (int(backup.name.rsplit(".", 1)[1]), backup)
        for backup in path.parent.glob(f"{path.name}.*")
        if backup.name.rsplit(".", 1)[1].isdigit()
    )
    for _, backup in sorted(numbered, reverse=True):
        with backup.open(encoding="utf-8") as handle:
            yield from (line.rstrip("\n") for line in handle)


def _stream_lines(path: Path, *, follow: bool, stop: threading.Event) -> Iterator[str]:
    yield from _history(path)
    if follow:
        yield from follow_file(path, stop=stop)
        return
    with path.open(encoding="utf-8") as handle:
        yield from (line.rstrip("\n") for line in handle)


def select_events(
    lines: Iterable[str],
    *,
    endpoint: str | None,
    since: datetime | None,
) -> Iterator[dict[str, Any]]:
    """The JSON events in `lines`, of `endpoint` only when given, not older than `since`.

    An event whose time cannot be read is kept: dropping it would hide exactly the odd lines.
    """
    for line in lines:
        event = parse_event(line)
        if event is None:
            continue
        if endpoint is not None and event.get("endpoint") != endpoint:
            continue
        when = event_time(event)
        if since is not None and when is not None and when < since:
            continue
        yield event


def run(
    args: argparse.Namespace,
    *,
    stdin: TextIO | None = None,
    out: TextIO | None = None,
    now: datetime | None = None,
) -> int:
    """Print one endpoint's events; returns 0, or raises UsageError (exit 2) for a bad request.

    `now` (default: the current time) anchors `--since`."""
    source = sys.stdin if stdin is None else stdin
    sink = sys.stdout if out is None else out
    anchor = datetime.now(UTC) if now is None else now
    since = anchor - parse_since(args.since) if args.since else None
    stop = threading.Event()
    if args.log_dir:
        try:
            path = stream_path(args.log_dir, args.name)
        except ValueError:
            raise UsageError(f"not an endpoint name: {args.name!r}") from None
        if not path.exists():
            raise UsageError(f"no log stream for endpoint {args.name!r} in {args.log_dir}")
        # The file holds only this endpoint's events: no filter on the endpoint key.
        events = select_events(
            _stream_lines(path, follow=args.follow, stop=stop), endpoint=None, since=since
        )
    else:
        events = select_events(source, endpoint=args.name, since=since)
    try:
        for event in events:
            print(format_event(event), file=sink, flush=args.follow)
    except KeyboardInterrupt:
        # Ctrl-C is how a follow ends: not an error.
        stop.set()
    return 0
