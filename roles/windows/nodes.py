"""After the Windows joins: approve each Windows kubelet's serving certificate (checked against the inventory, as
roles/control_plane/nodes.py does for the Linux nodes, whose helpers this uses), then wait until every Windows node
is Ready. The kubectl calls go to the first initialised master; the Windows hosts are asked only whether their
serving certificate exists (PowerShell's Test-Path)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from inventory.model import OS, Cluster, Host
from roles.control_plane.cluster_ops import KUBECTL, ControlPlaneError, initialised_masters, masters, reads_kubeadm_done
from roles.control_plane.defaults import DEFAULTS as CONTROL_PLANE
from roles.control_plane.nodes import POLL_S, ServingCertPresent, approvable, pending_serving_csrs, ready_nodes
from roles.engine.command import Command
from roles.engine.context import HostContext, RunContext
from roles.engine.facts import Fact
from roles.engine.phase import CustomPhase, HostOutcome, facts_on
from roles.engine.transport import ConnectionPool, Transport
from roles.windows.defaults import DEFAULTS
from roles.windows.facts import psq


def windows_workers(cluster: Cluster) -> list[Host]:
    return [h for h in cluster.workers if h.os is OS.WINDOWS]


@dataclass(frozen=True)
class WindowsServingCertPresent(ServingCertPresent):
    """The Windows kubelet holds its serving certificate (PowerShell's Test-Path)."""

    def command(self) -> str:
        return f"if (Test-Path -LiteralPath {psq(DEFAULTS.serving_cert)} -PathType Leaf) {{ 'yes' }}"


class WindowsServingCertsAndReady(CustomPhase):
    title = "Windows workers | Kubelet serving certificates, nodes Ready"

    def hosts(self, cluster: Cluster) -> list[Host]:
        return windows_workers(cluster)

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (*facts_on(ctx, windows_workers, WindowsServingCertPresent()), *reads_kubeadm_done(ctx, masters))

    def _missing(self, cluster: Cluster, pool: ConnectionPool, *, fresh: bool = False) -> list[str]:
        have = pool.read_facts(windows_workers(cluster), lambda _: WindowsServingCertPresent(), fresh=fresh)
        return [n for n, present in have.items() if not present]

    def dry_run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, list[Command]]:
        approve = Command("kubectl certificate approve …", description="approve the kubelet serving certificate")
        return {name: [approve] for name in self._missing(rc.cluster, pool)}

    def run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, HostOutcome]:
        cluster = rc.cluster
        outcomes = {h.name: HostOutcome() for h in windows_workers(cluster)}
        masters = initialised_masters(cluster, pool)
        if not masters:
            raise ControlPlaneError("no master is initialised: cannot approve the Windows workers' certificates")
        api = pool.get(masters[0])
        allowed = {h.name: {h.name, str(rc.nodes.ip(h))} for h in windows_workers(cluster)}
        missing = set(self._missing(cluster, pool))
        approved: dict[str, list[str]] = {}
        deadline = time.monotonic() + CONTROL_PLANE.health_timeout_s
        while True:
            for csr in pending_serving_csrs(_kubectl(api, "get csr -o json")):
                if approvable(csr, allowed):
                    _kubectl(api, f"certificate approve {csr.name}")
                    approved.setdefault(csr.node, []).append(csr.name)
            if missing:
                missing = set(self._missing(cluster, pool, fresh=True))
            not_ready = set(allowed) - ready_nodes(_kubectl(api, "get nodes -o json"))
            if not missing and not not_ready:
                break
            if time.monotonic() > deadline:
                raise ControlPlaneError(
                    f"after {CONTROL_PLANE.health_timeout_s:.0f} s: Windows nodes not Ready: "
                    f"{sorted(not_ready) or 'none'}; no serving certificate: {sorted(missing) or 'none'}",
                    hint="kubectl describe node …; on the node: Get-Service kubelet, kube-proxy, containerd; "
                    "Get-ScheduledTask flanneld; C:\\var\\log\\flanneld.log",
                )
            time.sleep(POLL_S)
        for node, names in approved.items():
            command = Command(f"{KUBECTL} certificate approve {' '.join(names)}")
            outcomes[node] = HostOutcome(changed=True, commands=(command,))
        return outcomes


def _kubectl(api: Transport, args: str) -> str:
    return api.run(f"{KUBECTL} {args}", timeout=60).stdout
