"""The actor system: supervisor (leader lease), table poller, one actor per endpoint.

`actors` decides *when* to compute and apply what should exist; `k8s` and
`store` do the talking. `actors` may import both; neither imports `actors`.
`Daemon` wires one process's worth of parts; `main` is the command line.
"""

from actors.cli import main
from actors.clock import Clock, FakeClock, SystemClock
from actors.daemon import Daemon
from actors.endpoint import EndpointActor
from actors.lease import LeaseKeeper, LeaseSettings
from actors.poller import PollerActor
from actors.scheduler import Scheduler
from actors.supervisor import SupervisorActor, SupervisorConfig

__all__ = [
    "Clock",
    "Daemon",
    "EndpointActor",
    "FakeClock",
    "LeaseKeeper",
    "LeaseSettings",
    "PollerActor",
    "Scheduler",
    "SupervisorActor",
    "SupervisorConfig",
    "SystemClock",
    "main",
]
