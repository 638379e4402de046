"""`keelson certs renew`: the control plane's kubeadm-managed certificates renewed on each master, one at a time.

On a master keelson initialised or joined, `kubeadm certs renew all` (with the master's own kubeadm configuration)
renews the apiserver's serving and client certificates, the front-proxy client and the kubeconfigs' client
certificates (admin, super-admin, controller-manager, scheduler), all signed by the cluster CA keelson keeps. With
an external etcd kubeadm leaves the etcd certificates alone: those are keelson's (`roles/pki`), and `keelson apply`
re-issues them ahead of expiry. The static pods read their certificates only when they start, so the apiserver,
controller-manager and scheduler containers are restarted after it (the kubelet starts new ones). The phase is
serial with the apiserver health gate: one master at a time, the next only when this one's apiserver and the API
through the VIP answer /readyz; each master refuses to start unless the API answers through the VIP right now.
The kubelets' own client certificates rotate by themselves (kubeadm turns rotation on).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from inventory.model import Cluster, Host
from roles.control_plane.defaults import DEFAULTS
from roles.control_plane.phases import apiserver_healthy
from roles.control_plane.restart import vip_answers
from roles.control_plane.steps import config_path
from roles.engine.command import Command
from roles.engine.context import HostContext
from roles.engine.facts import Fact, FactValues, FileInfo
from roles.engine.phase import Phase, of_role
from roles.engine.step import Step

q = shlex.quote
STATIC_PODS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
TITLE = "Certificates | renew the control plane's, one master at a time (healthy through the VIP)"


def restart_container(name: str, seconds: int) -> Command:
    """Stop the running `name` container and wait until the kubelet runs a new one (deadline `seconds`)."""
    running = f"crictl ps --name {q(f'^{name}$')} --state running -q 2>/dev/null | head -n1"
    late = q(f"the kubelet did not start a new {name} within {seconds} s")
    return Command(
        f'old=$({running}); [ -z "$old" ] || crictl stop --timeout 30 "$old" >/dev/null; '
        f"deadline=$(( $(date +%s) + {seconds} )); "
        f'until new=$({running}); [ -n "$new" ] && [ "$new" != "$old" ]; do '
        f'[ "$(date +%s)" -ge "$deadline" ] && {{ echo {late} >&2; exit 75; }}; sleep 1; done',
        description=f"restart {name} (the kubelet starts a new container, which reads the renewed certificates)",
    )


def renew_commands(api_endpoint: str, seconds: int) -> list[Command]:
    return [
        vip_answers(api_endpoint, "to renew this master's certificates"),
        Command(
            f"kubeadm certs renew all --config {q(config_path('init'))} >/dev/null",
            description="kubeadm certs renew all (apiserver, front-proxy client, kubeconfigs; the cluster CA signs)",
        ),
        *(restart_container(name, seconds) for name in STATIC_PODS),
    ]


@dataclass
class RenewStep(Step):
    """Always renews on a master that kubeadm set up: the user asked for it (a master not joined yet has nothing)."""

    name: str = "kubeadm | renew certificates, restart the control plane's static pods"

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (FileInfo(DEFAULTS.init_marker), FileInfo(DEFAULTS.join_marker))

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        if not (facts.get(FileInfo(DEFAULTS.init_marker)) or facts.get(FileInfo(DEFAULTS.join_marker))):
            return []
        return renew_commands(ctx.cluster.api_endpoint, DEFAULTS.restart_timeout_s)


def masters(cluster: Cluster) -> list[Host]:
    return cluster.masters


def phases(cluster: Cluster) -> list[Phase]:
    return of_role("control_plane", [Phase(TITLE, masters, [RenewStep()], serial=True, gate=apiserver_healthy)])
