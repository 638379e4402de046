"""Files a lab writes: each host's identity in its overlay, its /etc/hosts, the ssh_config."""

from __future__ import annotations

import os
from pathlib import Path

from provision.lab.network import LabNetwork
from provision.lab.topology import LabHost

NETWORK_UNIT = """\
[Match]
Name=host0

[Network]
Address={address}/24
Gateway={gateway}
LinkLocalAddressing=no
IPv6AcceptRA=no
"""


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.chmod(tmp, mode)
    tmp.replace(path)


def hosts_file(hosts: list[LabHost], net: LabNetwork) -> str:
    lines = ["127.0.0.1 localhost", f"{net.vip.ip} lab-vip"]
    lines += [f"{h.address} {h.name}" for h in hosts]
    return "\n".join(lines) + "\n"


def resolv_conf(net: LabNetwork) -> str:
    """A lab host's resolver: the bridge's gateway. Nothing answers DNS there (lab hosts reach no network beyond the
    bridge; their names are in /etc/hosts): it is there because a resolver with no nameserver at all is what
    CoreDNS's `forward . /etc/resolv.conf` refuses to start with ("no valid upstream addresses"). Cluster names are
    answered by CoreDNS itself; names outside the cluster fail, as they would anyway."""
    return f"# keelson lab: no DNS beyond the cluster's (names are in /etc/hosts)\nnameserver {net.gateway}\n"


def write_identity(merged: Path, host: LabHost, hosts: list[LabHost], net: LabNetwork, pubkey: str) -> None:
    """Through the overlay's merged dir, so it lands in the host's own upper layer."""
    write_atomic(merged / "etc" / "hostname", host.name + "\n")
    write_atomic(merged / "etc" / "hosts", hosts_file(hosts, net))
    write_atomic(merged / "etc" / "resolv.conf", resolv_conf(net))
    unit = NETWORK_UNIT.format(address=host.address, gateway=net.gateway)
    write_atomic(merged / "etc" / "systemd" / "network" / "10-lab.network", unit)
    ssh_dir = merged / "root" / ".ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_atomic(ssh_dir / "authorized_keys", pubkey, mode=0o600)


def ssh_config(hosts: list[LabHost], key: Path, known_hosts: Path) -> str:
    out = [f"Host {h.name} {h.address}\n  HostName {h.address}\n" for h in hosts]
    out.append(
        "Host *\n  User root\n"
        f"  IdentityFile {key}\n  IdentitiesOnly yes\n  UserKnownHostsFile {known_hosts}\n"
        "  StrictHostKeyChecking yes\n  ConnectTimeout 5\n  LogLevel ERROR\n  BatchMode yes\n"
    )
    return "".join(out)
