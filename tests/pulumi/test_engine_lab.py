"""`pulumi up` for real: the Pulumi CLI keelson built from its Go modules, its Python language host, a file backend,
passphrase secrets; the stack's machine source is `lab` (real systemd-nspawn hosts) and its cluster resources run
every phase of the apply plan (hosts, PKI, etcd, load balancer, the kubeadm control plane, the network, workers,
backups) through keelson's engine: a real HA Kubernetes cluster. No mock anywhere in this file.

up (5 nodes Ready through the VIP with the stack's kubeconfig output) → up again (no changes) → a host drifts:
refresh marks its group, up repairs it → preview with one worker's labels changed (that worker's resources only) →
the state holds no key material → destroy (no lab host left).
"""

from __future__ import annotations

import base64
import json
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from provision.artifacts.build import StepEvent
from provision.artifacts.pulumi_tools.build import build
from provision.artifacts.pulumi_tools.catalog import PULUMI
from provision.lab import Lab
from provision.stack.local import LocalStack, passphrase
from tests.conftest import raise_if_build_failed
from tests.kube_helpers import Kubectl, artifact_set, pod_ready, ready_nodes, wait_for

pytestmark = [
    pytest.mark.lab,
    pytest.mark.artifacts,
    pytest.mark.pulumi_engine,
    pytest.mark.slow,
    pytest.mark.timeout(3600),
]

LAB = "t-pulumi"
INVENTORY = "tests/pulumi/stack/inventory.yaml"
S3_ACCESS = "AKIAKEELSONTEST0001"
S3_SECRET = "kS3cr3t-only-in-pulumi-secret-config-0b1e"
HOSTS = ("m1", "m2", "m3", "w1", "w2")
CLUSTER_RESOURCES = [f"t-pulumi-{group}-{h}" for group in ("host", "node") for h in HOSTS] + [
    "t-pulumi-pki", "t-pulumi-etcd", "t-pulumi-lb", "t-pulumi-control-plane", "t-pulumi-network",
    "t-pulumi-worker-w1", "t-pulumi-worker-w2", "t-pulumi-nodes", "t-pulumi-backups", "t-pulumi-kubeconfig",
]  # fmt: skip


def _no_report(event: StepEvent) -> None:
    return None


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    if LAB in Lab.names():
        Lab.load(LAB).down()  # a leftover of an interrupted session
    raise_if_build_failed("pulumi_engine")  # tests/conftest.py built it (or waited) before the test
    toolset = build(PULUMI, _no_report)  # cached: a warm run reads one file (a cold one builds the engine)
    artifact_set()  # etcd's binaries come from this machine's Kubernetes artifact set (source: local)
    local = LocalStack(toolset, tmp_path_factory.mktemp("pulumi-stack"), "t", passphrase())
    local.init(
        {"keelson:inventory": INVENTORY, "keelson:machines": "lab", "keelson:lab.name": LAB},
        {"keelson:s3Credentials.accessKeyId": S3_ACCESS, "keelson:s3Credentials.secretAccessKey": S3_SECRET},
    )
    try:
        local.up()
        yield local
    finally:
        try:
            local.destroy()
        finally:
            if LAB in Lab.names():  # destroy failed: never leave the lab running
                Lab.load(LAB).down()
                pytest.fail(f"pulumi destroy left lab {LAB} behind")


def test_up_boots_the_lab_and_runs_the_phases(stack: LocalStack) -> None:
    lab = Lab.load(LAB)
    outputs = stack.outputs()
    assert outputs["apiEndpoint"] == f"https://{lab.vip}:8443"
    assert [(n["name"], n["address"]) for n in outputs["nodes"]] == [(h.name, h.address) for h in lab.hosts]
    assert outputs["kubeconfig"] == "[secret]"
    kubeconfig = yaml.safe_load(stack.outputs(show_secrets=True)["kubeconfig"])
    assert kubeconfig["clusters"][0]["cluster"]["server"] == outputs["apiEndpoint"]
    for master in ("m1", "m2", "m3"):
        active = lab.run(master, "systemctl is-active etcd haproxy keepalived containerd").stdout.split()
        assert active == ["active"] * 4, master
    health = lab.run(
        "m1",
        "ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/etcd/pki/ca.crt "
        "--cert=/etc/etcd/pki/healthcheck-client.crt --key=/etc/etcd/pki/healthcheck-client.key "
        "endpoint health --cluster",
    )
    assert (health.stdout + health.stderr).count("is healthy") == 3  # etcdctl reports health on stderr
    env = lab.run("m1", "cat /etc/keelson/backup.env").stdout
    assert S3_SECRET in env  # the S3 secret reached the hosts from the stack's secret config


