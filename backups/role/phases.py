"""The "backups | …" phases, in order: the last of the apply (the agent needs etcd and its client certificate)."""

from __future__ import annotations

from backups.role import backup_host
from backups.role.steps import agent_steps, timer_off
from inventory.model import Cluster
from roles.engine.phase import Phase, of_role


def phases(cluster: Cluster) -> list[Phase]:
    members = lambda c: c.etcd_members  # noqa: E731 - a host selector
    if not cluster.backups.enabled:
        return of_role("backups", [Phase("backups | timer off", members, [timer_off()])])
    out = []
    if backup_host.backup_hosts(cluster):
        out.append(Phase("backups | backup host access", backup_host.backup_hosts, backup_host.steps()))
    out.append(Phase("backups | agent and timer", members, agent_steps(cluster)))
    return of_role("backups", out)
