"""Logging, configured once for the whole process: structlog on top of stdlib logging.

Events go to one stream (stderr by default) as JSON lines when it is not a
terminal, or through structlog's console renderer when it is. With a log
directory, every event that carries an `endpoint` key is also appended to
`{log_dir}/{endpoint}.jsonl` and every other event to the daemon's own stream
`{log_dir}/_daemon.jsonl` (a name no endpoint can have, so an endpoint named
`supervisor` or `daemon` gets a stream of its own), each rotated by size. Library
loggers (kubernetes, botocore, urllib3) pass through the same pipeline, so their lines
are JSON too.

Modules log with `log = structlog.get_logger(__name__)`; actors bind their
`endpoint`, `region` and `cluster` in `on_start`.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, TextIO

import structlog

#: The daemon's own stream: it starts with "_", which no endpoint stream name can.
DAEMON_STREAM = "_daemon"
# 10 MiB x 3 backups per stream: a busy endpoint keeps ~40 MiB of history.
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_BACKUP_COUNT = 3
# Open file handles are capped: 5,000 endpoints must not exhaust the process's
# descriptors. The least recently written stream is closed and reopened on demand.
MAX_OPEN_FILES = 128
# An endpoint name becomes a file name only if it is this tame; anything else
# (path separators, dots first) goes to the daemon's stream with its `endpoint` key.
_SAFE_STREAM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
LOG_FORMATS = ("auto", "json", "console")

_timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp")
# Run on every event, whether it came from structlog or from a stdlib logger.
_COMMON = (
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    _timestamper,
)


def stream_path(log_dir: str | Path, name: str) -> Path:
    """The JSONL file of stream `name` (an endpoint, or `DAEMON_STREAM`) in `log_dir`.

    Raises:
        ValueError: `name` could escape the directory or is not a plain name.
    """
    if name != DAEMON_STREAM and not _SAFE_STREAM_NAME.match(name):
        raise ValueError(f"not a log stream name: {name!r}")
    return Path(log_dir) / f"{name}.jsonl"


class EndpointFileHandler(logging.Handler):
    """Appends each event to its endpoint's JSONL file, or to the daemon's own stream.

    Files are opened lazily on the first event of a stream, rotated by size,
    and at most `max_open` are open at once.
    """

    def __init__(
        self,
        log_dir: str | Path,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        backup_count: int = DEFAULT_BACKUP_COUNT,
        max_open: int = MAX_OPEN_FILES,
    ) -> None:
        super().__init__()
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._max_bytes = max_bytes
        self._backup_count = backup_count
        self._max_open = max_open
        self._files: OrderedDict[str, logging.handlers.RotatingFileHandler] = OrderedDict()

    @staticmethod
    def stream_name(record: logging.LogRecord) -> str:
        """The file stem `record` belongs to: its endpoint when it names one safely."""
        event = record.msg
        if getattr(record, "_logger", None) is not None and isinstance(event, dict):
            endpoint = event.get("endpoint")
            if isinstance(endpoint, str) and _SAFE_STREAM_NAME.match(endpoint):
                return endpoint
        return DAEMON_STREAM

    def emit(self, record: logging.LogRecord) -> None:
        """Write `record` to its stream's file (called under this handler's lock)."""
        name = self.stream_name(record)
        target = self._files.get(name)
        if target is None:
            target = logging.handlers.RotatingFileHandler(
                stream_path(self.log_dir, name),
                maxBytes=self._max_bytes,
                backupCount=self._backup_count,
                encoding="utf-8",
                delay=True,
            )
            target.setFormatter(self.formatter)
            self._files[name] = target
            while len(self._files) > self._max_open:
                _, oldest = self._files.popitem(last=False)
                oldest.close()
        else:
            self._files.move_to_end(name)
        target.handle(record)

    def close_files(self) -> None:
        """Close every open stream; the next event of a stream reopens its file."""
        self.acquire()
        try:
            while self._files:
                _, target = self._files.popitem()
                target.close()
        finally:
            self.release()

    def close(self) -> None:
        """Close every open stream and this handler."""
        self.close_files()
        super().close()


_lock = threading.Lock()
_installed: list[logging.Handler] = []


def _renderer(fmt: str, stream: TextIO) -> Any:
    """The last processor for `stream`: JSON lines, or the console renderer on a terminal."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {fmt!r}")
    is_tty = bool(getattr(stream, "isatty", lambda: False)())
    if fmt == "console" or (fmt == "auto" and is_tty):
        return structlog.dev.ConsoleRenderer(colors=is_tty)
    return structlog.processors.JSONRenderer()


