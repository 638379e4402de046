"""A node leaving the cluster, done from a master with the admin kubeconfig (custom phases: they act on the cluster's
view of a node, which the node itself may no longer be there to give):

- cordon and drain through the eviction API, so PodDisruptionBudgets are respected (a drain a budget blocks fails
  after the timeout, naming the pod); `force` deletes the pods instead (`--disable-eviction`, budgets bypassed). Pods
  of a dead node never finish terminating: the drain stops waiting for a pod once its deletion is older than
  `skip_wait_s`, and the node's deletion lets the garbage collector remove them;
- the Node object deleted.

Both skip a node the cluster no longer has, so a rerun converges.
"""

from __future__ import annotations

import shlex
from collections.abc import Collection

from inventory.model import Cluster, Host
from roles.control_plane.cluster_ops import KUBECTL, ControlPlaneError, initialised_masters
from roles.engine.command import Command
from roles.engine.context import RunContext
from roles.engine.errors import CommandFailed
from roles.engine.phase import CustomPhase, HostOutcome
from roles.engine.transport import ConnectionPool, Transport

q = shlex.quote
DRAIN_TIMEOUT_S = 300
SKIP_WAIT_S = 20


def drain_command(node: str, *, force: bool) -> Command:
    flags = [
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        f"--timeout={DRAIN_TIMEOUT_S}s",
        f"--skip-wait-for-delete-timeout={SKIP_WAIT_S}",
    ]
    if force:
        flags += ["--disable-eviction", "--force"]
    return Command(
        f"{KUBECTL} cordon {q(node)} && {KUBECTL} drain {q(node)} {' '.join(flags)}",
        description=f"cordon and drain {node}"
        + (" (pods deleted, disruption budgets bypassed)" if force else " (evictions: disruption budgets respected)"),
    )


def delete_command(node: str) -> Command:
    return Command(f"{KUBECTL} delete node {q(node)} --ignore-not-found", description=f"delete node {node}")


def present_nodes(out: str) -> set[str]:
    """`kubectl get nodes -o name` → node names ('node/w2' → 'w2'); junk lines ignored."""
    return {line.strip().removeprefix("node/") for line in out.splitlines() if line.strip().startswith("node/")}


class _NodePhase(CustomPhase):
    def __init__(self, names: Collection[str], *, force: bool = False) -> None:
        self.names = tuple(names)
        self.force = force

    def hosts(self, cluster: Cluster) -> list[Host]:
        return [m for m in cluster.masters if m.name not in self.names]  # run from a master that stays

    def _api(self, rc: RunContext, pool: ConnectionPool) -> Transport:
        staying = [m for m in initialised_masters(rc.cluster, pool) if m.name not in self.names]
        if not staying:
            raise ControlPlaneError(
                "no initialised master answers: the cluster's side of the removal cannot be done",
                hint="keelson status -i INVENTORY; the masters must run before a node can be removed",
            )
        return pool.get(staying[0])

    def _present(self, api: Transport) -> set[str]:
        result = api.run(f"{KUBECTL} get nodes -o name", timeout=60)
        if result.rc != 0:
            raise CommandFailed(api.host, f"kubectl get nodes failed: {result.stderr.strip()[-300:]}")
        return present_nodes(result.stdout)

    def command(self, node: str) -> Command:
        raise NotImplementedError

    def dry_run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, list[Command]]:
        api = self._api(rc, pool)
        present = self._present(api)
        return {api.host: [self.command(n) for n in self.names if n in present]}

    def run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, HostOutcome]:
        """The commands run on the master that asks (the outcome is that master's: the node may be gone)."""
        api = self._api(rc, pool)
        present = self._present(api)
        outcomes = {m.name: HostOutcome() for m in self.hosts(rc.cluster)}
        done: list[Command] = []
        for node in [n for n in self.names if n in present]:
            command = self.command(node)
            result = api.run(command.script, timeout=DRAIN_TIMEOUT_S + 120)
            if result.rc != 0:
                tail = (result.stdout + result.stderr).strip()[-800:]
                hint = (
                    "\n  hint: pods that no controller owns are not evicted (nothing would recreate them): move "
                    "them yourself, or rerun with --force to delete them"
                    if "declare no controller" in tail and not self.force
                    else ""
                )
                outcomes[api.host] = HostOutcome(
                    commands=tuple(done), error=f"{command.description} failed (exit {result.rc}): {tail}{hint}"
                )
                return outcomes
            done.append(command)
        outcomes[api.host] = HostOutcome(changed=bool(done), commands=tuple(done))
        return outcomes


class DrainNodes(_NodePhase):
    title = "Remove | Cordon and drain (disruption budgets respected)"

    def command(self, node: str) -> Command:
        return drain_command(node, force=self.force)


class DeleteNodes(_NodePhase):
    title = "Remove | Delete the node"

    def command(self, node: str) -> Command:
        return delete_command(node)
