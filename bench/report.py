"""Printing the figures: a text table per section, JSON, a Markdown table and a PNG plot."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.rig import Section

MARKS = {True: "met", False: "MISSED", None: ""}


def text_table(section: Section) -> str:
    """The section as an aligned text table: figure, value, target, met, predecessor."""
    rows = [("figure", "value", "target", "met", "predecessor (quoted)")]
    rows += [(f.name, f.shown(), f.target, MARKS[f.met], f.predecessor) for f in section.figures]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [f"== {section.name} ({section.seconds:.0f} s) {_parameters(section)}"]
    for row in rows:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    notes = [f"   - {f.name}: {f.note}" for f in section.figures if f.note]
    if notes:
        lines.append("  notes:")
        lines.extend(notes)
    return "\n".join(lines)


def _parameters(section: Section) -> str:
    return ", ".join(f"{k}={v}" for k, v in section.parameters.items())


def markdown(sections: list[Section]) -> str:
    """All sections as Markdown tables (what bench/README.md records)."""
    lines: list[str] = []
    for section in sections:
        lines.append(f"### {section.name}")
        lines.append("")
        lines.append(f"Parameters: {_parameters(section)}; took {section.seconds:.0f} s.")
        lines.append("")
        lines.append("| figure | value | target | met | predecessor (quoted) | note |")
        lines.append("|---|---|---|---|---|---|")
        for f in section.figures:
            lines.append(
                f"| {f.name} | {f.shown()} | {f.target} | {MARKS[f.met]} | {f.predecessor} "
                f"| {f.note} |"
            )
        lines.append("")
    return "\n".join(lines)


def write_json(path: Path, machine: dict[str, Any], command: str, sections: list[Section]) -> None:
    """Everything measured, with the machine and the command, as JSON."""
    document = {
        "machine": machine,
        "command": command,
        "sections": [asdict(section) for section in sections],
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")


def plot(path: Path, sections: list[Section]) -> bool:
    """Cost against endpoint count (cold start time, RSS, steady-state requests) as a PNG.

    Returns False when matplotlib (a bench-only dependency) is missing or nothing to plot.
    """
    try:
        import matplotlib  # noqa: PLC0415 - optional, bench-only dependency

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415 - optional, bench-only dependency
    except ImportError:
        return False
    series: dict[str, Any] = {}
    for section in sections:
        series.update(section.series)
    panels = [
        ("cold_start", "running_s", "cold start to all running (s)"),
        ("memory", "rss_mib", "daemon RSS (MiB)"),
        ("steady_state", "k8s_per_endpoint_minute", "k8s requests / endpoint / min"),
    ]
    present = [(key, field, title) for key, field, title in panels if series.get(key)]
    if not present:
        return False
    figure, axes = plt.subplots(1, len(present), figsize=(5 * len(present), 4), squeeze=False)
    for axis, (key, field, title) in zip(axes[0], present, strict=True):
        points = sorted((p["endpoints"], p[field]) for p in series[key] if p.get(field) is not None)
        axis.plot([x for x, _ in points], [y for _, y in points], marker="o")
        axis.set_title(title)
        axis.set_xlabel("endpoints")
        axis.grid(True, alpha=0.3)
        for x, y in points:
            axis.annotate(f"{y:.3g}", (x, y), textcoords="offset points", xytext=(4, 4))
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True
