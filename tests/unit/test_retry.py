"""The backoff schedule: exponential, capped, jittered downwards, Retry-After as a floor."""

from __future__ import annotations

import re

import pytest

from k8s.retry import BackoffPolicy


def test_without_jitter_the_delays_double_from_base_up_to_the_cap() -> None:
    policy = BackoffPolicy(base=0.2, cap=5.0, max_retries=7, jitter=0.2)
    delays = list(policy.schedule(lambda: 0.0))
    assert delays == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0])


def test_schedule_has_one_delay_per_retry() -> None:
    assert list(BackoffPolicy(max_retries=0).schedule(lambda: 0.5)) == []
    assert len(list(BackoffPolicy(max_retries=5).schedule(lambda: 0.5))) == 5


@pytest.mark.parametrize(
    ("attempt", "random_value", "expected"),
    [
        pytest.param(0, 0.0, 1.0, id="no-jitter"),
        pytest.param(0, 0.5, 0.875, id="half-jitter"),
        pytest.param(0, 0.999999, 0.75, id="max-jitter"),
        pytest.param(10, 0.0, 8.0, id="capped"),
        pytest.param(10, 0.5, 7.0, id="capped-jittered"),
    ],
)
def test_jitter_only_shortens_the_delay(attempt: int, random_value: float, expected: float) -> None:
    policy = BackoffPolicy(base=1.0, cap=8.0, jitter=0.25)
    assert policy.delay(attempt, random_value=random_value) == pytest.approx(expected, abs=1e-5)


def test_a_delay_never_exceeds_the_cap_even_for_huge_attempt_numbers() -> None:
    policy = BackoffPolicy(base=0.2, cap=5.0)
    assert policy.delay(10_000, random_value=0.0) == 5.0


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        pytest.param(None, 0.2, id="absent"),
        pytest.param(0.0, 0.2, id="shorter-than-backoff"),
        pytest.param(3.0, 3.0, id="honoured"),
        pytest.param(3600.0, 30.0, id="bounded"),
    ],
)
def test_retry_after_is_a_floor_bounded_by_its_cap(
    retry_after: float | None, expected: float
) -> None:
    policy = BackoffPolicy(base=0.2, cap=5.0, retry_after_cap=30.0)
    assert policy.delay(0, random_value=0.0, retry_after=retry_after) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("message", "kwargs"),
    [
        pytest.param("need 0 < base <= cap", {"base": 0}, id="zero-base"),
        pytest.param("need 0 < base <= cap", {"base": 2.0, "cap": 1.0}, id="cap-below-base"),
        pytest.param("max_retries must be >= 0", {"max_retries": -1}, id="negative-retries"),
        pytest.param("jitter must be within 0..1", {"jitter": 1.5}, id="jitter-above-one"),
    ],
)
def test_invalid_policies_are_refused(message: str, kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        BackoffPolicy(**kwargs)
