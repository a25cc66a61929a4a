"""Several clusters serving one region (architecture sections 2 and 4). Pure: entries in,
entries and write plans out; `store.dynamo` makes the writes.

A region served by one cluster keeps the predecessor's entry, `region_status.<region>`,
written whole by that cluster (the *flat* shape). Once a second cluster serves an item in
the same region (a blue/green cluster migration), the entry becomes a summary plus one
entry per cluster, each written by its own cluster and fenced by its own epoch:

    region_status.<region> = {state, replicas_ready, replicas_desired, last_sync, error?,
                              revision?, rollout?, step?, since?,        # the summary
                              clusters: {<cluster>: <the flat entry's fields>}}

Every write of a cluster entry recomputes the summary from all the cluster entries in the
same conditional request (conditional on the others being what was read), so the summary
is never older than its entries and every reader of the region-level fields - the
predecessor's CLI, the purge, `deploying -> running`, the rollout's conditions - sees a
region as `deleted`, `running` or `done` only when every cluster of it is.

A flat entry names no cluster; it belongs to the region's *founder*, the first cluster to
take a leader epoch in the region (recorded on the epoch record, `store.dynamo.take_epoch`).
Only the founder writes flat; any other cluster converts a flat entry into the per-cluster
shape, keeping the founder's fields as the founder's entry. Once the founder is the only
cluster left in an entry (the other one retired), its next write makes it flat again: one
cluster, the predecessor's shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from store.model import RegionStatus, parse_timestamp

__all__ = [
    "CLUSTERS",
    "UNNAMED",
    "Plan",
    "cluster_entries",
    "is_shared",
    "own_entry",
    "plan_removal",
    "plan_write",
    "summarize",
]

#: Key of the per-cluster map inside a region's entry.
CLUSTERS = "clusters"
#: Name given to a flat entry's cluster when the region's founder is not known.
UNNAMED = "(unnamed)"
#: Fields of a summary that are written only when set (removed otherwise).
OPTIONAL_SUMMARY = ("error", "revision", "rollout", "step", "since")
#: A region's rollout phase is its least advanced cluster's (architecture section 12).
_PHASE_ORDER = (
    "failed",
    "rolled_back",
    "paused",
    "superseded",
    "waiting",
    "stepping",
    "baking",
    "done",
)


def is_shared(entry: Any) -> bool:
    """True when a raw region entry has the per-cluster shape."""
    return isinstance(entry, Mapping) and isinstance(entry.get(CLUSTERS), Mapping)


def cluster_entries(entry: Any, founder: str | None) -> dict[str, RegionStatus]:
    """Each cluster's status in a raw region entry: its `clusters` map, or a flat entry as
    the founder's (the only cluster that writes one)."""
    if is_shared(entry):
        return {
            str(name): RegionStatus.from_item(value)
            for name, value in entry[CLUSTERS].items()
            if isinstance(value, Mapping)
        }
    if isinstance(entry, Mapping):
        return {founder or UNNAMED: RegionStatus.from_item(entry)}
    return {}


def own_entry(entry: Any, cluster: str, founder: str | None) -> RegionStatus | None:
    """`cluster`'s own status in a raw region entry (a flat entry is the founder's)."""
    if not is_shared(entry) and cluster != founder:
        return None
    return cluster_entries(entry, founder or cluster).get(cluster)


def summarize(entries: Mapping[str, RegionStatus]) -> RegionStatus:
    """The region-level fields of a shared region: what the region as a whole reports.

    `state` is the clusters' common state; when they differ, `error` if any errs, else
    `deleting` if any is deleting or deleted (a delete is done when all are), else
    `creating` / `updating` if any is, else `updating`. Replicas are summed; `last_sync`
    is the latest; `error` names each cluster that differs or errs. Rollout fields:
    the common revision (none when they differ), the least advanced phase, the lowest
    step and the latest `since`. No `epoch`, `holder` or `seq`: those are each cluster's.
    """
    ordered = sorted(entries.items())
    states = {s.state for _, s in ordered}
    if len(states) == 1:
        state = next(iter(states))
    elif "error" in states:
        state = "error"
    elif states & {"deleting", "deleted"}:
        state = "deleting"
    else:
        state = next((s for s in ("creating", "updating") if s in states), "updating")
    notes = [
        f"{name}: {s.state}" + (f" ({s.error})" if s.error else "") + _last_report(s)
        for name, s in ordered
        if s.error or len(states) > 1
    ]
    revisions = {s.revision for _, s in ordered}
    phases = [s.rollout for _, s in ordered]
    steps = [s.step for _, s in ordered]
    sinces = [s.since for _, s in ordered if s.since]
    return RegionStatus(
        state=state,
        replicas_ready=sum(s.replicas_ready for _, s in ordered),
        replicas_desired=sum(s.replicas_desired for _, s in ordered),
        last_sync=_latest(s.last_sync for _, s in ordered),
        error="; ".join(notes)[:500] or None,
        revision=next(iter(revisions)) if len(revisions) == 1 else None,
        rollout=_least_advanced(phases),
        step=None if not steps or None in steps else min(s for s in steps if s is not None),
        since=_latest(sinces) or None,
    )


