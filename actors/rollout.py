"""The guarded global rollout's decision for one region (DESIGN section 12).

Pure: the policy, the item's rollout record, the spec's revision, every region's status
entry, this region's observation of its own cluster and the time in; a `RolloutDecision`
out. Every clock it reads is durable: a region's `since` in the table (when its revision,
phase or step last changed), never one held in memory, so a restart or a new leader
resumes a step or a bake where it was.

Decision table (R = the spec's revision, C = the completed revision; `own` = this
region's entry; "on R" = `own.revision == R` in an active phase):

| situation | serves | phase |
|---|---|---|
| R == C | R | done |
| R halted, auto_rollback, C known | C | rolled_back |
| R halted otherwise | R if on R (frozen), else C (or nothing new) | failed |
| paused | what it serves (R at its step if on R, else C) | paused |
| not on R, an earlier wave not baked | C; no C yet: objects left as they are | waiting |
| due, not on R | R (first step's canary weight, or the primary) | stepping |
| on R, step k < len(steps) | C primary, R canary at steps[k] | stepping (k+1 after step_seconds) |
| on R, all steps done | R as primary | stepping until ready, then baking |
| baking for bake_seconds, ready | R | done; the last region done records C := R |

Failures while on R (a step or promotion not ready within `progress_deadline_seconds`, the
watchdog cut traffic, an alarm in ALARM) record a halt; the region then serves as a halted
revision does. Without C (a brand-new endpoint) there are no canary steps and a region not
due creates nothing: there is no older revision to protect or to keep serving.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from actors.desired import iso_now, rollout_complete, workload_for
from k8s.manifests import build_deployment
from k8s.workload import TEMPLATE_SPEC_HASH_ANNOTATION, CanaryWorkload
from store.dynamo import LoadedItem
from store.model import Endpoint, RegionStatus, parse_endpoint, parse_timestamp
from store.rollout import Halt, RolloutPolicy, RolloutRecord, parse_rollout
from store.rollout import revision as rollout_revision

#: Phases of a region that has taken the new revision.
ACTIVE = ("stepping", "baking", "done", "paused")
#: What a region serves: the new revision, the completed one, or it leaves its objects be.
SERVE_NEW, SERVE_COMPLETED, HOLD = "new", "completed", "hold"


@dataclass(frozen=True)
class Observed:
    """This region's own cluster, as the endpoint actor sees it before applying.

    Attributes:
        new_ready: the primary Deployment runs the new revision, rolled out and all ready.
        canary_ready: the canary Deployment runs the new revision and is ready.
        serving: the watchdog has not cut traffic.
        firing: the policy's alarms that are in ALARM.
    """

    new_ready: bool = False
    canary_ready: bool = False
    serving: bool = True
    firing: tuple[str, ...] = ()


@dataclass(frozen=True)
class RolloutDecision:
    """What this region does now.

    Attributes:
        serve: `SERVE_NEW`, `SERVE_COMPLETED` or `HOLD` (touch nothing).
        phase: the `rollout` phase to report (`store.rollout.PHASES`).
        revision: the revision to report (the one served as primary, or with a canary
            weight the new one), None when holding.
        step: the step index to report (None outside the new revision).
        since: epoch seconds of the last change of revision, phase or step.
        weight: with `SERVE_NEW`, the canary weight of the new revision while stepping
            (the primary then serves the completed spec); None: the new revision is
            the primary.
        halt: a reason when this region fails the revision (record a halt).
        complete: every target region is done: record the completion.
        next_check: epoch seconds at which the decision may change by time alone.
    """

    serve: str
    phase: str
    revision: str | None
    step: int | None
    since: float
    weight: int | None = None
    halt: str | None = None
    complete: bool = False
    next_check: float | None = None


def wave_of(policy: RolloutPolicy, targets: Sequence[str], region: str) -> int:
    """The index of `region`'s wave among `targets` (the last one when not a target)."""
    waves = policy.waves_for(targets)
    for index, wave in enumerate(waves):
        if region in wave:
            return index
    return len(waves)


def needs_alarms(policy: RolloutPolicy, revision: str, own: RegionStatus | None) -> bool:
    """Alarms are read only while this region steps or bakes the new revision."""
    return bool(policy.alarms) and (
        own is not None and own.revision == revision and own.rollout in ("stepping", "baking")
    )


def baked(status: RegionStatus | None, revision: str, bake: float, now: float) -> bool:
    """A region has run `revision` for `bake` seconds (judged from the table's `since`)."""
    if status is None or status.revision != revision or status.state != "running":
        return False
    if status.rollout == "done":
        return True
    since = parse_timestamp(status.since)
    return status.rollout == "baking" and since is not None and now - since >= bake


