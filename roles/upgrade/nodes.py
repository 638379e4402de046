"""One node at a time: drain, `kubeadm upgrade apply` (the first master) or `kubeadm upgrade node` (the others and
the workers) — a master's only once every other master's apiserver is ready — the node's binaries at the target and
its kubelet restarted, a health gate (the node Ready at the target version; a master's own apiserver ready without a
break for `settle_s`, since the new kubelet restarts the control plane's containers after it starts; the API through
the VIP and etcd healthy), uncordon.

A node whose host already says it is at the target (NodeUpgradeState) is skipped; one that still carries keelson's
annotation (a failed run left it cordoned) is health-gated and uncordoned. The first failure stops the phase with what
failed on which node; the runner then runs no later phase.

Cordon and uncordon are one merge patch each — `spec.unschedulable` and the annotation together, so a node is never
cordoned without the annotation that lets a rerun find it — retried until the API answers with the node as wanted, or
a deadline. Not `kubectl cordon`/`uncordon`: when their PATCH fails they print `error: unable to uncordon node` and
exit 0 (kubectl v0.37.2, pkg/cmd/drain/drain.go RunCordonOrUncordon: `printError(err); continue`, then `return nil`),
and the annotation was removed after that "success": the node stayed cordoned while the run went on to the next node,
and every rerun took it for a user's own cordon (what the upgrade drill once found on m1, right after its control plane
and kubelet restarted; tests/unit/test_upgrade_cordon.py reproduces it).
"""

from __future__ import annotations

import json
import secrets
import shlex
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from inventory.errors import KeelsonError
from inventory.model import OS, Cluster, Host
from provision.artifacts.sources import Resolver
from roles.control_plane.cluster_ops import apiserver_url, readyz_wait
from roles.control_plane.defaults import DEFAULTS as CP
from roles.engine import events as ev
from roles.engine.command import Command
from roles.engine.context import RunContext
from roles.engine.facts import FactValues
from roles.engine.phase import CustomPhase, HostOutcome
from roles.engine.runner import failed_command, host_script
from roles.engine.step import Step
from roles.engine.transport import ConnectionPool, Transport
from roles.etcd.health import check_once
from roles.kubernetes_node.facts import CgroupVersion
from roles.kubernetes_node.steps import node_artifacts
from roles.upgrade.steps import PinnedImagesStep
from roles.upgrade.versions import NodeState, NodeUpgradeState, Version

q = shlex.quote
ANNOTATION = "keelson.io/upgrade-cordoned"  # set before keelson drains a node, removed when it uncordons it
Group = Literal["first", "masters", "workers"]


class UpgradeStopped(KeelsonError):
    """A node's upgrade failed: the run stops there; a rerun skips the nodes already upgraded and resumes."""


@dataclass(frozen=True)
class UpgradeSpec:
    target: Version
    resolver: Resolver  # the target release's artifacts, from the inventory's source
    drain_timeout_s: int = 300
    health_timeout_s: float = CP.health_timeout_s
    kubeadm_timeout_s: int = 900
    # A master's own apiserver must answer /readyz at every poll for this long after its new kubelet started: the new
    # kubelet restarts the control plane's containers when it starts (the drill, v1.36.3 → v1.37.2: 7 s and 9 s after
    # `systemctl restart kubelet`), and a gate that passed on the old container let the next master go down with it.
    settle_s: int = 30
    # Before a master's control plane is restarted, every other master's /readyz says ok for this long.
    others_steady_s: int = 3


def linux_workers(cluster: Cluster) -> list[Host]:
    return [w for w in cluster.workers if w.os is OS.LINUX and w not in cluster.masters]


def kubectl(args: str) -> str:
    return f"{CP.kubectl} {args}"


# -- commands (pure) ------------------------------------------------------------------------------------------------


def patch_node_until(node: str, patch: dict[str, Any], unschedulable: bool, seconds: float) -> str:
    """Merge-patch `node` until the API answers with it (un)schedulable as wanted, or `seconds` pass (exit 75 with
    the last answer). `kubectl patch` exits non-zero when the API refuses the write, and prints the node as stored
    (stdout: only the field; the API's warnings and errors go to stderr, kept apart for the message)."""
    field = q("jsonpath={.spec.unschedulable}")
    patched = kubectl(f"patch node {q(node)} --type=merge -p {q(json.dumps(patch))} -o {field}")
    wanted = '[ "$got" = true ]' if unschedulable else '[ "$got" != true ]'
    late = q(f"{node} not {'cordoned' if unschedulable else 'uncordoned'} after {int(seconds)} s (last: ")
    return (
        f'err=$(mktemp); deadline=$(( $(date +%s) + {int(seconds)} )); until got=$({patched} 2>"$err") && {wanted}; do '
        f'[ "$(date +%s)" -ge "$deadline" ] && {{ echo {late}"$got $(tail -c 300 "$err"))" >&2; rm -f "$err"; '
        'exit 75; }; sleep 1; done; rm -f "$err"'
    )


