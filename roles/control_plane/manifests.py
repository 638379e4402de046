"""Kubernetes manifests applied from a master with server-side apply, each under a name, skipped when the cluster
already has what keelson last applied under that name (its sha256 is kept in the ConfigMap
kube-system/keelson-applied: one kubectl read per run tells every manifest's state, the same read that tells the nodes
phase what it waits on: `ClusterView`, roles/control_plane/nodes.py)."""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Callable, Sequence
from typing import Any

from inventory.model import Cluster, Host
from roles.control_plane.cluster_ops import KUBECTL, RECORD, initialised_masters, masters, reads_kubeadm_done
from roles.control_plane.nodes import ClusterView, view_master
from roles.engine.command import Command
from roles.engine.context import HostContext, RunContext
from roles.engine.errors import CommandFailed
from roles.engine.facts import Fact
from roles.engine.phase import CustomPhase, HostOutcome, facts_on
from roles.engine.transport import ConnectionPool

q = shlex.quote
FIELD_MANAGER = "keelson"


def apply_command(name: str, manifest: str) -> Command:
    digest = hashlib.sha256(manifest.encode()).hexdigest()
    patch = json.dumps({"data": {name: digest}})
    script = "\n".join(
        [
            "set -eo pipefail",  # the record is a pipeline: its first command failing counts too
            f"{KUBECTL} apply --server-side --force-conflicts --field-manager={FIELD_MANAGER} -f - "
            "<<'KEELSON_MANIFEST'",
            manifest.rstrip("\n"),
            "KEELSON_MANIFEST",
            f"{KUBECTL} -n kube-system create configmap {RECORD} --dry-run=client -o yaml | "
            f"{KUBECTL} apply --server-side --field-manager={FIELD_MANAGER}-record -f - >/dev/null",
            f"{KUBECTL} -n kube-system patch configmap {RECORD} --type merge -p {q(patch)} >/dev/null",
        ]
    )
    return Command(script, description=f"kubectl apply --server-side {name} ({digest[:12]})", summary_only=True)


class ApplyManifests(CustomPhase):
    """Apply `render(cluster)`'s manifests (name -> YAML) that differ from what was last applied."""

    def __init__(self, title: str, render: Callable[[Cluster], dict[str, str]]) -> None:
        self.title = title
        self.render = render

    def hosts(self, cluster: Cluster) -> list[Host]:
        return cluster.masters

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (*facts_on(ctx, view_master, ClusterView()), *reads_kubeadm_done(ctx, masters))

    def _todo(self, rc: RunContext, pool: ConnectionPool) -> tuple[Host | None, list[Command]]:
        ready = initialised_masters(rc.cluster, pool)
        if not ready:
            return None, [apply_command(n, m) for n, m in self.render(rc.cluster).items()]
        have = pool.read_fact(ready[-1], ClusterView()).applied  # view_master's choice, among the initialised
        todo = [
            apply_command(name, text)
            for name, text in self.render(rc.cluster).items()
            if have.get(name) != hashlib.sha256(text.encode()).hexdigest()
        ]
        return ready[0], todo

    def dry_run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, list[Command]]:
        master, todo = self._todo(rc, pool)
        return {(master or rc.cluster.masters[0]).name: todo} if todo else {}

    def run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, HostOutcome]:
        outcomes = {m.name: HostOutcome() for m in rc.cluster.masters}
        master, todo = self._todo(rc, pool)
        if not todo:
            return outcomes
        if master is None:
            raise CommandFailed(rc.cluster.masters[0].name, f"{self.title}: no master is initialised")
        for command in todo:
            result = pool.get(master).run(command.script, timeout=300)
            if result.rc != 0:
                raise CommandFailed(
                    master.name, f"`{command.shown()}` failed: {(result.stderr or result.stdout)[-800:]}"
                )
        outcomes[master.name] = HostOutcome(changed=True, commands=tuple(todo))
        return outcomes
