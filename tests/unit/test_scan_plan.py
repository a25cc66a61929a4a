"""The supervisor's handling of one scan (`actors.scan_plan.plan_scan`), on plain values:
start, tell, unpark, retire and stop decisions, and the deletion guard's place in them."""

from __future__ import annotations

from actors.messages import Scanned
from actors.orphans import OrphanRules
from actors.scan_plan import plan_scan
from store.item import LoadedItem
from tests.items import loaded

REGION = "us-east-1"
RULES = OrphanRules(confirmations=3, max_deletes=5, max_fraction=0.2)


def _item(
    name: str,
    *,
    image: str = "repo/model:v1",
    regions: tuple[str, ...] = (REGION,),
    status: dict | None = None,
) -> LoadedItem:
    return loaded(name, image=image, regions=regions, region_status=status or {})


def _scan(
    *items: LoadedItem,
    changed: tuple[str, ...] = (),
    retiring: tuple[LoadedItem, ...] = (),
    others: tuple[str, ...] = (),
) -> Scanned:
    present = frozenset([i.name for i in items] + [i.name for i in retiring] + list(others))
    return Scanned(
        active={i.name: i for i in items},
        retiring={i.name: i for i in retiring},
        changed=frozenset(changed),
        present=present,
        total=len(present),
    )


def _plan(scan: Scanned, *, actors=None, parked=None, absent=None, in_cluster=()):
    return plan_scan(
        scan,
        actors=actors or {},
        parked=parked or {},
        absent=absent or {},
        in_cluster=in_cluster,
        rules=RULES,
    )


def test_a_new_endpoint_gets_an_actor_and_a_changed_one_is_told() -> None:
    plan = _plan(_scan(_item("new"), _item("old"), changed=("old",)), actors={"old": False})
    assert plan.start == ("new",)
    assert plan.changed == ("old",)
    assert not plan.retire
    assert not plan.stop


def test_a_dead_actor_waiting_for_its_restart_is_neither_told_nor_restarted() -> None:
    plan = _plan(_scan(_item("m1"), changed=("m1",)), actors={"m1": True})
    assert plan.start == ()
    assert plan.changed == ()


def test_a_parked_endpoint_stays_parked_through_its_own_status_writes() -> None:
    parked_on = _item("bad")
    with_status = _item("bad", status={REGION: {"state": "error", "error": "parked"}})
    plan = _plan(
        _scan(with_status, changed=("bad",)),
        actors={"bad": True},
        parked={"bad": parked_on.content_hash},
    )
    assert plan.start == ()
    assert plan.unpark == frozenset()


def test_a_persons_change_unparks() -> None:
    parked_on = _item("bad")
    edited = _item("bad", image="repo/model:fixed")
    plan = _plan(
        _scan(edited, changed=("bad",)),
        actors={"bad": True},
        parked={"bad": parked_on.content_hash},
    )
    assert plan.start == ("bad",)
    assert plan.unpark == frozenset({"bad"})


def test_a_region_removed_from_the_targets_is_retired_with_its_item() -> None:
    moved = _item("m1", regions=("eu-west-1",), status={REGION: {"state": "running"}})
    plan = _plan(_scan(retiring=(moved,)), actors={"m1": False}, in_cluster={"m1"})
    assert plan.retire == {"m1": moved}
    assert not plan.stop


def test_an_actor_of_an_endpoint_that_never_targeted_this_region_is_only_stopped() -> None:
    plan = _plan(
        _scan(_item("m2"), others=("elsewhere",)), actors={"elsewhere": False, "m2": False}
    )
    assert plan.stop == frozenset({"elsewhere"})
    assert not plan.retire


def test_an_absent_endpoint_is_retired_without_an_item_on_the_third_scan() -> None:
    absent: dict[str, int] = {}
    retired = []
    for _ in range(3):
        plan = _plan(
            _scan(_item("m2"), _item("m3")),
            actors={"m1": False, "m2": False, "m3": False},
            absent=absent,
            in_cluster={"m1", "m2", "m3"},
        )
        assert plan.orphans is not None
        absent = dict(plan.orphans.absent)
        retired.append(dict(plan.retire))
    assert retired == [{}, {}, {"m1": None}]
    assert not plan.stop, "an absent endpoint's actor is kept until its cleanup"


def test_an_unsynced_cluster_view_counts_nothing() -> None:
    plan = _plan(
        _scan(_item("m2")), actors={"m1": False, "m2": False}, absent={"m1": 2}, in_cluster=None
    )
    assert plan.orphans is None
    assert not plan.retire
    assert not plan.stop


def test_a_partial_view_from_the_change_feed_counts_no_absence() -> None:
    """The change feed's few items say nothing of the others: no absence counted, no
    other actor stopped, while the items it holds are started, told or stopped."""
    # m3 is on the feed too, but no longer targets this region and has no status here.
    new, changed = _item("new"), _item("m2", image="v2")
    view = Scanned(
        active={"new": new, "m2": changed},
        retiring={},
        changed=frozenset({"new", "m2", "m3"}),
        present=frozenset({"new", "m2", "m3"}),
        total=3,
        partial=True,
    )
    actors = dict.fromkeys(("m1", "m2", "m3", "m4"), False)
    plan = _plan(view, actors=actors, absent={"m1": 2}, in_cluster=("m1", "m4"))
    assert plan.start == ("new",)
    assert plan.changed == ("m2",)
    assert plan.stop == frozenset({"m3"}), "only an item the view holds"
    assert plan.orphans is None
    assert dict(plan.retire) == {}


def test_a_purged_endpoint_with_nothing_here_loses_its_actor_and_is_never_counted() -> None:
    actors = {f"d{i}": False for i in range(8)} | {f"m{i}": False for i in range(13)}
    kept = [_item(f"m{i}") for i in range(13)]
    absent: dict[str, int] = {}
    for _ in range(4):
        plan = _plan(
            _scan(*kept), actors=actors, absent=absent, in_cluster={f"m{i}" for i in range(13)}
        )
        assert plan.orphans is not None
        absent = dict(plan.orphans.absent)
        assert plan.gone == plan.stop == frozenset(f"d{i}" for i in range(8))
        assert not plan.orphans.refused
        assert not plan.orphans.reason
        assert not plan.retire
        assert not absent


def test_the_guard_counts_only_absent_endpoints_with_objects_here() -> None:
    # Seven endpoints with objects and no item: the guard holds them (more than 5),
    # whatever the actors of purged endpoints.
    with_objects = {f"o{i}" for i in range(7)}
    plan = _plan(
        _scan(*[_item(f"m{i}") for i in range(40)]),
        actors={"purged": False},
        absent=dict.fromkeys(with_objects, 2),
        in_cluster=with_objects | {f"m{i}" for i in range(40)},
    )
    assert plan.orphans is not None
    assert plan.orphans.refused == frozenset(with_objects)
    assert "7 of 47" in plan.orphans.reason
    assert plan.gone == frozenset({"purged"})
