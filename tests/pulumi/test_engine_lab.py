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
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from provision.artifacts.build import StepEvent
from provision.artifacts.pulumi_tools.build import build
from provision.artifacts.pulumi_tools.catalog import PULUMI
from provision.lab import Lab
from provision.stack.local import LocalStack, passphrase
from tests.conftest import raise_if_build_failed
from tests.kube_helpers import Kubectl, artifact_set, ready_nodes

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


def test_the_kubeconfig_output_reaches_five_ready_nodes_through_the_vip(stack: LocalStack, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "admin.kubeconfig"
    kubeconfig.write_text(stack.outputs(show_secrets=True)["kubeconfig"])
    found = artifact_set()
    kubectl = Kubectl(found.path / f"release/{found.manifest.kubernetes}/bin/linux/amd64/kubectl", kubeconfig)
    assert ready_nodes(kubectl) == sorted(HOSTS)
    system = kubectl.json("-n", "kube-system", "get", "pods")["items"]
    running = [p["metadata"]["name"] for p in system if p["status"].get("phase") == "Running"]
    assert any(name.startswith("coredns-") for name in running), running


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
