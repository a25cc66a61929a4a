"""The watchdog (architecture section 5, defects 5 and 19): a primary with no ready replica for
the threshold loses its Ingress, judged from the cluster's own condition times (so a
new leader does not reset the clock); the Ingress comes back when the primary is
ready; a canary step never recreates an Ingress the watchdog removed."""

from __future__ import annotations

from actors.clock import FakeClock
from store import commands
from tests.integration.harness import FAKE_TIME_LEASE, Harness, drive, pass_time, scan_count

THRESHOLD = 300


def _start(kit: Harness, clock: FakeClock, identity: str):
    return kit.start_daemon(
        clock=clock,
        POD_NAME=identity,
        RECONCILE_INTERVAL_SECONDS="5",
        INFERENCE_UNHEALTHY_THRESHOLD_SECONDS=str(THRESHOLD),
        **FAKE_TIME_LEASE,
    )


def test_dead_primary_loses_its_ingress_even_with_a_ready_canary_and_after_failover(
    fake_time_kit: Harness, clock: FakeClock
) -> None:
    kit = fake_time_kit
    kit.put("m1", image="repo/model:crashloop", canary={"image": "repo/model:v2", "weight": 10})
    first = _start(kit, clock, "daemon-a")
    drive(clock, lambda: kit.kube.get("Ingress", "inference-m1"), what="Ingress created")
    drive(
        clock,
        lambda: (
            (kit.kube.get("Deployment", "m1-canary") or {}).get("status", {}).get("readyReplicas")
        ),
        what="canary ready",
    )
    # Half the threshold: still serving.
    pass_time(clock, THRESHOLD // 2)
    assert kit.kube.get("Ingress", "inference-m1") is not None
    # A new leader takes over half-way: the unready clock comes from the cluster.
    first.stop()
    failover_at = clock.time()
    second = _start(kit, clock, "daemon-b")
    # The Ingress goes first, then the status says why (two writes: wait for both).
    status = drive(
        clock,
        lambda: kit.kube.get("Ingress", "inference-m1") is None
        and (s := kit.status("m1")) is not None
        and s.state == "error"
        and s,
        step=5,
        timeout=60,
        what="Ingress removed and the error reported",
    )
    assert "traffic stopped" in (status.error or "")
    assert clock.time() - failover_at < THRESHOLD * 0.75, "the failover reset the clock"
    # A canary weight change must not bring the Ingress back while the primary is dead.
    kit.store.apply("m1", commands.set_canary, "repo/model:v2", 40)
    scans = scan_count(second)
    drive(clock, lambda: scan_count(second) >= scans + 3, step=5, what="the change seen")
    drive(
        clock,
        lambda: (kit.kube.get("Service", "m1-canary") or {}).get("metadata", {}),
        step=5,
        what="canary still served",
    )
    assert kit.kube.get("Ingress", "inference-m1") is None
    # The primary is fixed: traffic comes back.
    kit.store.apply("m1", commands.update_spec, {"image": "repo/model:v3"})
    drive(clock, lambda: kit.kube.get("Ingress", "inference-m1"), step=5, what="Ingress back")
    drive(clock, lambda: kit.state("m1") == "running", what="running again")


def test_ready_primary_keeps_its_ingress_past_the_threshold(
    fake_time_kit: Harness, clock: FakeClock
) -> None:
    kit = fake_time_kit
    kit.put("m1")
    _start(kit, clock, "daemon-a")
    drive(clock, lambda: kit.state("m1") == "running", what="running")
    pass_time(clock, 2 * THRESHOLD)
    assert kit.kube.get("Ingress", "inference-m1") is not None
    assert kit.state("m1") == "running"
