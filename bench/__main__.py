"""`python -m bench [--quick] [--endpoints N] [--json PATH] [BENCHMARK...]`: measure the
daemon against architecture section 10's targets; prints one table per sub-benchmark.

Benchmarks print figures; they never fail on timing (exit status 0 unless one crashed).
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import structlog

from bench import report
from bench.rig import Options, Section, machine

#: Sub-benchmark name -> module (each has TITLE and run(Options) -> Section), in run order.
BENCHMARKS = {
    "cold-start": "bench.cold_start",
    "memory": "bench.memory",
    "memory-breakdown": "bench.memory_breakdown",
    "steady-state": "bench.steady_state",
    "change-latency": "bench.change_latency",
    "change-feed": "bench.change_feed",
    "isolation": "bench.isolation",
    "failover": "bench.failover",
    "faults": "bench.faults",
    "slow-api": "bench.slow_api",
    "rollout": "bench.rollout",
    "churn": "bench.churn",
}


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "benchmarks",
        nargs="*",
        choices=[*BENCHMARKS, []],
        metavar="BENCHMARK",
        help=f"run only these: {', '.join(BENCHMARKS)} (default: all)",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, short windows (<3 min)")
    parser.add_argument("--endpoints", type=int, help="endpoint count for every benchmark")
    parser.add_argument(
        "--duration",
        type=float,
        help="seconds of the churn window (default 600; quick 60) and of the steady-state "
        "window (default 60; quick 15)",
    )
    parser.add_argument("--json", type=Path, help="write every figure to this JSON file")
    parser.add_argument("--markdown", type=Path, help="write the tables as Markdown here")
    parser.add_argument("--plot", type=Path, help="write a PNG of cost against endpoint count")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen benchmarks; returns 1 if any crashed, else 0."""
    args = parse(sys.argv[1:] if argv is None else argv)
    # The daemon's in-process loggers (isolation) would drown the tables.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(50))
    options = Options(quick=args.quick, endpoints=args.endpoints, duration=args.duration)
    command = shlex.join(["python", "-m", "bench", *(sys.argv[1:] if argv is None else argv)])
    host = machine()
    print(f"bench {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {command}")
    print(
        f"machine: {host['cores']} cores, {host['memory_gib']} GiB, {host['cpu']}, "
        f"Python {host['python']}, {host['os']}",
        flush=True,
    )
    sections: list[Section] = []
    failed = False
    started = time.monotonic()
    chosen = args.benchmarks or list(BENCHMARKS)
    for name in chosen:
        module = importlib.import_module(BENCHMARKS[name])
        began = time.monotonic()
        try:
            section = module.run(options)
        except Exception:
            failed = True
            print(f"== {name}: FAILED\n{traceback.format_exc()}", flush=True)
            continue
        section.seconds = time.monotonic() - began
        sections.append(section)
        print(report.text_table(section), "\n", flush=True)
    print(f"total {time.monotonic() - started:.0f} s")
    if args.json:
        report.write_json(args.json, host, command, sections)
    if args.markdown:
        args.markdown.write_text(report.markdown(sections))
    if args.plot and not report.plot(args.plot, sections):
        print("no plot: matplotlib missing (pip install matplotlib) or nothing to plot")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
