"""The backups role's steps: the agent, its config and units on every etcd member, the backup host's access.

Operator-side secrets: the backup SSH key lives in the state dir
(`backup/id_ed25519`, made once); S3 credentials are read from the operator's environment at apply time and written
to a 0600 EnvironmentFile on the members. Nothing secret is shown in a plan, nor sent in a command line (the key and
the env file are secret FileSteps). An SSH backup host that is an inventory host gets its account, receiver, folder
and restricted key first (`backups/role/backup_host.py`).
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from backups.role import render
from backups.role.defaults import DEFAULTS
from inventory.model import Cluster, S3Target, SSHTarget
from roles.engine.command import Command
from roles.engine.facts import CommandOutput
from roles.engine.nodes import NodeIPs
from roles.engine.step import CommandStep, FileStep, PackagesStep, ServiceStep, Step
from roles.state import StateDir

AGENT_SOURCE = Path(__file__).parents[1] / "agent.py"


def backup_ssh_key(state: StateDir, cluster_name: str) -> tuple[bytes, str]:
    """(OpenSSH private key, public key line) of the cluster's backup key, generated once in the state dir."""
    if not state.exists(DEFAULTS.ssh_key_state):
        key = Ed25519PrivateKey.generate()
        private = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
        state.write(DEFAULTS.ssh_key_state, private)
    private = state.read(DEFAULTS.ssh_key_state)
    loaded = serialization.load_ssh_private_key(private, password=None)
    public = loaded.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private, f"{public.decode()} keelson-backup@{cluster_name}"


def backup_host_known_hosts(cluster: Cluster, nodes: NodeIPs | None = None) -> str:
    """known_hosts lines for every SSH target, from the operator's pinned known_hosts (never scanned off the wire).
    An inventory host's key is looked up under its name and SSH address, and written for its node IP (what the
    agent dials)."""
    lines = []
    for target in cluster.backups.targets:
        if not isinstance(target, SSHTarget):
            continue
        address = render.ssh_target_address(cluster, target, nodes)
        names = [target.host, address]
        try:
            host = cluster.host(target.host)
            known_hosts = cluster.ssh_for(host).known_hosts
            names.append(str(host.address))  # the operator pinned its key under the address keelson dials
        except KeyError:
            known_hosts = str(Path(cluster.ssh.known_hosts or "~/.ssh/known_hosts").expanduser())
        try:
            text = Path(known_hosts).read_text(encoding="utf-8")
        except OSError:
            text = ""
        key = render.find_known_host(text, names)
        if key is None:
            raise render.BackupConfigError(
                f"backup host {target.host}: no host key in {known_hosts}",
                hint=f"check its fingerprint, then add it: ssh-keyscan -t ed25519 {names[-1]} >> {known_hosts}",
            )
        lines.append(render.KnownHost(address, target.port, key).line())
    return "".join(lines)


def agent_steps(cluster: Cluster) -> list[Step]:
    has_s3 = any(isinstance(t, S3Target) for t in cluster.backups.targets)
    has_ssh = any(isinstance(t, SSHTarget) for t in cluster.backups.targets)
    steps: list[Step] = [PackagesStep(("python3", "python3-boto3") if has_s3 else ("python3",))]
    if has_ssh:
        steps += [
            PackagesStep(("openssh-client",)),
            FileStep(DEFAULTS.ssh_key_path, lambda ctx: backup_ssh_key(ctx.state, cluster.name)[0], 0o600, secret=True),
            FileStep(DEFAULTS.known_hosts_path, lambda ctx: backup_host_known_hosts(cluster, ctx.nodes), 0o644),
        ]
    steps += [
        FileStep(DEFAULTS.agent_path, AGENT_SOURCE.read_bytes(), 0o755),
        FileStep(DEFAULTS.config_path, lambda ctx: render.agent_config_json(cluster, ctx.host, nodes=ctx.nodes), 0o600),
        FileStep(DEFAULTS.env_path, lambda ctx: render.env_file(cluster), 0o600, secret=True),
        FileStep(f"{DEFAULTS.unit_dir}/{DEFAULTS.service}", render.service_unit(cluster), daemon_reload=True),
        FileStep(f"{DEFAULTS.unit_dir}/{DEFAULTS.timer}", render.timer_unit(cluster), daemon_reload=True),
        ServiceStep(DEFAULTS.timer, running=True, enabled=True),
    ]
    return steps


def timer_off() -> Step:
    timer = DEFAULTS.timer
    state = CommandOutput("backup-timer", f"systemctl is-enabled {timer}; systemctl is-active {timer}")
    return CommandStep(
        name="backups | timer disabled (backups.enabled: false)",
        needs=(state,),
        satisfied=lambda ctx, facts: not {"enabled", "active"} & set(facts.get(state)[0].split()),
        run=lambda ctx, facts: [Command(f"systemctl disable --now {DEFAULTS.timer}")],
    )
