"""The guarded global rollout's contract in the table (architecture section 12): the policy
`spec.rollout`, the revision of a spec, and the item-level record `rollout`.

Pure code on plain values (Decimals converted by `store.convert.plain`):

- `check_rollout(spec)` lists the problems of `spec.rollout` (called by
  `store.validation`), `parse_rollout(spec)` returns the `RolloutPolicy` or None.
- `revision(spec)` is the stable hash of a spec map without `rollout`: changing only the
  policy starts no rollout. `canary` is part of the revision (a hand-made canary change
  goes through the waves like any other change); `steps` refuses a hand-made canary.
- `RolloutRecord.from_item(raw)` reads the item's top-level `rollout` attribute, which
  the predecessor ignores: `completed_revision`, `completed_spec` (the spec map of the
  last revision that completed everywhere, so a region not yet due keeps serving it),
  `halt` {revision, region, reason, at} and `paused` (set by a person).

`store.validation` imports this module, so it imports nothing of the store but
`store.convert`; the CLI's rules (pause, resume, abort, seed) are `store.rollout_commands`.

The daemon's own transitions (record completion, record a halt) are
`DynamoEndpointStore.record_rollout_completion` / `record_rollout_halt`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from store.convert import plain

__all__ = [
    "ATTRIBUTE",
    "PHASES",
    "Analysis",
    "Halt",
    "RolloutPolicy",
    "RolloutRecord",
    "check_rollout",
    "parse_rollout",
    "revision",
]

#: The item's top-level attribute holding the `RolloutRecord`.
ATTRIBUTE = "rollout"
#: What a region's status entry says of the rollout (`RegionStatus.rollout`).
PHASES = (
    "waiting",
    "stepping",
    "baking",
    "done",
    "failed",
    "rolled_back",
    "paused",
    "superseded",
)
_FIELDS = (
    "waves",
    "bake_seconds",
    "steps",
    "step_seconds",
    "progress_deadline_seconds",
    "alarms",
    "verify_weights",
    "analysis",
    "auto_rollback",
)
#: The policy fields that ask for a gate (`store.gates`): a policy naming one is gated,
#: so each region reads its gates after its bake's end before it is done.
GATE_FIELDS = ("alarms", "verify_weights", "analysis")
#: The keys of one `analysis` entry.
_ANALYSIS_KEYS = ("name", "query", "max", "min", "for_seconds", "on_no_data")
#: What an `analysis` query without data counts as.
ON_NO_DATA = ("pass", "halt")
#: Upper bound of every duration of the policy (one week), seconds.
_MAX_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class Analysis:
    """One Prometheus query a region checks while it steps or bakes (`store.gates.prometheus`).

    Attributes:
        name: how it is shown and named in a halt.
        query: the PromQL expression.
        max: its value above this for `for_seconds` fails the revision (None: no bound).
        min: its value below this for `for_seconds` fails the revision (None: no bound).
        for_seconds: how long the bound must be crossed, within the step or bake (0: once).
        on_no_data: "pass" (default: no data is shown and counts as not crossed) or
            "halt" (no data counts as crossed).
    """

    name: str
    query: str
    max: float | None = None
    min: float | None = None
    for_seconds: int = 0
    on_no_data: str = "pass"

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {"name": self.name, "query": self.query}
        for key in ("max", "min"):
            if getattr(self, key) is not None:
                item[key] = getattr(self, key)
        if self.for_seconds:
            item["for_seconds"] = self.for_seconds
        if self.on_no_data != "pass":
            item["on_no_data"] = self.on_no_data
        return item


@dataclass(frozen=True)
class RolloutPolicy:
    """`spec.rollout`: how a new revision reaches the target regions.

    Attributes:
        waves: groups of regions in order; target regions not listed form a last wave.
        bake_seconds: a wave is done when each of its regions has reported `running` at
            the new revision for this long (default 300).
        steps: canary weights in percent (each 1-99, increasing); empty: no canary steps.
        step_seconds: how long each step serves before the next (default 60).
        progress_deadline_seconds: a region that cannot make the new revision ready in
            this long fails it (default 600).
        alarms: CloudWatch alarm names read in each region while it steps or bakes.
        verify_weights: a region moves on from a step (and ends its bake) only once its
            load balancer carries the Ingress's weights (`store.gates.alb`).
        analysis: Prometheus queries with a bound, checked while a region steps or bakes.
        auto_rollback: on a halt every region on the revision returns to the completed
            one (default true).
    """

    waves: tuple[tuple[str, ...], ...] = ()
    bake_seconds: int = 300
    steps: tuple[int, ...] = ()
    step_seconds: int = 60
    progress_deadline_seconds: int = 600
    alarms: tuple[str, ...] = ()
    verify_weights: bool = False
    analysis: tuple[Analysis, ...] = ()
    auto_rollback: bool = True

    @property
    def gate_fields(self) -> tuple[str, ...]:
        """The gate fields (`GATE_FIELDS`) this policy sets."""
        return tuple(name for name in GATE_FIELDS if getattr(self, name))

    @property
    def gated(self) -> bool:
        """The policy asks for a gate."""
        return bool(self.gate_fields)

    def waves_for(self, targets: Sequence[str]) -> tuple[tuple[str, ...], ...]:
        """The waves over `targets`: listed regions that are targets, in order (empty
        waves dropped), then every target region not listed as a last wave."""
        listed: list[str] = []
        waves: list[tuple[str, ...]] = []
        for wave in self.waves:
            regions = tuple(r for r in wave if r in targets and r not in listed)
            listed.extend(regions)
            if regions:
                waves.append(regions)
        rest = tuple(r for r in targets if r not in listed)
        if rest:
            waves.append(rest)
        return tuple(waves)

    def to_item(self) -> dict[str, Any]:
        """The `spec.rollout` map (defaults omitted)."""
        item: dict[str, Any] = {}
        defaults = RolloutPolicy()
        if self.waves:
            item["waves"] = [list(w) for w in self.waves]
        if self.steps:
            item["steps"] = list(self.steps)
        if self.alarms:
            item["alarms"] = list(self.alarms)
        if self.analysis:
            item["analysis"] = [a.to_item() for a in self.analysis]
        for key in (
            "bake_seconds",
            "step_seconds",
            "progress_deadline_seconds",
            "verify_weights",
            "auto_rollback",
        ):
            if getattr(self, key) != getattr(defaults, key):
                item[key] = getattr(self, key)
        return item


def check_rollout(spec: Mapping[str, Any]) -> list[str]:
    """Every problem of `spec.rollout` in the spec map `spec` (empty when absent or valid)."""
    policy = plain(spec.get(ATTRIBUTE))
    if policy is None:
        return []
    if not isinstance(policy, dict):
        return [f"spec.rollout must be a map, got {policy!r}"]
    problems = [
        f"spec.rollout.{key} is not a rollout setting (known: {', '.join(_FIELDS)})"
        for key in policy
        if key not in _FIELDS
    ]
    _check_waves(policy.get("waves"), problems)
    for key in ("bake_seconds", "step_seconds", "progress_deadline_seconds"):
        value = policy.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_SECONDS
        ):
            problems.append(
                f"spec.rollout.{key} must be a whole number of seconds between 0 and "
                f"{_MAX_SECONDS}, got {value!r}"
            )
    steps = policy.get("steps")
    if steps is not None:
        if not isinstance(steps, list) or not all(
            isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= 99 for s in steps
        ):
            problems.append(
                f"spec.rollout.steps must be a list of canary weights between 1 and 99, "
                f"got {steps!r}"
            )
        elif any(b <= a for a, b in itertools.pairwise(steps)):
            problems.append(f"spec.rollout.steps must increase, got {steps!r}")
        elif steps and spec.get("canary") is not None:
            problems.append(
                "spec.rollout.steps cannot be used with spec.canary: the rollout's steps "
                "serve the new revision through the canary objects"
            )
    alarms = policy.get("alarms")
    if alarms is not None and not (
        isinstance(alarms, list) and all(isinstance(a, str) and a for a in alarms)
    ):
        problems.append(f"spec.rollout.alarms must be a list of alarm names, got {alarms!r}")
    _check_analysis(policy.get("analysis"), problems)
    for key in ("verify_weights", "auto_rollback"):
        value = policy.get(key)
        if value is not None and not isinstance(value, bool):
            problems.append(f"spec.rollout.{key} must be true or false, got {value!r}")
    return problems


def _check_analysis(analysis: Any, problems: list[str]) -> None:
    if analysis is None:
        return
    if not isinstance(analysis, list) or not all(isinstance(a, dict) for a in analysis):
        problems.append(
            f"spec.rollout.analysis must be a list of maps {{name, query, max or min, "
            f"for_seconds, on_no_data}}, got {analysis!r}"
        )
        return
    names: set[str] = set()
    for index, entry in enumerate(analysis):
        where = f"spec.rollout.analysis[{index}]"
        problems.extend(
            f"{where}.{key} is not an analysis setting (known: {', '.join(_ANALYSIS_KEYS)})"
            for key in entry
            if key not in _ANALYSIS_KEYS
        )
        name, query = entry.get("name"), entry.get("query")
        if not isinstance(name, str) or not name.strip():
            problems.append(f"{where}.name must be a non-empty name, got {name!r}")
        elif name in names:
            problems.append(f"spec.rollout.analysis names {name!r} more than once")
        else:
            names.add(name)
        if not isinstance(query, str) or not query.strip():
            problems.append(f"{where}.query must be a PromQL expression, got {query!r}")
        bounds = [entry.get(k) for k in ("max", "min") if entry.get(k) is not None]
        if not bounds:
            problems.append(f"{where} needs a max or a min")
        for key in ("max", "min"):
            value = entry.get(key)
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                problems.append(f"{where}.{key} must be a number, got {value!r}")
        seconds = entry.get("for_seconds")
        if seconds is not None and (
            isinstance(seconds, bool)
            or not isinstance(seconds, int)
            or not 0 <= seconds <= _MAX_SECONDS
        ):
            problems.append(
                f"{where}.for_seconds must be a whole number of seconds between 0 and "
                f"{_MAX_SECONDS}, got {seconds!r}"
            )
        no_data = entry.get("on_no_data")
        if no_data is not None and no_data not in ON_NO_DATA:
            problems.append(f"{where}.on_no_data must be pass or halt, got {no_data!r}")


def _check_waves(waves: Any, problems: list[str]) -> None:
    if waves is None:
        return
    if not isinstance(waves, list) or not all(
        isinstance(w, list) and w and all(isinstance(r, str) and r for r in w) for w in waves
    ):
        problems.append(
            f"spec.rollout.waves must be a list of non-empty lists of region names, got {waves!r}"
        )
        return
    seen: set[str] = set()
    for wave in waves:
        for region in wave:
            if region in seen:
                problems.append(f"spec.rollout.waves names region {region!r} more than once")
            seen.add(region)


def parse_rollout(spec: Mapping[str, Any]) -> RolloutPolicy | None:
    """The policy of a validated spec map, or None when it has no `rollout`."""
    policy = plain(spec.get(ATTRIBUTE))
    if not isinstance(policy, dict):
        return None
    defaults = RolloutPolicy()

    def number(key: str) -> int:
        value = policy.get(key)
        return getattr(defaults, key) if value is None else int(value)

    rollback = policy.get("auto_rollback")
    return RolloutPolicy(
        waves=tuple(tuple(w) for w in policy.get("waves") or ()),
        bake_seconds=number("bake_seconds"),
        steps=tuple(int(s) for s in policy.get("steps") or ()),
        step_seconds=number("step_seconds"),
        progress_deadline_seconds=number("progress_deadline_seconds"),
        alarms=tuple(policy.get("alarms") or ()),
        verify_weights=policy.get("verify_weights") is True,
        analysis=tuple(
            Analysis(
                name=str(a["name"]),
                query=str(a["query"]),
                max=None if a.get("max") is None else float(a["max"]),
                min=None if a.get("min") is None else float(a["min"]),
                for_seconds=int(a.get("for_seconds") or 0),
                on_no_data=str(a.get("on_no_data") or "pass"),
            )
            for a in policy.get("analysis") or ()
        ),
        auto_rollback=True if rollback is None else bool(rollback),
    )


def revision(spec: Mapping[str, Any]) -> str:
    """The revision of a spec map: 16 hex digits of the SHA-256 of the spec without
    `rollout` (key order and Decimal versus int do not matter)."""
    content = {k: v for k, v in plain(dict(spec)).items() if k != ATTRIBUTE}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Halt:
    """A failed revision: no further region takes it (architecture section 12)."""

    revision: str
    region: str
    reason: str
    at: str

    def to_item(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "region": self.region,
            "reason": self.reason,
            "at": self.at,
        }


@dataclass(frozen=True)
class RolloutRecord:
    """The item's `rollout` attribute, read leniently (a malformed part is absent)."""

    completed_revision: str | None = None
    completed_spec: dict[str, Any] | None = None
    halt: Halt | None = None
    paused: bool = False

    @classmethod
    def from_item(cls, raw: Mapping[str, Any]) -> RolloutRecord:
        """Read the record of the item `raw` (absent: an empty record)."""
        record = plain(raw.get(ATTRIBUTE))
        if not isinstance(record, dict):
            return cls()
        spec = record.get("completed_spec")
        completed = record.get("completed_revision")
        halt = record.get("halt")
        return cls(
            completed_revision=completed if isinstance(completed, str) and completed else None,
            completed_spec=spec if isinstance(spec, dict) and spec.get("image") else None,
            halt=(
                Halt(
                    revision=str(halt.get("revision") or ""),
                    region=str(halt.get("region") or ""),
                    reason=str(halt.get("reason") or ""),
                    at=str(halt.get("at") or ""),
                )
                if isinstance(halt, dict) and halt.get("revision")
                else None
            ),
            paused=record.get("paused") is True,
        )

    def halted(self, rev: str) -> Halt | None:
        """The halt of revision `rev`, if it was halted."""
        return self.halt if self.halt is not None and self.halt.revision == rev else None
