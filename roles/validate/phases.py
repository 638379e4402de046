"""The live validation's phase: it runs first and always (also when --only names other phases)."""

from __future__ import annotations

from inventory.model import Cluster
from roles.engine.phase import Phase, linux_hosts, of_role
from roles.validate.steps import checks


def phases(cluster: Cluster) -> list[Phase]:
    return of_role("validate", [Phase("Validate hosts", linux_hosts, checks(), always=True)])
