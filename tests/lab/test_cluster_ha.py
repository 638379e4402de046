"""The HA control plane for real (issue 13): `keelson apply` on fresh lab hosts — 3 masters behind the VIP
(keepalived + haproxy), keelson's external etcd over TLS, 2 workers, flannel with kube-router's NetworkPolicy —
ends with every node Ready through the VIP; CoreDNS answers from a pod, a pod on one worker reaches a pod on the
other, a Service answers through kube-proxy, a NetworkPolicy blocks and then opens; a re-apply changes nothing;
killing the master that holds the VIP leaves kubectl answering through the VIP and the cluster scheduling, and the
master rejoins on its own when it boots again. Every component is real."""

from __future__ import annotations

import json
import threading
import time

import pytest

from provision.bench.vip_bench import single_holder
from provision.lab import faults
from tests.conftest import LabFactory
from tests.kube_helpers import AppliedCluster as Cluster
from tests.kube_helpers import (
    Kubectl,
    applied_lab,
    artifact_set,
    keelson,
    pod_ready,
    ready_nodes,
    run_finished,
    wait_for,
)

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def ha(lab_factory: LabFactory, tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    return applied_lab(lab_factory, tmp_path_factory.mktemp("ha3"), "t-ha3", masters=3, workers=2)


def agnhost() -> str:
    return next(i.name for i in artifact_set().manifest.images if "agnhost" in i.name)


def run_pod(kubectl: Kubectl, name: str, node: str, *args: str, labels: str = "") -> None:
    overrides = json.dumps({"spec": {"nodeName": node}})
    extra = [f"--labels={labels}"] if labels else []
    kubectl(
        "run",
        name,
        f"--image={agnhost()}",
        "--image-pull-policy=Never",
        f"--overrides={overrides}",
        *extra,
        "--",
        *args,
    )


def test_every_node_is_ready_through_the_vip(ha: Cluster) -> None:
    assert ready_nodes(ha.kubectl) == ["m1", "m2", "m3", "w1", "w2"]
    server = ha.kubectl.json("config", "view", "--minify")["clusters"][0]["cluster"]["server"]
    assert server == f"https://{ha.lab.vip}:8443"
    control = ha.kubectl.json("get", "nodes", "-l", "node-role.kubernetes.io/control-plane")["items"]
    assert sorted(n["metadata"]["name"] for n in control) == ["m1", "m2", "m3"]


def test_pods_across_hosts_dns_services_and_network_policy(ha: Cluster) -> None:
    k = ha.kubectl
    run_pod(k, "web", "w1", "netexec", "--http-port=8080", labels="app=web")
    run_pod(k, "client", "w2", "pause", labels="role=client")
    run_pod(k, "stranger", "w2", "pause", labels="role=stranger")
    wait_for("the pods Ready", lambda: all(pod_ready(k, "default", p) for p in ("web", "client", "stranger")))
    web_ip = k("get", "pod", "web", "-o", "jsonpath={.status.podIP}").strip()

    def reach(pod: str, target: str) -> bool:
        out = k("exec", pod, "--", "sh", "-c", f"/agnhost connect {target} --timeout=3s && echo OK", check=False)
        return out.strip().endswith("OK")

    assert reach("client", f"{web_ip}:8080"), "a pod on w2 reaches a pod on w1 (flannel vxlan)"
    lookup = k("exec", "client", "--", "nslookup", "kubernetes.default.svc.cluster.local")
    assert "10.96.0.1" in lookup
    k("expose", "pod", "web", "--port=80", "--target-port=8080")
    wait_for("the Service through kube-proxy", lambda: reach("client", "web.default.svc.cluster.local:80"), timeout=60)
    deny = """{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "web-deny"},
        "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"], "ingress": []}}"""
    k("apply", "-f", "-", stdin=deny)
    wait_for("the deny policy to block", lambda: not reach("client", f"{web_ip}:8080"), timeout=60)
    allow = """{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "web-allow-client"},
        "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"],
                 "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}]}]}}"""
    k("apply", "-f", "-", stdin=allow)
    wait_for("the allow policy to open for the client", lambda: reach("client", f"{web_ip}:8080"), timeout=60)
    assert not reach("stranger", f"{web_ip}:8080"), "a pod the policy does not name stays blocked"


def test_reapply_changes_nothing(ha: Cluster) -> None:
    again = run_finished(keelson("apply", "-i", str(ha.inventory), "--json", state=ha.state).stdout)
    assert again["ok"]
    assert {h: c["changed"] for h, c in again["hosts"].items() if c["changed"]} == {}


def test_killing_the_vip_holder_keeps_the_api_answering(ha: Cluster) -> None:
    masters = ["m1", "m2", "m3"]
    holder = single_holder(ha.lab, masters)
    answered: list[float] = []  # when kubectl got an answer through the VIP
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            if ha.kubectl("get", "--raw", "/readyz", check=False, timeout=10).strip() == "ok":
                answered.append(time.monotonic())

    watcher = threading.Thread(target=probe, daemon=True)
    watcher.start()
    try:
        faults.power_off(ha.lab, holder)
        new = single_holder(ha.lab, [m for m in masters if m != holder], deadline_s=30)
        moved = time.monotonic()
        assert new != holder
        manifest = json.dumps(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "after-kill"},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": "after-kill"}},
                    "template": {
                        "metadata": {"labels": {"app": "after-kill"}},
                        "spec": {
                            "containers": [
                                {"name": "pause", "image": agnhost(), "imagePullPolicy": "Never", "args": ["pause"]}
                            ]
                        },
                    },
                },
            }
        )
        wait_for(  # a request in flight when the VIP moved breaks (its TCP state was on the old holder): retried
            "the API to take a new Deployment through the VIP",
            lambda: bool(ha.kubectl("apply", "-f", "-", stdin=manifest, check=False).strip()),
            timeout=60,
        )
        wait_for(
            "the cluster to schedule and run a new Deployment with a master down",
            lambda: (
                ha.kubectl("get", "deployment", "after-kill", "-o", "jsonpath={.status.readyReplicas}").strip() == "2"
            ),
            timeout=180,
        )
        wait_for(
            "kubectl answering through the VIP with the old holder down",
            lambda: bool(answered) and answered[-1] > moved,
            60,
        )
    finally:
        stop.set()
        watcher.join(timeout=30)
        faults.power_on(ha.lab, holder)
    wait_for(f"{holder} Ready again with no keelson action", lambda: holder in ready_nodes(ha.kubectl), timeout=300)
