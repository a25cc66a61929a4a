"""The CLI's check of a rollout policy's alarm names (architecture section 12): a name
CloudWatch does not know in a target region would leave that region's gate unread, so
`endpoints create|update` refuses it when CloudWatch answers; when it cannot be read the
names are written as given and a note says they were not checked."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from store.alarms import AlarmReader

__all__ = ["unknown_alarms"]


def unknown_alarms(policy: Any, regions: Sequence[str], *, before: Any = None) -> str | None:
    """The one-line refusal when `policy` (a `spec.rollout` map) names an alarm that does
    not exist in a target region's CloudWatch, else None. Only names not already in the
    `before` policy are checked; a region whose CloudWatch cannot be read is noted on
    stderr."""
    names = _alarms(policy)
    new = [n for n in names if n not in _alarms(before)]
    if not new:
        return None
    for region in regions:
        reader = AlarmReader(region, monotonic=time.monotonic, max_attempts=1)
        try:
            reading = reader.check(new)
        finally:
            reader.close()
        if reading.error is not None:
            print(
                f"note: alarms not checked in {region}: CloudWatch not readable ({reading.error})",
                file=sys.stderr,
            )
        elif reading.missing:
            missing = ", ".join(repr(n) for n in reading.missing)
            return (
                f"alarm {missing} does not exist in CloudWatch in {region} (names are "
                "case-sensitive): the gate would never be read"
            )
    return None


def _alarms(policy: Any) -> list[str]:
    if not isinstance(policy, Mapping):
        return []
    names = policy.get("alarms")
    return [str(n) for n in names] if isinstance(names, list) else []