@dataclass(frozen=True)
class Plan:
    """One conditional write of a region's entry (made by `store.dynamo`).

    Attributes:
        whole: the whole region entry to set (None: only `own` and `summary`).
        own: with `whole` None, this cluster's entry to set under `clusters` (None:
            remove it).
        summary: with `whole` None, the summary fields (`OPTIONAL_SUMMARY` absent from
            it are removed).
        flat: `whole` is this cluster's flat entry, fenced by the epoch on the region
            level (the founder's write), else fenced on `clusters.<cluster>`.
        collapse: `whole` is the founder's flat entry replacing a shared entry that holds
            only its own (fenced on `clusters.<cluster>`, the map's size 1).
        absent: the entry must not exist (a first write).
        read: the raw entry the plan was computed from, which must still be there
            (whole-entry writes over an existing one; the other clusters' entries).
    """

    whole: dict[str, Any] | None = None
    own: dict[str, Any] | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    flat: bool = False
    collapse: bool = False
    absent: bool = False
    read: Mapping[str, Any] | None = None


def plan_write(current: Any, own: Mapping[str, Any], *, cluster: str, founder: str | None) -> Plan:
    """How `cluster` writes its entry `own` (a `RegionStatus.to_item()`, stamped) into a
    region whose stored entry is `current` (raw, None when absent)."""
    if is_shared(current):
        others = {k: v for k, v in current[CLUSTERS].items() if k != cluster}
        if not others and cluster == founder:
            return Plan(whole=dict(own), collapse=True, read=current)
        return Plan(own=dict(own), summary=_summary_item(others, own, cluster), read=current)
    if cluster == founder:
        return Plan(whole=dict(own), flat=True)
    if not isinstance(current, Mapping):
        whole = {**_summary_item({}, own, cluster), CLUSTERS: {cluster: dict(own)}}
        return Plan(whole=whole, absent=True)
    owner = founder or UNNAMED
    flat = {k: v for k, v in current.items() if k != CLUSTERS}
    whole = {
        **_summary_item({owner: flat}, own, cluster),
        CLUSTERS: {owner: flat, cluster: dict(own)},
    }
    return Plan(whole=whole, read=current)


def plan_removal(current: Any, *, cluster: str) -> Plan | None:
    """How `cluster` removes its entry from a shared region's `current` entry (None: it
    is not shared; a flat entry is removed as before). The last cluster's removal
    removes the region's entry."""
    if not is_shared(current):
        return None
    others = {k: v for k, v in current[CLUSTERS].items() if k != cluster}
    if not others:
        return Plan(read=current)
    summary = summarize({k: RegionStatus.from_item(v) for k, v in others.items()}).to_item()
    return Plan(own=None, summary=summary, read=current)


def _summary_item(
    others: Mapping[str, Any], own: Mapping[str, Any], cluster: str
) -> dict[str, Any]:
    entries = {k: RegionStatus.from_item(v) for k, v in others.items() if isinstance(v, Mapping)}
    entries[cluster] = RegionStatus.from_item(own)
    return summarize(entries).to_item()


def _last_report(status: RegionStatus) -> str:
    return f", last report {status.last_sync}" if status.last_sync else ""


def _latest(stamps: Any) -> str:
    """The latest of ISO-8601 timestamps (`""` when there is none)."""
    known = [(parse_timestamp(s) or 0.0, s) for s in stamps if s]
    return max(known)[1] if known else ""


def _least_advanced(phases: list[str | None]) -> str | None:
    if not phases or None in phases:
        return None
    return min(phases, key=lambda p: _PHASE_ORDER.index(p) if p in _PHASE_ORDER else -1)
