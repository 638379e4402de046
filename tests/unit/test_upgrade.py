"""keelson upgrade, the pure parts: versions and the skew rules, a node's upgrade state read from its host's output,
who keelson cordoned, Ready nodes, the --to/inventory agreement, the plan's phase order, and the kubeadm
configuration carrying the release's CoreDNS tag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from inventory.loader import parse_inventory
from keelson.upgrade_cmd import after_failure
from roles.control_plane import render
from roles.engine.phase import Phase
from roles.plans import upgrade as upgrade_plan
from roles.upgrade.nodes import ANNOTATION, UpgradeNodes, cordoned_by_us, drain, kubeadm_upgrade, node_at_wait
from roles.upgrade.preflight import Preflight, UpgradeRefused, not_ready, under_pressure
from roles.upgrade.steps import pinned_images
from roles.upgrade.versions import CONTROL_PLANE, Version, parse_node_state, skew_problems

INVENTORY = """
name: prod
kubernetes: {{version: {version}, artifacts: {{source: local, local: /nonexistent}}}}
hosts:
  - {{name: m1, address: 10.0.0.11, roles: [master]}}
  - {{name: m2, address: 10.0.0.12, roles: [master]}}
  - {{name: m3, address: 10.0.0.13, roles: [master]}}
  - {{name: w1, address: 10.0.0.21, roles: [worker]}}
