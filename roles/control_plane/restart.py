"""The apiserver reads its config files (authentication config, audit policy, encryption config — the files
`apiserver_config_steps` writes) only when it starts: a changed file is written, and the running apiserver keeps the
old one until it restarts. So, like etcd's restart on change (roles/etcd/steps.py), each master keeps a marker with
the digest of the files its apiserver was started with: `kubeadm init`/`join` write it, and a master whose marker
differs from the files the inventory asks for gets its apiserver container restarted (the kubelet starts a new one,
which reads the files again). The phase that holds the step is serial with a health gate (the local apiserver, then
the API through the VIP, answer /readyz), so one master at a time restarts, and the command itself refuses to start
unless the API through the VIP answers right now.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from roles.control_plane.defaults import DEFAULTS
from roles.control_plane.steps import config_path, files_digest, mark_started
from roles.engine.command import Command
from roles.engine.context import HostContext
from roles.engine.facts import Fact, FactValues, FileInfo, FileText
from roles.engine.step import Step

q = shlex.quote
CONTAINER = "kube-apiserver"


def vip_answers(api_endpoint: str, action: str) -> Command:
    """Refuse `action` (exit 75) unless the API through the VIP answers /readyz right now."""
    vip = q(f"https://{api_endpoint}/readyz")
    check = f"curl -fsS --max-time 3 --cacert {DEFAULTS.pki_dir}/ca.crt {vip} >/dev/null 2>&1"
    refusal = q(f"the API through the VIP does not answer: refusing {action}")
    return Command(
        f"{check} || {{ echo {refusal} >&2; exit 75; }}",
        description=f"the API through the VIP answers (else refuse {action})",
    )


def restart_commands(api_endpoint: str, seconds: int) -> list[Command]:
    """Refuse unless the API through the VIP answers; regenerate the apiserver's static pod manifest from this
    master's kubeadm configuration (`kubeadm init phase control-plane apiserver`: flags and volumes, e.g. audit or
    encryption switched on or off); if that changed nothing in it, stop the running container instead (the files it
    reads changed); wait until the kubelet runs a new one (a different container). The phase's gate then waits for
    /readyz here and through the VIP."""
    running = f"crictl ps --name '^{CONTAINER}$' --state running -q 2>/dev/null | head -n1"
    late = q(f"the kubelet did not start a new {CONTAINER} within {seconds} s")
    manifest = q(f"{DEFAULTS.manifests_dir}/kube-apiserver.yaml")
    regenerate = (
        f"before=$(sha256sum < {manifest} 2>/dev/null); "
        f"kubeadm init phase control-plane apiserver --config {q(config_path('init'))} >/dev/null || "
        "{ echo 'kubeadm could not write the apiserver manifest' >&2; exit 1; }; "
        f'[ "$(sha256sum < {manifest})" != "$before" ] || '
    )
    return [
        vip_answers(api_endpoint, "to restart this apiserver"),
        Command(
            f'old=$({running}); {regenerate}{{ [ -z "$old" ] || crictl stop --timeout 30 "$old" >/dev/null; }}; '
            f"deadline=$(( $(date +%s) + {seconds} )); "
            f'until new=$({running}); [ -n "$new" ] && [ "$new" != "$old" ]; do '
            f'[ "$(date +%s)" -ge "$deadline" ] && {{ echo {late} >&2; exit 75; }}; sleep 1; done',
            description=f"restart {CONTAINER} with its manifest regenerated (kubeadm) and its files read again",
        ),
    ]


def restart_due(joined: bool, marker: str | None, desired: str) -> bool:
    """The decision, pure: only a master whose apiserver runs (it joined) and was started with other files. A joined
    master with no marker (joined by an older keelson) is restarted once: what it read is unknown."""
    return joined and (marker or "").strip() != desired


@dataclass
class ApiserverRestartOnChange(Step):
    """Restart this master's apiserver when the config files it was started with differ from the inventory's."""

    name: str = "apiserver | restart on config change"

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (FileText(DEFAULTS.apiserver_marker), FileInfo(DEFAULTS.init_marker), FileInfo(DEFAULTS.join_marker))

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        joined = bool(facts.get(FileInfo(DEFAULTS.init_marker)) or facts.get(FileInfo(DEFAULTS.join_marker)))
        desired = files_digest(ctx)
        if not restart_due(joined, facts.get(FileText(DEFAULTS.apiserver_marker)), desired):
            return []
        return [*restart_commands(ctx.cluster.api_endpoint, DEFAULTS.restart_timeout_s), mark_started(desired)]
