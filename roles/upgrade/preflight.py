"""Before an upgrade touches anything: every node's version read from its host and checked against the skew rules,
every node Ready, etcd healthy, the target's artifacts present (local set) or resolvable (mirror, upstream), then a
backup taken and verified by the backup agent (etcd `snapshot status` and the file's sha256) when a node still needs
the upgrade. Any refusal stops the plan before the first node is drained."""

from __future__ import annotations

import json
from dataclasses import dataclass

from backups.operations import BackupNowResult, Members, run_now
from inventory.errors import KeelsonError
from inventory.model import Cluster, Host
from roles.engine import events as ev
from roles.engine.command import Command
from roles.engine.context import RunContext
from roles.engine.parallel import on_hosts
from roles.engine.phase import CustomPhase, HostOutcome
from roles.engine.transport import ConnectionPool
from roles.etcd.health import check_once
from roles.upgrade.nodes import UpgradeSpec, kubectl, linux_workers, read_state
from roles.upgrade.versions import NodeState, Version, skew_problems


class UpgradeRefused(KeelsonError):
    """The preflight found a reason not to start (nothing was changed)."""

    exit_code = 2


@dataclass(frozen=True)
class Options:
    backup: bool = True  # take and verify an etcd backup first (`--without-backup` turns it off)


def node_hosts(cluster: Cluster) -> list[Host]:
    return [*cluster.masters, *linux_workers(cluster)]


def not_ready(nodes_json: str, names: list[str]) -> list[str]:
    """`kubectl get nodes -o json` → which of `names` are missing or not Ready. Pure."""
    try:
        items = json.loads(nodes_json).get("items") or []
    except (ValueError, AttributeError):
        return list(names)
    ready = {
        str((i.get("metadata") or {}).get("name"))
        for i in items
        if any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (i.get("status") or {}).get("conditions") or []
        )
    }
    return [n for n in names if n not in ready]


PRESSURE = ("DiskPressure", "MemoryPressure", "PIDPressure")


def under_pressure(nodes_json: str) -> dict[str, list[str]]:
    """`kubectl get nodes -o json` → {node: its pressure conditions that are True}. Pure. A node under pressure is
    tainted NoSchedule: drained pods and kubeadm's own upgrade health check (a Job) could not be scheduled there."""
    try:
        items = json.loads(nodes_json).get("items") or []
    except (ValueError, AttributeError):
        return {}
    out = {}
    for item in items:
        conditions = (item.get("status") or {}).get("conditions") or []
        bad = [str(c.get("type")) for c in conditions if c.get("type") in PRESSURE and c.get("status") == "True"]
        if bad:
            out[str((item.get("metadata") or {}).get("name"))] = bad
    return out


