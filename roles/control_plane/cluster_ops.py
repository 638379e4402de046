"""Cluster-level operations run from a master over SSH (kubeadm, kubectl with the admin kubeconfig), each a custom
phase: they decide from what several hosts say, not from one host's facts.

- the first master's `kubeadm init`, only when no master has ever been initialised (keelson's marker): a cluster
  whose first master was rebuilt is joined, never initialised twice;
- the join token, made fresh when a node is about to join and the token has too little time left;
- the apiserver health gate through the VIP.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from inventory.errors import KeelsonError
from inventory.model import Cluster, Host
from roles.control_plane.defaults import DEFAULTS
from roles.control_plane.steps import config_path, files_digest, mark_started
from roles.engine.command import Command
from roles.engine.context import HostContext, RunContext
from roles.engine.errors import CommandFailed
from roles.engine.facts import Fact
from roles.engine.phase import CustomPhase, HostOutcome, HostSelector, facts_on
from roles.engine.transport import ConnectionPool
from roles.pki import kubernetes as k8s_pki
from roles.state import StateDir

q = shlex.quote
INIT_MARKER = DEFAULTS.init_marker
JOIN_MARKER = DEFAULTS.join_marker
KUBECTL = DEFAULTS.kubectl
RECORD = "keelson-applied"  # kube-system's ConfigMap of what keelson applied (roles/control_plane/manifests.py)


class ControlPlaneError(KeelsonError):
    """The control plane could not be brought up as the inventory asks."""


@dataclass(frozen=True)
class KubeadmDone(Fact[bool]):
    """keelson's marker that `kubeadm init` or `kubeadm join` finished on the host."""

    @property
    def key(self) -> str:
        return "kubeadm-done"

    def command(self) -> str:
        return f"[ -f {INIT_MARKER} ] || [ -f {JOIN_MARKER} ] && echo yes; true"

    def parse(self, stdout: str, rc: int) -> bool:
        return stdout.strip() == "yes"


KUBEADM_DONE = KubeadmDone()


def kubeadm_done(pool: ConnectionPool, hosts: list[Host], *, fresh: bool = False) -> dict[str, bool]:
    return pool.read_facts(hosts, lambda _: KUBEADM_DONE, fresh=fresh)


def initialised_masters(cluster: Cluster, pool: ConnectionPool, *, fresh: bool = False) -> list[Host]:
    """Masters that keelson initialised or joined (their marker), in inventory order."""
    done = kubeadm_done(pool, cluster.masters, fresh=fresh)
    return [m for m in cluster.masters if done[m.name]]


def reads_kubeadm_done(ctx: HostContext, hosts: HostSelector) -> Sequence[Fact[Any]]:
    """A custom phase's `facts()` when it asks `hosts` whether kubeadm is done there."""
    return facts_on(ctx, hosts, KUBEADM_DONE)


def apiserver_url(rc: RunContext, host: Host) -> str:
    """`host`'s own apiserver, at its node IP (not through the VIP)."""
    return f"https://{rc.nodes.ip(host)}:{rc.cluster.control_plane.apiserver_port}"


def readyz_wait(url: str, seconds: float, steady_s: int = 0) -> str:
    """Poll the apiserver's /readyz at `url` (anonymous, CA-checked) every second until it says ok — and, with
    `steady_s`, has said ok at every poll for that many seconds (a failed poll starts the count again) — or time runs
    out (exit 75)."""
    check = f"curl -fsS --max-time 3 --cacert {DEFAULTS.pki_dir}/ca.crt {q(url + '/readyz')} >/dev/null 2>&1"
    if steady_s:
        late = q(f"{url}/readyz not ok for {steady_s} s without a break within {int(seconds)} s (last: ") + '"$last)"'
    else:
        late = q(f"{url}/readyz not ok after {int(seconds)} s")
    return (
        f"deadline=$(( $(date +%s) + {int(seconds)} )); since=; last=never; while :; do now=$(date +%s); "
        f'if {check}; then since=${{since:-$now}}; last="ok for $(( now - since )) s"; '
        f'[ $(( now - since )) -ge {int(steady_s)} ] && break; else since=; last="failed at $now"; fi; '
        f'[ "$now" -ge "$deadline" ] && {{ echo {late} >&2; exit 75; }}; sleep 1; done'
    )


def init_command() -> Command:
    reset = f"[ -f {DEFAULTS.manifests_dir}/kube-apiserver.yaml ] && kubeadm reset -f >/dev/null 2>&1; "
    return Command(
        f"{reset}kubeadm init --config {q(config_path('init'))} --skip-token-print && touch {INIT_MARKER}",
        description="kubeadm init (the first master; an interrupted earlier init is reset first)",
    )


def init_commands(rc: RunContext, first: Host) -> list[Command]:
    """kubeadm init, then the note of the config files its apiserver started with (roles/control_plane/restart.py)."""
    return [init_command(), mark_started(files_digest(rc.host_context(first)))]