def decide(
    *,
    policy: RolloutPolicy,
    record: RolloutRecord,
    revision: str,
    targets: Sequence[str],
    statuses: Mapping[str, RegionStatus],
    region: str,
    observed: Observed,
    now: float,
) -> RolloutDecision:
    """Decide what `region` serves and reports now (see the module's table)."""
    own = statuses.get(region)
    completed = record.completed_revision if record.completed_spec is not None else None
    on_new = own is not None and own.revision == revision and own.rollout in ACTIVE
    steps = policy.steps if completed is not None else ()
    own_step = _own_step(own, len(steps)) if on_new else None

    def result(
        serve: str, phase: str, rev: str | None, step: int | None, **extra: Any
    ) -> RolloutDecision:
        same = (
            own is not None
            and (own.revision, own.rollout, own.step) == (rev, phase, step)
            and parse_timestamp(own.since) is not None
        )
        since = parse_timestamp(own.since) if same and own is not None else None
        return RolloutDecision(serve, phase, rev, step, now if since is None else since, **extra)

    def elsewhere(phase: str) -> RolloutDecision:
        if completed is None:
            return result(HOLD, phase, None, None)
        return result(SERVE_COMPLETED, phase, completed, None)

    def weight(step: int | None) -> int | None:
        return steps[step] if step is not None and step < len(steps) else None

    if revision == record.completed_revision:
        return result(SERVE_NEW, "done", revision, None)
    if record.halted(revision) is not None:
        if policy.auto_rollback and completed is not None:
            return result(SERVE_COMPLETED, "rolled_back", completed, None)
        if on_new:
            return result(SERVE_NEW, "failed", revision, own_step, weight=weight(own_step))
        return elsewhere("failed")
    if record.paused:
        if on_new:
            return result(SERVE_NEW, "paused", revision, own_step, weight=weight(own_step))
        return elsewhere("paused")
    if not on_new:
        wave = wave_of(policy, targets, region)
        earlier = [r for w in policy.waves_for(targets)[:wave] for r in w]
        if not all(baked(statuses.get(r), revision, policy.bake_seconds, now) for r in earlier):
            return elsewhere("waiting")
        wait = min(policy.step_seconds, policy.progress_deadline_seconds) if steps else None
        return RolloutDecision(
            SERVE_NEW,
            "stepping",
            revision,
            0 if steps else len(steps),
            now,
            weight=weight(0),
            next_check=now + (wait if wait is not None else policy.progress_deadline_seconds),
        )

    def halt(reason: str) -> RolloutDecision:
        halted = dataclasses.replace(record, halt=Halt(revision, region, reason, ""))
        decision = decide(
            policy=policy,
            record=halted,
            revision=revision,
            targets=targets,
            statuses=statuses,
            region=region,
            observed=observed,
            now=now,
        )
        return dataclasses.replace(decision, halt=reason)

    assert own is not None
    assert own_step is not None
    phase = own.rollout
    since = parse_timestamp(own.since) or now
    if phase == "paused":
        # Resumed: the step (or the bake) starts again from now.
        phase, since = (
            "stepping" if own.state != "running" or own_step < len(steps) else "baking",
            now,
        )
    if observed.firing:
        return halt(f"alarm {', '.join(observed.firing)} in ALARM")
    if not observed.serving:
        return halt("watchdog: no ready replica, traffic was cut")
    deadline = policy.progress_deadline_seconds
    if phase == "stepping" and own_step < len(steps):
        if observed.canary_ready and now - since >= policy.step_seconds:
            nxt = own_step + 1
            return RolloutDecision(
                SERVE_NEW,
                "stepping",
                revision,
                nxt,
                now,
                weight=weight(nxt),
                next_check=now + (policy.step_seconds if nxt < len(steps) else deadline),
            )
        if not observed.canary_ready and now - since >= deadline:
            return halt(f"canary at {steps[own_step]}% not ready within {deadline}s")
        wait = policy.step_seconds if observed.canary_ready else min(policy.step_seconds, deadline)
        return RolloutDecision(
            SERVE_NEW,
            "stepping",
            revision,
            own_step,
            since,
            weight=weight(own_step),
            next_check=since + (wait if now - since < wait else deadline),
        )
    if phase == "stepping":
        if observed.new_ready:
            return RolloutDecision(
                SERVE_NEW, "baking", revision, own_step, now, next_check=now + policy.bake_seconds
            )
        if now - since >= deadline:
            return halt(f"not ready within {deadline}s")
        return RolloutDecision(
            SERVE_NEW, "stepping", revision, own_step, since, next_check=since + deadline
        )
    if phase == "baking":
        if observed.new_ready and now - since >= policy.bake_seconds:
            phase, since = "done", now
        else:
            return RolloutDecision(
                SERVE_NEW,
                "baking",
                revision,
                own_step,
                since,
                next_check=since + policy.bake_seconds
                if now - since < policy.bake_seconds
                else None,
            )
    # done: the last region to finish records the completion.
    everyone = dict(statuses)
    everyone[region] = dataclasses.replace(own, revision=revision, rollout="done")
    complete = all(
        (s := everyone.get(r)) is not None and s.revision == revision and s.rollout == "done"
        for r in targets
    )
    return RolloutDecision(SERVE_NEW, "done", revision, own_step, since, complete=complete)


