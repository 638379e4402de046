"""The `containerd` role's phases, in order."""

from __future__ import annotations

from inventory.model import Cluster
from roles.containerd.steps import steps
from roles.engine.phase import Phase, linux_hosts, of_role
from roles.engine.step import restart


def phases(cluster: Cluster) -> list[Phase]:
    return of_role(
        "containerd", [Phase("Container runtime", linux_hosts, steps(cluster), handlers=[restart("containerd")])]
    )
