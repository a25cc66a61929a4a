"""Backoff schedule and restart policy: 0.5 s doubling to 5 min, jitter 20 %, park after
more than 5 deaths in 10 minutes."""

import random

import pytest

from actors.backoff import Backoff, RestartPolicy


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [
        pytest.param(0, 0.5, id="first"),
        pytest.param(1, 1.0, id="doubles"),
        pytest.param(5, 16.0, id="sixth"),
        pytest.param(10, 300.0, id="capped"),
        pytest.param(10_000, 300.0, id="huge-attempt-capped"),
    ],
)
def test_delay_without_jitter_doubles_to_the_cap(attempt: int, expected: float) -> None:
    assert Backoff(jitter=0.0).delay(attempt) == expected


def test_jitter_takes_off_at_most_twenty_percent_and_never_exceeds_the_cap() -> None:
    """One schedule for restarts and Kubernetes retries (`k8s.retry.BackoffPolicy`):
    jitter only shortens a delay, so the cap holds."""
    rng = random.Random(7)
    delays = [Backoff().delay(3, rng=rng) for _ in range(500)]
    assert min(delays) >= 4.0 * 0.8
    assert max(delays) <= 4.0
    assert max(delays) - min(delays) > 0.5, "jitter must actually spread the delays"
    assert max(Backoff().delay(20, rng=rng) for _ in range(100)) <= 300.0


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"base": 0}, id="zero-base"),
        pytest.param({"cap": 0.1}, id="cap-below-base"),
        pytest.param({"jitter": 1.0}, id="jitter-100pct"),
    ],
)
def test_bad_backoff_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(**kwargs)


def test_five_deaths_in_ten_minutes_back_off_and_the_sixth_parks() -> None:
    policy = RestartPolicy(backoff=Backoff(jitter=0.0))
    decisions = [policy.record_death(now=t * 10.0) for t in range(6)]
    assert [d.delay for d in decisions[:5]] == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert not any(d.parked for d in decisions[:5])
    assert decisions[5].parked
    assert decisions[5].delay == 300.0, "a parked endpoint is retried at the cap"


def test_deaths_older_than_the_window_do_not_count() -> None:
    policy = RestartPolicy(backoff=Backoff(jitter=0.0))
    for t in range(5):
        policy.record_death(now=t)
    assert not policy.record_death(now=5 + 601).parked


def test_reset_unparks_and_restarts_the_schedule() -> None:
    policy = RestartPolicy(backoff=Backoff(jitter=0.0))
    for t in range(6):
        policy.record_death(now=t)
    assert policy.parked
    policy.reset()
    assert not policy.parked
    assert policy.record_death(now=10).delay == 0.5
