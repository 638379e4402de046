"""The backup and restore drill on a real cluster (issue 13), and the CNIs keelson renders but does not apply.

One lab, built the way a user builds one: `keelson apply` on 3 masters (keelson's etcd members, behind the VIP) and
one worker, backups every minute to S3 (moto's server on the lab bridge's gateway, a real S3 API). The backup timer
— not `keelson backup now` — takes a snapshot that holds a Deployment created through the VIP; the Deployment is
deleted; `keelson restore --snapshot s3://…` (the CLI, as README shows it) brings it back: its pods run again (new
containers, serving HTTP), the API answers through the VIP, every node is Ready, and the controllers and the
scheduler act on the restored state (a new Deployment runs). Then calico's and canal's manifests, as `roles/cni`
renders them, are accepted by the same real apiserver (`kubectl apply --dry-run=server --validate=strict`).

Then `keelson verify` on the same cluster (issue 15): it passes, the newest snapshot taken since the restore restored
into a scratch lab host with as many objects, kind by kind, as the live cluster had at its revision; with the live
cluster compacted past that revision it says so and passes by containment; `--chaos` fails the VIP over and stops
one etcd member, quorum and a write kept, the member healthy again; with m2's etcd stopped it fails naming m2.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from backups.role.defaults import DEFAULTS as BACKUPS
from inventory.loader import parse_inventory
from provision.lab import Lab
from provision.lab.s3_endpoint import S3Endpoint, moto_s3, s3_env
from roles.cni.render import manifests
from tests.conftest import LabFactory
from tests.kube_helpers import (
    Kubectl,
    agnhost,
    artifact_set,
    keelson,
    kubectl_for,
    ready_nodes,
    run_finished,
    wait_for,
)

pytestmark = [pytest.mark.lab, pytest.mark.artifacts]

BUCKET = "drill-backups"
PREFIX = "etcd/"
REV = re.compile(r"-rev(\d+)\.db\.gz$")


@dataclass
class Drill:
    lab: Lab
    inventory: Path
    state: Path
    kubectl: Kubectl
    s3: S3Endpoint
    found: dict[str, str] = field(default_factory=dict)  # what one test found for the next: the timer's snapshot


def deployment(name: str, replicas: int, *args: str) -> str:
    container = {"name": "web", "image": agnhost(), "imagePullPolicy": "Never", "args": list(args)}
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}},
            },
        }
    )


def with_backups(lab: Lab, s3: S3Endpoint, out: Path) -> Path:
    data = yaml.safe_load(lab.inventory_path.read_text())
    data["backups"] = {
        "schedule": "minutely",
        "retention": 30,  # the drill's snapshot must outlive the runs taken while the test goes on
        "targets": [{"kind": "s3", "bucket": BUCKET, "prefix": PREFIX, "endpoint_url": s3.url}],
    }
    out.write_text(yaml.safe_dump(data))
    return out


def under_disk_pressure(kubectl: Kubectl) -> list[str]:
    """Nodes whose kubelet reports DiskPressure: it taints them and evicts pods. The lab's kubelets see this
    machine's disk (the lab inventory's `kubernetes.kubelet` thresholds are for that); name the cause instead of
    timing out on Pending pods."""
    nodes = kubectl.json("get", "nodes")["items"]
    return sorted(
        n["metadata"]["name"]
        for n in nodes
        if any(c["type"] == "DiskPressure" and c["status"] == "True" for c in n["status"].get("conditions", []))
    )


@pytest.fixture(scope="module")
def drill(lab_factory: LabFactory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Drill]:
    artifact_set()
    lab = lab_factory("t-drill", masters=3, workers=1)
    tmp = tmp_path_factory.mktemp("drill")
    state = tmp / "state"
    with moto_s3(lab.gateway) as s3, s3_env(s3):
        s3.client().create_bucket(Bucket=BUCKET)
        inventory = with_backups(lab, s3, tmp / "inventory.yaml")
        keelson("apply", "-i", str(inventory), state=state)
        kubectl = kubectl_for(inventory, state, tmp)
        pressed = under_disk_pressure(kubectl)  # the lab inventory's kubelet thresholds should prevent it
        assert not pressed, f"kubelet reports DiskPressure on {pressed}: this machine's disk is too full for the lab"
        yield Drill(lab, inventory, state, kubectl, s3)


def last_runs(drill: Drill) -> list[dict[str, Any]]:
    """Each master's latest backup report (the agent's last-run.json), as the timer left it."""
    reports = []
    for master in ("m1", "m2", "m3"):
        out = drill.lab.run(master, f"cat {BACKUPS.status_dir}/last-run.json", check=False).stdout
        try:
            reports.append(json.loads(out))
        except ValueError:
            continue
    return reports


def test_the_backup_timer_snapshots_the_clusters_real_data(drill: Drill) -> None:
    k = drill.kubectl
    assert drill.lab.run("m1", f"systemctl is-active {BACKUPS.timer}").stdout.split() == ["active"]
    k("apply", "-f", "-", stdin=deployment("keeper", 1, "pause"))  # keeps agnhost in use on w1 (image GC)
    k("apply", "-f", "-", stdin=deployment("drill", 2, "netexec", "--http-port=8080"))
    wait_for(
        "the Deployment's 2 pods ready",
        lambda: k("get", "deployment", "drill", "-o", "jsonpath={.status.readyReplicas}").strip() == "2",
        timeout=300,
    )
    created = int(k("get", "deployment", "drill", "-o", "jsonpath={.metadata.resourceVersion}"))

    def timer_snapshot() -> str | None:  # a run of the timer (its own run id) whose revision is past the Deployment
        for run in last_runs(drill):
            name = str(run.get("snapshot") or "")
            found = REV.search(name)
            if str(run.get("run_id", "")).startswith("timer-") and found and int(found.group(1)) >= created:
                return name
        return None

    wait_for("a timer run that snapshots the Deployment", lambda: timer_snapshot() is not None, timeout=240, every=2)
    name = timer_snapshot()
    assert name is not None
    body = drill.s3.client().get_object(Bucket=BUCKET, Key=f"{PREFIX}{name}")["Body"].read()
    db = gzip.decompress(body)
    assert b"/registry/deployments/default/drill" in db  # the cluster's own objects, as the apiserver stored them
    assert b"/registry/pods/default/drill-" in db
    drill.found["snapshot"] = f"s3://{BUCKET}/{PREFIX}{name}"


def test_restore_drill_brings_the_deployment_back_and_its_pods_run(drill: Drill) -> None:
    snapshot = drill.found.get("snapshot")
    assert snapshot, "the timer test found no snapshot"
    k = drill.kubectl
    before = {p["metadata"]["name"] for p in k.json("get", "pods", "-l", "app=drill")["items"]}
    assert len(before) == 2
    k("delete", "deployment", "drill", "--wait=true")
    wait_for("the Deployment's pods gone", lambda: not k.json("get", "pods", "-l", "app=drill")["items"], timeout=180)

    started = dt.datetime.now(dt.UTC).replace(microsecond=0)
    restored = keelson("restore", "-i", str(drill.inventory), "--snapshot", snapshot, "--yes", "--json",
                       state=drill.state)  # fmt: skip
    finished = run_finished(restored.stdout)
    assert finished["ok"], restored.stdout[-3000:]
    phases = [json.loads(line)["phase"] for line in restored.stdout.splitlines() if '"phase_finished"' in line]
    assert phases[-4:] == [
        "restore | Start the control plane again",
        "restore | Restart the kubelet on every node",
        "restore | The API answers through the VIP, every node Ready",
        "restore | Remove the staged snapshot",
    ]

    assert k("get", "--raw", "/readyz").strip() == "ok"  # through the VIP (the admin kubeconfig's server)
    server = k.json("config", "view", "--minify")["clusters"][0]["cluster"]["server"]
    assert server == f"https://{drill.lab.vip}:8443"
    assert ready_nodes(k) == ["m1", "m2", "m3", "w1"]
    wait_for(
        "the restored Deployment's 2 pods ready",
        lambda: k("get", "deployment", "drill", "-o", "jsonpath={.status.readyReplicas}", check=False).strip() == "2",
        timeout=300,
    )
    pods = k.json("get", "pods", "-l", "app=drill")["items"]
    assert {p["metadata"]["name"] for p in pods} == before  # the snapshot's pods, not new ones from a new ReplicaSet
    for pod in pods:
        running = pod["status"]["containerStatuses"][0]["state"]["running"]
        since = dt.datetime.fromisoformat(running["startedAt"].replace("Z", "+00:00"))
        assert since >= started, f"{pod['metadata']['name']}: a container from before the restore ({since})"
        name = pod["metadata"]["name"]
        answer = k("get", "--raw", f"/api/v1/namespaces/default/pods/{name}:8080/proxy/hostname").strip()
        assert answer == name  # its container serves HTTP, reached through the apiserver and the pod network

    # the controllers and the scheduler work on the restored state: a new Deployment is created, scheduled, run
    k("apply", "-f", "-", stdin=deployment("after-restore", 2, "pause"))
    wait_for(
        "a new Deployment running after the restore",
        lambda: k("get", "deployment", "after-restore", "-o", "jsonpath={.status.readyReplicas}").strip() == "2",
        timeout=300,
    )


@pytest.mark.parametrize("cni", ["calico", "canal"])
def test_calico_and_canal_manifests_are_accepted_by_the_apiserver(drill: Drill, cni: str) -> None:
    data = yaml.safe_load(drill.inventory.read_text())
    data["network"] = {"cni": cni}
    rendered = manifests(parse_inventory(yaml.safe_dump(data)))
    assert sorted(rendered) == [f"cni-{cni}", f"cni-{cni}-crds"]
    text = "\n---\n".join(rendered.values())
    objects = sum(1 for doc in yaml.safe_load_all(text) if doc)
    out = drill.kubectl("apply", "--dry-run=server", "--validate=strict", "-f", "-", stdin=text)
    accepted = [line for line in out.splitlines() if line.endswith("(server dry run)")]
    assert len(accepted) == objects, out
    assert f"daemonset.apps/{'canal' if cni == 'canal' else 'calico-node'} created (server dry run)" in out
    assert not drill.kubectl("get", "crd", "-o", "name", check=False).count("projectcalico")  # nothing was created


# -- keelson verify on the same cluster (issue 15): the newest backup restored into a scratch host ---------------------


def verify_report(drill: Drill, *args: str) -> tuple[int, dict[str, Any]]:
    proc = keelson("verify", "-i", str(drill.inventory), "--json", *args, state=drill.state, check=False)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"verify {' '.join(args)} -> exit {proc.returncode}: {json.dumps(report)}")  # the figures, with -s
    return proc.returncode, report


def check_named(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in report["checks"] if c["name"] == name)


def etcd_on(drill: Drill, *args: str) -> str:
    from roles.etcd.commands import HEALTHCHECK_TLS, etcdctl

    url = f"https://{drill.lab.host('m1').address}:2379"
    return drill.lab.run("m1", etcdctl(list(args), endpoints=url, tls=HEALTHCHECK_TLS)).stdout


def test_verify_restores_the_newest_backup_into_a_scratch_host_with_equal_counts(drill: Drill) -> None:
    """Safe by default: etcd, the API, certificates, and the newest snapshot the timer kept restored into a scratch
    lab host (its own lab, gone afterwards) with as many objects, per kind, as the live cluster had at its revision.
    Snapshots from before the drill's restore hold a history it replaced: verify takes only those taken since, so
    the test waits for the timer's first run after the restore (its revision past the restore's bump)."""
    from backups.restore import BUMP_REVISION

    wait_for(
        "a timer snapshot taken since the restore",
        lambda: any(int(r.get("revision") or 0) > BUMP_REVISION for r in last_runs(drill) if r.get("snapshot")),
        timeout=240,
        every=2,
    )
    rc, report = verify_report(drill)
    assert rc == 0 and report["ok"], report
    assert [c["name"] for c in report["checks"]] == ["etcd", "api", "certificates", "restore"]
    restore = check_named(report, "restore")
    assert restore["status"] == "pass", restore
    f = restore["figures"]
    assert f["how"] == "exact" and f["objects"] == f["live_objects"] > 100, f  # a real cluster's objects
    assert f["per_kind"]["pods"] >= 2 and f["per_kind"]["deployments"] >= 2, f["per_kind"]
    assert f["scratch_lab"] == "t-drill-scratch" and f["scratch_lab"] not in Lab.names()  # taken down
    assert f"restored = {f['objects']} live at revision {f['revision']}" in restore["detail"]


def test_verify_compares_by_containment_when_the_snapshots_revision_is_compacted(drill: Drill) -> None:
    """The live cluster compacted past the newest snapshot (the apiserver does it every 5 minutes; here at once, with
    the backup timer held so that no newer snapshot appears): the restore check says so and passes by containment."""
    timer = BACKUPS.timer
    for master in ("m1", "m2", "m3"):
        drill.lab.run(master, f"systemctl stop {timer}")
    try:
        wait_for(  # a run the timer started before it stopped ends first: the newest snapshot predates the compaction
            "no backup run under way",
            lambda: all(
                drill.lab.run(m, f"systemctl is-active {BACKUPS.service}", check=False).stdout.strip()
                not in ("active", "activating")  # a oneshot is "activating" while it runs
                for m in ("m1", "m2", "m3")
            ),
            timeout=120,
        )
        status = json.loads(etcd_on(drill, "endpoint", "status", "-w", "json"))
        revision = int(status[0]["Status"]["header"]["revision"])
        etcd_on(drill, "compact", str(revision))
        rc, report = verify_report(drill)
    finally:
        for master in ("m1", "m2", "m3"):
            drill.lab.run(master, f"systemctl start {timer}")
    restore = check_named(report, "restore")
    assert rc == 0 and restore["status"] == "pass", restore
    assert restore["figures"]["how"] == "contained" and "is compacted on the live cluster" in restore["detail"]


def test_verify_chaos_stops_one_etcd_member_and_the_cluster_keeps_quorum(drill: Drill) -> None:
    rc, report = verify_report(drill, "--chaos", "--scratch", "none")
    assert rc == 0 and report["ok"], report
    assert check_named(report, "restore")["status"] == "skipped"
    failover = check_named(report, "vip failover")
    assert failover["status"] == "pass" and failover["figures"]["to"] != failover["figures"]["from"]
    member = check_named(report, "etcd member stopped")
    assert member["status"] == "pass" and member["figures"]["stopped"] == "m3", member  # m1 is the one read from
    assert drill.lab.run("m3", "systemctl is-active etcd").stdout.strip() == "active"


def test_verify_fails_naming_the_etcd_member_that_is_stopped(drill: Drill) -> None:
    drill.lab.run("m2", "systemctl stop etcd")
    try:
        failed = keelson("verify", "-i", str(drill.inventory), state=drill.state, check=False)
    finally:
        drill.lab.run("m2", "systemctl start etcd")
    out = " ".join(failed.stdout.split())
    print(failed.stdout)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "FAIL etcd: 1 of 3 members not healthy (quorum kept): m2 (https://" in out
    assert "Traceback" not in failed.stdout + failed.stderr
    wait_for(
        "etcd healthy again",
        lambda: (
            keelson(
                "verify", "-i", str(drill.inventory), "--scratch", "none", state=drill.state, check=False
            ).returncode
            == 0
        ),
        timeout=120,
        every=3,
    )


def test_verify_stopped_by_sigterm_takes_its_scratch_lab_down(drill: Drill) -> None:
    """A verify killed while its scratch host is up (a CI timeout, `kill`) still takes the scratch lab down, so the
    next verify is not refused for a lab left behind."""
    import os
    import signal
    import subprocess

    from tests.kube_helpers import KEELSON

    scratch = "t-drill-scratch"
    env = {**os.environ, "KEELSON_STATE_DIR": str(drill.state)}
    argv = [*KEELSON, "verify", "-i", str(drill.inventory), "--json"]
    with subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            wait_for("the scratch lab up", lambda: scratch in Lab.names() or proc.poll() is not None, timeout=300)
            assert proc.poll() is None, "verify ended before its scratch lab was up"
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=180)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, out[-2000:] + err[-2000:]
    assert "Traceback" not in out + err, err[-3000:]
    assert scratch not in Lab.names()
    rc, report = verify_report(drill)  # and the next verify runs its restore check again
    assert rc == 0 and check_named(report, "restore")["status"] == "pass", report
