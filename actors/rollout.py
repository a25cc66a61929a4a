"""The guarded global rollout's decision for one region (architecture section 12).

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
| on X (neither R nor C), X halted, auto_rollback | C | rolled_back |
| on X, otherwise, not due (or R halted, or paused) | X, objects untouched | superseded |
| R halted, auto_rollback, C known | C | rolled_back |
| R halted otherwise | R if on R or failed at R (frozen), else C (or nothing new) | failed |
| own reports failed at R, no halt recorded (a parked region's) | as halted | records the halt |
| paused | what it serves (R at its step if on R, else C) | paused |
| not on R, an earlier wave not baked | C; no C yet: objects left as they are | waiting |
| due, not on R | R (first step's canary if the primary serves C, else the primary) | stepping |
| on R, step k < len(steps) | C primary, R canary at steps[k] | stepping (k+1 after step_seconds) |
| on R, all steps done | R as primary | stepping until ready, then baking |
| baked, ready, gates read after the end | R | done; the last region done records C := R |

A step's canary is R's whole pod (`actors.desired.step_canary`: ceil(replicas x weight /
100) replicas, at least 1, replicas being the HPA's current count when autoscaled); it gets
the largest step weight its ready pods carry at a primary pod's share each (`carried`; 0
before one is ready), and the step's `step_seconds` count from the step's start or, if
later, from when the canary became available (the cluster's `Available` condition). When
promoted, the canary keeps the last step's weight until the new primary is ready.

Failures while on R (a step or promotion not ready within `progress_deadline_seconds`, the
watchdog cut traffic, a gate's halt (an alarm in ALARM, a query past its bound), a gate
pending past the deadline; the supervisor's `parked` for a crash loop) record a halt; the
region then serves as a halted revision does.

Gates (`store.gates`) are read while a region steps or bakes R; a gate
`pending` (the load balancer not yet carrying a step's weights) holds the step, the
promotion and the end of the bake, and a pacing gate's step time counts from when it
last started passing; under a pacing gate a promoted canary is drained (weight 0, carried)
before it is removed. Without C (a brand-new endpoint)
there are no canary steps and a region not due creates nothing: there is no older revision
to protect or to keep serving.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from actors.desired import iso_now, precise_iso, rollout_complete, step_canary, workload_for
from actors.silence import silent_regions
from actors.watchdog import ROLLOUT_HALT_REASON, parse_time
from k8s.manifests import WEIGHTED_ACTION_ANNOTATION, build_canary_deployment, build_deployment
from k8s.naming import canary_name
from k8s.workload import TEMPLATE_SPEC_HASH_ANNOTATION, CanaryWorkload
from store.gates import Gate, GateQuery, GateReading
from store.item import LoadedItem
from store.model import Endpoint, RegionStatus, parse_endpoint, parse_timestamp
from store.rollout import Halt, RolloutPolicy, RolloutRecord, parse_rollout
from store.rollout import revision as rollout_revision

#: Phases of a region that has taken the new revision.
ACTIVE = ("stepping", "baking", "done", "paused")
#: What a region serves: the new revision, the completed one, or it leaves its objects be.
SERVE_NEW, SERVE_COMPLETED, HOLD = "new", "completed", "hold"

#: How soon a region whose bake is over reads its gates again when they could not be
#: read after the bake's end (seconds).
GATE_RETRY_SECONDS = 5.0


@dataclass(frozen=True)
class Observed:
    """This region's own cluster, as the endpoint actor sees it before applying.

    Attributes:
        new_ready: the primary Deployment runs the new revision, rolled out and all ready.
        canary_ready: the canary Deployment runs the new revision, rolled out, and is ready.
        canary_since: with `canary_ready`, when the canary last became available (the
            cluster's `Available` condition): a step serves from then at the earliest.
        canary_serving: the canary's pods all run the new revision and one is ready: it
            may take its step's weight (before that it gets 0, as an unready canary).
        serving: the watchdog has not cut traffic.
        halts: the gates' reasons to halt now (an alarm in ALARM...).
        gate_at: when the gates were last read with an answer from each (epoch seconds;
            None: not read, or one could not be read).
        gate_problem: why a gate could not be read (a missing alarm name, an error).
        pending: why a gate holds the region where it is (the load balancer does not
            carry the weights yet): no step, promotion or end of bake until it clears.
        passed_since: when the pacing gates (`Gate.paces_steps`) last started passing
            (epoch seconds, durable: the status entry's `gates`); a step's time counts
            from then at the earliest, and a promoted canary is drained to weight 0 before
            it is removed. None: no pacing gate passes.
        canary_weight: the canary's weight in the live Ingress (None: no weighted action).
        idle: the spec runs no pod here (the endpoint is stopped, or 0 replicas): the
            region's rollout clock stands still, as paused (nothing bakes what did not run).
        primary_completed: the primary Deployment runs the completed revision's pod (a
            region held on a superseded revision as its primary takes the new one without
            canary steps, whose primary would be the completed revision).
    """

    new_ready: bool = False
    canary_ready: bool = False
    canary_since: float | None = None
    canary_serving: bool = False
    serving: bool = True
    halts: tuple[str, ...] = ()
    primary_completed: bool = True
    idle: bool = False
    gate_at: float | None = None
    gate_problem: str | None = None
    pending: str | None = None
    passed_since: float | None = None
    canary_weight: int | None = None


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
        gate: why this region's gates are not passed (reported as its status's error).
        promoting: the new revision is the primary (rolling out) and `weight` is the
            canary's, kept until the primary is ready.
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
    gate: str | None = None
    promoting: bool = False


def wave_of(policy: RolloutPolicy, targets: Sequence[str], region: str) -> int:
    """The index of `region`'s wave among `targets` (the last one when not a target)."""
    waves = policy.waves_for(targets)
    for index, wave in enumerate(waves):
        if region in wave:
            return index
    return len(waves)


def gated_now(revision: str, own: RegionStatus | None) -> bool:
    """Gates are read only while this region steps or bakes the new revision."""
    return own is not None and own.revision == revision and own.rollout in ("stepping", "baking")


def baked(status: RegionStatus | None, revision: str) -> bool:
    """A region has baked `revision`: it reported itself `done` and running at it. Only the
    region itself says so - after its bake, with its gates read after the bake's end - so
    a region that stopped reporting never counts as baked."""
    return (
        status is not None
        and status.revision == revision
        and status.state == "running"
        and status.rollout == "done"
    )


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
    silence: float = math.inf,
    sharing: Mapping[str, Mapping[str, RegionStatus]] | None = None,
) -> RolloutDecision:
    """Decide what `region` serves and reports now (see the module's table); `silence`:
    how long another region may go without writing its entry (`actors.silence`);
    `sharing`: the entries of the other clusters of each region several clusters serve
    (this region's too), each judged for silence on its own."""
    own = statuses.get(region)
    completed = record.completed_revision if record.completed_spec is not None else None
    on_new = own is not None and own.revision == revision and own.rollout in ACTIVE
    # A region that failed the revision (halted without rollback) stays frozen on it.
    frozen = on_new or (own is not None and own.revision == revision and own.rollout == "failed")
    # A region on an older revision that neither completed nor is R (a rollout superseded
    # by R while that region ran it): it keeps serving it until its wave is due for R
    # (it changes only to R), or a halt of that revision rolls it back to C.
    held = (
        own.revision
        if own is not None
        and own.revision not in (None, completed, revision)
        and own.rollout in (*ACTIVE, "failed", "superseded")
        else None
    )
    steps = policy.steps if completed is not None else ()
    own_step = _own_step(own, len(steps)) if frozen else None

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
        if held is not None and own is not None:
            if policy.auto_rollback and completed is not None and record.halted(held):
                return result(SERVE_COMPLETED, "rolled_back", completed, None)
            # The table no longer holds that revision's spec: its objects are left as
            # they are (section 12, "superseded").
            return result(HOLD, "superseded", held, own.step)
        if completed is None:
            return result(HOLD, phase, None, None)
        return result(SERVE_COMPLETED, phase, completed, None)

    def weight(step: int | None) -> int | None:
        return steps[step] if step is not None and step < len(steps) else None

    if revision == record.completed_revision:
        # The step a done region reported stays: the completion changes nothing it says
        # (its `since` and its one `RolloutDone` stand).
        return result(SERVE_NEW, "done", revision, own.step if on_new and own else None)

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
            silence=silence,
            sharing=sharing,
        )
        return dataclasses.replace(decision, halt=reason)

    if record.halted(revision) is not None:
        if policy.auto_rollback and completed is not None and (frozen or held is None):
            return result(SERVE_COMPLETED, "rolled_back", completed, None)
        if frozen:
            return result(SERVE_NEW, "failed", revision, own_step, weight=weight(own_step))
        return elsewhere("failed")
    if own is not None and own.revision == revision and own.rollout == "failed":
        # This region reported failing the revision (its actor was parked in a crash loop,
        # `parked`) and the halt is not recorded (that write was lost): record it now.
        return halt(own.error or f"failed in {region}")
    # A stopped (or 0-replica) region holds as a paused one: no step, bake or deadline
    # runs on pods that do not run; a region done before the stop baked what ran.
    idle = observed.idle and not (on_new and own is not None and own.rollout == "done")
    if record.paused or idle:
        if on_new:
            return result(SERVE_NEW, "paused", revision, own_step, weight=weight(own_step))
        return elsewhere("paused")
    if math.isfinite(silence):
        # A region expected to move R that stopped reporting: past the progress deadline
        # it halts R; before, it is named (the next wave waits: only `done` counts).
        quiet = silent_regions(
            policy, targets, statuses, revision, exclude=region, now=now, sharing=sharing
        )
        limit = max(silence, float(policy.progress_deadline_seconds))
        if quiet and quiet[0].quiet >= limit:
            first = quiet[0]
            return halt(
                f"{first.region} silent for {int(first.quiet)}s: no status past the "
                f"progress deadline ({policy.progress_deadline_seconds}s)"
            )
        silent = [q for q in quiet if q.quiet > silence]
        decision = decide(
            policy=policy,
            record=record,
            revision=revision,
            targets=targets,
            statuses=statuses,
            region=region,
            observed=observed,
            now=now,
        )
        wakes = [q.last + t for q in quiet for t in (silence, limit) if q.last + t > now]
        if wakes:
            decision = dataclasses.replace(
                decision, next_check=min(decision.next_check or math.inf, min(wakes) + 0.01)
            )
        if silent and decision.gate is None and decision.phase in ("waiting", "done"):
            # Stable text (no running count), so it is written once, not at every look.
            names = ", ".join(f"{q.region} silent since {iso_now(q.last)}" for q in silent)
            decision = dataclasses.replace(decision, gate=names)
        return decision
    if not on_new:
        wave = wave_of(policy, targets, region)
        earlier = [r for w in policy.waves_for(targets)[:wave] for r in w]
        if not all(baked(statuses.get(r), revision) for r in earlier):
            return elsewhere("waiting")
        # A region whose primary serves a superseded revision takes R as the primary at
        # once: a step would put C back as the primary (the bake still gates).
        stepped = bool(steps) and (held is None or observed.primary_completed)
        wait = min(policy.step_seconds, policy.progress_deadline_seconds) if stepped else None
        return RolloutDecision(
            SERVE_NEW,
            "stepping",
            revision,
            0 if stepped else len(steps),
            now,
            weight=weight(0) if stepped else None,
            next_check=now + (wait if wait is not None else policy.progress_deadline_seconds),
        )

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
    if observed.halts:
        return halt("; ".join(observed.halts))
    if not observed.serving:
        return halt(ROLLOUT_HALT_REASON)
    deadline = policy.progress_deadline_seconds
    if observed.pending is not None and phase in ("stepping", "baking"):
        # A gate holds the region (the load balancer does not carry the weights the
        # Ingress asks for): nothing moves on, and past the deadline it fails.
        if now - since >= deadline:
            return halt(f"{observed.pending} after {deadline}s")
        stepping = phase == "stepping" and own_step < len(steps)
        kept = None
        if phase == "stepping" and not stepping:
            # Promoting: the canary's weight stays as the Ingress has it (drained or not).
            live = observed.canary_weight
            kept = _kept(steps, observed) if live is None or not observed.canary_serving else live
        return RolloutDecision(
            SERVE_NEW,
            phase,
            revision,
            own_step,
            since,
            weight=weight(own_step) if stepping else kept,
            next_check=since + deadline,
            gate=observed.pending,
            promoting=kept is not None,
        )
    if phase == "stepping" and own_step < len(steps):
        # A step serves from its start, or from when its canary became available if that
        # is later (a new canary loads its model first): each weight serves step_seconds.
        serving = max(since, observed.canary_since or since, observed.passed_since or since)
        if observed.canary_ready and now - serving >= policy.step_seconds:
            nxt = own_step + 1
            # Promoted: the canary keeps this step's weight while the primary rolls.
            promoting = nxt == len(steps)
            return RolloutDecision(
                SERVE_NEW,
                "stepping",
                revision,
                nxt,
                now,
                weight=steps[own_step] if promoting else weight(nxt),
                next_check=now + (policy.step_seconds if nxt < len(steps) else deadline),
                promoting=promoting,
            )
        if not observed.canary_ready and now - since >= deadline:
            return halt(f"canary at {steps[own_step]}% not ready within {deadline}s")
        if observed.canary_ready:
            next_check = serving + policy.step_seconds
        else:
            wait = min(policy.step_seconds, deadline)
            next_check = since + (wait if now - since < wait else deadline)
        return RolloutDecision(
            SERVE_NEW,
            "stepping",
            revision,
            own_step,
            since,
            weight=weight(own_step),
            next_check=next_check,
        )
    if phase == "stepping":
        if observed.new_ready and observed.passed_since is not None and observed.canary_weight:
            # Under a pacing gate the canary is drained first: its weight goes to 0, and it
            # is removed only once the load balancer carries that (no request is sent to a
            # target group whose pods are gone while the load balancer lags).
            return RolloutDecision(
                SERVE_NEW,
                "stepping",
                revision,
                own_step,
                since,
                weight=0,
                next_check=since + deadline,
                promoting=True,
            )
        if observed.new_ready:
            return RolloutDecision(
                SERVE_NEW, "baking", revision, own_step, now, next_check=now + policy.bake_seconds
            )
        if now - since >= deadline:
            return halt(f"not ready within {deadline}s")
        # Promoting: the canary keeps the last step's weight and pods until the promoted
        # primary is rolled out and ready, so the new revision's share never falls.
        keep = _kept(steps, observed)
        return RolloutDecision(
            SERVE_NEW,
            "stepping",
            revision,
            own_step,
            since,
            weight=keep,
            next_check=since + deadline,
            promoting=keep is not None,
        )
    gate = observed.gate_problem if policy.gated else None
    if phase == "baking":
        end = since + policy.bake_seconds
        if (
            observed.new_ready
            and now >= end
            and policy.gated
            and (observed.gate_at is None or observed.gate_at < end)
        ):
            # Every gate is read after the bake's end before the region is done: an alarm
            # that fired late in a short bake is seen; a gate that cannot be read (a name
            # CloudWatch does not know) holds the bake (shown), and the next wave waits.
            return RolloutDecision(
                SERVE_NEW,
                "baking",
                revision,
                own_step,
                since,
                next_check=now + GATE_RETRY_SECONDS,
                gate=gate or f"{', '.join(policy.gate_fields)} not read since the bake ended",
            )
        if observed.new_ready and now >= end:
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
                gate=gate,
            )
    # done: the last region to finish records the completion.
    everyone = dict(statuses)
    everyone[region] = dataclasses.replace(own, revision=revision, rollout="done")
    complete = all(
        (s := everyone.get(r)) is not None and s.revision == revision and s.rollout == "done"
        for r in targets
    )
    return RolloutDecision(SERVE_NEW, "done", revision, own_step, since, complete=complete)


