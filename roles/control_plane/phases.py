"""The "Control plane | …" phases, in order, for the apply plan (after etcd and the VIP; the workers: roles/worker)."""

from __future__ import annotations

from inventory.model import Cluster, Host
from roles.control_plane.cluster_ops import InitFirstMaster, JoinToken, readyz_wait
from roles.control_plane.defaults import DEFAULTS
from roles.control_plane.restart import ApiserverRestartOnChange
from roles.control_plane.steps import JoinStep, KubeadmConfigStep, apiserver_config_steps, node_ip
from roles.engine.context import HostContext
from roles.engine.errors import HostCheckFailed
from roles.engine.phase import AnyPhase, Phase, of_role
from roles.engine.transport import Transport


def masters(cluster: Cluster) -> list[Host]:
    return cluster.masters


def apiserver_healthy(ctx: HostContext, transport: Transport) -> None:
    """After a master joins: its own apiserver, then the API through the VIP, answer /readyz."""
    cluster = ctx.cluster
    for url in (
        f"https://{node_ip(ctx, ctx.host)}:{cluster.control_plane.apiserver_port}",
        f"https://{cluster.api_endpoint}",
    ):
        result = transport.run(readyz_wait(url, DEFAULTS.health_timeout_s), timeout=DEFAULTS.health_timeout_s + 30)
        if result.rc != 0:
            raise HostCheckFailed(ctx.host.name, result.stderr.strip()[-300:] or f"{url}/readyz not ok")


def phases(cluster: Cluster) -> list[AnyPhase]:
    return of_role(
        "control_plane",
        [
            JoinToken(),
            Phase(
                "Control plane | Configuration (apiserver hardening, kubeadm)",
                masters,
                [*apiserver_config_steps(cluster), KubeadmConfigStep("init"), KubeadmConfigStep("join-control-plane")],
            ),
            InitFirstMaster(),
            Phase(
                "Control plane | Join masters, restart changed apiservers (one at a time, healthy through the VIP)",
                masters,
                [JoinStep("master"), ApiserverRestartOnChange()],
                serial=True,
                gate=apiserver_healthy,
                gate_after_changes_only=True,
            ),
        ],
    )
