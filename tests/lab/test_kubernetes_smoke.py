"""The artifact set on one lab host, for real: keelson installs kubeadm/kubelet/kubectl, the CNI plugins and the
images from the locally built set, `kubeadm init` brings up a single-node control plane (external etcd, keelson's
VIP), flannel makes the node Ready, a pod from the set's own agnhost image serves HTTP to another pod, and CoreDNS
resolves `kubernetes.default`. Nothing here is a stand-in."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.lab import Lab
from tests.conftest import LabFactory
from tests.kube_helpers import artifact_set, keelson, kubectl_for, pod_ready, ready_nodes, run_finished, wait_for

pytestmark = [pytest.mark.lab, pytest.mark.artifacts]


@pytest.fixture(scope="module")
def single(lab_factory: LabFactory) -> Lab:
    artifact_set()
    return lab_factory("t-k8s1", masters=1, workers=0)


def test_single_node_cluster_runs_pods_from_the_set(single: Lab, tmp_path: Path) -> None:
    state = tmp_path / "state"
    inventory = single.inventory_path
    applied = keelson("apply", "-i", str(inventory), state=state)
    assert "ok in" in applied.stdout
    kubectl = kubectl_for(inventory, state, tmp_path)
    assert ready_nodes(kubectl) == ["m1"]
    kubectl("taint", "nodes", "--all", "node-role.kubernetes.io/control-plane-")
    image = next(i.name for i in artifact_set().manifest.images if "agnhost" in i.name)
    kubectl(
        "run",
        "server",
        f"--image={image}",
        "--image-pull-policy=Never",
        "--port=8080",
        "--",
        "netexec",
        "--http-port=8080",
    )
    kubectl("run", "client", f"--image={image}", "--image-pull-policy=Never", "--command", "--", "sleep", "3600")
    wait_for(
        "both pods Ready", lambda: pod_ready(kubectl, "default", "server") and pod_ready(kubectl, "default", "client")
    )
    server_ip = kubectl("get", "pod", "server", "-o", "jsonpath={.status.podIP}").strip()
    answer = kubectl("exec", "client", "--", "wget", "-qO-", f"http://{server_ip}:8080/hostname")
    assert answer.strip() == "server"
    lookup = kubectl("exec", "client", "--", "nslookup", "kubernetes.default.svc.cluster.local", check=False)
    assert "10.96.0.1" in lookup, lookup
    kubectl("expose", "pod", "server", "--port=80", "--target-port=8080")
    wait_for(  # kube-proxy programs the new Service within its sync period; each try is bounded (busybox timeout:
        # a SYN to a ClusterIP not yet programmed is retried by the kernel for minutes; wget's own -T crashes it)
        "the Service answering through kube-proxy",
        lambda: (
            kubectl(
                "exec", "client", "--", "timeout", "5", "wget", "-qO-", "http://server/hostname", check=False
            ).strip()
            == "server"
        ),
        timeout=180,
    )
    again = run_finished(keelson("apply", "-i", str(inventory), "--json", state=state).stdout)
    assert again["ok"] and {h: c["changed"] for h, c in again["hosts"].items()} == {"m1": 0}