def _canary_weight(ingress: Mapping[str, Any] | None, canary: str) -> int | None:
    """The weight the live Ingress's weighted action gives Service `canary` (None: the
    Ingress has no weighted action, or it does not name the canary)."""
    annotations = ((ingress or {}).get("metadata") or {}).get("annotations") or {}
    try:
        action = json.loads(annotations[WEIGHTED_ACTION_ANNOTATION])
        groups = action["forwardConfig"]["targetGroups"]
        return next(int(g["weight"]) for g in groups if g.get("serviceName") == canary)
    except (KeyError, TypeError, ValueError, StopIteration):
        return None


def _kept(steps: Sequence[int], observed: Observed) -> int | None:
    """The canary weight kept while the promoted primary rolls out (the last step's, once
    the canary serves), so the new revision's share never falls; None: no canary."""
    return steps[-1] if steps and observed.canary_serving else None


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
        canary: the new revision as the canary while stepping: its whole pod, its weight
            and its size (`actors.desired.step_canary`).
        revision: the item's revision (R).
        gates: each gate's last reading to report ({gate name: {state, detail?, since}},
            `RegionStatus.gates`); None: none.
    """

    decision: RolloutDecision
    endpoint: Endpoint | None
    canary: CanaryWorkload | None
    revision: str
    gates: dict[str, dict[str, str]] | None = None

    def stamp(self, status: RegionStatus) -> RegionStatus:
        """`status` with this plan's revision, phase, step, since and gate readings."""
        d = self.decision
        return dataclasses.replace(
            status,
            revision=d.revision,
            rollout=d.phase,
            step=d.step,
            since=precise_iso(d.since),
            error=status.error or d.gate,
            gates=self.gates,
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
    gates: Sequence[Gate] = (),
    ingress: dict[str, Any] | None = None,
    now: float,
    silence: float = math.inf,
    cluster: str | None = None,
) -> Plan | None:
    """Decide for `endpoint` (the item's, valid) in `region` from its cached Deployments
    and Ingress and the `gates` the policy asks for; None when the item has no policy (it
    behaves as without this feature). `own` is this cluster's (`cluster`'s) entry: where
    several clusters serve a region, each steps and bakes on its own, and the region counts
    as done once all of them are."""
    policy = policy_of(item)
    if policy is None:
        return None
    spec = item.raw["spec"]
    revision = rollout_revision(spec)
    record = RolloutRecord.from_item(item.raw)
    statuses = dict(item.region_status)
    if own is not None:
        statuses[region] = own
    # The new revision's canary as a step builds it (its pod does not depend on the weight).
    new_canary = step_canary(endpoint, region, 0)
    assert new_canary.pod is not None
    built_canary = build_canary_deployment(dataclasses.replace(new_canary.pod, canary=new_canary))
    canary_ready = _canary_runs(canary, built_canary)
    applied = [g for g in gates if g.applies(policy)] if gated_now(revision, own) else []
    readings: dict[str, GateReading] = {}
    if applied:
        assert own is not None
        assert own.rollout is not None
        since = parse_timestamp(own.since) or now
        # Past a bake's end only an answer taken after it counts (a gate's cache may hold
        # an older one).
        end = since + policy.bake_seconds
        query = GateQuery(
            endpoint=endpoint.endpoint_name,
            namespace=endpoint.namespace,
            region=region,
            policy=policy,
            phase=own.rollout,
            since=since,
            now=now,
            max_age=now - end if own.rollout == "baking" and now >= end else None,
            ingress=ingress,
        )
        readings = {gate.name: gate.read(query) for gate in applied}
    shown = _shown(readings, own, now)
    problems = [r.problem for r in readings.values() if r.problem is not None]
    pacing = [
        parse_timestamp(shown[g.name]["since"]) or now
        for g in applied
        if g.paces_steps and readings[g.name].pending is None
    ]
    completed = (
        parse_endpoint({**item.raw, "spec": record.completed_spec})
        if record.completed_spec is not None
        else None
    )
    observed = Observed(
        new_ready=_runs(primary, build_deployment(workload_for(endpoint, region))),
        idle=endpoint.desired_state == "stopped" or workload_for(endpoint, region).replicas == 0,
        primary_completed=completed is not None
        and _template_inputs(primary or {})
        == _template_inputs(build_deployment(workload_for(completed, region))),
        canary_ready=canary_ready,
        canary_since=_available_since(canary) if canary_ready else None,
        canary_serving=_canary_serves(canary, built_canary),
        serving=serving,
        halts=tuple(r.halt for r in readings.values() if r.halt is not None),
        gate_at=now - max(r.age for r in readings.values()) if readings and not problems else None,
        gate_problem="; ".join(problems) or None,
        pending=next((r.pending for r in readings.values() if r.pending is not None), None),
        passed_since=max(pacing) if pacing else None,
        canary_weight=_canary_weight(ingress, canary_name(endpoint.endpoint_name)),
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
        silence=silence,
        sharing={
            r: {c: s for c, s in item.cluster_status(r).items() if c != cluster}
            for r in endpoint.target_regions
        },
    )
    if applied:
        # A gate can change at any moment of a step or a bake: look again soon, not only
        # when the step or the bake ends.
        poll = min(g.poll_seconds for g in applied)
        decision = dataclasses.replace(
            decision, next_check=min(decision.next_check or math.inf, now + poll)
        )
    # The last readings stay in the entry while the region reports the same revision.
    kept = own.gates if own is not None and own.revision == decision.revision else None
    reported = shown or kept
    if decision.serve == HOLD:
        return Plan(decision, None, None, revision, reported)
    if decision.serve == SERVE_COMPLETED or (
        decision.weight is not None and not decision.promoting
    ):
        assert completed is not None
        served = completed
    else:
        served = endpoint
    step = None
    if decision.weight is not None:
        # Sized for the step's weight from the primary's replicas (the HPA's current count
        # when it scales them); the weight applied is the largest step weight its ready
        # pods carry (`carried`): until one is ready its objects exist (the Ingress may
        # name its Service) but it takes no traffic.
        primary_replicas = _primary_replicas(endpoint, region, primary)
        # A promoted canary keeps the last step's size, drained to 0 or not: its pods go
        # only with it, once the load balancer no longer sends them traffic.
        size = policy.steps[-1] if decision.promoting and policy.steps else decision.weight
        sized = step_canary(endpoint, region, size, primary_replicas=primary_replicas)
        ready = _ready(canary) if observed.canary_serving else 0
        step = dataclasses.replace(
            sized, weight=carried(decision.weight, policy.steps, ready, primary_replicas)
        )
    return Plan(decision, served, step, revision, reported)


