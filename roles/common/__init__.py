"""Role `common`: prepare every Linux host for Kubernetes (modules, sysctl, swap, time, packages, names)."""

from __future__ import annotations

from inventory.model import Cluster
from roles.common.steps import steps
from roles.engine.phase import Phase, linux_hosts


def phases(cluster: Cluster) -> list[Phase]:
    return [Phase("Prepare hosts", linux_hosts, steps())]
