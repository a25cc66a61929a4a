"""Which regions of a rollout went silent (architecture section 12, "a bake counts only
while its region keeps reporting"). Pure: the policy, the target regions' status entries,
the revision and the time in.

A region is expected to report while the revision R moves in it: it steps or bakes R, or
its wave is due (every earlier region reported `done`) and it has not taken R yet. Its
daemon writes its entry at least every heartbeat (`last_sync`), so one whose `last_sync`
is older than `silence` seconds (the heartbeat with its jitter plus a few poll intervals)
is silent: the next wave does not go (only a region's own `done` counts, which a silent
region never writes), `rollout status` says so, and once it is silent past the progress
deadline the revision halts with that reason. A region with no entry at all never ran a
daemon for this endpoint and is not judged here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from store.model import RegionStatus, parse_timestamp
from store.rollout import RolloutPolicy

__all__ = ["Silent", "silence_limit", "silent_regions"]


@dataclass(frozen=True)
class Silent:
    """A region (`region/cluster` for one of several clusters serving it) expected to
    report that has not for `quiet` seconds (since `last`)."""

    region: str
    quiet: float
    last: float


def silence_limit(heartbeat: float, interval: float) -> float:
    """How long a live region can go without writing its entry: its heartbeat with up to
    20 % jitter, plus three poll intervals. No heartbeat (0): silence cannot be told."""
    return float("inf") if heartbeat <= 0 else heartbeat * 1.2 + 3 * interval


def silent_regions(
    policy: RolloutPolicy,
    targets: Sequence[str],
    statuses: Mapping[str, RegionStatus],
    revision: str,
    *,
    exclude: str,
    now: float,
    sharing: Mapping[str, Mapping[str, RegionStatus]] | None = None,
) -> list[Silent]:
    """Every target region but `exclude` expected to report for `revision`, with how long
    it has not (largest first).

    A region several clusters serve (`sharing`: its clusters' entries, without the
    judging cluster's own) is judged cluster by cluster, named `region/cluster`: its
    summary's `last_sync` is its latest cluster's, which would hide a cluster whose
    daemon died behind one that still reports. `exclude`'s other clusters are judged too.
    """
    waves = policy.waves_for(targets)
    found: list[Silent] = []
    for index, wave in enumerate(waves):
        due = all(_done(statuses.get(r), revision) for w in waves[:index] for r in w)
        for region in wave:
            status = statuses.get(region)
            if status is None or _done(status, revision):
                continue
            clusters = (sharing or {}).get(region) or {}
            judged = {f"{region}/{c}": s for c, s in clusters.items()}
            if not clusters and region != exclude:
                judged = {region: status}
            for name, entry in judged.items():
                moving = entry.revision == revision and entry.rollout in ("stepping", "baking")
                last = parse_timestamp(entry.last_sync)
                expected = moving or (due and entry.revision != revision)
                if expected and not _done(entry, revision) and last is not None:
                    found.append(Silent(name, now - last, last))
    return sorted(found, key=lambda s: -s.quiet)


def _done(status: RegionStatus | None, revision: str) -> bool:
    return status is not None and status.revision == revision and status.rollout == "done"
