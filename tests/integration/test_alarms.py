"""`store.alarms.AlarmReader` against moto's CloudWatch (architecture section 12): only ALARM
fires, in
the reader's own region; an endpoint that does not answer counts as not firing, within
the short timeout, and the failure is counted."""

from __future__ import annotations

import time

import boto3
import pytest

from store.alarms import AlarmReader


def _alarm(cw, name: str, state: str | None = None) -> None:
    cw.put_metric_alarm(
        AlarmName=name, MetricName="5xx", Namespace="inference", Statistic="Sum", Period=60,
        EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold",
    )  # fmt: skip
    if state is not None:
        cw.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")


def test_only_alarms_in_alarm_in_the_readers_region_fire(
    dynamo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", dynamo_url)
    cw = boto3.client(
        "cloudwatch", region_name="eu-west-1", endpoint_url=dynamo_url,
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip
    _alarm(cw, "t-firing", "ALARM")
    _alarm(cw, "t-ok", "OK")
    _alarm(cw, "t-new")
    outcomes: list[str] = []
    reader = AlarmReader("eu-west-1", monotonic=time.monotonic, on_request=outcomes.append)
    other = AlarmReader("ap-south-1", monotonic=time.monotonic)
    try:
        assert reader.firing(["t-ok", "t-firing", "t-new"]) == ("t-firing",)
        assert other.firing(["t-firing"]) == ()
        assert outcomes == ["ok"]
    finally:
        reader.close()
        other.close()


def test_a_name_cloudwatch_does_not_know_is_its_own_outcome_and_never_passes(
    dynamo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Case 7: `r1-5xx` asked, `r1-5XX` in ALARM: the misspelled name is `missing` (counted
    as such, not `ok`), so the gate is not taken as read."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", dynamo_url)
    cw = boto3.client(
        "cloudwatch", region_name="us-west-2", endpoint_url=dynamo_url,
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip
    _alarm(cw, "r1-5XX", "ALARM")
    outcomes: list[str] = []
    reader = AlarmReader("us-west-2", monotonic=time.monotonic, on_request=outcomes.append)
    try:
        reading = reader.read(["r1-5xx"])
    finally:
        reader.close()
    assert (reading.firing, reading.missing, outcomes) == ((), ("r1-5xx",), ["missing"])
    assert reading.problem == "alarm r1-5xx does not exist in CloudWatch"


def test_an_answer_older_than_max_age_is_read_again(
    dynamo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bake's end needs an answer taken after it: `max_age` bypasses the cache."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", dynamo_url)
    cw = boto3.client(
        "cloudwatch", region_name="sa-east-1", endpoint_url=dynamo_url,
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip
    _alarm(cw, "t-late", "OK")
    now = [0.0]
    reader = AlarmReader("sa-east-1", monotonic=lambda: now[0])
    try:
        assert reader.read(["t-late"]).firing == ()
        cw.set_alarm_state(AlarmName="t-late", StateValue="ALARM", StateReason="test")
        now[0] = 4.0
        assert reader.read(["t-late"]).age == 4.0
        fresh = reader.read(["t-late"], 1.0)
        assert (fresh.firing, fresh.age) == (("t-late",), 0.0)
    finally:
        reader.close()


def test_an_unreachable_cloudwatch_is_not_firing_and_is_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", "http://127.0.0.1:9")
    outcomes: list[str] = []
    reader = AlarmReader("us-east-1", monotonic=time.monotonic, on_request=outcomes.append)
    started = time.monotonic()
    try:
        assert reader.firing(["any"]) == ()
    finally:
        reader.close()
    assert time.monotonic() - started < 10
    assert outcomes == ["EndpointConnectionError"]
