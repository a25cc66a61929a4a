"""Memory: the RSS of a daemon subprocess at 0, 1,000 and 5,000 endpoints, once converged.

Reads VmRSS, VmHWM and Threads from /proc/PID/status of `python -m actors run`, so the
figure is the daemon's own (the table and the cluster live in the benchmark process).
"""

from __future__ import annotations

from bench.cold_start import timeout_for
from bench.rig import Options, Section, at_most
from bench.scale import scale_run

TITLE = "memory"
#: Architecture section 10 (issue 20): <= 60 KiB per endpoint, 5,000 endpoints <= 300 MiB.
KIB_PER_ENDPOINT_TARGET = 60.0
MIB_AT_5000_TARGET = 300.0


def sizes(options: Options) -> list[int]:
    """0 and --endpoints, else 0 and 250 (quick) or 0, 1,000 and 5,000."""
    if options.endpoints is not None:
        return [0, options.endpoints]
    return [0, 250] if options.quick else [0, 1000, 5000]


def run(options: Options) -> Section:
    """One figure set per size; KiB per endpoint above the 0-endpoint baseline."""
    section = Section(TITLE, parameters={"measured": "VmRSS of the daemon subprocess"})
    runs = [scale_run(n, timeout=timeout_for(n)) for n in sizes(options)]
    baseline = runs[0]
    section.add("baseline RSS (0 endpoints, leading)", baseline.rss_kib / 1024, "MiB")
    section.add("baseline threads", baseline.threads, "")
    for result in runs[1:]:
        n = result.endpoints
        per_endpoint = (result.rss_kib - baseline.rss_kib) / n if n else None
        mib = result.rss_kib / 1024
        at_5000 = n == 5000
        section.add(
            f"{n} endpoints: RSS",
            mib,
            "MiB",
            target=f"<= {MIB_AT_5000_TARGET:.0f} MiB" if at_5000 else "",
            met=at_most(mib, MIB_AT_5000_TARGET) if at_5000 else None,
            note=result.error,
        )
        section.add(
            f"{n} endpoints: RSS per endpoint above baseline",
            per_endpoint,
            "KiB",
            target=f"<= {KIB_PER_ENDPOINT_TARGET:.0f} KiB",
            met=at_most(per_endpoint, KIB_PER_ENDPOINT_TARGET),
        )
        section.add(f"{n} endpoints: peak RSS (VmHWM)", result.hwm_kib / 1024, "MiB")
        section.add(
            f"{n} endpoints: threads alive", result.threads, "", note="endpoint actors share a pool"
        )
    section.series["memory"] = [
        {"endpoints": r.endpoints, "rss_mib": r.rss_kib / 1024, "threads": r.threads} for r in runs
    ]
    return section
