"""What `endpoints rollout status` shows (architecture section 12): an endpoint's rollout as
waves x regions, built from the item alone by pure functions, so the demo's table and
the CLI say the same thing.

`RolloutView.of(loaded, now)` reads the item: the target revision (the spec's), the
completed one, the halt and pause of its `rollout` record, and per target region, in wave
order, the revision it reports, its phase (`waiting | stepping 10% | baking 2m/5m | done |
failed | rolled_back | paused | superseded`), since when, why it stopped or holds, and each
gate's last reading (`store.gates`: alarm state, weights verified or pending, query
value), shown after the reason. The
completed revision is the rollback target. `settled` says whether a
watcher can stop: the revision completed everywhere, or it was halted and every region
has reacted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from actors.silence import silence_limit, silent_regions
from store.item import LoadedItem
from store.model import RegionStatus, parse_timestamp
from store.rollout import RolloutPolicy, RolloutRecord, parse_rollout, revision

__all__ = ["HEADER", "RegionRow", "RolloutView", "duration", "phase_text", "short"]

#: The columns of `rows()`.
HEADER = ("WAVE", "REGION", "REVISION", "PHASE", "SINCE", "REASON")
#: Digits of a revision shown in tables (the table keeps 16).
SHORT = 8
#: After how long without a status write a region expected to report is shown silent:
#: the daemon's defaults (300 s heartbeat, 15 s poll interval; `actors.silence`).
DEFAULT_SILENCE = silence_limit(300.0, 15.0)


def short(rev: str | None) -> str:
    """A revision as tables show it ("-" when none)."""
    return rev[:SHORT] if rev else "-"


def duration(seconds: float) -> str:
    """A duration as people read it: "45s", "2m", "3h" (rounded down; 0 or more)."""
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 2 * 3600:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


def phase_text(
    status: RegionStatus | None,
    policy: RolloutPolicy,
    *,
    now: float | None,
    completed: str | None = None,
) -> str:
    """The phase of one region's status entry: "stepping 10%", "baking 2m/5m" (with `now`;
    without it "baking 5m": the bake's length only, so a log of changes is not a tick per
    second), or the phase as reported; "-" when the region reported none."""
    if status is None or status.rollout is None:
        return "-"
    phase = status.rollout
    steps = policy.steps if completed is not None else ()
    if phase == "stepping" and status.step is not None and status.step < len(steps):
        return f"stepping {steps[status.step]}%"
    if phase == "baking":
        bake = duration(policy.bake_seconds)
        since = parse_timestamp(status.since)
        if now is None or since is None:
            return f"baking {bake}"
        return f"baking {duration(now - since)}/{bake}"
    return phase


@dataclass(frozen=True)
class RegionRow:
    """One target region of the rollout."""

    wave: int
    region: str
    revision: str | None
    phase: str
    since: str | None
    state: str | None
    reason: str
    #: Expected to report and silent past the limit (`actors.silence`).
    silent: bool = False
    #: Each gate's last reading in this region ({gate: {state, detail?, since}}).
    gates: Mapping[str, Mapping[str, str]] | None = None

    def cells(self) -> tuple[str, ...]:
        since = self.since or ""
        # "2024-05-01T12:03:04Z" -> "12:03:04Z": the day is rarely news during a rollout.
        clock = since.split("T", 1)[1] if "T" in since else since or "-"
        reason = "; ".join(filter(None, (self.reason, self.gate_text())))
        return (str(self.wave), self.region, short(self.revision), self.phase, clock, reason)

    def gate_text(self) -> str:
        """The gates' readings as the table shows them: "alarms: ok (m1-5xx in OK)"; a
        detail already said by the reason is not repeated."""
        parts = []
        for name, reading in sorted((self.gates or {}).items()):
            detail = reading.get("detail", "")
            shown = f" ({detail})" if detail and detail not in self.reason else ""
            parts.append(f"{name}: {reading.get('state', '?')}{shown}")
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "wave": self.wave,
            "region": self.region,
            "revision": self.revision,
            "phase": self.phase,
            "since": self.since,
            "state": self.state,
            "reason": self.reason,
            "silent": self.silent,
            "gates": {name: dict(reading) for name, reading in (self.gates or {}).items()},
        }


@dataclass(frozen=True)
class RolloutView:
    """One endpoint's rollout as `rollout status` shows it."""

    name: str
    policy: RolloutPolicy | None
    target: str
    image: str
    completed: str | None
    completed_image: str | None
    paused: bool
    halt: Mapping[str, str] | None
    regions: tuple[RegionRow, ...]

    @classmethod
    def of(
        cls, loaded: LoadedItem, now: float | None, *, silence: float = DEFAULT_SILENCE
    ) -> RolloutView:
        """The view of the item `loaded` at `now` (epoch seconds; None: no elapsed times).
        A region expected to report that has not for `silence` seconds is shown silent."""
        raw = loaded.raw
        spec = raw.get("spec") if isinstance(raw.get("spec"), dict) else {}
        policy = parse_rollout(spec)
        record = RolloutRecord.from_item(raw)
        target = revision(spec)
        completed = record.completed_revision if record.completed_spec is not None else None
        halt = record.halted(target)
        regions = [str(r) for r in loaded.target_regions]
        waves = policy.waves_for(regions) if policy is not None else (tuple(regions),)
        # Regions several clusters serve: one row per cluster, each judged for silence.
        sharing = {r: c for r in regions if len(c := loaded.cluster_status(r)) > 1}
        quiet = (
            {
                s.region: s.quiet
                for s in silent_regions(
                    policy,
                    regions,
                    loaded.region_status,
                    target,
                    exclude="",
                    now=now,
                    sharing=sharing,
                )
                if s.quiet > silence
            }
            if policy is not None and now is not None
            else {}
        )
        rows = []
        for number, wave in enumerate(waves, start=1):
            for region in wave:
                status = loaded.region_status.get(region)
                phase = (
                    phase_text(status, policy, now=now, completed=completed)
                    if policy is not None
                    else "-"
                )
                if region in quiet:
                    phase = f"{phase}, silent {duration(quiet[region])}"
                rows.append(
                    RegionRow(
                        wave=number,
                        region=region,
                        revision=status.revision if status else None,
                        phase=phase,
                        since=status.since if status else None,
                        state=status.state if status else None,
                        silent=region in quiet,
                        gates=status.gates if status else None,
                        reason=_reason(
                            region, status, halt.to_item() if halt else None, target=target
                        ),
                    )
                )
                # Under the region's row (its phase is its least advanced cluster's), one
                # row per cluster when several serve it.
                for cluster, entry in sorted(sharing.get(region, {}).items()):
                    name = f"{region}/{cluster}"
                    cluster_phase = (
                        phase_text(entry, policy, now=now, completed=completed)
                        if policy is not None
                        else "-"
                    )
                    rows.append(
                        RegionRow(
                            wave=number,
                            region=name,
                            revision=entry.revision,
                            phase=(
                                f"{cluster_phase}, silent {duration(quiet[name])}"
                                if name in quiet
                                else cluster_phase
                            ),
                            since=entry.since,
                            state=entry.state,
                            silent=name in quiet,
                            reason=_reason(
                                region, entry, halt.to_item() if halt else None, target=target
                            ),
                        )
                    )
        return cls(
            name=loaded.name,
            policy=policy,
            target=target,
            image=str(spec.get("image", "")),
            completed=completed,
            completed_image=(
                str(record.completed_spec.get("image", "")) if record.completed_spec else None
            ),
            paused=record.paused,
            halt=halt.to_item() if halt is not None else None,
            regions=tuple(rows),
        )

    @property
    def settled(self) -> bool:
        """Nothing more will happen without a person: completed everywhere, or halted and
        every region reports it failed or rolled back, or is silent (its daemon will react
        when it is back), or no policy at all."""
        if self.policy is None or self.target == self.completed:
            return True
        return self.halt is not None and all(
            row.silent or row.phase.split(",")[0] in ("failed", "rolled_back", "superseded")
            for row in self.regions
        )

    @property
    def failed(self) -> bool:
        return self.halt is not None

    def title(self) -> str:
        """The lines above the table: target and completed revisions, halt, pause."""
        lines = [
            f"endpoint {self.name}: target {short(self.target)} ({self.image}), "
            f"completed {short(self.completed)}"
            + (f" ({self.completed_image})" if self.completed_image else "")
            + (", the rollback target" if self.completed else "")
        ]
        if self.policy is None:
            lines.append("no rollout policy: a change reaches every target region at once")
        if self.halt is not None:
            where = f" in {self.halt['region']}" if self.halt.get("region") else ""
            lines.append(
                f"halted {short(self.halt['revision'])}{where} at {self.halt['at']}: "
                f"{self.halt['reason']}"
            )
        if self.paused:
            lines.append("paused: every region holds its step (rollout resume NAME)")
        return "\n".join(lines)

    def rows(self) -> list[tuple[str, ...]]:
        return [row.cells() for row in self.regions]

    def to_json(self) -> dict[str, Any]:
        return {
            "endpoint_name": self.name,
            "policy": self.policy.to_item() if self.policy is not None else None,
            "target_revision": self.target,
            "completed_revision": self.completed,
            # What a halt of the target rolls its regions back to (architecture section 12).
            "rollback_target": self.completed,
            "paused": self.paused,
            "halt": dict(self.halt) if self.halt is not None else None,
            "settled": self.settled,
            "regions": [row.to_json() for row in self.regions],
        }


def _reason(
    region: str, status: RegionStatus | None, halt: Mapping[str, str] | None, *, target: str
) -> str:
    if status is not None and status.rollout == "paused" and status.state == "stopped":
        return "stopped: its rollout clock stands still until start"
    if status is not None and status.rollout == "superseded":
        return f"keeps {short(status.revision)} until its wave is due for {short(target)}"
    if halt is not None and halt.get("region") == region:
        return halt["reason"]
    if halt is not None and status is not None and status.rollout in ("failed", "rolled_back"):
        return f"halted in {halt['region']}" if halt.get("region") else halt["reason"]
    if status is not None and status.error:
        return status.error
    return ""
