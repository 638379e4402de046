"""Backups | … phases: install the agent, its config, the units and the offsite access on every etcd member.

The last phases of a plan (`roles/plan.py`). Operator-side secrets: the backup SSH key lives in the state dir
(`backup/id_ed25519`, made once); S3 credentials are read from the operator's environment at apply time and written
to a 0600 EnvironmentFile on the members. Nothing secret is shown in a plan.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from backups import config
from inventory.model import Cluster, Host, S3Target, SSHTarget
from roles.engine.command import Command
from roles.engine.context import HostContext
from roles.engine.facts import CommandOutput, FactValues
from roles.engine.phase import Phase
from roles.engine.step import CommandStep, FileStep, PackagesStep, ServiceStep, Step
from roles.state import StateDir

AGENT_SOURCE = Path(__file__).with_name("agent.py")
SSH_KEY_STATE = "backup/id_ed25519"


def backup_ssh_key(state: StateDir, cluster_name: str) -> tuple[bytes, str]:
    """(OpenSSH private key, public key line) of the cluster's backup key, generated once in the state dir."""
    if not state.exists(SSH_KEY_STATE):
        key = Ed25519PrivateKey.generate()
        private = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
        state.write(SSH_KEY_STATE, private)
    private = state.read(SSH_KEY_STATE)
    loaded = serialization.load_ssh_private_key(private, password=None)
    public = loaded.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private, f"{public.decode()} keelson-backup@{cluster_name}"


def backup_host_known_hosts(cluster: Cluster) -> str:
    """known_hosts lines for every SSH target, from the operator's pinned known_hosts (never scanned off the wire)."""
    lines = []
    for target in cluster.backups.targets:
        if not isinstance(target, SSHTarget):
            continue
        address = config.ssh_target_address(cluster, target)
        names = [target.host, address]
        try:
            host = cluster.host(target.host)
            known_hosts = cluster.ssh_for(host).known_hosts
        except KeyError:
            known_hosts = str(Path(cluster.ssh.known_hosts or "~/.ssh/known_hosts").expanduser())
        try:
            text = Path(known_hosts).read_text(encoding="utf-8")
        except OSError:
            text = ""
        key = config.find_known_host(text, names)
        if key is None:
            raise config.BackupConfigError(
                f"backup host {target.host}: no host key in {known_hosts}",
                hint=f"check its fingerprint, then add it: ssh-keyscan -t ed25519 {address} >> {known_hosts}",
            )
        lines.append(config.KnownHost(address, target.port, key).line())
    return "".join(lines)


def _authorized_key_step(cluster: Cluster, target: SSHTarget) -> Step:
    """The backup key in `target.user`'s authorized_keys on an inventory backup host (appended, never rewritten)."""
    user = shlex.quote(target.user)
    home = f'"$(getent passwd {user} | cut -d: -f6)"'

    def line(ctx: HostContext) -> str:
        return backup_ssh_key(ctx.state, cluster.name)[1]

    def has_key(ctx: HostContext, facts: FactValues) -> bool:
        text, _ = facts.get(CommandOutput(f"authorized_keys:{target.user}", f"cat {home}/.ssh/authorized_keys"))
        return line(ctx) in text.splitlines()

    def add_key(ctx: HostContext, facts: FactValues) -> list[Command]:
        script = (
            f'set -e; h={home}; install -d -m 0700 -o {user} -g {user} "$h/.ssh"; '
            f"printf '%s\\n' {shlex.quote(line(ctx))} >> \"$h/.ssh/authorized_keys\"; "
            f'chown {user}:{user} "$h/.ssh/authorized_keys"; chmod 0600 "$h/.ssh/authorized_keys"; '
            f"mkdir -p {shlex.quote(target.path)}; chown {user}: {shlex.quote(target.path)}"
        )
        return [Command(script, description=f"authorize keelson's backup key for {target.user}")]

    return CommandStep(
        name=f"backups | authorize the backup key for {target.user}",
        needs=(CommandOutput(f"authorized_keys:{target.user}", f"cat {home}/.ssh/authorized_keys"),),
        satisfied=has_key,
        run=add_key,
    )


def _backup_hosts(cluster: Cluster) -> list[Host]:
    names = {t.host for t in cluster.backups.targets if isinstance(t, SSHTarget)}
    return [h for h in cluster.hosts if h.name in names or str(h.address) in names]


def _agent_steps(cluster: Cluster) -> list[Step]:
    has_s3 = any(isinstance(t, S3Target) for t in cluster.backups.targets)
    has_ssh = any(isinstance(t, SSHTarget) for t in cluster.backups.targets)
    steps: list[Step] = [PackagesStep(("python3", "python3-boto3") if has_s3 else ("python3",))]
    if has_ssh:
        steps += [
            PackagesStep(("openssh-client",)),
            FileStep(config.SSH_KEY_PATH, lambda ctx: backup_ssh_key(ctx.state, cluster.name)[0], 0o600, secret=True),
            FileStep(config.KNOWN_HOSTS_PATH, lambda ctx: backup_host_known_hosts(cluster), 0o644),
        ]
    steps += [
        FileStep(config.AGENT_PATH, AGENT_SOURCE.read_bytes(), 0o755),
        FileStep(config.CONFIG_PATH, lambda ctx: config.agent_config_json(cluster, ctx.host), 0o600),
        FileStep(config.ENV_PATH, lambda ctx: config.env_file(cluster), 0o600, secret=True),
        FileStep(f"{config.UNIT_DIR}/{config.SERVICE}", config.service_unit(cluster), daemon_reload=True),
        FileStep(f"{config.UNIT_DIR}/{config.TIMER}", config.timer_unit(cluster), daemon_reload=True),
        ServiceStep(config.TIMER, running=True, enabled=True),
    ]
    return steps


def _timer_off() -> Step:
    state = CommandOutput("backup-timer", f"systemctl is-enabled {config.TIMER}; systemctl is-active {config.TIMER}")
    return CommandStep(
        name="backups | timer disabled (backups.enabled: false)",
        needs=(state,),
        satisfied=lambda ctx, facts: not {"enabled", "active"} & set(facts.get(state)[0].split()),
        run=lambda ctx, facts: [Command(f"systemctl disable --now {config.TIMER}")],
    )


def phases(cluster: Cluster) -> list[Phase]:
    members = lambda c: c.etcd_members  # noqa: E731 - a host selector
    if not cluster.backups.enabled:
        return [Phase("backups | timer off", members, [_timer_off()])]
    out = []
    if any(isinstance(t, SSHTarget) for t in cluster.backups.targets) and _backup_hosts(cluster):
        steps = [_authorized_key_step(cluster, t) for t in cluster.backups.targets if isinstance(t, SSHTarget)]
        out.append(Phase("backups | backup host access", _backup_hosts, steps))
    out.append(Phase("backups | agent and timer", members, _agent_steps(cluster)))
    return out