def drain(node: str, target: Version, timeout_s: int, patch_s: float = 120) -> Command:
    cordon = {"metadata": {"annotations": {ANNOTATION: str(target)}}, "spec": {"unschedulable": True}}
    return Command(
        patch_node_until(node, cordon, True, patch_s)
        + " && "
        + kubectl(f"drain {q(node)} --ignore-daemonsets --delete-emptydir-data --timeout={timeout_s}s"),
        description=f"cordon and drain {node} (PodDisruptionBudgets respected, {timeout_s} s)",
    )


def uncordon(node: str, patch_s: float = 120) -> Command:
    patch = {"metadata": {"annotations": {ANNOTATION: None}}, "spec": {"unschedulable": None}}
    return Command(patch_node_until(node, patch, False, patch_s), description=f"uncordon {node}")


def kubeadm_upgrade(group: Group, target: Version, cgroup_v1: bool = False) -> Command:
    """Certificates stay as they are (renewing them is its own, health-gated job). On a cgroup v1 host kubeadm's
    SystemVerification fails from 1.35 on: skipped explicitly there, as keelson's kubeadm init configuration does."""
    flags = "--certificate-renewal=false" + (" --ignore-preflight-errors=SystemVerification" if cgroup_v1 else "")
    if group == "first":
        script = f"kubeadm upgrade apply {target} --yes {flags}"
        return Command(script, description=f"kubeadm upgrade apply {target} (control plane, cluster configuration)")
    return Command(f"kubeadm upgrade node {flags}", description="kubeadm upgrade node")


def restart_kubelet() -> Command:
    return Command("systemctl daemon-reload && systemctl restart kubelet", description="restart the kubelet")


def node_at_wait(node: str, target: Version, seconds: float) -> str:
    """Poll (on a master) until `node` is Ready and its kubelet reports `target`."""
    jsonpath = '{.status.nodeInfo.kubeletVersion} {.status.conditions[?(@.type=="Ready")].status}'
    read = kubectl(f"get node {q(node)} -o jsonpath={q(jsonpath)}")
    late = q(f"{node} not Ready at {target} after {int(seconds)} s (last: ")
    return (
        f"deadline=$(( $(date +%s) + {int(seconds)} )); "
        f'until got=$({read} 2>&1); [ "$got" = {q(f"{target} True")} ]; do '
        f'[ "$(date +%s)" -ge "$deadline" ] && {{ echo {late}"$got)" >&2; exit 75; }}; sleep 2; done'
    )


# -- reading the cluster (pure parsers) -----------------------------------------------------------------------------


def cordoned_by_us(nodes_json: str) -> dict[str, bool]:
    """`kubectl get nodes -o json` → {node: keelson's upgrade cordoned it and has not uncordoned it (its annotation
    is there)}. A cordon without the annotation is a user's own, left alone. An annotation on a schedulable node is an
    older keelson's half-done uncordon: uncordoning it again only removes the annotation."""
    try:
        items = json.loads(nodes_json).get("items") or []
    except (ValueError, AttributeError):
        return {}
    return {
        str((item.get("metadata") or {}).get("name")): ANNOTATION
        in ((item.get("metadata") or {}).get("annotations") or {})
        for item in items
    }


# -- running on hosts -----------------------------------------------------------------------------------------------


def execute(transport: Transport, host: Host, commands: list[Command], timeout: float) -> None:
    """Run `commands` on `host` as one script (uploads first), as the runner runs a phase's commands; the first
    failure raises UpgradeStopped naming the command and the tail of its output."""
    if not commands:
        return
    nonce = secrets.token_hex(6)
    uploads = {u.name: u.source for c in commands for u in c.uploads}
    script = host_script(commands, nonce)
    if uploads:
        folder = transport.send_files([(source, name) for name, source in uploads.items()])
        script = f"export KEELSON_UPLOADS={q(folder)}\n{script}"
    result = transport.run(script, timeout=timeout, private=any(c.sensitive for c in commands))
    if result.rc != 0:
        command, output = failed_command(result.stdout + result.stderr, commands, nonce)
        what = command.description or command.shown() if command else "the node's script"
        raise UpgradeStopped(f"{host.name}: {what} failed (exit {result.rc}): {output}")


