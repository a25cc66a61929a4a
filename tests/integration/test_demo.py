"""`inference-supervisor demo` as the README's first line runs it: three regions, the
single-region story (convergence, a crashed actor restarted, the watchdog), then a good
image rolled wave by wave and a bad one halted in the first wave and rolled back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from k8s.realcluster import build
from tests.k3s.backends import REAL_SKIP_PREFIX, real_required

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_shows_its_whole_story_and_exits_0(tmp_path: Path) -> None:
    """Piped, the demo prints a line per change (no copies of its table); it ends on its
    own once everything was shown, well within the README's `--duration 60`."""
    done = subprocess.run(
        [sys.executable, "-m", "actors", "demo", "--duration", "60", "--log-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, ""), done.stdout[-3000:]
    out = done.stdout
    assert out.splitlines()[-1] == (
        "demo done: converged, crashed actor restarted, watchdog cut traffic, "
        "good image rolled wave by wave, bad image halted and rolled back"
    )
    assert "us-east-1: actor of chat died (RuntimeError: demo: crash injected)" in out
    assert "took the new revision before" not in out
    assert (
        "halted in us-east-1: canary at 50% not ready within 8s; every region back on "
        "vllm/vllm-openai:v0.6.4, eu-west-1, ap-south-1 never served the bad image"
    ) in out
    # A line per change: the header once, not a table per second.
    assert out.count("ENDPOINT") == 1


def test_a_demo_too_short_for_its_story_exits_1_naming_what_was_not_shown() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "actors", "demo", "--duration", "3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("demo ended without showing: ")
    assert "bad image halted and rolled back" in done.stderr


@pytest.mark.timeout(300)
def test_the_demo_on_real_control_planes_rolls_out_halts_and_rolls_back(tmp_path: Path) -> None:
    """`demo --real`: one real control plane per region (`local-cluster --real`), so the
    three-region rollout, its halt and its rollback are driven by the real Deployment
    controller's status."""
    if not build.built():
        message = f"{REAL_SKIP_PREFIX}{build.not_built_message()}"
        if real_required():
            pytest.fail(message)
        pytest.skip(message)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "actors",
            "demo",
            "--real",
            "--duration",
            "180",
            "--log-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-2000:])
    assert done.stdout.splitlines()[-1] == (
        "demo done: converged, crashed actor restarted, watchdog cut traffic, "
        "good image rolled wave by wave, bad image halted and rolled back"
    )
    assert "took the new revision before" not in done.stdout
    assert (
        "every region back on vllm/vllm-openai:v0.6.4, eu-west-1, ap-south-1 never served "
        "the bad image"
    ) in done.stdout
    assert "starting the control plane of ap-south-1" in done.stderr
