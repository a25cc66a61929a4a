"""/readyz's table check, answered within a deadline whatever the table does.

A DescribeTable against a throttled or slow table takes botocore's retries and backoff
(many seconds); a kubelet's probe gives up after 3. So the check runs on a thread of its
own, one at a time, and `answer()` waits for it only until its deadline: a check still
running then is the answer ("did not answer within 1.5 s", with the last attempt's outcome
when one came back, e.g. ThrottlingException), and its result, when it comes, is reused by
the next probes for `max_age` seconds like any other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)

__all__ = ["TableProbe"]


class TableProbe:
    """Answers "is the table usable?" within `deadline` seconds.

    Args:
        table: the table's name, for the reasons given.
        check: `() -> None` when the table answers, else why not (one DescribeTable with
            the store's retries); run on the probe's thread.
        monotonic: the clock the answer's age is measured on.
        max_age: seconds an answer is reused.
        deadline: seconds `answer()` waits for a check under way.
    """

    def __init__(
        self,
        table: str,
        check: Callable[[], str | None],
        *,
        monotonic: Callable[[], float],
        max_age: float,
        deadline: float,
    ) -> None:
        self.table = table
        self.check = check
        self.monotonic = monotonic
        self.max_age = max_age
        self.deadline = deadline
        self._lock = threading.Lock()
        # (problem or None, monotonic time of the answer); replaced whole.
        self._answer: tuple[str | None, float] | None = None
        self._running: threading.Thread | None = None
        self._done = threading.Event()
        self._last_outcome = ""

    def note_attempt(self, outcome: str) -> None:
        """Record one DescribeTable attempt's outcome ("ok" or the error code)."""
        self._last_outcome = outcome

    def answer(self) -> str | None:
        """None when the table answered lately, else why it is not usable now."""
        with self._lock:
            cached = self._answer
            if cached is not None and self.monotonic() - cached[1] < self.max_age:
                return cached[0]
            if self._running is None:
                self._last_outcome = ""
                self._done = threading.Event()
                # A daemon thread: a check stuck in retries must never hold the process.
                self._running = threading.Thread(
                    target=self._run, name="readyz-table-check", daemon=True
                )
                self._running.start()
            done = self._done
        if done.wait(self.deadline):
            answer = self._answer
            return None if answer is None else answer[0]
        last = self._last_outcome
        detail = f"last attempt: {last}" if last and last != "ok" else "slow"
        return f"table {self.table} did not answer within {self.deadline:g}s ({detail})"

    def stop(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for a check under way (it ends by its own timeouts)."""
        running = self._running
        if running is not None:
            running.join(timeout)

    def _run(self) -> None:
        try:
            problem = self.check()
        except Exception as error:  # a check that raises is an unusable table, not a crash
            log.warning("table check raised", exc_info=True)
            problem = f"table {self.table} check failed: {error}"
        with self._lock:
            self._answer = (problem, self.monotonic())
            self._running = None
            self._done.set()
