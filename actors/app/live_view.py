"""A table that follows changes, the way `kubectl get -w` and live dashboards do.

On a terminal the table is redrawn in place (rich's `Live`) with the latest events
listed under it, so events never scroll away among identical copies of the table.
Piped (or in a file), it prints the header once, then one line per row whose
cells changed and one line per event: a log a script or a person can grep.
Used by `demo` and by every `--watch`.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Sequence
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

__all__ = ["LiveView"]

#: Events kept under the live table (older ones scroll off).
EVENTS_SHOWN = 8


class LiveView:
    """Shows successive versions of one table; `close()` when done.

    Args:
        header: the column titles.
        stream: where to write (default stdout); a terminal gets the live table.
        live: force the live table (True) or the line-per-change log (False).
    """

    def __init__(
        self, header: Sequence[str], *, stream: TextIO | None = None, live: bool | None = None
    ) -> None:
        self._header = tuple(header)
        self._stream = stream or sys.stdout
        self._live_mode = self._stream.isatty() if live is None else live
        self._events: deque[str] = deque(maxlen=EVENTS_SHOWN)
        self._last_rows: dict[str, tuple[str, ...]] = {}
        self._printed_header = False
        self._live: Live | None = None
        if self._live_mode:
            self._live = Live(
                console=Console(file=self._stream), auto_refresh=False, transient=False
            )
            self._live.start()

    def update(self, title: str, rows: Sequence[Sequence[str]], events: Sequence[str] = ()) -> None:
        """Show this version of the table (rows keyed by their first cell) and new events."""
        cleaned = [tuple(str(cell) for cell in row) for row in rows]
        if self._live is not None:
            self._events.extend(events)
            self._live.update(self._render(title, cleaned), refresh=True)
            return
        self._print_changes(title, cleaned, events)

    def close(self) -> None:
        """Leave the last table on screen (live) and stop redrawing."""
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _render(self, title: str, rows: list[tuple[str, ...]]) -> Group:
        table = Table(title=title, title_justify="left", expand=False)
        for column in self._header:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*row)
        events = [Text(f"! {event}", style="yellow") for event in self._events]
        return Group(table, *events)

    def _print_changes(
        self, title: str, rows: list[tuple[str, ...]], events: Sequence[str]
    ) -> None:
        widths = [len(h) for h in self._header]
        for row in rows:
            widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=False)]
        write = self._stream.write
        if not self._printed_header:
            write(f"{title}\n{_line(self._header, widths)}\n")
            self._printed_header = True
        for row in rows:
            if self._last_rows.get(row[0]) != row:
                self._last_rows[row[0]] = row
                write(_line(row, widths) + "\n")
        for event in events:
            write(f"! {event}\n")
        self._stream.flush()


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=False)).rstrip()