def _own_step(own: RegionStatus | None, last: int) -> int:
    """This region's step on the new revision (the last = promoted, when absent)."""
    if own is None or own.step is None:
        return last
    return max(0, min(own.step, last))


# -- the endpoint actor's use of the decision ------------------------------------------


@dataclass(frozen=True)
class Plan:
    """A decision turned into what the endpoint actor applies and reports.

    Attributes:
        decision: the rollout decision.
        endpoint: the endpoint to build the objects from (the item's, or with the
            completed spec); None: leave the objects as they are.
        canary: the new revision as the canary (image and weight) while stepping.
        revision: the item's revision (R).
    """

    decision: RolloutDecision
    endpoint: Endpoint | None
    canary: CanaryWorkload | None
    revision: str

    def stamp(self, status: RegionStatus) -> RegionStatus:
        """`status` with this plan's revision, phase, step and since."""
        d = self.decision
        return dataclasses.replace(
            status, revision=d.revision, rollout=d.phase, step=d.step, since=iso_now(d.since)
        )


def policy_of(item: LoadedItem) -> RolloutPolicy | None:
    """The item's `spec.rollout`, or None (also for an item whose spec is not a map)."""
    spec = item.raw.get("spec")
    return parse_rollout(spec) if isinstance(spec, dict) else None


def plan(
    item: LoadedItem,
    endpoint: Endpoint,
    region: str,
    *,
    own: RegionStatus | None,
    primary: dict[str, Any] | None,
    canary: dict[str, Any] | None,
    serving: bool,
    alarms: Callable[[Sequence[str]], tuple[str, ...]] | None,
    now: float,
) -> Plan | None:
    """Decide for `endpoint` (the item's, valid) in `region` from its cached Deployments;
    None when the item has no policy (it behaves as without this feature)."""
    policy = policy_of(item)
    if policy is None:
        return None
    spec = item.raw["spec"]
    revision = rollout_revision(spec)
    record = RolloutRecord.from_item(item.raw)
    statuses = dict(item.region_status)
    if own is not None:
        statuses[region] = own
    new_image = endpoint.spec.image_for(region)
    firing = (
        alarms(policy.alarms) if alarms is not None and needs_alarms(policy, revision, own) else ()
    )
    observed = Observed(
        new_ready=_runs(primary, build_deployment(workload_for(endpoint, region))),
        canary_ready=canary is not None and _canary_runs(canary, new_image),
        serving=serving,
        firing=firing,
    )
    decision = decide(
        policy=policy,
        record=record,
        revision=revision,
        targets=endpoint.target_regions,
        statuses=statuses,
        region=region,
        observed=observed,
        now=now,
    )
    if decision.serve == HOLD:
        return Plan(decision, None, None, revision)
    if decision.serve == SERVE_COMPLETED or decision.weight is not None:
        assert record.completed_spec is not None
        served = parse_endpoint({**item.raw, "spec": record.completed_spec})
    else:
        served = endpoint
    step = None
    if decision.weight is not None:
        step = CanaryWorkload(image=new_image, weight=decision.weight, replicas=1)
    return Plan(decision, served, step, revision)


def carry(status: RegionStatus, previous: RegionStatus | None) -> RegionStatus:
    """An error report keeps the rollout fields last reported: a failed reconcile must not
    make the region look as if it had left the revision (its step and clock are durable)."""
    if status.rollout is not None or previous is None or previous.rollout is None:
        return status
    return dataclasses.replace(
        status,
        revision=previous.revision,
        rollout=previous.rollout,
        step=previous.step,
        since=previous.since,
    )


def _runs(live: dict[str, Any] | None, built: dict[str, Any]) -> bool:
    """The live Deployment was built from the same pod inputs as `built` and is rolled out
    with every replica ready."""
    if live is None:
        return False
    live_hash = (live.get("metadata", {}).get("annotations") or {}).get(
        TEMPLATE_SPEC_HASH_ANNOTATION
    )
    built_hash = (built.get("metadata", {}).get("annotations") or {}).get(
        TEMPLATE_SPEC_HASH_ANNOTATION
    )
    desired = int((live.get("spec") or {}).get("replicas", 1) or 0)
    ready = int((live.get("status") or {}).get("readyReplicas") or 0)
    return live_hash == built_hash and rollout_complete(live) and ready == desired


def _canary_runs(live: dict[str, Any], image: str) -> bool:
    containers = ((live.get("spec") or {}).get("template") or {}).get("spec", {}).get(
        "containers"
    ) or [{}]
    ready = int((live.get("status") or {}).get("readyReplicas") or 0)
    return containers[0].get("image") == image and rollout_complete(live) and ready > 0