control_plane: {{vip: 10.0.0.10/24}}
"""
V1363, V1372 = Version(1, 36, 3), Version(1, 37, 2)

PREFLIGHT = Preflight.title


def test_versions_parse_from_what_hosts_print() -> None:
    assert Version.parse("Kubernetes v1.36.3") == V1363
    assert Version.parse("registry.k8s.io/kube-apiserver:v1.37.2") == V1372
    assert Version.parse("1.37.2") == V1372
    assert Version.parse("") is None and Version.parse("garbage") is None
    assert str(V1363) == "v1.36.3" and V1363 < V1372 < Version(1, 38, 0)


def test_skew_one_minor_at_a_time_never_down() -> None:
    assert skew_problems({"m1": V1363, "w1": V1363}, V1372) == []
    assert skew_problems({"m1": V1372, "w1": V1363}, V1372) == []  # a resumed upgrade: some nodes are there
    assert skew_problems({"m1": Version(1, 36, 1)}, V1363) == []  # a patch step
    two = skew_problems({"m1": Version(1, 35, 0)}, V1372)
    assert len(two) == 1 and "one minor version at a time (to v1.36.x first" in two[0]
    down = skew_problems({"m1": V1372, "w1": V1372}, V1363)
    assert "m1, w1 already run a newer version than v1.36.3" in down[0]


def test_node_state_from_the_host() -> None:
    before = parse_node_state(
        "kubelet Kubernetes v1.36.3\nrunning 812 /usr/local/bin/kubelet\n"
        "manifest kube-apiserver registry.k8s.io/kube-apiserver:v1.36.3\n"
        "manifest kube-controller-manager registry.k8s.io/kube-controller-manager:v1.36.3\n"
        "manifest kube-scheduler registry.k8s.io/kube-scheduler:v1.36.3\nkubeadm v1.37.2\n"
    )
    assert before.kubelet == V1363 and not before.kubelet_stale and before.kubeadm == V1372
    assert not before.done(V1372, master=True) and before.done(V1363, master=True)
    # kubeadm upgraded the static pods, the kubelet binary was replaced but the old process still runs
    middle = parse_node_state(
        "kubelet Kubernetes v1.37.2\nrunning 812 /usr/local/bin/kubelet (deleted)\n"
        + "".join(f"manifest {c} registry.k8s.io/{c}:v1.37.2\n" for c in CONTROL_PLANE)
    )
    assert middle.control_plane_at(V1372) and middle.kubelet_stale and not middle.done(V1372, master=True)
    after = parse_node_state("kubelet Kubernetes v1.37.2\nrunning 990 /usr/local/bin/kubelet\nkubeadm v1.37.2\n")
    assert after.done(V1372, master=False)
    assert not after.done(V1372, master=True), "a master without its static pod manifests is not done"
    stopped = parse_node_state("kubelet Kubernetes v1.37.2\nrunning 0 \n")
    assert stopped.kubelet_stale and not stopped.done(V1372, master=False)
    nothing = parse_node_state("kubelet \nrunning 0 \nkubeadm \n")
    assert nothing.kubelet is None and nothing.kubeadm is None


def test_who_keelson_cordoned_and_who_is_ready() -> None:
    nodes = {
        "items": [
            {"metadata": {"name": "m1", "annotations": {ANNOTATION: "v1.37.2"}}, "spec": {"unschedulable": True},
             "status": {"conditions": [{"type": "Ready", "status": "True"}]}},
            {"metadata": {"name": "m2"}, "spec": {"unschedulable": True},
             "status": {"conditions": [{"type": "Ready", "status": "False"}]}},
            {"metadata": {"name": "w1", "annotations": {ANNOTATION: "v1.37.2"}}, "spec": {},
             "status": {"conditions": [{"type": "Ready", "status": "True"}]}},
        ]
    }  # fmt: skip
    text = json.dumps(nodes)
    # m2: a user's own cordon, left alone; w1: schedulable with the annotation left (an older keelson's half-done
    # uncordon), still keelson's to finish
    assert cordoned_by_us(text) == {"m1": True, "m2": False, "w1": True}
    assert not_ready(text, ["m1", "m2", "w1", "w9"]) == ["m2", "w9"]
    assert cordoned_by_us("not json") == {} and not_ready("", ["m1"]) == ["m1"]
    pressed = {"items": [
        {"metadata": {"name": "w1"}, "status": {"conditions": [
            {"type": "Ready", "status": "True"}, {"type": "DiskPressure", "status": "True"},
            {"type": "MemoryPressure", "status": "False"}]}},
        {"metadata": {"name": "m1"}, "status": {"conditions": [{"type": "DiskPressure", "status": "False"}]}},
    ]}  # fmt: skip
    assert under_pressure(json.dumps(pressed)) == {"w1": ["DiskPressure"]}
    assert under_pressure("junk") == {}


def test_commands_name_the_node_and_the_target() -> None:
    assert "drain m2 --ignore-daemonsets --delete-emptydir-data --timeout=60s" in drain("m2", V1372, 60).script
    assert f'"{ANNOTATION}": "v1.37.2"' in drain("m2", V1372, 60).script  # with the cordon, in one patch
    assert kubeadm_upgrade("first", V1372).script == "kubeadm upgrade apply v1.37.2 --yes --certificate-renewal=false"
    assert kubeadm_upgrade("masters", V1372).script == "kubeadm upgrade node --certificate-renewal=false"
    on_v1 = kubeadm_upgrade("workers", V1372, cgroup_v1=True).script
    assert on_v1 == "kubeadm upgrade node --certificate-renewal=false --ignore-preflight-errors=SystemVerification"
    assert "'v1.37.2 True'" in node_at_wait("w1", V1372, 30)


def test_to_must_be_what_the_inventory_says() -> None:
    cluster = parse_inventory(INVENTORY.format(version="v1.37.2"))
    assert str(upgrade_plan.target_of(cluster, "1.37.2")) == "v1.37.2"
    with pytest.raises(UpgradeRefused, match=r"the inventory says kubernetes\.version: v1\.37\.2") as refused:
        upgrade_plan.target_of(cluster, "v1.36.3")
    assert "set kubernetes.version: v1.36.3 in the inventory first" in str(refused.value)
    with pytest.raises(UpgradeRefused, match="is not a Kubernetes version"):
        upgrade_plan.target_of(cluster, "latest")


def test_the_plan_in_order() -> None:
    plan = upgrade_plan.plan(parse_inventory(INVENTORY.format(version="v1.37.2")), "v1.37.2")
    titles = [p.title.split(" (")[0] for p in plan.phases]
    assert titles == [
        "Upgrade | Preflight",
        "Upgrade | Stage the target's kubeadm, kubectl and images",
        "Upgrade | First master",
        "Upgrade | Other masters",
        "Upgrade | Workers",
        "Upgrade | kubeadm configuration files at the new version",
        "Upgrade | kubeadm configuration files at the new version",
    ]
    assert {p.role for p in plan.phases} == {"upgrade"}
    stage = plan.phases[1]
    assert isinstance(stage, Phase) and stage.serial, "images imported one node at a time beside a running etcd"
    cluster = parse_inventory(INVENTORY.format(version="v1.37.2"))
    first, masters, workers = plan.phases[2:5]
    assert [h.name for h in first.hosts(cluster)] == ["m1"]
    assert [h.name for h in masters.hosts(cluster)] == ["m2", "m3"]
    assert [h.name for h in workers.hosts(cluster)] == ["w1"]


@pytest.mark.parametrize(("version", "coredns"), [("v1.36.3", "v1.14.6"), ("v1.37.2", "v1.14.6")])
def test_kubeadm_runs_the_sets_coredns(version: str, coredns: str) -> None:
    cluster = parse_inventory(INVENTORY.format(version=version))
    node = render.NodeValues("m1", "10.0.0.11", cgroup_v1=False, conntrack_writable=True)
    text = render.kubeadm_config(
        cluster, "init", node, token="abcdef.0123456789abcdef", ca_cert_hash="sha256:" + "1" * 64,
        master_ips={"m1": "10.0.0.11"}, etcd_endpoints=["https://10.0.0.11:2379"],
    )  # fmt: skip
    config = next(d for d in yaml.safe_load_all(text) if d and d["kind"] == "ClusterConfiguration")
    assert config["kubernetesVersion"] == version
    assert config["dns"] == {"imageTag": coredns}


def test_pinned_images_from_ctr() -> None:
    out = (
        "REF TYPE DIGEST SIZE PLATFORMS LABELS\n"
        "registry.k8s.io/pause:3.10.2 application/vnd.oci.image.manifest.v1+json sha256:aa 300 KiB linux/amd64 "
        "io.cri-containerd.image=managed,io.cri-containerd.pinned=pinned\n"
        "registry.k8s.io/kube-apiserver:v1.37.2 application/vnd.oci.image.manifest.v1+json sha256:bb 21 MiB "
        "linux/amd64 io.cri-containerd.image=managed\n"
    )
    assert pinned_images(out) == {"registry.k8s.io/pause:3.10.2"}
    assert pinned_images("") == set()


def test_apply_refuses_a_master_running_another_version(tmp_path: Path) -> None:
    from roles.engine.context import HostContext
    from roles.engine.facts import FactValues
    from roles.validate.steps import APISERVER_IMAGE, _version_problem

    cluster = parse_inventory(INVENTORY.format(version="v1.37.2"))
    ctx = HostContext(cluster, cluster.masters[0], tmp_path)

    def problem(image: str) -> str | None:
        return _version_problem(ctx, FactValues({APISERVER_IMAGE.key: (image, 0)}))

    assert problem("") is None, "no control plane yet: nothing to compare"
    assert problem("registry.k8s.io/kube-apiserver:v1.37.2\n") is None
    older = problem("registry.k8s.io/kube-apiserver:v1.36.3\n")
    assert older is not None and "runs Kubernetes v1.36.3 but the inventory says v1.37.2" in older
    assert "keelson upgrade --to v1.37.2" in older


def test_what_a_failed_upgrade_advises_depends_on_where_it_stopped() -> None:
    command = "keelson upgrade -i c.yaml --to v1.37.2"
    for before_any_node in (None, "Connect", "Discover", PREFLIGHT):
        assert after_failure(before_any_node, command).startswith("upgrade not started: nothing was changed")
    staged = after_failure("Upgrade | Stage the target's kubeadm, kubectl and images (nothing restarts)", command)
    assert staged.startswith("upgrade not started: no node was drained or restarted")
    for title in (*UpgradeNodes.TITLES.values(), "Upgrade | kubeadm configuration files at the new version (masters)"):
        resumable = after_failure(title, command)
        assert resumable.startswith("upgrade stopped: fix what failed and run the same command again (" + command)
        assert "a cordoned node is resumed" in resumable