def read_state(transport: Transport) -> NodeState:
    fact = NodeUpgradeState()
    result = transport.run(fact.command(), timeout=60)
    return fact.parse(result.stdout, result.rc)


class UpgradeNodes(CustomPhase):
    """One group of nodes, one at a time, each health-gated before the next starts."""

    TITLES: ClassVar[dict[str, str]] = {
        "first": "Upgrade | First master (kubeadm upgrade apply)",
        "masters": "Upgrade | Other masters (kubeadm upgrade node, one at a time)",
        "workers": "Upgrade | Workers (kubeadm upgrade node, one at a time)",
    }

    def __init__(self, spec: UpgradeSpec, group: Group) -> None:
        self.spec, self.group = spec, group
        self.title = self.TITLES[group]
        self.role = "upgrade"

    def hosts(self, cluster: Cluster) -> list[Host]:
        if self.group == "first":
            return cluster.masters[:1]
        return cluster.masters[1:] if self.group == "masters" else linux_workers(cluster)

    @property
    def master(self) -> bool:
        return self.group != "workers"

    def _admin(self, rc: RunContext, pool: ConnectionPool, host: Host) -> Transport:
        """Where kubectl runs (admin.conf, through the VIP): the master itself, or the first master for a worker."""
        return pool.get(host if self.master else rc.cluster.masters[0])

    def _cordoned(self, admin: Transport) -> dict[str, bool]:
        return cordoned_by_us(admin.run(kubectl("get nodes -o json"), timeout=60).stdout)

    def _images(self, rc: RunContext, transport: Transport, host: Host) -> list[Command]:
        """Right before kubeadm: the target's images there and pinned (the kubelet's GC may have removed some)."""
        if self.spec.resolver.artifacts.image_mode != "import":
            return []
        return self._check(rc, transport, host, PinnedImagesStep(self.spec.resolver))

    def _binaries(self, rc: RunContext, transport: Transport, host: Host) -> list[Command]:
        return self._check(rc, transport, host, node_artifacts(self.spec.resolver))

    @staticmethod
    def _check(rc: RunContext, transport: Transport, host: Host, step: Step) -> list[Command]:
        facts: dict[str, Any] = {}
        for fact in step.facts(rc.host_context(host)):
            result = transport.run(fact.command(), timeout=120)
            facts[fact.key] = fact.parse(result.stdout, result.rc)
        return step.check(rc.host_context(host), FactValues(facts))

    def _plan_node(self, rc: RunContext, pool: ConnectionPool, host: Host) -> tuple[NodeState, list[Command]]:
        """What `host` needs, from what its host says (commands before the kubelet binaries are known)."""
        transport = pool.get(host)
        state = read_state(transport)
        if state.done(self.spec.target, self.master):
            return state, []
        cgroup = CgroupVersion()
        cgroup_v1 = cgroup.parse(transport.run(cgroup.command(), timeout=60).stdout, 0).version == 1
        return state, [
            drain(host.name, self.spec.target, self.spec.drain_timeout_s),
            kubeadm_upgrade(self.group, self.spec.target, cgroup_v1),
        ]

    def dry_run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, list[Command]]:
        planned: dict[str, list[Command]] = {}
        for host in self.hosts(rc.cluster):
            _, commands = self._plan_node(rc, pool, host)
            if commands:
                binaries = self._binaries(rc, pool.get(host), host)
                planned[host.name] = [*commands, *binaries, restart_kubelet(), uncordon(host.name)]
            elif self._cordoned(self._admin(rc, pool, host)).get(host.name):
                planned[host.name] = [uncordon(host.name)]
        return planned

    def run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, HostOutcome]:
        outcomes: dict[str, HostOutcome] = {}
        for host in self.hosts(rc.cluster):
            try:
                outcomes[host.name] = self._upgrade(rc, pool, host)
            except KeelsonError as exc:
                outcomes[host.name] = HostOutcome(error=str(exc))
                break  # one node at a time: the first failure stops the upgrade here
        return outcomes

    def _say(self, rc: RunContext, host: Host, message: str) -> None:
        rc.events(ev.PlanNote("upgrade", f"{host.name}: {message}"))

    def _upgrade(self, rc: RunContext, pool: ConnectionPool, host: Host) -> HostOutcome:
        spec, transport = self.spec, pool.get(host)
        admin = self._admin(rc, pool, host)
        state, commands = self._plan_node(rc, pool, host)
        if not commands:
            if not self._cordoned(admin).get(host.name):
                return HostOutcome()
            # upgraded by a run that stopped before its uncordon: the same gate as then, before the node takes pods
            self._say(rc, host, f"already at {spec.target}, still cordoned by keelson: health gate, then uncordon")
            self._gate(rc, pool, host, admin)
            done = [uncordon(host.name)]
            execute(admin, host, done, timeout=180)
            self._say(rc, host, f"at {spec.target}, uncordoned")
            return HostOutcome(changed=True, commands=tuple(done))
        if state.kubeadm != spec.target:
            raise UpgradeStopped(
                f"{host.name}: kubeadm there is {state.kubeadm or 'missing'}, not {spec.target}",
                hint="the 'Upgrade | Stage' phase installs it: rerun keelson upgrade",
            )
        self._say(rc, host, f"{state.describe()} → {spec.target}: draining")
        ran: list[Command] = []

        def step(where: Transport, cmds: list[Command], timeout: float) -> None:
            execute(where, host, cmds, timeout)
            ran.extend(cmds)

        step(admin, [commands[0]], spec.drain_timeout_s + 180)
        if self.master:
            self._others_ready(rc, transport, host)
        self._say(rc, host, commands[1].description)
        step(transport, [*self._images(rc, transport, host), commands[1]], spec.kubeadm_timeout_s)
        binaries = self._binaries(rc, transport, host)
        self._say(rc, host, "kubelet and binaries at the target, kubelet restarted")
        step(transport, [*binaries, restart_kubelet()], 900)
        self._gate(rc, pool, host, admin)
        step(admin, [uncordon(host.name)], 180)
        self._say(rc, host, f"at {spec.target}, uncordoned")
        return HostOutcome(changed=True, commands=tuple(ran))

    def _others_ready(self, rc: RunContext, transport: Transport, host: Host) -> None:
        """Right before `host`'s control plane restarts: every other master's apiserver ready (asked from `host`), so
        that at no moment two are down — whatever a gate before saw, and however late a kubelet restarted one."""
        spec = self.spec
        for other in rc.cluster.masters:
            if other == host:
                continue
            result = transport.run(
                readyz_wait(apiserver_url(rc, other), spec.health_timeout_s, steady_s=spec.others_steady_s),
                timeout=spec.health_timeout_s + 60,
            )
            if result.rc != 0:
                raise UpgradeStopped(
                    f"{host.name}: not restarting its control plane while {other.name}'s apiserver is not ready: "
                    f"{(result.stderr or result.stdout).strip()[-400:]}",
                    hint=f"{host.name} stays cordoned; once {other.name} is healthy, rerun keelson upgrade (it resumes "
                    f"at {host.name})",
                )

    def _gate(self, rc: RunContext, pool: ConnectionPool, host: Host, admin: Transport) -> None:
        """The node Ready at the target; for a master then its own apiserver ready without a break for settle_s (its
        new kubelet may restart it), the API through the VIP, etcd healthy."""
        spec, cluster = self.spec, rc.cluster
        waits = [node_at_wait(host.name, spec.target, spec.health_timeout_s)]
        if self.master:
            own = apiserver_url(rc, host)
            waits.append(readyz_wait(own, spec.health_timeout_s + spec.settle_s, steady_s=spec.settle_s))
        waits.append(readyz_wait(f"https://{cluster.api_endpoint}", spec.health_timeout_s))
        for script in waits:
            result = admin.run(script, timeout=spec.health_timeout_s + spec.settle_s + 60)
            if result.rc != 0:
                raise UpgradeStopped(
                    f"{host.name}: health gate: {(result.stderr or result.stdout).strip()[-400:]}",
                    hint="the node stays cordoned; fix it and rerun keelson upgrade (it resumes at this node)",
                )
        if self.master:
            asker = pool.get(cluster.etcd_members[0]) if cluster.etcd_members else None
            if asker is not None:
                sick, last = check_once(cluster, asker, rc.nodes)
                if sick:
                    raise UpgradeStopped(f"{host.name}: health gate: etcd not healthy: {', '.join(sick)} {last}")
