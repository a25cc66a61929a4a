"""Fixtures of the unit tests: a fake clock and a scheduler running on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from actors.clock import FakeClock
from actors.scheduler import Scheduler


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def scheduler(clock: FakeClock) -> Iterator[Scheduler]:
    """The one timer thread, on `clock`; stopped after the test."""
    scheduler = Scheduler(clock).start()
    yield scheduler
    scheduler.stop()
