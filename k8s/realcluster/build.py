"""Builds the real control plane's binaries from Go modules, once per version.

`ensure_binaries()` returns the paths of `kube-apiserver`, `kube-controller-manager` and
`etcd` in a cache directory keyed by the pinned versions
(`~/.cache/inference-supervisor/control-plane/kube-v1.37.2-etcd-v3.7.0/bin`), building
them with `go build` from the two small wrapper modules under `gomod/` when absent:

- `gomod/kube`: requires `k8s.io/kubernetes` at `KUBE_VERSION` and replaces every
  `k8s.io/*` staging module with its matching `v0.x` release (the main module's go.mod
  points them at `./staging`, which a module download does not carry);
- `gomod/etcd`: a one-line `main` calling `etcdmain.Main`, at the etcd version that
  Kubernetes release pins.

Builds go to a temporary directory renamed into place, under a file lock, so a
half-built cache is never used and two processes never build at once. Nothing here
downloads a binary: Go fetches module sources from its module proxy and compiles them.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

KUBE_VERSION = "v1.37.2"
# The etcd release k8s.io/kubernetes@KUBE_VERSION requires (its go.mod).
ETCD_VERSION = "v3.7.0"
GOMOD_DIR = Path(__file__).resolve().parent / "gomod"
KUBE_COMMANDS = ("kube-apiserver", "kube-controller-manager")
# `version` of a binary built from modules is otherwise v0.0.0-master; set it as a
# release build does, so `/version` answers like the real release.
_VERSION_PACKAGE = "k8s.io/component-base/version"
# A cold build compiles ~3000 packages on 2 cores; bounded so a wedged build ends.
BUILD_TIMEOUT_SECONDS = 3600
# One progress line per this many packages compiled.
PROGRESS_EVERY = 250


class GoMissing(RuntimeError):
    """The binaries are not built and no `go` command is on PATH."""


class BuildFailed(RuntimeError):
    """`go build` failed; the message is its last output line."""


@dataclass(frozen=True)
class Binaries:
    """Paths of the built control-plane programs."""

    kube_apiserver: Path
    kube_controller_manager: Path
    etcd: Path


def cache_root() -> Path:
    """`$XDG_CACHE_HOME` (default `~/.cache`) / inference-supervisor / control-plane."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "inference-supervisor" / "control-plane"


def version_dir(root: Path | None = None) -> Path:
    """The cache directory of the pinned versions."""
    return (root or cache_root()) / f"kube-{KUBE_VERSION}-etcd-{ETCD_VERSION}"


def binaries(root: Path | None = None) -> Binaries:
    """Where the binaries of the pinned versions are (built or not)."""
    bin_dir = version_dir(root) / "bin"
    return Binaries(
        kube_apiserver=bin_dir / "kube-apiserver",
        kube_controller_manager=bin_dir / "kube-controller-manager",
        etcd=bin_dir / "etcd",
    )


def built(root: Path | None = None) -> bool:
    """True when every binary of the pinned versions is in the cache."""
    found = binaries(root)
    return all(
        path.is_file() for path in (found.kube_apiserver, found.kube_controller_manager, found.etcd)
    )


def go_command() -> str | None:
    """The `go` on PATH, or None."""
    return shutil.which("go")


def missing_go_message() -> str:
    """One line saying what building needs."""
    return (
        f"the real control plane (kube-apiserver {KUBE_VERSION}, etcd {ETCD_VERSION}) is not "
        f"built in {version_dir()} and building it needs Go >= 1.26 on PATH "
        "(then: inference-supervisor local-cluster --real --build-only)"
    )


def not_built_message() -> str:
    """One line saying the binaries are not built and how to build them."""
    return (
        f"the real control plane (kube-apiserver {KUBE_VERSION}, etcd {ETCD_VERSION}) is not "
        f"built in {version_dir()}: build it with `inference-supervisor local-cluster --real "
        "--build-only` (needs Go >= 1.26 on PATH)"
    )


def ensure_binaries(
    *, root: Path | None = None, progress: Callable[[str], None] = lambda line: None
) -> Binaries:
    """The binaries of the pinned versions, built first when not cached.

    Raises:
        GoMissing: not cached and no `go` on PATH.
        BuildFailed: `go build` failed or timed out.
    """
    if built(root):
        return binaries(root)
    go = go_command()
    if go is None:
        raise GoMissing(missing_go_message())
    target = version_dir(root)
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / f"{target.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building: wait for it
        if built(root):
            return binaries(root)
        staging = target.parent / f"{target.name}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        (staging / "bin").mkdir(parents=True)
        started = time.monotonic()
        progress(
            f"building kube-apiserver and kube-controller-manager {KUBE_VERSION}, "
            f"etcd {ETCD_VERSION} with {go} into {target} (first time: tens of minutes)"
        )
        _go_build(go, GOMOD_DIR / "kube", _kube_argv(go, staging / "bin"), progress)
        _go_build(go, GOMOD_DIR / "etcd", _etcd_argv(go, staging / "bin"), progress)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        progress(f"built in {time.monotonic() - started:.0f} s")
    return binaries(root)


def _kube_argv(go: str, out: Path) -> list[str]:
    major, minor = KUBE_VERSION.lstrip("v").split(".")[:2]
    ldflags = " ".join(
        [
            "-s",
            "-w",
            f"-X {_VERSION_PACKAGE}.gitVersion={KUBE_VERSION}",
            f"-X {_VERSION_PACKAGE}.gitMajor={major}",
            f"-X {_VERSION_PACKAGE}.gitMinor={minor}",
            f"-X {_VERSION_PACKAGE}.gitTreeState=clean",
        ]
    )
    return [
        go,
        "build",
        "-v",
        "-ldflags",
        ldflags,
        "-o",
        f"{out}{os.sep}",
        *(f"k8s.io/kubernetes/cmd/{name}" for name in KUBE_COMMANDS),
    ]


def _etcd_argv(go: str, out: Path) -> list[str]:
    return [go, "build", "-v", "-ldflags", "-s -w", "-o", str(out / "etcd"), "."]


def _go_build(
    go: str, module: Path, argv: list[str], progress: Callable[[str], None]
) -> None:
    """Runs one `go build -v` in `module`, reporting every `PROGRESS_EVERY` packages."""
    process = subprocess.Popen(
        argv,
        cwd=module,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + BUILD_TIMEOUT_SECONDS
    compiled = 0
    last = ""
    assert process.stderr is not None
    try:
        for raw in process.stderr:
            line = raw.strip()
            if not line:
                continue
            last = line
            compiled += 1
            if compiled % PROGRESS_EVERY == 0:
                progress(f"  {module.name}: {compiled} packages compiled")
            if time.monotonic() > deadline:
                raise BuildFailed(f"go build in {module} took over {BUILD_TIMEOUT_SECONDS} s")
        code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    except (BuildFailed, subprocess.TimeoutExpired) as error:
        process.kill()
        process.wait()
        raise BuildFailed(f"go build in {module} did not finish: {error}") from error
    if code != 0:
        raise BuildFailed(f"go build in {module} failed (exit {code}): {last}")