_LEADING_KEYS = ("timestamp", "level", "logger", "event")


def lead_with_standard_keys(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    """Put timestamp, level, logger and event first, so a raw JSON line reads left to right."""
    ordered = {key: event[key] for key in _LEADING_KEYS if key in event}
    ordered.update((key, value) for key, value in event.items() if key not in ordered)
    return ordered


def _formatter(renderer: Any) -> structlog.stdlib.ProcessorFormatter:
    processors: list[Any] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if isinstance(renderer, structlog.processors.JSONRenderer):
        # JSON carries the traceback as one string; the console renderer prints its own.
        processors += [structlog.processors.format_exc_info, lead_with_standard_keys]
    processors.append(renderer)
    return structlog.stdlib.ProcessorFormatter(
        processors=processors,
        foreign_pre_chain=list(_COMMON),
    )


def configure_logging(
    *,
    fmt: str = "auto",
    log_dir: str | None = None,
    level: str = "info",
    stream: TextIO | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    backup_count: int = DEFAULT_BACKUP_COUNT,
) -> None:
    """Configure structlog and stdlib logging for the process; a second call reconfigures.

    Args:
        fmt: `auto` (console on a terminal, JSON otherwise), `json` or `console`.
        log_dir: when set, also write per-endpoint JSONL streams and _daemon.jsonl there.
        level: minimum level name (`debug`, `info`, `warning`, `error`).
        stream: where the main stream goes; None means `sys.stderr` at call time.
        max_bytes: size at which a file stream rotates.
        backup_count: rotated files kept per stream.

    Raises:
        ValueError: unknown format or level.
    """
    numeric_level = logging.getLevelName(level.upper())
    if not isinstance(numeric_level, int):
        raise ValueError(f"log level must be debug, info, warning or error, got {level!r}")
    out = sys.stderr if stream is None else stream
    handlers: list[logging.Handler] = []
    console = logging.StreamHandler(out)
    console.setFormatter(_formatter(_renderer(fmt, out)))
    handlers.append(console)
    if log_dir is not None:
        files = EndpointFileHandler(log_dir, max_bytes=max_bytes, backup_count=backup_count)
        files.setFormatter(_formatter(structlog.processors.JSONRenderer()))
        handlers.append(files)

    with _lock:
        root = logging.getLogger()
        for old in _installed:
            root.removeHandler(old)
            old.close()
        _installed[:] = handlers
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(numeric_level)
        structlog.configure(
            processors=[
                structlog.stdlib.filter_by_level,
                structlog.contextvars.merge_contextvars,
                *_COMMON,
                structlog.stdlib.PositionalArgumentsFormatter(),
                structlog.processors.StackInfoRenderer(),
                structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
            ],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
            # Not cached: module-level loggers must follow a reconfiguration (tests do that).
            cache_logger_on_first_use=False,
        )


def close_log_files() -> None:
    """Close every per-endpoint and daemon stream file; later events reopen them lazily."""
    with _lock:
        for handler in _installed:
            if isinstance(handler, EndpointFileHandler):
                handler.close_files()


def reset_logging() -> None:
    """Undo `configure_logging`: remove and close its handlers, restore structlog's defaults.

    For tests and embedders that must leave the process as they found it.
    """
    with _lock:
        root = logging.getLogger()
        for handler in _installed:
            root.removeHandler(handler)
            handler.close()
        _installed.clear()
        root.setLevel(logging.WARNING)
        structlog.reset_defaults()
