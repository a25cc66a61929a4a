"""Which table state an endpoint actor adopts from a scanned item (`actors.freshness`,
architecture section 12: nothing moves backwards on stale input)."""

from __future__ import annotations

from actors.freshness import Recorded, adopt
from store.model import RegionStatus
from store.rollout import RolloutRecord
from tests.items import loaded

US = "us-east-1"


def item(own: RegionStatus | None, *, updated_at: str = "u1", record=None):
    statuses = {} if own is None else {US: own}
    return loaded(
        image="repo/m:v2", regions=(US,), statuses=statuses, updated_at=updated_at, record=record
    )


def at(step: int, seq: int | None) -> RegionStatus:
    return RegionStatus("running", 1, 1, "t", revision="r", rollout="stepping", step=step, seq=seq)


def test_an_entry_older_than_the_actors_last_write_is_not_adopted() -> None:
    adopted = adopt(item(at(1, seq=4)), at(1, seq=4), at(2, seq=5), None)
    assert (adopted.own, adopted.repair) == (at(2, seq=5), True)


def test_an_entry_as_new_or_newer_is_adopted() -> None:
    assert adopt(item(at(2, seq=5)), at(2, seq=5), at(2, seq=5), None).own == at(2, seq=5)
    newer = adopt(item(at(0, seq=9)), at(0, seq=9), at(2, seq=5), None)
    assert (newer.own, newer.repair) == (at(0, seq=9), False)


def test_a_missing_or_unversioned_entry_is_older_than_a_written_one() -> None:
    assert adopt(item(None), None, at(2, seq=5), None).own == at(2, seq=5)
    assert adopt(item(at(1, seq=None)), at(1, seq=None), at(2, seq=5), None).own == at(2, seq=5)
    # An actor that wrote nothing versioned takes the table's entry, as before.
    assert adopt(item(at(1, seq=None)), at(1, seq=None), None, None).own == at(1, seq=None)


def test_a_halt_this_actor_recorded_survives_an_older_scan_of_the_same_content() -> None:
    halt = {"revision": "r", "region": US, "reason": "boom", "at": "t"}
    recorded = Recorded("u1").add("u1", {"halt": halt})
    seen = adopt(item(at(1, seq=1), record={"paused": False}), at(1, seq=1), None, recorded).item
    assert RolloutRecord.from_item(seen.raw).halted("r") is not None
    # A person's later change (a new updated_at) is taken as it is.
    later = adopt(item(at(1, seq=1), updated_at="u2"), at(1, seq=1), None, recorded).item
    assert RolloutRecord.from_item(later.raw).halt is None
