"""What keelson puts on each etcd member for the backup agent: its JSON config, the units, the env file, the backup
host's known_hosts line.

Pure functions of the inventory (and, for the env file, of the operator's environment); the steps turn them into
file steps. The paths are in `defaults.py`.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

from backups.role.defaults import DEFAULTS
from inventory.errors import KeelsonError
from inventory.model import Cluster, Host, S3Target, SSHTarget
from roles.engine.nodes import NodeIPs
from roles.etcd.commands import EtcdVersion, member_client_url
from roles.pki.defaults import DEFAULTS as PKI
from roles.templating import render


class BackupConfigError(KeelsonError):
    """The backups section cannot be turned into an agent config (missing credentials, unknown backup host key)."""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def target_id(target: S3Target | SSHTarget) -> str:
    """Stable and file-name safe: it names the status file on the hosts (`target-<id>.json`)."""
    if isinstance(target, S3Target):
        return _slug(f"s3-{target.bucket}-{target.prefix}")
    return _slug(f"ssh-{target.host}-{target.path}")


def target_display(target: S3Target | SSHTarget) -> str:
    if isinstance(target, S3Target):
        where = f"s3://{target.bucket}/{target.prefix.strip('/')}".rstrip("/")
        return f"{where} ({target.endpoint_url})" if target.endpoint_url else where
    return f"ssh {target.user}@{target.host}:{target.path}"


def ssh_target_address(cluster: Cluster, target: SSHTarget, nodes: NodeIPs | None = None) -> str:
    """An inventory host name resolves to its node IP (the masters reach it inside the cluster); anything else is
    used as given."""
    try:
        host = cluster.host(target.host)
    except KeyError:
        return target.host
    return str(NodeIPs.of(cluster, nodes).ip(host))


def agent_config(
    cluster: Cluster, member: Host, *, etcd_version: EtcdVersion | None = None, nodes: NodeIPs | None = None
) -> dict[str, object]:
    """The JSON the agent reads (no secrets in it: S3 keys travel in the env file). `nodes`: the run's node IPs."""
    status_tool = "auto" if etcd_version is None else ("etcdutl" if etcd_version.uses_etcdutl else "etcdctl")
    targets: list[dict[str, object]] = []
    for target in cluster.backups.targets:
        common = {"id": target_id(target), "kind": target.kind, "display": target_display(target)}
        if isinstance(target, S3Target):
            targets.append(
                {
                    **common,
                    "bucket": target.bucket,
                    "prefix": target.prefix,
                    "endpoint_url": target.endpoint_url,
                    "region": target.region,
                    "access_key_env": target.credentials_env[0],
                    "secret_key_env": target.credentials_env[1],
                }
            )
        else:
            targets.append(
                {
                    **common,
                    "host": ssh_target_address(cluster, target, nodes),
                    "port": target.port,
                    "user": target.user,
                    "path": target.path,
                    "identity": DEFAULTS.ssh_key_path,
                    "known_hosts": DEFAULTS.known_hosts_path,
                }
            )
    return {
        "cluster": cluster.name,
        "member": member.name,
        "retention": cluster.backups.retention,
        "local_dir": DEFAULTS.local_dir,
        "status_dir": DEFAULTS.status_dir,
        "etcd": {
            "endpoint": member_client_url(cluster, member, nodes),
            "endpoints": [member_client_url(cluster, h, nodes) for h in cluster.etcd_members],
            "cacert": PKI.backup_ca,
            "cert": PKI.backup_cert,
            "key": PKI.backup_key,
            "etcdctl": "etcdctl",
            "status_tool": status_tool,
        },
        "targets": targets,
    }


def agent_config_json(
    cluster: Cluster, member: Host, *, etcd_version: EtcdVersion | None = None, nodes: NodeIPs | None = None
) -> str:
    config = agent_config(cluster, member, etcd_version=etcd_version, nodes=nodes)
    return json.dumps(config, indent=1, sort_keys=True) + "\n"


def service_unit(cluster: Cluster) -> str:
    return render(
        __file__,
        "keelson-etcd-backup.service.j2",
        cluster=cluster.name,
        agent=DEFAULTS.agent_path,
        config=DEFAULTS.config_path,
        env_file=DEFAULTS.env_path,
    )


def timer_unit(cluster: Cluster) -> str:
    return render(
        __file__,
        "keelson-etcd-backup.timer.j2",
        cluster=cluster.name,
        schedule=cluster.backups.schedule,
        delay=DEFAULTS.randomized_delay_s,
    )


def s3_credential_vars(cluster: Cluster) -> list[str]:
    names: list[str] = []
    for target in cluster.backups.targets:
        if isinstance(target, S3Target):
            names += [n for n in target.credentials_env if n not in names]
    return names


def env_file(cluster: Cluster, environ: dict[str, str] | None = None) -> str:
    """`NAME=value` lines for the S3 credentials, taken from the operator's environment at apply time."""
    env = os.environ if environ is None else environ
    names = s3_credential_vars(cluster)
    missing = [n for n in names if not env.get(n)]
    if missing:
        raise BackupConfigError(
            f"S3 backup credentials not set: {', '.join(missing)}",
            hint="export them where you run keelson (their values go to the hosts in a 0600 file, never in logs)",
        )
    for name in names:
        if "\n" in env[name] or "'" in env[name]:
            raise BackupConfigError(f"{name}: the value holds a newline or a quote, which an EnvironmentFile cannot")
    return "".join(f"{n}='{env[n]}'\n" for n in names)


@dataclass(frozen=True)
class KnownHost:
    """The backup host's key as ssh's known_hosts wants it: `[addr]:port` unless port 22."""

    address: str
    port: int
    key: str  # "ssh-ed25519 AAAA…"

    def line(self) -> str:
        where = self.address if self.port == 22 else f"[{self.address}]:{self.port}"
        return f"{where} {self.key}\n"


def find_known_host(known_hosts_text: str, names: list[str]) -> str | None:
    """The first plain (unhashed) known_hosts key for one of `names` (ed25519 preferred)."""
    found: dict[str, str] = {}
    for raw in known_hosts_text.splitlines():
        parts = raw.split()
        if len(parts) < 3 or raw.startswith(("#", "|", "@")):
            continue
        hosts = {h.removeprefix("[").split("]:")[0] for h in parts[0].split(",")}
        if hosts & set(names):
            found.setdefault(parts[1], f"{parts[1]} {parts[2]}")
    return found.get("ssh-ed25519") or next(iter(found.values()), None)
