"""Hosts addressed by DNS name on real lab hosts: SSH reaches them by name, the run discovers their node IPs, and
every file a role writes holds the same IPs the lab's IP inventory would have given.

The operator machine cannot resolve lab names, so each `keelson` process here runs in its own mount namespace
with a private /etc/hosts (`unshare -m` + a bind mount) that maps `<host>.<lab>.lab.test` to the lab addresses:
the system resolver does the DNS path for real, and nothing outside that process sees the names (nothing to undo).
m1 also carries `internal_address` (the inventory's own node IP); m2, m3 and w1 are discovered.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from backups.role import render as backup_render
from backups.role import steps as backup_steps
from backups.role.defaults import DEFAULTS as BACKUP
from inventory.loader import load_inventory
from provision.lab import Lab, fake_apiserver
from roles.etcd import commands
from roles.etcd.render import render_config
from roles.loadbalancer import render as lb
from roles.pki.store import SERVER, cert_path
from roles.state import StateDir

pytestmark = pytest.mark.lab

SCRIPT = Path(sys.executable).parent / "keelson"
# the roles that put node IPs into files (the Kubernetes roles also need a built artifact set: their own lab tests)
ONLY = ("--only", "prepare-hosts", "--only", "pki", "--only", "etcd", "--only", "load-balancer", "--only", "backups")
Event = dict[str, Any]  # one line of `--json` output


class Named:
    """The lab's cluster written twice: `by_ip` as the lab writes it (IP addresses), and in `inventory` with host
    names, which the test runs. Both have an SSH backup target (w1) and no control_plane.interface (each holder
    finds the NIC carrying its node IP)."""

    def __init__(self, lab: Lab, work: Path) -> None:
        self.lab = lab
        self.work = work
        self.state = work / "state"
        data = yaml.safe_load(lab.inventory_path.read_text())
        del data["control_plane"]["interface"]
        data["backups"] = {"targets": [{"kind": "ssh", "host": "w1", "path": "/var/backups/keelson"}]}
        (work / "by-ip.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        self.by_ip = load_inventory(work / "by-ip.yaml")
        resolved = ["127.0.0.1 localhost"]
        for host in data["hosts"]:
            name = self.fqdn(host["name"])
            resolved.append(f"{host['address']} {name}")
            if host["name"] == "m1":
                host["internal_address"] = host["address"]
            host["address"] = name
        keys = []  # the lab's pinned host keys, under the names (strict checking stays on)
        for line in Path(self.by_ip.ssh_for(self.by_ip.hosts[0]).known_hosts).read_text().splitlines():
            names, kind, key = line.split()
            keys.append(f"{self.fqdn(names.split(',')[0])} {kind} {key}\n")
        (work / "known_hosts").write_text("".join(keys))
        (work / "hosts").write_text("\n".join(resolved) + "\n")
        data["ssh"]["known_hosts"] = str(work / "known_hosts")
        self.inventory = work / "named.yaml"
        self.inventory.write_text(yaml.safe_dump(data, sort_keys=False))

    def fqdn(self, host: str) -> str:
        return f"{host}.{self.lab.name}.lab.test"

    def keelson(
        self, *args: str, resolve: bool = True
    ) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
        argv = [str(SCRIPT), *args, *ONLY, "-i", str(self.inventory), "--state-dir", str(self.state), "--json"]
        if resolve:
            script = f"mount --bind {shlex.quote(str(self.work / 'hosts'))} /etc/hosts && exec {shlex.join(argv)}"
            argv = ["unshare", "--mount", "sh", "-c", script]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
        events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
        return proc, events


def finished(events: list[Event]) -> Event:
    return next(e for e in events if e["event"] == "run_finished")


def changed(events: list[Event]) -> dict[str, int]:
    return {h: c["changed"] for h, c in finished(events)["hosts"].items() if c["changed"]}


@pytest.fixture(scope="module")
def named(lab_factory, tmp_path_factory) -> Named:
    lab: Lab = lab_factory("t-names", masters=3, workers=1)
    return Named(lab, tmp_path_factory.mktemp("named"))


def test_plan_apply_plan_by_host_names(named: Named) -> None:
    proc, events = named.keelson("plan")
    assert proc.returncode == 0, proc.stderr
    discover = [e for e in events if e["event"] == "phase_started" and e["phase"] == "Discover node IPs"]
    assert [e["hosts"] for e in discover] == [["m2", "m3", "w1"]]  # m1 has internal_address
    assert changed(events)  # a fresh lab: the plan has work on every host

    proc, events = named.keelson("apply")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert finished(events)["ok"]

    lab, by_ip, state = named.lab, named.by_ip, StateDir(named.state)
    for host in by_ip.etcd_members:
        assert lab.run(host.name, "cat /etc/etcd/etcd.conf.yml").stdout.encode() == render_config(by_ip, host)
        agent = lab.run(host.name, f"cat {BACKUP.config_path}").stdout
        assert agent == backup_render.agent_config_json(by_ip, host)
        pinned = lab.run(host.name, f"cat {BACKUP.known_hosts_path}").stdout
        assert pinned == backup_steps.backup_host_known_hosts(by_ip)  # w1's key, for the IP the agent dials
        assert lab.run(host.name, "cat /etc/haproxy/haproxy.cfg").stdout == lb.haproxy_cfg(by_ip)
        keepalived = lab.run(host.name, "cat /etc/keepalived/keepalived.conf").stdout
        assert keepalived == lb.keepalived_conf(by_ip, host, "host0", state)
        pem = state.read(cert_path(SERVER, host.name))
        sans = x509.load_pem_x509_certificate(pem).extensions.get_extension_for_class(x509.SubjectAlternativeName)
        assert host.address in sans.value.get_values_for_type(x509.IPAddress)
        assert named.fqdn(host.name) in sans.value.get_values_for_type(x509.DNSName)
    block = lab.run("w1", "sed -n '/^# BEGIN keelson/,/^# END keelson/p' /etc/hosts").stdout.splitlines()
    assert block[2:-1] == [f"{h.address} {h.name}" for h in by_ip.hosts]
    health = commands.endpoint_health_cmd(endpoints=commands.client_endpoints(by_ip), tls=commands.HEALTHCHECK_TLS)
    assert lab.run("m1", health).stdout.count('"health":true') == 3  # etcd over TLS on the discovered IPs

    proc, events = named.keelson("plan")
    assert proc.returncode == 0, proc.stderr
    assert changed(events) == {}  # dry-run → apply → dry-run: nothing left to do


def test_the_vip_holder_is_discovered_by_its_own_address(named: Named) -> None:
    """On the host holding the VIP the route to the VIP is `local` (via lo): discovery still reads the host's own
    address. A wrong IP would show as changed etcd, keepalived and haproxy files in this plan."""
    lab, by_ip = named.lab, named.by_ip
    for master in by_ip.masters:
        fake_apiserver.start(lab, master.name)  # keepalived elects a holder once its API check passes
    try:
        holder = wait_for_holder(lab, [m.name for m in by_ip.masters])
        route = lab.run(holder, f"ip -j route get {lab.vip}").stdout
        assert json.loads(route)[0]["type"] == "local"
        proc, events = named.keelson("plan")
        assert proc.returncode == 0, proc.stderr
        assert changed(events) == {}
    finally:
        for master in by_ip.masters:
            fake_apiserver.stop(lab, master.name)


def test_names_the_operator_cannot_resolve_stop_at_connect(named: Named) -> None:
    """Without the private /etc/hosts the names do not resolve: every host fails at Connect, named, no traceback."""
    proc, events = named.keelson("plan", resolve=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr
    failed = {e["host"]: e for e in events if e["event"] == "host_failed"}
    assert sorted(failed) == ["m1", "m2", "m3", "w1"] and {e["phase"] for e in failed.values()} == {"Connect"}
    for host, event in failed.items():
        assert f"cannot connect to {named.fqdn(host)}:22" in event["error"]


def wait_for_holder(lab: Lab, masters: list[str], deadline_s: float = 60) -> str:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        held = [m for m in masters if f" {lab.vip}/" in lab.run(m, "ip -o -4 addr show dev host0").stdout]
        if len(held) == 1:
            return held[0]
        time.sleep(0.2)
    raise TimeoutError(f"no single VIP holder among {masters} within {deadline_s} s")
