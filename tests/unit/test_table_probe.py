"""`actors.app.table_probe.TableProbe`: /readyz's table check within its deadline."""

from __future__ import annotations

import threading

from actors.app.table_probe import TableProbe
from actors.clock import FakeClock


def test_a_check_past_the_deadline_is_the_answer_and_its_result_is_reused_later() -> None:
    clock = FakeClock()
    release = threading.Event()
    calls: list[int] = []

    def slow_check() -> str | None:
        calls.append(1)
        release.wait(10)
        return None

    probe = TableProbe("t", slow_check, monotonic=clock.monotonic, max_age=5, deadline=0.05)
    probe.note_attempt("ThrottlingException")
    assert probe.answer() == "table t did not answer within 0.05s (slow)"
    probe.note_attempt("ThrottlingException")
    assert probe.answer() == (
        "table t did not answer within 0.05s (last attempt: ThrottlingException)"
    )
    assert len(calls) == 1, "one check at a time"
    release.set()
    probe.stop(timeout=5)
    assert probe.answer() is None, "the late result, reused"
    clock.advance(5)
    assert probe.answer() is None
    assert len(calls) == 2, "asked again once the answer is old"
    probe.stop(timeout=5)
