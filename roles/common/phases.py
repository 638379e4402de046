"""The `common` role's phases, in order."""

from __future__ import annotations

from inventory.model import Cluster
from roles.common.steps import steps
from roles.engine.phase import Phase, linux_hosts, of_role


def phases(cluster: Cluster) -> list[Phase]:
    return of_role("common", [Phase("Prepare hosts", linux_hosts, steps())])
