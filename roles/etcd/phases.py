"""The "etcd | …" phases, in order (see the contract in `roles/etcd/__init__.py`)."""

from __future__ import annotations

from inventory.model import Cluster, Host
from roles.engine.context import HostContext
from roles.engine.phase import AnyPhase, Phase, of_role
from roles.engine.transport import Transport
from roles.etcd.bootstrap import StartMembers
from roles.etcd.health import wait_healthy
from roles.etcd.steps import RestartOnChange, configure_steps, etcd_binaries


def etcd_members(cluster: Cluster) -> list[Host]:
    return cluster.etcd_members


def cluster_healthy_gate(ctx: HostContext, transport: Transport) -> None:
    """After each member of the serial restart phase: every member healthy before the next one restarts."""
    wait_healthy(ctx.cluster, transport, nodes=ctx.nodes)


def phases(cluster: Cluster) -> list[AnyPhase]:
    return of_role(
        "etcd",
        [
            Phase("etcd | Binaries", hosts=etcd_members, steps=etcd_binaries(cluster)),
            Phase(
                "etcd | Configure members (TLS config, unit, data dir)",
                hosts=etcd_members,
                steps=configure_steps(cluster),
            ),
            StartMembers(),
            Phase(
                "etcd | Rolling restart on change (one member at a time)",
                hosts=etcd_members,
                steps=[RestartOnChange()],
                serial=True,
                gate=cluster_healthy_gate,
                gate_after_changes_only=True,  # the start phase just waited for a healthy cluster
            ),
        ],
    )
