"""The control plane's part of a restore (the plan: `roles/plans/restore.py`; the etcd part and the base class:
`backups/restore_phases.py`): stop the static pods before etcd goes back in time, start them again after, restart
every kubelet, and end only when the API answers through the VIP and every node is Ready in the restored cluster."""

from __future__ import annotations

import datetime as dt
import json
import time

from backups.restore_phases import RestorePhase, run_checked
from inventory.model import Cluster, Host
from roles.control_plane.cluster_ops import KUBECTL, apiserver_url, initialised_masters, linux_nodes, readyz_wait
from roles.control_plane.defaults import DEFAULTS as CONTROL_PLANE
from roles.control_plane.nodes import POLL_S, ready_nodes
from roles.engine.command import Command
from roles.engine.context import RunContext
from roles.engine.errors import CommandFailed
from roles.engine.parallel import each_host
from roles.engine.phase import HostOutcome
from roles.engine.transport import ConnectionPool


class _ControlPlaneManifests(RestorePhase):
    """The control plane's static pods stopped (manifests moved aside, containers gone) or started (moved back, the
    apiserver ready on the master's own address), on every master that has them."""

    stop: bool
    done: str  # what the script says when it moved the manifests

    def hosts(self, cluster: Cluster) -> list[Host]:
        return list(cluster.masters)  # not the etcd members: with `etcd.placement: dedicated` they are other hosts

    def _script(self) -> str:
        return self.spec.stop_control_plane_script() if self.stop else self.spec.start_control_plane_script()

    def _ready(self, rc: RunContext, host: Host) -> Command:
        url = apiserver_url(rc, host)
        return Command(readyz_wait(url, CONTROL_PLANE.health_timeout_s), description=f"wait for {url}/readyz")

    def dry_run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, list[Command]]:
        return {h.name: [Command(self._script())] for h in self.hosts(rc.cluster)}

    def run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, HostOutcome]:
        command = Command(self._script())

        def move(host: Host) -> HostOutcome:
            transport = pool.get(host)
            moved = run_checked(transport, command.script, "moving the control plane's manifests", timeout=300).strip()
            if moved != self.done:
                return HostOutcome()
            if self.stop:
                return HostOutcome(changed=True, commands=(command,))
            ready = self._ready(rc, host)
            wait_s = CONTROL_PLANE.health_timeout_s + 30
            run_checked(transport, ready.script, "waiting for the apiserver", timeout=wait_s)
            return HostOutcome(changed=True, commands=(command, ready))

        return each_host(self.hosts(rc.cluster), move, workers=rc.concurrency)


class StopControlPlane(_ControlPlaneManifests):
    title = "restore | Stop the control plane (static pods moved aside)"
    stop, done = True, "stopped"


class StartControlPlane(_ControlPlaneManifests):
    title = "restore | Start the control plane again"
    stop, done = False, "started"


class RestartKubelets(RestorePhase):
    """Every Linux node's kubelet restarted once the apiservers are back: it lists its pods again from the restored
    state (Kubernetes' restore procedure restarts the kubelets so that none acts on what it cached before)."""

    title = "restore | Restart the kubelet on every node"
    SCRIPT = "if systemctl cat kubelet >/dev/null 2>&1; then systemctl restart kubelet; echo restarted; fi"

    def hosts(self, cluster: Cluster) -> list[Host]:
        return linux_nodes(cluster)

    def dry_run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, list[Command]]:
        return {h.name: [Command(self.SCRIPT)] for h in self.hosts(rc.cluster)}

    def run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, HostOutcome]:
        command = Command(self.SCRIPT)

        def restart(host: Host) -> HostOutcome:
            done = run_checked(pool.get(host), command.script, "restarting the kubelet").strip() == "restarted"
            return HostOutcome(changed=done, commands=(command,) if done else ())

        return each_host(self.hosts(rc.cluster), restart, workers=rc.concurrency)


def renewed_since(out: str, since: dt.datetime) -> set[str]:
    """`kubectl -n kube-node-lease get leases -o json` -> the nodes whose kubelet renewed its lease at `since` or
    later (a restored lease holds the snapshot's time: only a kubelet talking to the restored API renews it)."""
    try:
        items = json.loads(out).get("items") or []
    except (ValueError, AttributeError):
        return set()
    fresh = set()
    for item in items:
        renewed = str((item.get("spec") or {}).get("renewTime") or "")
        try:
            when = dt.datetime.fromisoformat(renewed.replace("Z", "+00:00"))
        except ValueError:
            continue
        if when.tzinfo is not None and when >= since:
            fresh.add(str((item.get("metadata") or {}).get("name")))
    return fresh


class ClusterAnswers(RestorePhase):
    """The restore ends with a working cluster, not only a working etcd: the API answers through the VIP (the admin
    kubeconfig on a master points there) and every Linux node of the inventory is Ready with its kubelet renewing
    its lease in the restored cluster (a Ready condition alone could be the snapshot's)."""

    title = "restore | The API answers through the VIP, every node Ready"
    SEP = "@@KEELSON@@"

    @classmethod
    def _read(cls) -> Command:
        return Command(
            f"{KUBECTL} get --raw /readyz; echo; echo {cls.SEP}; {KUBECTL} get nodes -o json; echo {cls.SEP}; "
            f"{KUBECTL} -n kube-node-lease get leases -o json",
            description="kubectl through the VIP: /readyz, the nodes and their leases",
        )

    def hosts(self, cluster: Cluster) -> list[Host]:
        return list(cluster.masters)

    def dry_run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, list[Command]]:
        return {rc.cluster.masters[0].name: [self._read()]}

    def run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, HostOutcome]:
        outcomes = {m.name: HostOutcome() for m in rc.cluster.masters}
        masters = initialised_masters(rc.cluster, pool)
        if not masters:  # etcd without Kubernetes on it (yet): nothing to wait for
            return outcomes
        api, read = pool.get(masters[0]), self._read()
        since = dt.datetime.fromtimestamp(int(run_checked(api, "date -u +%s", "reading the clock").strip()), dt.UTC)
        wanted = {h.name for h in linux_nodes(rc.cluster)}
        deadline = time.monotonic() + CONTROL_PLANE.health_timeout_s
        while True:
            answered, nodes, leases = [*api.run(read.script, timeout=60).stdout.split(self.SEP), "", ""][:3]
            up = answered.strip() == "ok"
            behind = sorted(wanted - (ready_nodes(nodes) & renewed_since(leases, since))) if up else sorted(wanted)
            if up and not behind:
                break
            if time.monotonic() > deadline:
                what = f"not Ready in the restored cluster: {', '.join(behind)}" if up else "the API does not answer"
                raise CommandFailed(
                    masters[0].name,
                    f"etcd is restored, but {CONTROL_PLANE.health_timeout_s:.0f} s after the control plane came back "
                    f"{what} (through {rc.cluster.api_endpoint}); rerunning the same restore does not restore the "
                    "data again, it restarts the control plane and waits again",
                )
            time.sleep(POLL_S)
        outcomes[masters[0].name] = HostOutcome(commands=(read,))
        return outcomes