class Preflight(CustomPhase):
    title = "Upgrade | Preflight (versions and skew, nodes Ready, etcd healthy, target artifacts, backup)"
    role = "upgrade"

    def __init__(self, spec: UpgradeSpec, options: Options) -> None:
        self.spec, self.options = spec, options

    def hosts(self, cluster: Cluster) -> list[Host]:
        return node_hosts(cluster)

    def _check(self, rc: RunContext, pool: ConnectionPool) -> dict[str, NodeState]:
        cluster, target = rc.cluster, self.spec.target
        hosts = node_hosts(cluster)
        states = on_hosts(hosts, lambda h: read_state(pool.get(h)))
        unreachable = {n: str(s) for n, s in states.items() if isinstance(s, KeelsonError)}
        if unreachable:
            raise UpgradeRefused("cannot read every node: " + "; ".join(f"{n}: {e}" for n, e in unreachable.items()))
        found = {n: s for n, s in states.items() if isinstance(s, NodeState)}
        missing = sorted(n for n, s in found.items() if s.kubelet is None)
        if missing:
            raise UpgradeRefused(
                f"no kubelet on {', '.join(missing)}: not a Kubernetes node yet",
                hint="keelson apply brings new nodes up at the inventory's version; upgrade the others first",
            )
        # a node's version is what its kubelet runs now (the installed one, or an older one still running)
        current: dict[str, Version] = {}
        for name, state in found.items():
            running = state.kubelet if not state.kubelet_stale else self._running(state)
            if running is not None:
                current[name] = running
        problems = skew_problems(current, target)
        if problems:
            raise UpgradeRefused("cannot upgrade to " + str(target) + ": " + "; ".join(problems))
        nodes = pool.get(cluster.masters[0]).run(kubectl("get nodes -o json"), timeout=60)
        if nodes.rc != 0:
            raise UpgradeRefused(
                f"the API does not answer through the VIP: {(nodes.stderr or nodes.stdout).strip()[-300:]}"
            )
        down = not_ready(nodes.stdout, [h.name for h in hosts])
        if down:
            raise UpgradeRefused(
                f"not Ready: {', '.join(down)}",
                hint="an upgrade starts from a healthy cluster (keelson status shows what is wrong)",
            )
        pressed = under_pressure(nodes.stdout)
        if pressed:
            raise UpgradeRefused(
                "nodes under pressure: " + "; ".join(f"{n} ({', '.join(c)})" for n, c in sorted(pressed.items())),
                hint="they are tainted NoSchedule: drained pods and kubeadm's upgrade health check (a Job) would not "
                "be scheduled; free disk or memory first (the kubelet's eviction thresholds)",
            )
        if cluster.etcd_members:
            sick, last = check_once(cluster, pool.get(cluster.etcd_members[0]), rc.nodes)
            if sick:
                raise UpgradeRefused(f"etcd is not healthy: {', '.join(sick)} {last}".strip())
        self._artifacts()
        return found

    @staticmethod
    def _running(state: NodeState) -> Version | None:
        """The version of a kubelet whose binary was replaced under it: the control plane's, else unknown."""
        tags = {v for v in state.manifests.values() if v is not None}
        return min(tags) if tags else None

    def _artifacts(self) -> None:
        resolver, target = self.spec.resolver, self.spec.target
        try:
            for name in ("kubeadm", "kubelet", "kubectl"):
                resolver.binary(name)
            if resolver.artifacts.image_mode == "import":
                images = resolver.image_digests()
                wanted = resolver.release.control_plane_image("kube-apiserver")
                if wanted not in images:
                    raise UpgradeRefused(f"the target's images do not include {wanted}")
        except UpgradeRefused:
            raise
        except KeelsonError as exc:
            raise UpgradeRefused(f"the artifacts of {target} are not available: {exc}") from None
        if resolver.artifacts.source == "local":
            from provision.artifacts.manifest import Manifest

            built = Manifest.load(resolver.local_set()).kubernetes
            if built != str(target):
                raise UpgradeRefused(
                    f"kubernetes.artifacts.local is a set of {built}, not {target}",
                    hint="point it at the target's set, or remove it to use the built set of kubernetes.version",
                )

    def _backup(self, rc: RunContext, pool: ConnectionPool) -> BackupNowResult:
        cluster = rc.cluster
        members = Members(list(cluster.etcd_members), {h.name: pool.get(h) for h in cluster.etcd_members}, {})
        result = run_now(members)
        if not result.ok:
            raise UpgradeRefused(
                "the backup before the upgrade failed:\n" + result.describe(),
                hint="fix the backup (keelson backup now shows it), or pass --without-backup",
            )
        return result

    def dry_run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, list[Command]]:
        states = self._check(rc, pool)
        pending = [
            n for n, s in states.items() if not s.done(self.spec.target, n in {m.name for m in rc.cluster.masters})
        ]
        if not pending or not self.options.backup:
            return {}
        return {rc.cluster.etcd_members[0].name: [Command("backup now", description="etcd backup (verified)")]}

    def run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, HostOutcome]:
        cluster, target = rc.cluster, self.spec.target
        try:
            states = self._check(rc, pool)
        except KeelsonError as exc:  # said once, on the first master, not once per node
            return {cluster.masters[0].name: HostOutcome(error=str(exc))}
        masters = {m.name for m in cluster.masters}
        pending = [n for n, s in states.items() if not s.done(target, n in masters)]
        outcomes = {h.name: HostOutcome() for h in node_hosts(cluster)}
        if not pending:
            rc.events(ev.PlanNote("upgrade", f"every node already runs {target}"))
            return outcomes
        rc.events(
            ev.PlanNote(
                "upgrade", f"to {target}: {', '.join(pending)} " + ("need" if len(pending) > 1 else "needs") + " it"
            )
        )
        if self.options.backup:
            result = self._backup(rc, pool)
            taker = result.taken_by[0]
            run = result.runs[taker]
            rc.events(
                ev.PlanNote(
                    "upgrade",
                    f"backup taken and verified first: {taker} {run.get('snapshot')} (revision {run.get('revision')}, "
                    f"{run.get('total_keys')} keys)",
                )
            )
            outcomes[taker] = HostOutcome(changed=True, commands=(Command("backup now", description="etcd backup"),))
        else:
            rc.events(ev.PlanNote("upgrade", "no backup taken (--without-backup)"))
        return outcomes
