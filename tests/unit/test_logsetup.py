"""Logging: JSON off a terminal, console on one, per-endpoint JSONL files, rotation."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from actors.app.logsetup import close_log_files, configure_logging, reset_logging, stream_path


class TerminalStream(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """Each test configures logging its own way; afterwards the process is as it was."""
    yield
    reset_logging()


def read_events(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_json_lines_when_the_stream_is_not_a_terminal() -> None:
    out = io.StringIO()
    configure_logging(stream=out)

    structlog.get_logger("actors.endpoint").bind(endpoint="m1", region="r1").info(
        "reconciled", replicas=2
    )

    (event,) = [json.loads(line) for line in out.getvalue().splitlines()]
    assert event["event"] == "reconciled"
    assert event["level"] == "info"
    assert event["logger"] == "actors.endpoint"
    assert (event["endpoint"], event["region"], event["replicas"]) == ("m1", "r1", 2)
    assert str(event["timestamp"]).endswith("Z")
    assert list(event)[:4] == ["timestamp", "level", "logger", "event"]


def test_console_lines_on_a_terminal() -> None:
    out = TerminalStream()
    configure_logging(stream=out)

    structlog.get_logger("x").info("hello", n=1)

    line = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())  # colours off
    assert "hello" in line
    assert "n=" in line
    assert not line.lstrip().startswith("{")


def test_explicit_json_on_a_terminal() -> None:
    out = TerminalStream()
    configure_logging(fmt="json", stream=out)

    structlog.get_logger("x").info("hello")

    assert json.loads(out.getvalue())["event"] == "hello"


def test_level_filters_events() -> None:
    out = io.StringIO()
    configure_logging(stream=out, level="warning")

    log = structlog.get_logger("x")
    log.info("hidden")
    log.warning("shown")

    assert [json.loads(line)["event"] for line in out.getvalue().splitlines()] == ["shown"]


def test_library_loggers_come_out_as_json_too() -> None:
    out = io.StringIO()
    configure_logging(stream=out)

    logging.getLogger("kubernetes.client").warning("retrying %s", "GET")

    event = json.loads(out.getvalue())
    assert (event["event"], event["logger"], event["level"]) == (
        "retrying GET",
        "kubernetes.client",
        "warning",
    )


def test_exceptions_are_one_json_line_with_the_traceback() -> None:
    out = io.StringIO()
    configure_logging(stream=out)

    try:
        raise RuntimeError("api down")
    except RuntimeError:
        structlog.get_logger("x").exception("reconcile failed")

    (event,) = [json.loads(line) for line in out.getvalue().splitlines()]
    assert "RuntimeError: api down" in str(event["exception"])


def test_per_endpoint_files_hold_only_their_endpoints_lines(tmp_path: Path) -> None:
    configure_logging(stream=io.StringIO(), log_dir=str(tmp_path))
    log = structlog.get_logger("actors.endpoint")

    log.info("poll done", items=2)
    log.bind(endpoint="m1", region="r", cluster="c").info("created", kind="Deployment")
    log.bind(endpoint="m2", region="r", cluster="c").info("created", kind="Service")
    log.bind(endpoint="m1", region="r", cluster="c").warning("unready")
    logging.getLogger("urllib3").warning("connection reset")
    close_log_files()

    m1, m2 = read_events(tmp_path / "m1.jsonl"), read_events(tmp_path / "m2.jsonl")
    daemon = read_events(tmp_path / "_daemon.jsonl")
    assert [(e["endpoint"], e["event"]) for e in m1] == [("m1", "created"), ("m1", "unready")]
    assert [(e["endpoint"], e["event"]) for e in m2] == [("m2", "created")]
    assert [e["event"] for e in daemon] == ["poll done", "connection reset"]
    assert all((e["region"], e["cluster"]) == ("r", "c") for e in m1 + m2)


def test_an_endpoint_name_cannot_escape_the_log_directory(tmp_path: Path) -> None:
    log_dir = tmp_path / "logs"
    configure_logging(stream=io.StringIO(), log_dir=str(log_dir))

    structlog.get_logger("x").bind(endpoint="../escape").info("odd name")
    close_log_files()

    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs"]
    assert [e["endpoint"] for e in read_events(log_dir / "_daemon.jsonl")] == ["../escape"]
    with pytest.raises(ValueError, match="not a log stream name"):
        stream_path(log_dir, "../escape")


@pytest.mark.parametrize("name", ["supervisor", "daemon"])
def test_an_endpoint_named_like_the_daemon_gets_a_stream_of_its_own(
    tmp_path: Path, name: str
) -> None:
    """The daemon's own events go to `_daemon.jsonl`, a name no endpoint can have: an
    endpoint named `supervisor` shares its file with nobody, and `logs supervisor` reads it."""
    configure_logging(stream=io.StringIO(), log_dir=str(tmp_path))
    log = structlog.get_logger("actors.supervisor")

    log.info("leadership changed", leading=True)
    log.bind(endpoint=name, region="r", cluster="c").info("created", kind="Deployment")
    close_log_files()

    assert [(e["endpoint"], e["event"]) for e in read_events(tmp_path / f"{name}.jsonl")] == [
        (name, "created")
    ]
    assert [e["event"] for e in read_events(tmp_path / "_daemon.jsonl")] == ["leadership changed"]
    assert stream_path(tmp_path, name) == tmp_path / f"{name}.jsonl"
    with pytest.raises(ValueError, match="not a log stream name"):
        stream_path(tmp_path, "_anything")


def test_files_rotate_by_size(tmp_path: Path) -> None:
    configure_logging(stream=io.StringIO(), log_dir=str(tmp_path), max_bytes=400, backup_count=2)
    log = structlog.get_logger("x").bind(endpoint="m1")

    for index in range(40):
        log.info("tick", index=index)
    close_log_files()

    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["m1.jsonl", "m1.jsonl.1", "m1.jsonl.2"]
    assert all(p.stat().st_size <= 400 for p in tmp_path.iterdir())
    newest = read_events(tmp_path / "m1.jsonl")
    assert newest[-1]["index"] == 39


def test_reconfiguring_replaces_the_previous_outputs(tmp_path: Path) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging(stream=first, log_dir=str(tmp_path / "a"))
    configure_logging(stream=second)

    structlog.get_logger("x").bind(endpoint="m1").info("after")

    assert first.getvalue() == ""
    assert json.loads(second.getvalue())["event"] == "after"
    assert not (tmp_path / "a" / "m1.jsonl").exists()


def test_closed_files_reopen_on_the_next_event(tmp_path: Path) -> None:
    configure_logging(stream=io.StringIO(), log_dir=str(tmp_path))
    log = structlog.get_logger("x").bind(endpoint="m1")

    log.info("one")
    close_log_files()
    log.info("two")
    close_log_files()

    assert [e["event"] for e in read_events(tmp_path / "m1.jsonl")] == ["one", "two"]


def test_a_bad_format_or_level_is_refused() -> None:
    with pytest.raises(ValueError, match="log format"):
        configure_logging(fmt="xml")
    with pytest.raises(ValueError, match="log level"):
        configure_logging(level="loud")
