"""Leader election semantics (client-go's): acquire a free lease, renew a held one,
respect another holder until its lease expires by OUR clock, honour the record's
own leaseDurationSeconds (the predecessor writes 45 s), step down by the renew
deadline, release on shutdown."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable

import pytest

from actors.clock import FakeClock
from actors.lease import LeaseKeeper, LeaseSettings
from k8s.errors import AlreadyExists, Conflict, Retryable


class LeaseRecords:
    """An in-memory stand-in for the Lease API (our LeaseClient interface), with
    resourceVersion conflicts; `down` makes every call fail like an outage."""

    def __init__(self) -> None:
        self.lease: dict | None = None
        self.rv = 0
        self.down = False
        #: The table's epoch counter (`take_epoch`), shared by every keeper of a test.
        self.epochs = itertools.count(1)

    def _check(self) -> None:
        if self.down:
            raise Retryable("API unavailable", status=503)

    def get_lease(self, name: str, *, timeout: float | None = None) -> dict | None:
        self._check()
        return copy.deepcopy(self.lease)

    def create_lease(self, body: dict, *, timeout: float | None = None) -> dict:
        self._check()
        if self.lease is not None:
            raise AlreadyExists("exists", status=409)
        self.rv += 1
        self.lease = copy.deepcopy(body)
        self.lease["metadata"]["resourceVersion"] = str(self.rv)
        return copy.deepcopy(self.lease)

    def replace_lease(self, body: dict, *, timeout: float | None = None) -> dict:
        self._check()
        assert self.lease is not None
        if body["metadata"].get("resourceVersion") != self.lease["metadata"]["resourceVersion"]:
            raise Conflict("the object has been modified", status=409)
        self.rv += 1
        self.lease = copy.deepcopy(body)
        self.lease["metadata"]["resourceVersion"] = str(self.rv)
        return copy.deepcopy(self.lease)

    @property
    def holder(self) -> str | None:
        return None if self.lease is None else self.lease["spec"].get("holderIdentity")


def keeper_with_terms(
    records: LeaseRecords,
    clock: FakeClock,
    settings: LeaseSettings,
    on_change: Callable[[bool], None] = lambda _leading: None,
) -> LeaseKeeper:
    """A keeper whose every new term takes the next epoch of `records`' counter, as the
    supervisor does from the table when told it leads."""
    keeper: LeaseKeeper | None = None

    def changed(leading: bool) -> None:
        on_change(leading)
        if leading and keeper is not None:
            keeper.begin_term(next(records.epochs), keeper.transitions)

    keeper = LeaseKeeper(records, settings, clock, on_change=changed)
    return keeper


def _keeper(records: LeaseRecords, clock: FakeClock, identity: str) -> tuple[LeaseKeeper, list]:
    changes: list[bool] = []
    settings = LeaseSettings(
        name="inference-monitor-leader", namespace="gco-inference", identity=identity
    )
    return keeper_with_terms(records, clock, settings, changes.append), changes


def test_first_candidate_acquires_and_second_waits() -> None:
    records, clock = LeaseRecords(), FakeClock()
    a, a_changes = _keeper(records, clock, "a")
    b, b_changes = _keeper(records, clock, "b")
    a.tick()
    b.tick()
    assert records.holder == "a"
    assert a.leading
    assert a.may_write()
    assert a_changes == [True]
    assert not b.leading
    assert b_changes == []


def test_standby_takes_over_only_after_the_lease_expires_on_its_own_clock() -> None:
    records, clock = LeaseRecords(), FakeClock()
    a, _ = _keeper(records, clock, "a")
    b, _ = _keeper(records, clock, "b")
    a.tick()
    b.tick()  # b first sees the record now
    clock.advance(14)
    b.tick()
    assert records.holder == "a", "15 s have not passed since b saw the record change"
    clock.advance(1.5)
    b.tick()
    assert records.holder == "b"
    assert b.leading
    assert records.lease["spec"]["leaseTransitions"] == 1


def test_the_records_own_duration_is_honoured() -> None:
    """The predecessor writes leaseDurationSeconds = 45: we wait 45 s, not our 15."""
    records, clock = LeaseRecords(), FakeClock()
    records.lease = {
        "metadata": {"name": "inference-monitor-leader", "resourceVersion": "7"},
        "spec": {"holderIdentity": "old-reconciler", "leaseDurationSeconds": 45},
    }
    records.rv = 7
    b, _ = _keeper(records, clock, "b")
    b.tick()
    clock.advance(30)
    b.tick()
    assert records.holder == "old-reconciler"
    clock.advance(16)
    b.tick()
    assert records.holder == "b"


def test_leader_stops_writing_by_the_renew_deadline_during_an_outage() -> None:
    records, clock = LeaseRecords(), FakeClock()
    a, changes = _keeper(records, clock, "a")
    a.tick()
    records.down = True
    clock.advance(9.9)
    a.tick()
    assert a.may_write()
    clock.advance(0.2)
    assert not a.may_write(), "fencing holds even before the next tick runs"
    a.tick()
    assert not a.leading
    assert changes == [True, False]


def test_leader_steps_down_at_once_when_another_holder_appears() -> None:
    records, clock = LeaseRecords(), FakeClock()
    a, changes = _keeper(records, clock, "a")
    a.tick()
    records.lease["spec"]["holderIdentity"] = "intruder"
    records.rv += 1
    records.lease["metadata"]["resourceVersion"] = str(records.rv)
    a.tick()
    assert not a.leading
    assert changes == [True, False]


def test_release_clears_the_holder_so_a_standby_takes_over_at_once() -> None:
    records, clock = LeaseRecords(), FakeClock()
    a, _ = _keeper(records, clock, "a")
    b, _ = _keeper(records, clock, "b")
    a.tick()
    b.tick()
    a.release()
    assert records.holder == ""
    assert records.lease["spec"]["leaseDurationSeconds"] == 1
    b.tick()
    assert b.leading
    assert records.holder == "b"


@pytest.mark.parametrize(
    ("duration", "deadline", "retry"),
    [
        pytest.param(10, 10, 2, id="deadline-not-below-duration"),
        pytest.param(15, 2, 2, id="deadline-below-1.2-retry"),
        pytest.param(15, 10, 0, id="zero-retry"),
    ],
)
def test_bad_lease_timings_are_refused(duration: float, deadline: float, retry: float) -> None:
    with pytest.raises(ValueError, match="lease timings"):
        LeaseSettings(
            name="l",
            namespace="n",
            identity="i",
            duration=duration,
            renew_deadline=deadline,
            retry_period=retry,
        )


def test_the_leader_renews_with_one_write_and_no_read() -> None:
    """client-go's fast path: half the requests of GET + PUT every retry period."""
    records, clock = LeaseRecords(), FakeClock()
    calls: list[str] = []
    for method in ("get_lease", "create_lease", "replace_lease"):
        original = getattr(records, method)

        def counted(*args, _name=method, _original=original, **kwargs):
            calls.append(_name)
            return _original(*args, **kwargs)

        setattr(records, method, counted)
    a, _ = _keeper(records, clock, "a")
    a.tick()
    calls.clear()
    for _ in range(3):
        clock.advance(2)
        a.tick()
    assert calls == ["replace_lease"] * 3
    assert a.may_write()


def test_a_stale_cached_record_falls_back_to_reading_the_lease() -> None:
    records, clock = LeaseRecords(), FakeClock()
    a, _ = _keeper(records, clock, "a")
    a.tick()
    records.rv += 1
    records.lease["metadata"]["resourceVersion"] = str(records.rv)  # someone touched it
    clock.advance(2)
    a.tick()
    assert a.leading
    assert records.holder == "a"
