"""Taking a worker out of the cluster when its resource is deleted (a host removed from the stack).

The hook runs `keelson remove`'s own plan (`roles.plans.remove.remove`: cordon, drain through evictions, delete the
node, reset the host when it answers) through the same runner as every plan. It needs a Kubernetes cluster: while
the stack runs no Kubernetes groups (`groups.KUBERNETES_PROVEN` off), there is no node to drain and the delete says
so, taking nothing off the host (the machine source removes the machine itself).
"""

from __future__ import annotations

from pathlib import Path

from inventory.errors import KeelsonError
from inventory.model import Cluster
from provision.cluster import groups
from roles.engine.context import RunContext


def remove_from_cluster(cluster: Cluster, hosts: list[str], state_dir: Path, *, kubernetes: bool | None = None) -> str:
    """Drain and remove `hosts`; a line saying what happened (or why nothing did). A failed removal raises: the
    resource stays, and the next `pulumi up`/`destroy` tries again."""
    if not (groups.KUBERNETES_PROVEN if kubernetes is None else kubernetes):
        return (
            f"{', '.join(hosts)}: this stack runs no Kubernetes groups, so there is no node to drain; "
            "the machine source removes the machine itself"
        )
    from roles.plans.remove import remove

    done = remove(RunContext(cluster, state_dir), hosts)
    if not done.ok:
        reports = [done.cluster_side, *([done.reset] if done.reset else [])]
        errors = "; ".join(e for r in reports for s in r.hosts.values() for e in s.errors)
        raise KeelsonError(f"{', '.join(hosts)}: removal from the cluster failed: {errors}")
    left = f" (not reset, not answering: {', '.join(sorted(done.unreachable))})" if done.unreachable else ""
    return f"{', '.join(hosts)}: drained and removed from the cluster{left}"
