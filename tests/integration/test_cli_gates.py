"""The CLI's gate flags (architecture section 12): `--verify-weights` and `--analysis` set
the policy's fields on create and update, a bad value is refused with one line and exit 2
(writing nothing), and `--no-...` removes them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.harness import CliResult

PREFIX = "inference-supervisor endpoints: "
US = "us-east-1"


def item(cli: Callable[..., CliResult]) -> dict[str, Any]:
    result = cli("show", "chat", "--json")
    assert result.status == 0, result.err
    return result.json()


def test_create_and_update_set_the_gate_fields(cli: Callable[..., CliResult]) -> None:
    created = cli(
        "create", "chat", "--image", "repo/m:v1", "--region", US, "--waves", US,
        "--verify-weights",
        "--analysis", "errors:sum(rate(http_5xx[1m])) / sum(rate(http_all[1m])):max=0.05:for=60",
    )  # fmt: skip
    assert (created.status, created.err) == (0, "")
    assert item(cli)["spec"]["rollout"] == {
        "waves": [[US]],
        "verify_weights": True,
        "analysis": [
            {
                "name": "errors",
                "query": "sum(rate(http_5xx[1m])) / sum(rate(http_all[1m]))",
                "max": 0.05,
                "for_seconds": 60,
            }
        ],
    }
    # A query with ':' of its own (a recording rule), settings first; the JSON form.
    updated = cli(
        "update", "chat",
        "--analysis", "p99:min=1:on_no_data=halt:job:latency_p99:rate5m",
        "--analysis", '{"name": "q", "query": "up", "min": 1}',
    )  # fmt: skip
    assert (updated.status, updated.err) == (0, "")
    assert item(cli)["spec"]["rollout"]["analysis"] == [
        {"name": "p99", "query": "job:latency_p99:rate5m", "min": 1, "on_no_data": "halt"},
        {"name": "q", "query": "up", "min": 1},
    ]
    removed = cli("update", "chat", "--no-analysis", "--no-verify-weights")
    assert (removed.status, removed.err) == (0, "")
    assert item(cli)["spec"]["rollout"] == {
        "waves": [[US]],
        "analysis": [],
        "verify_weights": False,
    }


@pytest.mark.parametrize(
    ("message", "argv"),
    [
        pytest.param(
            "--analysis: expected NAME:QUERY:max=X[:min=Y][:for=S] or a JSON map, got 'errors'",
            ("--analysis", "errors"), id="no-query",
        ),
        pytest.param(
            "--analysis: for must be an integer, got 'soon'" ,
            ("--analysis", "e:up:max=1:for=soon"), id="for",
        ),
        pytest.param(
            "--analysis: max must be a number, got 'high'", ("--analysis", "e:up:max=high"),
            id="max",
        ),
        pytest.param(
            "spec.rollout.analysis[0] needs a max or a min", ("--analysis", "e:up"), id="bound",
        ),
        pytest.param(
            "spec.rollout.analysis[0].on_no_data must be pass or halt, got 'fail'",
            ("--analysis", "e:up:max=1:on_no_data=fail"), id="no-data",
        ),
        pytest.param(
            "--analysis: not a JSON map: Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1)",
            ("--analysis", "{name: 1}"), id="json",
        ),
    ],
)  # fmt: skip
def test_a_bad_gate_flag_is_one_line_exit_2_and_writes_nothing(
    cli: Callable[..., CliResult], message: str, argv: tuple[str, ...]
) -> None:
    assert cli("create", "chat", "--image", "repo/m:v1", "--region", US).status == 0
    before = item(cli)
    result = cli("update", "chat", *argv)
    assert (result.status, result.err, result.out) == (2, f"{PREFIX}{message}\n", "")
    assert item(cli) == before
