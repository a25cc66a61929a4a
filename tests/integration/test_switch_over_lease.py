"""The leadership handover with GCO's inference monitor, both ways (README "Switching
over"): while the predecessor renews the shared Lease the daemon stays a standby; when
the predecessor is scaled away the daemon takes over once the record's own duration has
passed; when the daemon stops it releases the Lease and the predecessor's own rule (an
empty holder, or a renewTime older than 3 intervals) lets it take over at once."""

from __future__ import annotations

import datetime as dt
import time

from tests.integration.harness import NAMESPACE, Harness, wait_for

LEASE = "inference-monitor-leader"
OLD = "gco-inference-monitor-7d9f"
#: The predecessor's RECONCILE_INTERVAL_SECONDS; it writes leaseDurationSeconds = 3 x this.
INTERVAL = 1


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _predecessor_cycle(kit: Harness, holder: str) -> bool:
    """One pass of the predecessor's `_try_acquire_lease` (inference_monitor.py): create the
    Lease if missing; take it when the holder is empty or its renewTime is older than
    3 x interval; renew it when held; replace carries the resourceVersion read."""
    status, lease = kit.kube._call("Lease", "read", LEASE, NAMESPACE)
    if status == 404:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": LEASE, "namespace": NAMESPACE},
            "spec": {
                "holderIdentity": holder,
                "leaseDurationSeconds": 3 * INTERVAL,
                "renewTime": _now(),
            },
        }
        return kit.kube._call("Lease", "create", NAMESPACE, body)[0] == 201
    spec = lease.setdefault("spec", {})
    current = spec.get("holderIdentity")
    renew = spec.get("renewTime")
    if renew:
        renewed = dt.datetime.fromisoformat(renew.replace("Z", "+00:00"))
        if (dt.datetime.now(dt.UTC) - renewed).total_seconds() > 3 * INTERVAL:
            current = None
    if current not in (holder, None, ""):
        return False
    spec.update(holderIdentity=holder, renewTime=_now())
    return kit.kube._call("Lease", "replace", LEASE, NAMESPACE, lease)[0] == 200


def test_the_daemon_waits_for_the_predecessor_then_hands_the_lease_back(kit: Harness) -> None:
    assert _predecessor_cycle(kit, OLD)
    daemon = kit.start_daemon(POD_NAME="new-daemon")
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:  # the predecessor keeps renewing, once a second
        assert _predecessor_cycle(kit, OLD)
        assert not daemon.snapshot().leading, "led while the predecessor held the lease"
        time.sleep(INTERVAL)
    # Scaled to 0: no more renewals. The daemon waits out the record's 3 s, then leads.
    wait_for(lambda: daemon.snapshot().leading, timeout=15, what="the daemon leads")
    assert kit.kube.get("Lease", LEASE)["spec"]["holderIdentity"] == "new-daemon"
    assert not _predecessor_cycle(kit, OLD), "the predecessor took a lease that is renewed"
    # Rolling back: the daemon stops (SIGTERM) and releases; the predecessor leads at once.
    daemon.stop()
    assert _predecessor_cycle(kit, OLD)
    assert kit.kube.get("Lease", LEASE)["spec"]["holderIdentity"] == OLD