def _shown(
    readings: Mapping[str, GateReading], own: RegionStatus | None, now: float
) -> dict[str, dict[str, str]]:
    """Each reading as the status entry keeps it, with `since`: when that gate's state
    and detail last changed (kept from the entry while they stay the same, so it is a
    durable clock and no write happens while nothing changes)."""
    before = (own.gates if own is not None else None) or {}
    shown: dict[str, dict[str, str]] = {}
    for name, reading in readings.items():
        entry = reading.shown()
        last = before.get(name) or {}
        same = {k: v for k, v in last.items() if k != "since"} == entry and last.get("since")
        shown[name] = {**entry, "since": last["since"] if same else precise_iso(now)}
    return shown


def carried(weight: int, steps: Sequence[int], ready: int, primary_replicas: int) -> int:
    """The canary weight to apply for a step of `weight`: the largest step weight up to it
    whose share `ready` canary pods carry at no more than a primary pod's share of all
    traffic (100 / `primary_replicas` percent each: ready >= ceil(replicas x w / 100));
    0 when none. While a bigger canary becomes ready the previous step's weight holds."""
    for candidate in sorted({*(s for s in steps if s <= weight), weight}, reverse=True):
        if ready >= max(1, math.ceil(max(primary_replicas, 1) * candidate / 100)):
            return candidate
    return 0


