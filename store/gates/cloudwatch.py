"""The CloudWatch alarm gate (policy field `alarms`): an alarm in ALARM in this region
halts the revision; a name CloudWatch does not know, or an unreadable CloudWatch, is a
problem (shown, and the bake does not end on it). Reads go through
`store.alarms.AlarmReader` (its cache, timeouts and retries)."""

from __future__ import annotations

from store.alarms import AlarmReader
from store.gates import GateQuery, GateReading
from store.rollout import RolloutPolicy

__all__ = ["CloudWatchGate"]


class CloudWatchGate:
    """`store.gates.Gate` over CloudWatch alarms in the daemon's region."""

    name = "alarms"
    #: An alarm can fire at any moment of a step or a bake; the reader reuses an answer
    #: for 10 s.
    poll_seconds = 15.0
    paces_steps = False

    def __init__(self, reader: AlarmReader) -> None:
        self.reader = reader

    def applies(self, policy: RolloutPolicy) -> bool:
        return bool(policy.alarms)

    def read(self, query: GateQuery) -> GateReading:
        reading = self.reader.read(query.policy.alarms, query.max_age)
        if reading.firing:
            names = ", ".join(reading.firing)
            return GateReading(
                "firing",
                f"ALARM: {names}",
                halt=f"alarm {names} in ALARM",
                problem=reading.problem,
                age=reading.age,
            )
        if reading.problem is not None:
            state = "unreadable" if reading.error is not None else "missing"
            return GateReading(state, reading.problem, problem=reading.problem, age=reading.age)
        return GateReading("ok", f"{', '.join(query.policy.alarms)} not in ALARM", age=reading.age)

    def close(self) -> None:
        self.reader.close()