@pytest.fixture(scope="module")
def kubectl(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    """kubectl from the artifact set with the stack's `kubeconfig` output (it points at the VIP)."""
    kubeconfig = tmp_path_factory.mktemp("kube") / "admin.kubeconfig"
    kubeconfig.write_text(stack.outputs(show_secrets=True)["kubeconfig"])
    kubeconfig.chmod(0o600)
    found = artifact_set()
    return Kubectl(found.path / f"release/{found.manifest.kubernetes}/bin/linux/amd64/kubectl", kubeconfig)


def image(fragment: str) -> str:
    return next(i.name for i in artifact_set().manifest.images if fragment in i.name)


def test_the_kubeconfig_output_reaches_five_ready_nodes_through_the_vip(kubectl: Kubectl) -> None:
    assert ready_nodes(kubectl) == sorted(HOSTS)
    system = kubectl.json("-n", "kube-system", "get", "pods")["items"]
    running = [p["metadata"]["name"] for p in system if p["status"].get("phase") == "Running"]
    assert any(name.startswith("coredns-") for name in running), running


def test_the_addons_the_inventory_turns_on_are_installed(stack: LocalStack, kubectl: Kubectl) -> None:
    assert stack.outputs()["addons"] == ["storage", "metrics", "ingress"]

    def available(namespace: str, deployment: str) -> Callable[[], bool]:
        jsonpath = "jsonpath={.status.availableReplicas}"
        return lambda: (
            kubectl("-n", namespace, "get", "deployment", deployment, "-o", jsonpath).strip() not in ("", "0")
        )

    for namespace, deployment in (
        ("local-path-storage", "local-path-provisioner"),
        ("kube-system", "metrics-server"),
        ("traefik", "traefik"),
    ):
        wait_for(f"{namespace}/{deployment} available", available(namespace, deployment), timeout=180)


PVC_POD = """{"apiVersion": "v1", "kind": "List", "items": [
  {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
   "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "64Mi"}}}},
  {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "writer"},
   "spec": {"containers": [{"name": "w", "image": "IMAGE", "imagePullPolicy": "Never",
            "command": ["sh", "-c", "echo written-by-keelson > /data/proof && sleep 3600"],
            "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]}}]}"""


def test_a_pvc_binds_on_the_default_class_and_a_pod_writes_and_reads_it(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", stdin=PVC_POD.replace("IMAGE", image("busybox")))
    try:
        wait_for("the writer pod Ready", lambda: pod_ready(kubectl, "default", "writer"), timeout=180)
        pvc = kubectl.json("get", "pvc", "data")
        assert pvc["status"]["phase"] == "Bound"
        assert pvc["spec"]["storageClassName"] == "local-path"  # the default class: the PVC names none
        assert kubectl("exec", "writer", "--", "cat", "/data/proof").strip() == "written-by-keelson"
        node = kubectl("get", "pod", "writer", "-o", "jsonpath={.spec.nodeName}").strip()
        volume = pvc["spec"]["volumeName"]
        on_disk = Lab.load(LAB).run(node, f"cat /opt/local-path-provisioner/{volume}_default_data/proof")
        assert on_disk.stdout.strip() == "written-by-keelson"  # on the node's disk, where the provisioner put it
    finally:
        kubectl("delete", "pod", "writer", "--wait=true", "--timeout=90s", check=False)
        kubectl("delete", "pvc", "data", check=False)


def test_kubectl_top_nodes_answers_through_metrics_server(kubectl: Kubectl) -> None:
    def top() -> bool:
        out = kubectl("top", "nodes", "--no-headers", check=False)
        return sorted(line.split()[0] for line in out.splitlines() if line.strip()) == sorted(HOSTS)

    wait_for("kubectl top nodes to list every node", top, timeout=240, every=5)


INGRESS = """{"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web"},
  "spec": {"rules": [{"host": "web.keelson.test", "http": {"paths": [{"path": "/", "pathType": "Prefix",
           "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}}"""


def test_an_ingress_route_answers_through_traefik_on_a_node_port(kubectl: Kubectl) -> None:
    lab = Lab.load(LAB)
    kubectl("run", "web", f"--image={image('agnhost')}", "--image-pull-policy=Never", "--labels=app=web",
            "--", "netexec", "--http-port=8080")  # fmt: skip
    try:
        kubectl("expose", "pod", "web", "--port=80", "--target-port=8080")
        kubectl("apply", "-f", "-", stdin=INGRESS)  # no class named: the default IngressClass (traefik)
        wait_for("the web pod Ready", lambda: pod_ready(kubectl, "default", "web"), timeout=120)
        url = f"http://{lab.host('w2').address}:30080/hostname"
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # to the lab host, never a proxy

        def answered() -> bool:
            try:
                request = urllib.request.Request(url, headers={"Host": "web.keelson.test"})
                with direct.open(request, timeout=3) as response:
                    return bool(response.read().decode().strip() == "web")
            except OSError:
                return False

        wait_for(f"{url} (Host: web.keelson.test) to answer from the pod", answered, timeout=120, every=2)
        assert kubectl.json("get", "ingress", "web")["spec"]["ingressClassName"] == "traefik"
    finally:
        kubectl("delete", "ingress", "web", check=False)
        kubectl("delete", "service", "web", check=False)
        kubectl("delete", "pod", "web", "--wait=false", check=False)


def test_up_again_changes_nothing(stack: LocalStack) -> None:
    assert stack.changes() == {}
    done = stack.up()
    assert "unchanged" in done.stdout and "updated" not in done.stdout and "created" not in done.stdout


def test_refresh_finds_a_drifted_host_and_up_repairs_it(stack: LocalStack) -> None:
    lab = Lab.load(LAB)
    lab.run("m2", "systemctl stop haproxy")
    stack.refresh()  # the groups' phases as a dry run on their hosts
    assert stack.changes() == {"t-pulumi-lb": "update"}
    stack.up()
    assert lab.run("m2", "systemctl is-active haproxy").stdout.strip() == "active"
    assert stack.changes() == {}


def test_a_label_on_one_worker_previews_an_update_of_that_workers_resources_only(stack: LocalStack) -> None:
    stack.set("keelson:labels.w1.tier", "web")
    try:  # w1's per-host resources (they stand for the host); no other host's, no cluster-wide one
        assert stack.changes() == {f"t-pulumi-{group}-w1": "update" for group in ("host", "node", "worker")}
    finally:
        stack.unset("keelson:labels")
    assert stack.changes() == {}


def test_the_state_holds_no_key_material(stack: LocalStack) -> None:
    text = stack.state_file.read_text()
    lab_key = Lab.load(LAB).key_path.read_text().splitlines()[1]  # a line of the lab's private key
    forbidden = {
        "PEM header": "-----BEGIN",
        "PEM header, base64": base64.b64encode(b"-----BEGIN").decode()[:12],
        "S3 secret": S3_SECRET,
        "S3 secret, base64": base64.b64encode(S3_SECRET.encode()).decode()[:20],
        "lab private key": lab_key,
    }
    found = [what for what, needle in forbidden.items() if needle in text]
    assert found == []
    assert '"ciphertext"' in text  # the secrets are there, encrypted with the stack's passphrase
    names = {r["urn"].split("::")[-1] for r in json.loads(text)["checkpoint"]["latest"]["resources"]}
    assert set(CLUSTER_RESOURCES) <= names


def test_the_engine_is_the_one_keelson_built(stack: LocalStack) -> None:
    assert stack.run("version").stdout.strip() == PULUMI.cli
    assert stack.env()["PATH"].split(":")[0] == str(stack.toolset.bin)


def test_destroy_leaves_no_lab_host_running(stack: LocalStack) -> None:
    root = str(Lab.load(LAB).paths.root).encode()  # every launcher and nspawn of the lab names a path under it
    stack.destroy()
    assert LAB not in Lab.names()
    assert not Path(root.decode()).exists()
    leftovers = [p.parent.name for p in Path("/proc").glob("[0-9]*/cmdline") if root in _read(p)]
    assert leftovers == []
    assert set(stack.changes().values()) == {"create"}  # the stack is empty: a preview would make it all again


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""