def _primary_replicas(endpoint: Endpoint, region: str, primary: dict[str, Any] | None) -> int:
    """The primary's replica count a canary is sized from: the spec's, or with autoscaling
    the live Deployment's (what the HPA currently sets; `min_replicas` before it exists)."""
    workload = workload_for(endpoint, region)
    if workload.autoscaling is None or primary is None:
        return workload.autoscaling.min_replicas if workload.autoscaling else workload.replicas
    return max(
        workload.autoscaling.min_replicas, int((primary.get("spec") or {}).get("replicas") or 0)
    )


def _ready(live: dict[str, Any] | None) -> int:
    return int(((live or {}).get("status") or {}).get("readyReplicas") or 0)


def parked(
    item: LoadedItem | None,
    region: str,
    status: RegionStatus,
    now: float,
    *,
    own: RegionStatus | None,
) -> tuple[RegionStatus, Halt | None]:
    """The status an endpoint parked in a crash loop reports in `region` (`status`: the
    supervisor's `error`), and the halt it records (architecture section 12: a crash loop fails the
    revision).

    A region on the new revision (stepping, baking, paused, or done before the rollout
    completed) reports `rollout: failed` at it, and the revision halts: a parked actor
    supervises nothing (no step, no deadline, no watchdog), so no further region may take
    it. A region elsewhere (waiting or rolled back on the completed revision) keeps the
    rollout fields it reported: it does not run the revision its crash could be blamed on.
    `own` is what this cluster last reported in `region` (`EndpointStore.own_status`).
    Without a policy `status` is returned as it is.
    """
    if item is None or policy_of(item) is None:
        return status, None
    spec = item.raw["spec"]
    rev = rollout_revision(spec)
    record = RolloutRecord.from_item(item.raw)
    on_new = (
        own is not None
        and own.revision == rev
        and own.rollout in ACTIVE
        and rev != record.completed_revision
        and record.halted(rev) is None
    )
    if not on_new:
        return carry(status, own), None
    assert own is not None
    reason = f"crash loop: {status.error or 'endpoint actor parked'}"[:500]
    failed = dataclasses.replace(
        status, revision=rev, rollout="failed", step=own.step, since=precise_iso(now)
    )
    return failed, Halt(rev, region, reason, iso_now(now))


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
        gates=previous.gates,
    )


