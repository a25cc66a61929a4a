"""`inference-supervisor endpoints` rollout flags and `endpoints rollout status|pause|resume|
abort` (architecture section 12) against a local DynamoDB, through the real CLI entry."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from actors.app.cli import main
from actors.clock import FakeClock
from store.dynamo import DynamoEndpointStore
from store.model import RegionStatus
from store.rollout import RolloutRecord, revision
from tests.integration.harness import CliResult
from tests.integration.regions import Regions, regions

PREFIX = "inference-supervisor endpoints: "
V1, V2, V3 = "vllm/vllm-openai:v0.6.3", "vllm/vllm-openai:v0.6.4", "vllm/vllm-openai:v0.6.5"
US, EU, AP = "us-east-1", "eu-west-1", "ap-south-1"
POLICY_FLAGS = (
    "--waves", US, "--waves", f"{EU},{AP}", "--bake", "300", "--steps", "10,50",
    "--step-seconds", "60", "--deadline", "600", "--alarm", "chat-5xx", "--alarm", "chat-p99",
)  # fmt: skip
POLICY = {
    "waves": [[US], [EU, AP]],
    "bake_seconds": 300,
    "steps": [10, 50],
    "step_seconds": 60,
    "progress_deadline_seconds": 600,
    "alarms": ["chat-5xx", "chat-p99"],
}


@pytest.fixture(autouse=True)
def alarms(dynamo_url: str) -> None:
    """The policy's alarms exist in every region's CloudWatch (the moto server's)."""
    for region in (US, EU, AP):
        cw = boto3.client(
            "cloudwatch", region_name=region, endpoint_url=dynamo_url,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip
        for name in POLICY["alarms"]:
            cw.put_metric_alarm(
                AlarmName=name, MetricName="5xx", Namespace="inference", Statistic="Sum",
                Period=60, EvaluationPeriods=1, Threshold=1.0,
                ComparisonOperator="GreaterThanThreshold",
            )  # fmt: skip


def create_chat(cli: Callable[..., CliResult], *extra: str) -> None:
    result = cli(
        "create", "chat", "--image", V1, "--region", US, "--region", EU, "--region", AP, *extra
    )
    assert (result.status, result.err) == (0, "")


def item(cli: Callable[..., CliResult]) -> dict[str, Any]:
    return cli("show", "chat", "--json").json()


def test_update_writes_the_policy_and_seeds_the_completed_revision_in_one_write(
    cli: Callable[..., CliResult],
) -> None:
    create_chat(cli)
    before = item(cli)
    result = cli("update", "chat", "--image", V2, *POLICY_FLAGS)
    assert (result.status, result.out, result.err) == (0, "updated endpoint 'chat'\n", "")
    after = item(cli)
    assert after["spec"]["rollout"] == POLICY
    assert after["spec"]["image"] == V2
    # The spec served so far is the completed revision: regions not yet due keep it.
    record = RolloutRecord.from_item(after)
    assert record.completed_spec == before["spec"]
    assert record.completed_revision == revision(before["spec"])
    assert record.completed_revision != revision(after["spec"])
    # A later change keeps the completed revision: it is the daemons' to move.
    assert cli("update", "chat", "--image", "vllm/vllm-openai:v0.6.5").status == 0
    assert RolloutRecord.from_item(item(cli)).completed_spec == before["spec"]


def test_changing_only_the_policy_changes_no_revision(cli: Callable[..., CliResult]) -> None:
    create_chat(cli)
    assert cli("update", "chat", "--bake", "60", "--no-auto-rollback").status == 0
    after = item(cli)
    assert after["spec"]["rollout"] == {"bake_seconds": 60, "auto_rollback": False}
    assert RolloutRecord.from_item(after).completed_revision == revision(after["spec"])
    assert cli("update", "chat", "--auto-rollback", "--bake", "30").status == 0
    assert item(cli)["spec"]["rollout"] == {"bake_seconds": 30, "auto_rollback": True}
    assert cli("update", "chat", "--no-rollout").status == 0
    assert "rollout" not in item(cli)["spec"]


def test_create_takes_the_same_flags_and_seeds_nothing(cli: Callable[..., CliResult]) -> None:
    create_chat(cli, *POLICY_FLAGS)
    created = item(cli)
    assert created["spec"]["rollout"] == POLICY
    assert "rollout" not in created


@pytest.mark.parametrize(
    ("message", "argv"),
    [
        pytest.param("--bake: must be an integer, got 'soon'", ("--bake", "soon"), id="bake"),
        pytest.param(
            "--waves: expected NAME[,NAME...], got 'eu-west-1,'", ("--waves", "eu-west-1,"),
            id="empty-region",
        ),
        pytest.param(
            "spec.rollout.steps must increase, got [50, 10]", ("--steps", "50,10"), id="steps"
        ),
        pytest.param(
            "spec.rollout.steps must be a list of canary weights between 1 and 99, got [100]",
            ("--steps", "100"),
            id="weight",
        ),
        pytest.param(
            "spec.rollout.waves names region 'us-east-1' more than once",
            ("--waves", US, "--waves", f"{US},{EU}"),
            id="twice",
        ),
        pytest.param(
            "spec.rollout.bake_seconds must be a whole number of seconds between 0 and 604800, "
            "got -1",
            ("--bake", "-1"),
            id="negative",
        ),
        pytest.param(
            "--no-rollout removes the policy; it cannot go with --bake",
            ("--no-rollout", "--bake", "5"),
            id="no-rollout-and-a-setting",
        ),
    ],
)  # fmt: skip
def test_a_bad_policy_is_one_line_exit_2_and_writes_nothing(
    cli: Callable[..., CliResult], message: str, argv: tuple[str, ...]
) -> None:
    create_chat(cli)
    before = item(cli)
    result = cli("update", "chat", "--image", V2, *argv)
    assert (result.status, result.err, result.out) == (2, f"{PREFIX}{message}\n", "")
    assert item(cli) == before


def status(
    rev: str, phase: str, since: str, *, step: int | None = None, state: str = "running"
) -> RegionStatus:
    return RegionStatus(state, 1, 1, since, revision=rev, rollout=phase, step=step, since=since)


def test_status_shows_waves_by_regions(
    cli: Callable[..., CliResult], store: DynamoEndpointStore
) -> None:
    create_chat(cli)
    cli("update", "chat", "--image", V2, *POLICY_FLAGS)
    raw = item(cli)
    new, old = revision(raw["spec"]), RolloutRecord.from_item(raw).completed_revision
    assert old is not None
    store.write_region_status("chat", US, status(new, "baking", "2024-05-01T12:03:04Z", step=2))
    store.write_region_status("chat", EU, status(old, "waiting", "2024-05-01T12:00:00Z"))
    result = cli("rollout", "status", "chat")
    assert result.status == 0
    lines = result.out.splitlines()
    assert lines[0] == (
        f"endpoint chat: target {new[:8]} ({V2}), completed {old[:8]} ({V1}), the rollback target"
    )
    rows = [line.split() for line in lines[1:]]
    assert rows[0] == ["WAVE", "REGION", "REVISION", "PHASE", "SINCE", "REASON"]
    # Long past its bake: elapsed over the bake's length.
    assert rows[1][:4] == ["1", US, new[:8], "baking"]
    # ... and silent: its last status write is as old (no daemon writes it).
    assert (rows[1][4].endswith("h/5m,"), rows[1][5], rows[1][6][-1]) == (True, "silent", "h")
    assert rows[1][7:] == ["12:03:04Z"]
    assert rows[2:] == [["2", EU, old[:8], "waiting", "12:00:00Z"], ["2", AP, "-", "-", "-"]]
    document = cli("rollout", "status", "chat", "--json").json()
    assert (document["target_revision"], document["completed_revision"]) == (new, old)
    assert document["rollback_target"] == old
    assert [(r["wave"], r["region"], r["phase"]) for r in document["regions"]] == [
        (1, US, document["regions"][0]["phase"]),
        (2, EU, "waiting"),
        (2, AP, "-"),
    ]
    assert document["settled"] is False


def test_status_names_a_step_and_a_halt(
    cli: Callable[..., CliResult], store: DynamoEndpointStore
) -> None:
    create_chat(cli)
    cli("update", "chat", "--image", V2, *POLICY_FLAGS)
    new = revision(item(cli)["spec"])
    store.write_region_status("chat", US, status(new, "stepping", "2024-05-01T12:03:04Z", step=0))
    assert "stepping 10%" in cli("rollout", "status", "chat").out
    store.write_region_status("chat", US, status(new, "stepping", "2024-05-01T12:04:04Z", step=1))
    assert "stepping 50%" in cli("rollout", "status", "chat").out
    assert cli("rollout", "abort", "chat").status == 0
    out = cli("rollout", "status", "chat").out
    who = f"alice@{socket.gethostname()}"
    assert f"halted {new[:8]} at " in out.splitlines()[1]
    assert out.splitlines()[1].endswith(f": aborted by {who}")


def test_status_shows_a_region_kept_on_a_superseded_revision(
    cli: Callable[..., CliResult], store: DynamoEndpointStore
) -> None:
    create_chat(cli)
    cli("update", "chat", "--image", V2, *POLICY_FLAGS)
    second = revision(item(cli)["spec"])
    cli("update", "chat", "--image", V3)
    third = revision(item(cli)["spec"])
    store.write_region_status("chat", EU, status(second, "superseded", "2024-05-01T12:00:00Z"))
    rows = [line.split() for line in cli("rollout", "status", "chat").out.splitlines()[3:]]
    assert rows[0][:4] == ["2", EU, second[:8], "superseded"]
    assert " ".join(rows[0][5:]) == f"keeps {second[:8]} until its wave is due for {third[:8]}"


def test_a_policy_re_added_after_no_rollout_seeds_the_spec_every_region_serves(
    cli: Callable[..., CliResult],
) -> None:
    """Without a policy a change reaches every region at once: the completed revision
    recorded before `--no-rollout` is stale when a policy is set again."""
    create_chat(cli)
    cli("update", "chat", "--image", V2, *POLICY_FLAGS)
    assert cli("update", "chat", "--no-rollout").status == 0
    assert cli("update", "chat", "--image", V3).status == 0
    assert cli("update", "chat", *POLICY_FLAGS).status == 0
    after = item(cli)
    assert RolloutRecord.from_item(after).completed_revision == revision(after["spec"])


def test_an_alarm_name_cloudwatch_does_not_know_is_refused(
    cli: Callable[..., CliResult],
) -> None:
    """Case 7: a misspelled alarm would leave the gate unread; refused while CloudWatch
    answers, in one line, nothing written."""
    create_chat(cli)
    before = item(cli)
    result = cli("update", "chat", "--image", V2, "--waves", US, "--alarm", "Chat-5xx")
    assert (result.status, result.out) == (2, "")
    assert result.err == (
        f"{PREFIX}alarm 'Chat-5xx' does not exist in CloudWatch in {US} (names are "
        "case-sensitive): the gate would never be read\n"
    )
    assert item(cli) == before
    assert cli("update", "chat", "--waves", US, "--alarm", "chat-5xx").status == 0


def test_alarm_names_are_written_with_a_note_when_cloudwatch_cannot_be_read(
    cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    create_chat(cli)
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", "http://127.0.0.1:9")
    result = cli("update", "chat", "--waves", US, "--alarm", "whatever")
    assert result.status == 0
    assert f"note: alarms not checked in {US}: CloudWatch not readable" in result.err
    assert item(cli)["spec"]["rollout"]["alarms"] == ["whatever"]


def test_pause_resume_abort(cli: Callable[..., CliResult]) -> None:
    create_chat(cli)
    result = cli("rollout", "pause", "chat")
    assert (result.status, result.out, result.err) == (
        1,
        "",
        f"{PREFIX}endpoint 'chat' has no rollout policy to pause "
        "(set one with `endpoints update NAME --waves ...`)\n",
    )
    cli("update", "chat", "--image", V2, *POLICY_FLAGS)
    assert cli("rollout", "pause", "chat").out == "paused the rollout of 'chat'\n"
    assert RolloutRecord.from_item(item(cli)).paused
    assert "paused: every region holds its step" in cli("rollout", "status", "chat").out
    assert cli("rollout", "resume", "chat").out == "resumed the rollout of 'chat'\n"
    assert not RolloutRecord.from_item(item(cli)).paused
    who = f"alice@{socket.gethostname()}"
    assert cli("rollout", "abort", "chat").out == f"aborted the rollout of 'chat' ({who})\n"
    halt = RolloutRecord.from_item(item(cli)).halt
    assert halt is not None
    assert (halt.revision, halt.region, halt.reason) == (
        revision(item(cli)["spec"]),
        "",
        f"aborted by {who}",
    )
    # The daemon's format for a halt's time: UTC with a Z (as `rollout status` prints it).
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", halt.at), halt.at
    again = cli("rollout", "abort", "chat")
    assert (again.status, again.err) == (
        1,
        f"{PREFIX}the rollout of 'chat' is already halted: aborted by {who}\n",
    )


@pytest.mark.parametrize(
    ("status_code", "message", "argv"),
    [
        pytest.param(1, "endpoint 'nope' not found", ("rollout", "pause", "nope"), id="unknown"),
        pytest.param(
            2,
            "inference-supervisor endpoints rollout: argument VERB: invalid choice: 'stop' "
            "(choose from status, pause, resume, abort) (see --help)",
            ("rollout", "stop", "chat"),
            id="verb",
        ),
    ],
)
def test_rollout_refusals_are_one_line(
    cli: Callable[..., CliResult], status_code: int, message: str, argv: tuple[str, ...]
) -> None:
    create_chat(cli)
    before = item(cli)
    try:
        result = cli(*argv)
    except SystemExit as exit_:
        result = CliResult(int(exit_.code or 0), "", "")
    assert result.status == status_code
    if status_code == 1:
        assert result.err == f"{PREFIX}{message}\n"
    assert item(cli) == before


def test_watch_ends_with_the_rollout(
    cli: Callable[..., CliResult], store: DynamoEndpointStore
) -> None:
    """Piped, `--watch` prints the header and a line per region, and exits 0 once the
    revision completed everywhere (1 once it is halted and every region has reacted)."""
    create_chat(cli)
    cli("update", "chat", "--bake", "60")  # policy only: the revision is completed
    done = cli("rollout", "status", "chat", "--watch")
    assert done.status == 0
    assert [line.split() for line in done.out.splitlines()[:2]] == [
        ["rollout", "of", "chat"],
        ["WAVE", "REGION", "REVISION", "PHASE", "SINCE", "REASON"],
    ]
    cli("update", "chat", "--image", V2)
    new = revision(item(cli)["spec"])
    cli("rollout", "abort", "chat")
    for region in (US, EU, AP):
        store.write_region_status(
            "chat", region, status(new, "rolled_back", "2024-05-01T12:00:00Z")
        )
    halted = cli("rollout", "status", "chat", "--watch", "--json")
    assert halted.status == 1
    assert json.loads(halted.out.splitlines()[0])["settled"] is True


@pytest.fixture
def world(dynamo_url: str, table_name: str) -> Iterator[Regions]:
    clock = FakeClock()
    with regions(dynamo_url, table_name, (US, EU, AP), clock) as scenario:
        for region in scenario.names:
            scenario.start(region)
        yield scenario


def test_status_reads_a_rollout_the_daemons_halted(
    world: Regions, dynamo_url: str, table_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad image in the first wave, written by three daemons: `rollout status` shows
    the halt's region and reason, and every region back on the completed revision."""
    world.put("chat")
    world.drive(
        "chat",
        lambda: all(
            (s := world.status("chat", r)) is not None and s.state == "running" for r in world.names
        ),
        what="v1 running everywhere",
    )
    world.update("chat", "repo/model:crashloop", {"waves": [[US]], "progress_deadline_seconds": 20})
    world.drive(
        "chat",
        lambda: set(world.phases("chat").values()) == {"rolled_back"},
        timeout=120,
        what="the halt and the rollback",
    )
    # The table holds the whole story now; running daemons would log into the captured
    # output while the command prints.
    for region in world.names:
        world.stop(region)
    capsys.readouterr()
    argv = ["endpoints", "rollout", "status", "chat", "--endpoint-url", dynamo_url]
    assert main([*argv, "--table", table_name]) == 0
    lines = capsys.readouterr().out.splitlines()
    record = world.record("chat")
    assert record.halt is not None
    assert record.completed_revision is not None
    assert lines[1] == (
        f"halted {record.halt.revision[:8]} in {US} at {record.halt.at}: not ready within 20s"
    )
    rows = [line.split(maxsplit=4) for line in lines[3:]]
    done = record.completed_revision[:8]
    assert [row[:4] for row in rows] == [
        ["1", US, done, "rolled_back"],
        ["2", EU, done, "rolled_back"],
        ["2", AP, done, "rolled_back"],
    ]
    assert rows[0][4].endswith("not ready within 20s")
    assert rows[1][4].endswith(f"halted in {US}")