class InitFirstMaster(CustomPhase):
    title = "Control plane | First master (kubeadm init)"

    def hosts(self, cluster: Cluster) -> list[Host]:
        return cluster.masters

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return reads_kubeadm_done(ctx, masters)

    def dry_run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, list[Command]]:
        if initialised_masters(rc.cluster, pool):
            return {}
        return {rc.cluster.masters[0].name: init_commands(rc, rc.cluster.masters[0])}

    def run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, HostOutcome]:
        cluster = rc.cluster
        outcomes = {m.name: HostOutcome() for m in cluster.masters}
        if initialised_masters(cluster, pool):
            return outcomes
        first = cluster.masters[0]
        command, note = init_commands(rc, first)
        transport = pool.get(first)
        result = transport.run(command.script, timeout=DEFAULTS.join_timeout_s)
        if result.rc != 0:
            tail = (result.stdout + result.stderr).strip()[-1500:]
            raise CommandFailed(first.name, f"kubeadm init failed (exit {result.rc}):\n{tail}")
        transport.run(note.script, timeout=60, check=True)
        wait = readyz_wait(apiserver_url(rc, first), DEFAULTS.health_timeout_s)
        gate = transport.run(wait, timeout=DEFAULTS.health_timeout_s + 30)
        if gate.rc != 0:
            raise CommandFailed(first.name, gate.stderr.strip()[-400:])
        outcomes[first.name] = HostOutcome(changed=True, commands=(command, note))
        return outcomes


def parse_tokens(out: str) -> dict[str, dt.datetime | None]:
    """`kubeadm token list -o json` (one JSON object per token, concatenated) -> {token: expiry or None}."""
    tokens: dict[str, dt.datetime | None] = {}
    decoder = json.JSONDecoder()
    text, i = out.strip(), 0
    while i < len(text):
        try:
            obj, end = decoder.raw_decode(text, i)
        except ValueError:
            break
        i = end
        while i < len(text) and text[i].isspace():
            i += 1
        if isinstance(obj, dict) and isinstance(obj.get("token"), str):
            expires = obj.get("expires")
            when = None
            if isinstance(expires, str):
                try:
                    when = dt.datetime.fromisoformat(expires.replace("Z", "+00:00"))
                except ValueError:
                    when = None
            tokens[obj["token"]] = when
    return tokens


def token_fresh(tokens: dict[str, dt.datetime | None], token: str, now: dt.datetime) -> bool:
    if token not in tokens:
        return False
    expires = tokens[token]
    return expires is None or expires - now >= dt.timedelta(hours=DEFAULTS.token_min_left_hours)


def masters(cluster: Cluster) -> list[Host]:
    return cluster.masters


def linux_nodes(cluster: Cluster) -> list[Host]:
    return cluster.masters + [w for w in cluster.workers if w.os.value == "linux"]


def nodes_to_join(cluster: Cluster, pool: ConnectionPool) -> list[Host]:
    nodes = linux_nodes(cluster)
    done = kubeadm_done(pool, nodes)
    return [n for n in nodes if not done[n.name]]


class JoinToken(CustomPhase):
    """Before any node joins a running cluster: the state's token exists there with at least a couple of hours left
    (bootstrap tokens live 24 h); otherwise a new one is made, stored and created on a master."""

    title = "Control plane | Join token"

    def hosts(self, cluster: Cluster) -> list[Host]:
        return cluster.masters

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return reads_kubeadm_done(ctx, linux_nodes)

    def _needed(self, rc: RunContext, pool: ConnectionPool) -> tuple[Host, bool] | None:
        ready = initialised_masters(rc.cluster, pool)
        if not ready or not nodes_to_join(rc.cluster, pool):
            return None
        out = pool.get(ready[0]).run("kubeadm token list -o json 2>/dev/null", timeout=60).stdout
        fresh = token_fresh(parse_tokens(out), k8s_pki.bootstrap_token(StateDir(rc.state_dir)), dt.datetime.now(dt.UTC))
        return ready[0], fresh

    @staticmethod
    def _create(token: str) -> Command:
        return Command(
            f"kubeadm token create {q(token)} --ttl {DEFAULTS.token_ttl_hours}h0m0s >/dev/null",
            secrets=(token,),
            description="kubeadm token create (a fresh join token, 24 h)",
        )

    def dry_run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, list[Command]]:
        needed = self._needed(rc, pool)
        if needed is None or needed[1]:
            return {}
        return {needed[0].name: [self._create("<new token>")]}

    def run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, HostOutcome]:
        outcomes = {m.name: HostOutcome() for m in rc.cluster.masters}
        needed = self._needed(rc, pool)
        if needed is None or needed[1]:
            return outcomes
        master = needed[0]
        token = k8s_pki.rotate_bootstrap_token(StateDir(rc.state_dir))
        command = self._create(token)
        pool.get(master).run(command.script, timeout=60, check=True)
        outcomes[master.name] = HostOutcome(changed=True, commands=(command,))
        return outcomes
