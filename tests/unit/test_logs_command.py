"""`inference-supervisor logs NAME`: one endpoint's stream, readable, filtered by age."""

from __future__ import annotations

import argparse
import io
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog

from actors.app.cli import UsageError
from actors.app.logs import add_arguments, follow_file, format_event, parse_since, run
from actors.app.logsetup import close_log_files, configure_logging, reset_logging

NOW = datetime.now(UTC)


def stamp(ago: timedelta) -> str:
    return (NOW - ago).isoformat().replace("+00:00", "Z")


def event_line(event: str, ago: timedelta, **fields: object) -> str:
    return json.dumps({"timestamp": stamp(ago), "level": "info", "event": event, **fields})


def parse_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def run_logs(*argv: str, stdin: str = "") -> list[str]:
    out = io.StringIO()
    assert run(parse_args(*argv), stdin=io.StringIO(stdin), out=out, now=NOW) == 0
    return out.getvalue().splitlines()


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    (tmp_path / "m1.jsonl").write_text(
        "\n".join(
            [
                event_line("created", timedelta(hours=3), endpoint="m1", kind="Deployment"),
                event_line("unready", timedelta(minutes=5), endpoint="m1", ready=0),
                event_line("running", timedelta(seconds=20), endpoint="m1", note="all good"),
            ]
        )
        + "\n"
    )
    (tmp_path / "m2.jsonl").write_text(event_line("created", timedelta(0), endpoint="m2") + "\n")
    return tmp_path


def test_prints_one_endpoints_stream_one_readable_line_per_event(log_dir: Path) -> None:
    lines = run_logs("m1", "--log-dir", str(log_dir))

    assert lines == [
        f"{stamp(timedelta(hours=3))} info    created  endpoint=m1 kind=Deployment",
        f"{stamp(timedelta(minutes=5))} info    unready  endpoint=m1 ready=0",
        f'{stamp(timedelta(seconds=20))} info    running  endpoint=m1 note="all good"',
    ]


def test_logs_of_an_endpoint_named_supervisor_hold_only_its_own_events(tmp_path: Path) -> None:
    """The daemon writes its own events elsewhere (`_daemon.jsonl`), so `logs supervisor`
    shows the endpoint `supervisor` and nothing of the daemon."""
    configure_logging(stream=io.StringIO(), log_dir=str(tmp_path))
    try:
        log = structlog.get_logger("actors.supervisor")
        log.info("leadership changed", leading=True)
        log.bind(endpoint="supervisor").info("created", kind="Deployment")
    finally:
        close_log_files()
        reset_logging()

    lines = run_logs("supervisor", "--log-dir", str(tmp_path))

    assert len(lines) == 1
    assert "created" in lines[0]
    assert "endpoint=supervisor" in lines[0]


@pytest.mark.parametrize(
    ("expected", "since"),
    [
        pytest.param(["running"], "30s", id="seconds"),
        pytest.param(["unready", "running"], "10m", id="minutes"),
        pytest.param(["created", "unready", "running"], "4h", id="hours"),
        pytest.param(["created", "unready", "running"], "1d", id="days"),
    ],
)
def test_since_keeps_only_newer_events(expected: list[str], since: str, log_dir: Path) -> None:
    lines = run_logs("m1", "--log-dir", str(log_dir), "--since", since)

    assert [line.split()[2] for line in lines] == expected


def test_rotated_backups_come_first_oldest_first(log_dir: Path) -> None:
    (log_dir / "m1.jsonl.2").write_text(event_line("oldest", timedelta(days=2)) + "\n")
    (log_dir / "m1.jsonl.1").write_text(event_line("older", timedelta(days=1)) + "\n")

    lines = run_logs("m1", "--log-dir", str(log_dir))

    assert [line.split()[2] for line in lines] == [
        "oldest",
        "older",
        "created",
        "unready",
        "running",
    ]


def test_without_a_log_dir_filters_the_json_stream_on_stdin_by_endpoint() -> None:
    stdin = "\n".join(
        [
            event_line("poll done", timedelta(minutes=1), items=2),
            event_line("created", timedelta(minutes=1), endpoint="m2"),
            "not json at all",
            "2026-11-25T10:00:00Z " + event_line("scaled", timedelta(seconds=5), endpoint="m1"),
            event_line("old", timedelta(hours=1), endpoint="m1"),
        ]
    )

    lines = run_logs("m1", "--since", "10m", stdin=stdin)

    assert lines == [f"{stamp(timedelta(seconds=5))} info    scaled  endpoint=m1"]


def test_unknown_endpoint_is_one_line_error(log_dir: Path) -> None:
    with pytest.raises(UsageError) as caught:
        run(parse_args("nope", "--log-dir", str(log_dir)))

    assert str(caught.value) == f"no log stream for endpoint 'nope' in {log_dir}"


def test_a_name_with_a_path_is_refused(log_dir: Path) -> None:
    with pytest.raises(UsageError, match="not an endpoint name"):
        run(parse_args("../m1", "--log-dir", str(log_dir)))


def test_bad_since_is_one_line_error(log_dir: Path) -> None:
    with pytest.raises(UsageError) as caught:
        run(parse_args("m1", "--log-dir", str(log_dir), "--since", "ten minutes"))

    assert str(caught.value) == (
        "--since must be a duration like 30s, 10m, 2h or 1d, got 'ten minutes'"
    )


def test_parse_since() -> None:
    assert parse_since("90s") == timedelta(seconds=90)
    assert parse_since("2h") == timedelta(hours=2)


def test_exception_text_follows_its_event_line() -> None:
    text = format_event(
        {"timestamp": "t", "level": "error", "event": "boom", "exception": "Traceback\nValueError"}
    )

    assert text.splitlines() == ["t error   boom", "Traceback", "ValueError"]


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def test_follow_reads_new_lines_across_rotation(tmp_path: Path, stop: threading.Event) -> None:
    """Lines written before and after a rotation all arrive, in order, none twice."""
    path = tmp_path / "m1.jsonl"
    path.write_text("one\n")
    lines = follow_file(path, stop=stop, poll_interval=0.01)

    assert next(lines) == "one"
    with path.open("a") as handle:
        handle.write("two\n")
    assert next(lines) == "two"
    path.rename(tmp_path / "m1.jsonl.1")
    path.write_text("three\n")
    assert next(lines) == "three"
    with path.open("a") as handle:
        handle.write("four\n")
    assert next(lines) == "four"
    stop.set()
    assert list(lines) == []


def test_follow_a_real_rotating_log(tmp_path: Path, stop: threading.Event) -> None:
    """The daemon's own rotation (tiny files) loses no event for a follower."""
    configure_logging(stream=io.StringIO(), log_dir=str(tmp_path), max_bytes=300, backup_count=50)
    try:
        log = structlog.get_logger("x").bind(endpoint="m1")
        log.info("tick", index=0)
        lines = follow_file(tmp_path / "m1.jsonl", stop=stop, poll_interval=0.01)
        seen = [json.loads(next(lines))["index"]]
        for index in range(1, 20):
            log.info("tick", index=index)
            seen.append(json.loads(next(lines))["index"])
    finally:
        close_log_files()
        reset_logging()

    assert seen == list(range(20))
    assert (tmp_path / "m1.jsonl.1").exists()
