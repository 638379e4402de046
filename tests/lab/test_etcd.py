"""External etcd with TLS on real lab hosts (etcd 3.4 from Debian bookworm): 3 and 5 members healthy over TLS,
clients without a certificate refused, a rerun changes nothing, a hard-killed member rejoins by itself, a changed
certificate restarts only its member, and a state dir with another CA is refused before anything is issued."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from inventory.loader import load_inventory
from inventory.model import Cluster
from provision.lab import Lab, faults
from roles import etcd, pki
from roles.engine.context import RunContext
from roles.engine.phase import AnyPhase
from roles.engine.runner import RunReport, run_plan
from roles.etcd.commands import HEALTHCHECK_TLS, client_endpoints, endpoint_health_cmd, etcdctl

pytestmark = pytest.mark.lab

CA = "/etc/etcd/pki/ca.crt"


def plan(cluster: Cluster) -> list[AnyPhase]:
    return [*pki.phases(cluster), *etcd.phases(cluster)]


def run(cluster: Cluster, state: Path, *, dry_run: bool = False) -> RunReport:
    return run_plan(plan(cluster), RunContext(cluster, state, dry_run=dry_run))


def healthy_members(lab: Lab, cluster: Cluster, via: str = "m1") -> list[str]:
    cmd = endpoint_health_cmd(endpoints=client_endpoints(cluster), tls=HEALTHCHECK_TLS)
    out = lab.run(via, cmd, check=False).stdout
    start = out.find("[")
    if start < 0:
        return []
    return sorted(e["endpoint"] for e in json.loads(out[start:]) if e.get("health") is True)


def wait_all_healthy(lab: Lab, cluster: Cluster, via: str = "m1", timeout: float = 90) -> None:
    want = sorted(client_endpoints(cluster).split(","))
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        seen = healthy_members(lab, cluster, via)
        if seen == want:
            return
        time.sleep(0.5)
    raise AssertionError(f"not all members healthy after {timeout} s: {seen}")


def start_times(lab: Lab, cluster: Cluster) -> dict[str, str]:
    return {
        h.name: lab.run(h.name, "systemctl show etcd.service -p ExecMainStartTimestampMonotonic --value").stdout.strip()
        for h in cluster.etcd_members
    }


@pytest.fixture(scope="module")
def lab3(lab_factory) -> Lab:
    lab: Lab = lab_factory("etcd-t3", masters=3, workers=0)
    return lab


@pytest.fixture(scope="module")
def applied3(lab3: Lab, tmp_path_factory: pytest.TempPathFactory) -> tuple[Cluster, Path]:
    cluster = load_inventory(lab3.inventory_path)
    state = tmp_path_factory.mktemp("etcd-state") / cluster.name
    report = run(cluster, state)
    assert report.ok, {h: s.errors for h, s in report.hosts.items()}
    return cluster, state


def test_three_members_healthy_over_tls(lab3: Lab, applied3) -> None:
    cluster, _ = applied3
    assert healthy_members(lab3, cluster) == sorted(client_endpoints(cluster).split(","))
    members = lab3.run("m2", etcdctl(["member", "list", "-w", "json"], endpoints="https://127.0.0.1:2379",
                                     tls=HEALTHCHECK_TLS)).stdout  # fmt: skip
    listed = json.loads(members)["members"]
    assert sorted(m["name"] for m in listed) == ["m1", "m2", "m3"]
    assert all(u.startswith("https://") for m in listed for u in m["peerURLs"] + m["clientURLs"])
    unit = lab3.run("m1", "systemctl cat etcd.service; systemctl is-enabled etcd.service").stdout
    for line in ("After=network-online.target", "Wants=network-online.target", "Restart=on-failure", "RestartSec=2"):
        assert line in unit
    assert unit.strip().endswith("enabled")
    keys = lab3.run("m1", "stat -c '%U %a' /etc/etcd/pki/server.key /etc/etcd/pki/peer.key "
                    "/etc/keelson/backup/etcd-client.key "
                    "/etc/kubernetes/pki/apiserver-etcd-client.key").stdout  # fmt: skip
    assert keys.split("\n")[:4] == ["etcd 600", "etcd 600", "root 600", "root 600"]


def test_client_without_certificate_is_refused(lab3: Lab, applied3) -> None:
    ip = lab3.host("m2").address
    bare = lab3.run("m1", f"curl -sS --max-time 5 --cacert {CA} https://{ip}:2379/health", check=False)
    assert bare.returncode != 0
    assert "health" not in bare.stdout
    plain = lab3.run("m1", f"curl -sS --max-time 5 http://{ip}:2379/health", check=False)
    assert "health" not in plain.stdout
    good = lab3.run("m1", f"curl -sS --max-time 5 --cacert {CA} --cert {HEALTHCHECK_TLS.cert} "
                    f"--key {HEALTHCHECK_TLS.key} https://{ip}:2379/health")  # fmt: skip
    assert json.loads(good.stdout)["health"] == "true"
    no_cert = lab3.run("m1", f"ETCDCTL_API=3 etcdctl --endpoints=https://{ip}:2379 --cacert={CA} "
                       "--dial-timeout=2s --command-timeout=4s endpoint health", check=False)  # fmt: skip
    assert no_cert.returncode != 0
    # the backup agent's client certificate is accepted
    backup = lab3.run("m3", "ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 "
                      "--cacert=/etc/keelson/backup/etcd-ca.crt --cert=/etc/keelson/backup/etcd-client.crt "
                      "--key=/etc/keelson/backup/etcd-client.key endpoint health")  # fmt: skip
    assert "is healthy" in backup.stdout + backup.stderr


def test_rerun_changes_nothing(lab3: Lab, applied3) -> None:
    cluster, state = applied3
    before = start_times(lab3, cluster)
    again = run(cluster, state)
    assert again.ok
    assert again.changed_hosts == [], again.changes()
    assert run(cluster, state, dry_run=True).planned == {}
    assert start_times(lab3, cluster) == before  # no member was restarted


def test_killed_member_rejoins_by_itself(lab3: Lab, applied3) -> None:
    cluster, _ = applied3
    faults.power_off(lab3, "m3")
    assert not lab3.is_running("m3")
    assert len(healthy_members(lab3, cluster)) == 2  # quorum kept by the other two
    faults.power_on(lab3, "m3")
    wait_all_healthy(lab3, cluster)  # no keelson command in between: the unit brought it back
    assert lab3.run("m3", "systemctl is-active etcd.service").stdout.strip() == "active"


def test_changed_certificate_restarts_only_its_member(lab3: Lab, applied3) -> None:
    cluster, state = applied3
    before = start_times(lab3, cluster)
    (state / "pki" / "etcd" / "m2" / "peer.crt").unlink()  # as if m2's SANs had changed: re-issued
    report = run(cluster, state)
    assert report.ok, {h: s.errors for h, s in report.hosts.items()}
    restarted = "etcd | Rolling restart on change (one member at a time)"
    assert list(report.planned[restarted]) == ["m2"]
    after = start_times(lab3, cluster)
    assert after["m2"] != before["m2"]
    assert {n: after[n] for n in ("m1", "m3")} == {n: before[n] for n in ("m1", "m3")}
    wait_all_healthy(lab3, cluster, timeout=10)
    rerun = run(cluster, state)
    assert rerun.ok and rerun.changed_hosts == [], rerun.changes()


def test_state_dir_with_another_ca_is_refused(lab3: Lab, applied3, tmp_path: Path) -> None:
    cluster, _ = applied3
    fresh = tmp_path / cluster.name  # a lost state dir: keelson must not mint a new CA over the running cluster
    report = run(cluster, fresh)
    assert not report.ok
    assert report.stopped_after == "PKI | Hosts trust our etcd CA"
    assert "will not replace the CA" in " ".join(report.hosts["m1"].errors)
    assert not (fresh / "pki" / "etcd" / "ca.crt").exists()
    assert len(healthy_members(lab3, cluster)) == 3


def test_five_members_healthy_over_tls(lab_factory, tmp_path: Path) -> None:
    lab5 = lab_factory("etcd-t5", masters=5, workers=0)
    cluster = load_inventory(lab5.inventory_path)
    assert len(cluster.etcd_members) == 5
    report = run(cluster, tmp_path / cluster.name)
    assert report.ok, {h: s.errors for h, s in report.hosts.items()}
    assert healthy_members(lab5, cluster, via="m4") == sorted(client_endpoints(cluster).split(","))
    again = run(cluster, tmp_path / cluster.name)  # it once reported m4 changed: a fact batch lost its tail
    assert again.ok and again.changed_hosts == [], (again.changes(), {h: s.errors for h, s in again.hosts.items()})
