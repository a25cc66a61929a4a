"""The actor system: supervisor (leader lease), table poller, one actor per endpoint.

`actors` decides *when* to compute and apply what should exist; `k8s` and
`store` do the talking. `actors` may import both; neither imports `actors`.
The application around the actor system (command line, configuration, daemon
wiring, HTTP, logging, metrics) is `actors.app`; nothing here imports it.
"""

from actors.clock import Clock, FakeClock, SystemClock
from actors.endpoint import EndpointActor
from actors.lease import LeaseKeeper, LeaseSettings
from actors.poller import PollerActor
from actors.scheduler import Scheduler
from actors.supervisor import SupervisorActor, SupervisorConfig

__all__ = [
    "Clock",
    "EndpointActor",
    "FakeClock",
    "LeaseKeeper",
    "LeaseSettings",
    "PollerActor",
    "Scheduler",
    "SupervisorActor",
    "SupervisorConfig",
    "SystemClock",
]