def _runs(live: dict[str, Any] | None, built: dict[str, Any]) -> bool:
    """The live Deployment was built from the same pod inputs as `built` and is rolled out
    with every replica ready."""
    if live is None:
        return False
    desired = int((live.get("spec") or {}).get("replicas", 1) or 0)
    ready = int((live.get("status") or {}).get("readyReplicas") or 0)
    return (
        _template_inputs(live) == _template_inputs(built)
        and rollout_complete(live)
        and ready == desired
    )


def _canary_runs(live: dict[str, Any] | None, built: dict[str, Any]) -> bool:
    """The live canary Deployment runs the pod of `built` (the new revision's, judged by
    the template's input hash: image, env, resources... alike), rolled out, and some
    replica is ready."""
    if live is None:
        return False
    ready = int((live.get("status") or {}).get("readyReplicas") or 0)
    return (
        _template_inputs(live) == _template_inputs(built) and rollout_complete(live) and ready > 0
    )


def _canary_serves(live: dict[str, Any] | None, built: dict[str, Any]) -> bool:
    """Every pod of the live canary runs the pod of `built` (no pod of an older template
    is left) and one is ready: it may take traffic."""
    if live is None or _template_inputs(live) != _template_inputs(built):
        return False
    status = live.get("status") or {}
    generation = int(live.get("metadata", {}).get("generation") or 0)
    return (
        int(status.get("observedGeneration") or 0) >= generation
        and int(status.get("updatedReplicas") or 0) == int(status.get("replicas") or 0)
        and int(status.get("readyReplicas") or 0) > 0
    )


def _available_since(live: dict[str, Any] | None) -> float | None:
    """When the Deployment last became `Available` (the condition's lastTransitionTime)."""
    for condition in ((live or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Available" and condition.get("status") == "True":
            return parse_time(condition.get("lastTransitionTime"))
    return None


def _template_inputs(deployment: dict[str, Any]) -> str | None:
    """The hash of the inputs a Deployment's pod template was built from."""
    annotations = deployment.get("metadata", {}).get("annotations") or {}
    return annotations.get(TEMPLATE_SPEC_HASH_ANNOTATION)
