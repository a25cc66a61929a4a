"""The daemon against API servers that lose state or defaults (issue 11 items 6-8):
an API server restored to an empty state, the server's omission of empty values,
and fields added by hand in places we own entirely."""

from __future__ import annotations

from k8s.sim import SimCluster
from tests.integration.harness import Harness, scan_count, wait_for


def _writes(counters: dict[str, int]) -> int:
    """Writes to endpoint objects (the lease's are the daemon's own)."""
    return sum(
        v
        for k, v in counters.items()
        if k.split(" ")[0] in ("CREATE", "UPDATE", "PATCH", "DELETE") and not k.endswith("leases")
    )


def test_objects_lost_by_an_api_server_restored_empty_are_recreated(
    kit: Harness, sim: SimCluster
) -> None:
    kit.put("m1")
    kit.start_daemon()
    kit.wait_state("m1", "running")
    old_uid = kit.kube.get("Deployment", "m1")["metadata"]["uid"]
    # As a real watch cache: a watch from the lost history's resourceVersion stays silent.
    sim.expire_future_watches = False
    sim.restart(empty=True)
    wait_for(
        lambda: (
            {"m1"} <= kit.kube.names("Deployment")
            and {"m1"} <= kit.kube.names("Service")
            and {"inference-m1"} <= kit.kube.names("Ingress")
        ),
        timeout=20,
        what="the endpoint's objects recreated after the restore",
    )
    assert kit.kube.get("Deployment", "m1")["metadata"]["uid"] != old_uid
    kit.wait_state("m1", "running")


def test_an_empty_env_value_costs_no_write_in_steady_state(kit: Harness, sim: SimCluster) -> None:
    kit.put("m1", env={"EMPTY": "", "SET": "1"})
    daemon = kit.start_daemon()
    kit.wait_state("m1", "running")
    env = kit.kube.get("Deployment", "m1")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "EMPTY"} in env
    sim.reset_counters()
    scans = scan_count(daemon)
    wait_for(lambda: scan_count(daemon) >= scans + 6, what="six more table scans")
    # Watch events of the sim's own status writes poke the actor too: still nothing to write.
    assert _writes(sim.counters()) == 0, sim.counters()


def test_fields_added_by_hand_where_we_own_everything_are_repaired(
    kit: Harness, sim: SimCluster
) -> None:
    kit.put("m1")
    kit.start_daemon()
    kit.wait_state("m1", "running")
    live = kit.kube.get("Deployment", "m1")
    container = live["spec"]["template"]["spec"]["containers"][0]
    kit.kube.merge_patch(
        "Deployment",
        "m1",
        {
            "spec": {
                "template": {
                    "spec": {
                        "hostNetwork": True,
                        "containers": [
                            {
                                **container,
                                "command": ["/bin/sh", "-c", "sleep infinity"],
                                "securityContext": {"privileged": True},
                            }
                        ],
                    }
                }
            }
        },
    )

    def repaired() -> bool:
        pod = kit.kube.get("Deployment", "m1")["spec"]["template"]["spec"]
        first = pod["containers"][0]
        return (
            "hostNetwork" not in pod and "command" not in first and "securityContext" not in first
        )

    wait_for(repaired, timeout=20, what="the hand edit written back to what we built")
