"""The artifact set on one lab host, for real: keelson installs kubeadm/kubelet/kubectl, the CNI plugins and the
images from the locally built set, `kubeadm init` brings up a single-node control plane (external etcd, keelson's
VIP), flannel makes the node Ready, a pod from the set's own agnhost image serves HTTP to another pod, and CoreDNS
resolves `kubernetes.default`. Nothing here is a stand-in. The same cluster then takes every addon's objects in a
server-side dry run (the apiserver validates and admits them, stores nothing, pulls no image)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from provision.lab import Lab
from tests.conftest import LabFactory
from tests.kube_helpers import (
    Kubectl,
    agnhost,
    artifact_set,
    keelson,
    kubectl_for,
    pod_ready,
    ready_nodes,
    run_finished,
    wait_for,
)

pytestmark = [pytest.mark.lab, pytest.mark.artifacts]
# Server-side apply, as the addons' Kubernetes provider applies; strict: an unknown field is an error; nothing stored.
DRY_RUN = ("apply", "--server-side", "--field-manager=keelson-dry-run", "--dry-run=server", "--validate=strict")
DRY_RUN_OUT = ("-o", "name", "-f", "-")


@pytest.fixture(scope="module")
def single(lab_factory: LabFactory) -> Lab:
    artifact_set()
    return lab_factory("t-k8s1", masters=1, workers=0)


@dataclass
class Applied:
    inventory: Path
    state: Path
    kubectl: Kubectl
    stdout: str  # of the first `keelson apply`


@pytest.fixture(scope="module")
def applied(single: Lab, tmp_path_factory: pytest.TempPathFactory) -> Applied:
    """`keelson apply` of the lab's inventory, once for the module, and kubectl through the VIP."""
    tmp = tmp_path_factory.mktemp("k8s1")
    state = tmp / "state"
    inventory = single.inventory_path
    out = keelson("apply", "-i", str(inventory), state=state).stdout
    return Applied(inventory, state, kubectl_for(inventory, state, tmp), out)


def test_single_node_cluster_runs_pods_from_the_set(applied: Applied) -> None:
    inventory, state, kubectl = applied.inventory, applied.state, applied.kubectl
    assert "ok in" in applied.stdout
    assert ready_nodes(kubectl) == ["m1"]
    kubectl("taint", "nodes", "--all", "node-role.kubernetes.io/control-plane-")
    image = agnhost()
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


def test_every_addon_passes_a_server_side_dry_run(applied: Applied) -> None:
    """All eight addons' objects (addons/dryrun.py: the functions `pulumi up` renders with), each addon in one
    `kubectl apply --server-side --dry-run=server` — server-side apply, as the addons' provider applies them: the
    apiserver decodes, defaults, validates and admits every object (RBAC escalation checks, webhooks, quotas) and
    stores none. Its namespaces are created for real first, from the addons' own Namespace objects (a dry-run
    Namespace is not there for the objects in it; this cluster is thrown away), so each namespaced object is judged
    as on a real install — its pod templates against the namespace's Pod Security level too (a warning fails)."""
    from addons.dryrun import every_addon, namespaces
    from addons.render import as_yaml
    from provision.artifacts.catalog import DEFAULT_KUBERNETES, release

    kubectl = applied.kubectl
    addons = every_addon(release(DEFAULT_KUBERNETES))
    everything = [o for objects in addons.values() for o in objects]
    made = [o for o in everything if o["kind"] == "Namespace"]  # with their Pod Security labels
    kubectl("apply", "--server-side", "--field-manager=keelson-dry-run", "-f", "-", stdin=as_yaml(made))
    existing = {n["metadata"]["name"] for n in kubectl.json("get", "namespaces")["items"]}
    assert set(namespaces(everything)) <= existing
    refused = {}
    for addon, objects in addons.items():
        proc = subprocess.run(
            [str(kubectl.binary), "--kubeconfig", str(kubectl.kubeconfig), *DRY_RUN, *DRY_RUN_OUT],
            input=as_yaml(objects),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        answered = [line.split(" ")[0].rsplit("/", 1)[-1] for line in proc.stdout.splitlines() if line.strip()]
        if proc.returncode != 0 or sorted(answered) != sorted(o["metadata"]["name"] for o in objects):
            refused[addon] = f"exit {proc.returncode}: {proc.stderr[-3000:]} (answered {answered})"
        elif "PodSecurity" in proc.stderr:  # a pod template its namespace's Pod Security level would refuse
            refused[addon] = proc.stderr[-3000:]
        print(f"{addon}: {len(answered)} objects accepted (server dry run){proc.stderr and ': ' + proc.stderr}")
    assert not refused, refused
    # nothing was stored: no workload of any addon exists (only the namespaces made above)
    stored = {d["metadata"]["name"] for d in kubectl.json("get", "deployments,daemonsets", "--all-namespaces")["items"]}
    workloads = {o["metadata"]["name"] for o in everything if o["kind"] in ("Deployment", "DaemonSet")}
    assert not stored & workloads, stored & workloads
