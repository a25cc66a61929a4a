"""The watchdog (architecture section 5, defects 5 and 19): judged on the primary, never
fooled by a ready canary, with its clock from the cluster (the Deployment's Available
condition), not from memory."""

from __future__ import annotations

import datetime as dt

from actors.watchdog import unready_since, watchdog
from tests.unit.live_objects import deployment as _deployment


def test_unready_since_comes_from_the_available_condition() -> None:
    since = unready_since(_deployment(ready=0, since="2027-01-15T08:00:00Z"))
    assert since == dt.datetime(2027, 1, 15, 8, tzinfo=dt.UTC).timestamp()
    assert unready_since(_deployment(ready=1, available=True)) is None
    assert unready_since(_deployment(replicas=0)) is None


def test_watchdog_cuts_traffic_after_threshold_and_ignores_a_ready_canary() -> None:
    """Defect 5: a ready canary must not hide a dead primary."""
    primary = _deployment(ready=0, since="2027-01-15T08:00:00Z")
    canary = _deployment(ready=1, available=True)
    start = unready_since(primary)
    assert start is not None
    early = watchdog(primary, canary, now=start + 299, threshold=300)
    assert early.serve_traffic
    assert early.next_check == start + 300
    late = watchdog(primary, canary, now=start + 300, threshold=300)
    assert not late.serve_traffic
    assert late.canary_healthy


def test_watchdog_gives_an_unready_canary_weight_zero_after_threshold() -> None:
    primary = _deployment(ready=2, available=True)
    canary = _deployment(ready=0, since="2027-01-15T08:00:00Z")
    start = unready_since(canary)
    assert start is not None
    assert watchdog(primary, canary, now=start + 10, threshold=300).canary_healthy
    assert not watchdog(primary, canary, now=start + 300, threshold=300).canary_healthy
