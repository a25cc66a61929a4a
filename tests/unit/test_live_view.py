"""`LiveView`: piped, a line per change (as `kubectl get -w`); on a terminal, one table
redrawn in place with the events under it."""

from __future__ import annotations

import io

from actors.app.live_view import LiveView

HEADER = ("ENDPOINT", "STATE")


def test_piped_output_prints_the_header_once_then_only_rows_that_changed() -> None:
    out = io.StringIO()
    view = LiveView(HEADER, stream=out)
    view.update("t0", [("a", "creating"), ("b", "creating")])
    view.update("t1", [("a", "creating"), ("b", "creating")], ["nothing changed"])
    view.update("t2", [("a", "running"), ("b", "creating")])
    view.close()
    assert out.getvalue().splitlines() == [
        "t0",
        "ENDPOINT  STATE",
        "a         creating",
        "b         creating",
        "! nothing changed",
        "a         running",
    ]


def test_the_live_table_shows_the_latest_rows_and_recent_events() -> None:
    out = io.StringIO()
    view = LiveView(HEADER, stream=out, live=True)
    view.update("t0", [("a", "creating")], ["leading"])
    view.update("t1", [("a", "running")], ["a crashed"])
    view.close()
    text = out.getvalue()
    assert "running" in text
    assert "! leading" in text
    assert "! a crashed" in text
