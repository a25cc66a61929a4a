"""CloudWatch alarm states for the rollout's alarm gate (architecture section 12).

`AlarmReader.firing(names)` answers which of the given alarm names are in state ALARM in
this daemon's region. boto3 finds the endpoint itself, so its standard variables
`AWS_ENDPOINT_URL_CLOUDWATCH` (then `AWS_ENDPOINT_URL`) point it at a local server: moto's
`ThreadedMotoServer` (`store.local.LocalDynamo`) serves CloudWatch on the same port as
DynamoDB, and its `put_metric_alarm` + `set_alarm_state` put an alarm in ALARM.

`AlarmReader.read(names, max_age)` says more (`AlarmReading`): which fire, which names
CloudWatch does not know, the read's error, and how old the answer is, so the rollout can
require a read taken after a bake's end before a region is done, and show a misspelled
name or an unreadable CloudWatch (architecture section 12).

An alarm that cannot be read counts as not firing (logged, and counted by `on_request`):
a halt is sticky and rolls every region back, so a CloudWatch outage in one region must
not fail a good revision everywhere; it holds that region's bake instead (the rollout's
decision). INSUFFICIENT_DATA and OK are not firing either, as for SageMaker's deployment
guardrails. Answers are reused for `cache_seconds` (or less, with `max_age`), so a region
that reconciles often while it bakes costs at most one call per alarm set that often.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

import boto3
import structlog
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

__all__ = ["ALARM", "AlarmReader", "AlarmReading"]

log = structlog.get_logger(__name__)

#: The state that fails a rollout step or bake.
ALARM = "ALARM"
#: `describe_alarms` accepts at most this many names per call.
NAMES_PER_CALL = 100
#: boto3's standard variables naming a CloudWatch endpoint, the specific one first.
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_CLOUDWATCH", "AWS_ENDPOINT_URL")


@dataclasses.dataclass(frozen=True)
class AlarmReading:
    """One answer about a set of alarm names.

    Attributes:
        firing: the names in ALARM, in the order asked.
        missing: the names CloudWatch does not know (a misspelling disables no gate
            silently: the rollout shows it and does not pass the gate).
        error: why the alarms could not be read (None: they were).
        age: seconds since the answer was taken (0 for a fresh call, more from the cache).
    """

    firing: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    error: str | None = None
    age: float = 0.0

    @property
    def problem(self) -> str | None:
        """What keeps the gate from being passed, as a person reads it (None: nothing)."""
        if self.error is not None:
            return f"alarms not readable: {self.error}"[:300]
        if self.missing:
            return f"alarm {', '.join(self.missing)} does not exist in CloudWatch"
        return None


class AlarmReader:
    """Reads CloudWatch alarm states in one region; thread-safe (endpoint actors share it).

    Args:
        region: the AWS region whose alarms are read (the daemon's `REGION`).
        endpoint_url: a CloudWatch endpoint instead of AWS's; None lets boto3 read
            `AWS_ENDPOINT_URL_CLOUDWATCH` / `AWS_ENDPOINT_URL`, else AWS's endpoint.
        timeout: connect and read timeout of each request, seconds (default 2: the
            reader is called inside an endpoint's reconcile).
        max_attempts: attempts per call including the first, botocore "standard" retries
            with backoff on throttling, 5xx and timeouts (default 2).
        cache_seconds: how long an answer for one set of names is reused (default 10).
        monotonic: the clock of the cache (the daemon's, so fake time drives it in tests).
        on_request: called as `on_request(outcome)` once per `describe_alarms` answer
            used: "ok", or the error code / exception name.
    """

    def __init__(
        self,
        region: str,
        *,
        endpoint_url: str | None = None,
        timeout: float = 2.0,
        max_attempts: int = 2,
        cache_seconds: float = 10.0,
        monotonic: Callable[[], float],
        on_request: Callable[[str], None] | None = None,
    ) -> None:
        self.region = region
        self._endpoint_url = endpoint_url
        self._config = Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"max_attempts": max_attempts, "mode": "standard"},
        )
        self._cache_seconds = cache_seconds
        self._monotonic = monotonic
        self._on_request = on_request
        self._lock = threading.Lock()
        self._client: Any = None
        # names -> (the answer, monotonic time it was taken)
        self._cache: dict[tuple[str, ...], tuple[AlarmReading, float]] = {}

    def firing(self, names: Sequence[str]) -> tuple[str, ...]:
        """The names among `names` whose alarm is in ALARM now, in the order given.

        Never raises: an alarm that cannot be read counts as not firing (module docstring);
        an alarm name CloudWatch does not know is not firing either (logged).
        """
        return self.read(names).firing

    def read(self, names: Sequence[str], max_age: float | None = None) -> AlarmReading:
        """The state of the alarms `names`; an answer is reused while younger than
        `cache_seconds` and, when given, than `max_age`. Never raises (`error` says why)."""
        wanted = tuple(dict.fromkeys(n for n in names if n))
        if not wanted:
            return AlarmReading()
        now = self._monotonic()
        with self._lock:
            cached = self._cache.get(wanted)
        if cached is not None:
            age = now - cached[1]
            if age < self._cache_seconds and (max_age is None or age <= max_age):
                return dataclasses.replace(cached[0], age=age)
        answer = self.check(wanted)
        if answer.error is not None:
            self._count(answer.error)
            log.warning(
                "alarms not readable: taken as not firing",
                alarms=list(wanted),
                region=self.region,
                error=answer.error,
            )
            return answer
        # A name CloudWatch does not know is its own outcome: the gate is not read.
        self._count("missing" if answer.missing else "ok")
        if answer.missing:
            log.warning("alarms not found in CloudWatch", alarms=answer.missing, region=self.region)
        with self._lock:
            self._cache[wanted] = (answer, now)
        return answer

    def check(self, names: Sequence[str]) -> AlarmReading:
        """Read the alarms `names` now: no cache, no log, not counted (the CLI's check of
        a policy's names). Never raises (`error` says why)."""
        wanted = tuple(dict.fromkeys(n for n in names if n))
        if not wanted:
            return AlarmReading()
        try:
            states = self._states(wanted)
        except (BotoCoreError, ClientError) as error:
            return AlarmReading(error=_outcome(error))
        return AlarmReading(
            firing=tuple(n for n in wanted if states.get(n) == ALARM),
            missing=tuple(n for n in wanted if n not in states),
        )

    def close(self) -> None:
        """Close the client's connections (idempotent)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _states(self, names: tuple[str, ...]) -> dict[str, str]:
        """{alarm name: StateValue} for the names CloudWatch knows (metric and composite)."""
        client = self._get_client()
        states: dict[str, str] = {}
        for start in range(0, len(names), NAMES_PER_CALL):
            chunk = list(names[start : start + NAMES_PER_CALL])
            kwargs: dict[str, Any] = {
                "AlarmNames": chunk,
                "AlarmTypes": ["MetricAlarm", "CompositeAlarm"],
            }
            while True:
                page = client.describe_alarms(**kwargs)
                for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
                    states[alarm["AlarmName"]] = alarm.get("StateValue", "")
                token = page.get("NextToken")
                if not token:
                    break
                kwargs["NextToken"] = token
        return states

    def _get_client(self) -> Any:
        """The boto3 client, built on first use (a daemon without alarms never builds it)."""
        with self._lock:
            if self._client is None:
                session = boto3.session.Session()
                credentials: dict[str, str] = {}
                configured = self._endpoint_url or any(map(os.environ.get, ENDPOINT_VARIABLES))
                if configured and session.get_credentials() is None:
                    # A local server accepts any credentials; a fresh machine has none.
                    credentials = {
                        "aws_access_key_id": "testing",
                        "aws_secret_access_key": "testing",
                    }
                self._client = session.client(
                    "cloudwatch",
                    region_name=self.region,
                    endpoint_url=self._endpoint_url,
                    config=self._config,
                    **credentials,
                )
            return self._client

    def _count(self, outcome: str) -> None:
        if self._on_request is not None:
            self._on_request(outcome)


def _outcome(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code") or "ClientError")
    return type(error).__name__
