"""Experiment: the cold start of the real daemon beside `bench.bounded_daemon`, whose
endpoint actors wait for one of 32 handler permits, at 5,000 endpoints.

Not a target of DESIGN section 10: it sizes the fix for the lease loss that the
5,000-endpoint cold start shows (see bench/README.md). Skipped by --quick.
"""

from __future__ import annotations

from bench.cold_start import timeout_for
from bench.rig import Options, Section
from bench.scale import ScaleRun, scale_run

TITLE = "experiment: bounded handlers"
MODULE = "bench.bounded_daemon"


def run(options: Options) -> Section:
    """Both cold starts at --endpoints (default 5,000); nothing in --quick."""
    section = Section(TITLE, parameters={"handler permits": 32})
    if options.quick:
        section.add("skipped in --quick", None, "")
        return section
    endpoints = options.count(5000, 5000)
    for label, module in (("daemon as is", "actors"), ("32 handler permits", MODULE)):
        result = scale_run(endpoints, timeout=timeout_for(endpoints), module=module)
        _figures(section, f"{endpoints}, {label}: ", result)
    return section


def _figures(section: Section, label: str, result: ScaleRun) -> None:
    section.add(f"{label}to all Deployments created", result.deployments_seconds, "s")
    section.add(f"{label}to all running", result.running_seconds, "s", note=result.error)
    section.add(
        f"{label}leadership changes",
        result.lease_transitions,
        "",
        target="1",
        met=result.lease_transitions == 1,
    )
    section.add(f"{label}Kubernetes requests", result.k8s_requests.get("total", 0), "")
    section.add(f"{label}table writes", result.table_writes, "")
    section.add(f"{label}RSS", result.rss_kib / 1024, "MiB")
