"""control_plane: kubeadm configuration per mode (parsed back as YAML), the hardening files, token and CSR parsing,
the Kubernetes PKI (made once, discovery hash), the admin kubeconfig."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from inventory.loader import parse_inventory
from roles.control_plane import render
from roles.control_plane.cluster_ops import parse_tokens, token_fresh
from roles.control_plane.kubeconfig import admin_kubeconfig
from roles.control_plane.manifests import apply_command
from roles.control_plane.nodes import PendingCSR, approvable, pending_serving_csrs, ready_nodes
from roles.pki import kubernetes as k8s_pki
from roles.state import StateDir

INVENTORY = """
name: prod
hosts:
  - {name: m1, address: 10.0.0.11, roles: [master]}
  - {name: m2, address: 10.0.0.12, roles: [master]}
  - {name: m3, address: 10.0.0.13, roles: [master]}
  - {name: w1, address: 10.0.0.21, roles: [worker], labels: {zone: a}}
control_plane: {vip: 10.0.0.10/24}
"""
NODE = render.NodeValues("m1", "10.0.0.11", cgroup_v1=True, conntrack_writable=False)
IPS = {"m1": "10.0.0.11", "m2": "10.0.0.12", "m3": "10.0.0.13"}
ETCD = ["https://10.0.0.11:2379", "https://10.0.0.12:2379", "https://10.0.0.13:2379"]


def docs(text: str) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in yaml.safe_load_all(text) if d}


def config(mode: render.Mode, node: render.NodeValues = NODE, inventory: str = INVENTORY) -> dict[str, dict[str, Any]]:
    cluster = parse_inventory(inventory)
    text = render.kubeadm_config(
        cluster, mode, node, token="abcdef.0123456789abcdef", ca_cert_hash="sha256:" + "1" * 64, master_ips=IPS,
        etcd_endpoints=ETCD,
    )  # fmt: skip
    return docs(text)


def args(cfg: dict[str, Any]) -> dict[str, str]:
    return {a["name"]: a["value"] for a in cfg["apiServer"]["extraArgs"]}


def test_init_configuration_points_at_the_vip_and_external_etcd() -> None:
    d = config("init")
    assert set(d) == {"InitConfiguration", "ClusterConfiguration", "KubeletConfiguration", "KubeProxyConfiguration"}
    init, cc = d["InitConfiguration"], d["ClusterConfiguration"]
    assert init["localAPIEndpoint"] == {"advertiseAddress": "10.0.0.11", "bindPort": 6443}
    assert init["nodeRegistration"]["kubeletExtraArgs"] == [{"name": "node-ip", "value": "10.0.0.11"}]
    assert init["bootstrapTokens"][0]["token"] == "abcdef.0123456789abcdef"
    assert cc["controlPlaneEndpoint"] == "10.0.0.10:8443"
    assert cc["kubernetesVersion"] == "v1.37.2"
    assert cc["etcd"]["external"]["endpoints"] == ETCD
    assert cc["etcd"]["external"]["caFile"] == "/etc/kubernetes/pki/etcd/ca.crt"
    assert cc["networking"] == {
        "podSubnet": "10.244.0.0/16",
        "serviceSubnet": "10.96.0.0/12",
        "dnsDomain": "cluster.local",
    }
    sans = cc["apiServer"]["certSANs"]
    assert sans[:2] == ["10.0.0.10"] or "10.0.0.10" in sans
    assert {"m1", "m2", "m3", "10.0.0.11", "10.0.0.12", "10.0.0.13"} <= set(sans)


def test_secure_defaults_are_on() -> None:
    d = config("init")
    a = args(d["ClusterConfiguration"])
    assert a["authentication-config"] == "/etc/kubernetes/authn/config.yaml"
    assert a["encryption-provider-config"] == "/etc/kubernetes/encryption/config.yaml"
    assert a["audit-log-maxbackup"] == "10" and a["audit-log-path"].endswith("audit.log")
    assert a["profiling"] == "false"
    mounts = {v["mountPath"]: v["readOnly"] for v in d["ClusterConfiguration"]["apiServer"]["extraVolumes"]}
    assert mounts["/etc/kubernetes/encryption"] is True and mounts["/var/log/kubernetes/audit"] is False
    kubelet = d["KubeletConfiguration"]
    assert kubelet["serverTLSBootstrap"] is True and kubelet["readOnlyPort"] == 0
    assert kubelet["authentication"]["anonymous"]["enabled"] is False


def test_security_switched_off_drops_its_flags() -> None:
    d = config("init", inventory=INVENTORY + "security: {audit: false, encryption_at_rest: false}\n")
    a = args(d["ClusterConfiguration"])
    assert "encryption-provider-config" not in a and "audit-policy-file" not in a
    assert "authentication-config" in a  # anonymous stays limited to the health endpoints


def test_cgroup_v1_and_a_container_host_are_configured_from_facts() -> None:
    d = config("init")
    assert d["KubeletConfiguration"]["failCgroupV1"] is False
    assert d["InitConfiguration"]["nodeRegistration"]["ignorePreflightErrors"] == ["SystemVerification"]
    assert d["KubeProxyConfiguration"]["conntrack"] == {"maxPerCore": 0}
    v2 = config("init", render.NodeValues("m1", "10.0.0.11", cgroup_v1=False, conntrack_writable=True))
    assert v2["KubeletConfiguration"]["failCgroupV1"] is True
    assert "ignorePreflightErrors" not in v2["InitConfiguration"]["nodeRegistration"]
    assert "conntrack" not in v2["KubeProxyConfiguration"]


def test_join_configurations() -> None:
    cp = config("join-control-plane", render.NodeValues("m2", "10.0.0.12", False, True))
    assert set(cp) == {"JoinConfiguration"}
    join = cp["JoinConfiguration"]
    assert join["discovery"]["bootstrapToken"]["apiServerEndpoint"] == "10.0.0.10:8443"
    assert join["discovery"]["bootstrapToken"]["caCertHashes"] == ["sha256:" + "1" * 64]
    assert join["controlPlane"]["localAPIEndpoint"]["advertiseAddress"] == "10.0.0.12"
    worker = config("join-worker", render.NodeValues("w1", "10.0.0.21", False, True, labels=("zone=a",)))
    join = worker["JoinConfiguration"]
    assert "controlPlane" not in join
    assert {"name": "node-labels", "value": "zone=a"} in join["nodeRegistration"]["kubeletExtraArgs"]


def test_hardening_files_parse() -> None:
    authn = yaml.safe_load(render.authentication_config())
    assert authn["kind"] == "AuthenticationConfiguration"
    assert [c["path"] for c in authn["anonymous"]["conditions"]] == [
        "/healthz",
        "/livez",
        "/readyz",
        "/api/v1/namespaces/kube-public/configmaps/cluster-info",  # kubeadm join's discovery, before credentials
    ]
    enc = yaml.safe_load(render.encryption_config("a2V5"))
    provider = enc["resources"][0]["providers"][0]
    assert provider["secretbox"]["keys"][0]["secret"] == "a2V5" and enc["resources"][0]["providers"][1] == {
        "identity": {}
    }
    policy = yaml.safe_load(render.audit_policy())
    assert policy["kind"] == "Policy" and policy["rules"][-1] == {"level": "Request"}


def test_tokens() -> None:
    now = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
    out = (
        '{"kind":"BootstrapToken","token":"abcdef.0123456789abcdef","expires":"2026-12-02T20:00:00Z"}\n'
        '{"kind":"BootstrapToken","token":"zzzzzz.0123456789abcdef","expires":"2026-12-02T01:00:00Z"} junk'
    )
    tokens = parse_tokens(out)
    assert set(tokens) == {"abcdef.0123456789abcdef", "zzzzzz.0123456789abcdef"}
    assert token_fresh(tokens, "abcdef.0123456789abcdef", now)
    assert not token_fresh(tokens, "abcdef.0123456789abcdef", now + dt.timedelta(hours=19))
    assert not token_fresh(tokens, "missing.0123456789abcdef", now)
    assert parse_tokens("garbage") == {}
    assert len(k8s_pki.new_token()) == 23


def _csr(node: str, names: list[str], ips: list[str]) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names] + [
        x509.IPAddress(ipaddress.ip_address(i)) for i in ips
    ]
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node}")]))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(key, hashes.SHA256())
    )
    return base64.b64encode(csr.public_bytes(serialization.Encoding.PEM)).decode()


def test_serving_csrs_are_approved_only_for_inventory_nodes_and_their_own_names() -> None:
    items = [
        {"metadata": {"name": "csr-ok"}, "spec": {"signerName": "kubernetes.io/kubelet-serving",
         "username": "system:node:w1", "request": _csr("w1", ["w1"], ["10.0.0.21"])}, "status": {}},
        {"metadata": {"name": "csr-foreign-ip"}, "spec": {"signerName": "kubernetes.io/kubelet-serving",
         "username": "system:node:w1", "request": _csr("w1", ["w1"], ["10.9.9.9"])}, "status": {}},
        {"metadata": {"name": "csr-done"}, "spec": {"signerName": "kubernetes.io/kubelet-serving",
         "username": "system:node:w1", "request": _csr("w1", ["w1"], [])},
         "status": {"conditions": [{"type": "Approved"}]}},
        {"metadata": {"name": "csr-client"}, "spec": {"signerName": "kubernetes.io/kube-apiserver-client-kubelet",
         "username": "system:node:w1", "request": _csr("w1", ["w1"], [])}, "status": {}},
    ]  # fmt: skip
    pending = pending_serving_csrs(json.dumps({"items": items}))
    assert [c.name for c in pending] == ["csr-ok", "csr-foreign-ip"]
    allowed = {"w1": {"w1", "10.0.0.21"}}
    assert [c.name for c in pending if approvable(c, allowed)] == ["csr-ok"]
    assert not approvable(PendingCSR("x", "stranger", frozenset({"stranger"})), allowed)
    assert pending_serving_csrs("not json") == []


def test_ready_nodes_and_applied_digests() -> None:
    nodes = {"items": [
        {"metadata": {"name": "m1"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}},
        {"metadata": {"name": "w1"}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}},
    ]}  # fmt: skip
    assert ready_nodes(json.dumps(nodes)) == {"m1"}
    command = apply_command("cni-flannel", "kind: Namespace\n")
    assert hashlib.sha256(b"kind: Namespace\n").hexdigest()[:12] in command.shown()


def test_kubernetes_pki_is_made_once_and_the_kubeconfig_uses_it(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    assert k8s_pki.load(state) is None
    first = k8s_pki.ensure(state)
    again = k8s_pki.ensure(state)
    assert first == again
    spki = first.ca.cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert first.discovery_hash == "sha256:" + hashlib.sha256(spki).hexdigest()
    for name in ("ca.key", "sa.key", "front-proxy-ca.key"):
        assert (tmp_path / "state" / "pki" / "kubernetes" / name).stat().st_mode & 0o777 == 0o600
    cluster = parse_inventory(INVENTORY)
    kubeconfig = yaml.safe_load(admin_kubeconfig(cluster, state))
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://10.0.0.10:8443"
    cert = x509.load_pem_x509_certificate(base64.b64decode(kubeconfig["users"][0]["user"]["client-certificate-data"]))
    org = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
    assert org == "kubeadm:cluster-admins"
    assert cert.issuer == first.ca.cert.subject
    assert yaml.safe_load(admin_kubeconfig(cluster, state))["users"] == kubeconfig["users"]  # reused, not re-minted


def test_kubelet_eviction_is_the_full_map_with_the_inventorys_values_over_the_defaults() -> None:
    default = config("init")["KubeletConfiguration"]
    assert default["evictionHard"] == {
        "memory.available": "100Mi",
        "nodefs.available": "10%",
        "nodefs.inodesFree": "5%",
        "imagefs.available": "15%",
        "imagefs.inodesFree": "5%",
    }
    assert "imageGCHighThresholdPercent" not in default and "imageGCLowThresholdPercent" not in default
    kubelet = (
        "kubernetes: {kubelet: {eviction_hard: {imagefs.available: 2Gi, nodefs.available: 1.5Gi},"
        " image_gc_high_percent: 100, image_gc_low_percent: 99}}\n"
    )
    tuned = config("init", inventory=INVENTORY + kubelet)["KubeletConfiguration"]
    assert tuned["evictionHard"]["imagefs.available"] == "2Gi"
    assert tuned["evictionHard"]["nodefs.available"] == "1.5Gi"
    assert tuned["evictionHard"]["memory.available"] == "100Mi"  # the others keep the kubelet's defaults
    assert (tuned["imageGCHighThresholdPercent"], tuned["imageGCLowThresholdPercent"]) == (100, 99)


@pytest.mark.parametrize(
    ("kubelet", "message"),
    [
        ("{eviction_hard: {disk.available: 1Gi}}", "eviction_hard"),
        ("{eviction_hard: {nodefs.available: lots}}", "eviction_hard"),
        ("{image_gc_high_percent: 70, image_gc_low_percent: 80}", "must be below image_gc_high_percent"),
        ("{image_gc_high_percent: 101}", "image_gc_high_percent"),
    ],
)
def test_bad_kubelet_settings_are_inventory_errors(kubelet: str, message: str) -> None:
    from inventory.errors import InventoryError

    with pytest.raises(InventoryError, match=message):
        parse_inventory(INVENTORY + f"kubernetes: {{kubelet: {kubelet}}}\n")


def test_node_troubles_names_the_conditions_that_keep_pods_off_a_ready_node() -> None:
    from roles.control_plane.nodes import node_troubles

    def node(name: str, **conditions: str) -> dict[str, Any]:
        return {
            "metadata": {"name": name},
            "status": {"conditions": [{"type": t, "status": s} for t, s in conditions.items()]},
        }

    out = json.dumps(
        {
            "items": [
                node("m1", Ready="True", DiskPressure="True", MemoryPressure="False"),
                node("w1", Ready="True", DiskPressure="False", PIDPressure="False"),
                node("w2", Ready="False", NetworkUnavailable="True", MemoryPressure="True"),
            ]
        }
    )
    assert node_troubles(out) == {"m1": ["DiskPressure"], "w2": ["MemoryPressure", "NetworkUnavailable"]}
    assert node_troubles("not json") == {}


def _node(name: str, ready: str) -> dict[str, Any]:
    return {"kind": "Node", "metadata": {"name": name}, "status": {"conditions": [{"type": "Ready", "status": ready}]}}


def test_the_nodes_view_is_one_list_of_csrs_nodes_and_deployments() -> None:
    from roles.control_plane.nodes import ClusterView, parse_lists, parse_view

    csr = {"kind": "CertificateSigningRequest", "metadata": {"name": "csr-ok"}, "status": {},
           "spec": {"signerName": "kubernetes.io/kubelet-serving", "username": "system:node:w1",
                    "request": _csr("w1", ["w1"], ["10.0.0.21"])}}  # fmt: skip
    pressed = _node("w1", "False")
    pressed["status"]["conditions"].append({"type": "DiskPressure", "status": "True"})
    coredns = {"kind": "Deployment", "metadata": {"name": "coredns"}, "status": {"availableReplicas": 2}}
    other = {"kind": "Deployment", "metadata": {"name": "metrics"}, "status": {"availableReplicas": 0}}
    record = {"kind": "ConfigMap", "metadata": {"name": "keelson-applied"}, "data": {"cni-flannel": "abc", "x": 1}}
    kubeadm = {"kind": "ConfigMap", "metadata": {"name": "kubeadm-config"}, "data": {"cni-flannel": "no"}}
    items = [csr, _node("m1", "True"), pressed, other, kubeadm, coredns, record]
    view = ClusterView().parse(json.dumps({"kind": "List", "items": items}), 0)
    assert [c.name for c in view.pending] == ["csr-ok"]
    assert view.ready == {"m1"} and view.dns
    assert view.troubles == (("w1", ("DiskPressure",)),)
    assert view.applied == {"cni-flannel": "abc"}  # the record's own strings only
    assert parse_view(json.dumps({"items": [{**record, "data": None}]})).applied == {}
    no_dns = json.dumps({"items": [_node("m1", "True"), {**coredns, "status": {}}]})
    assert not parse_view(no_dns).dns
    assert parse_view("Unable to connect to the server") == parse_view("") == parse_view('{"items": 3}')
    assert not parse_view("junk").ready and not parse_view("junk").dns and not parse_view("junk").applied

    # the API's own lists, one after the other (ClusterView's reads): the same view
    def api_list(kind: str) -> str:
        own = [{k: v for k, v in i.items() if k != "kind"} for i in items if i["kind"] == kind]
        return json.dumps({"kind": f"{kind}List", "apiVersion": "v1", "items": own})

    kinds = ("CertificateSigningRequest", "Node", "Deployment", "ConfigMap")
    assert ClusterView().parse("\n".join(api_list(k) for k in kinds) + "\n", 0) == view
    assert parse_lists("".join(api_list(k) for k in kinds)) == view  # no separator needed
    cut = api_list("Node") + "\n" + api_list("Deployment")[:40]  # cut off: what came before it
    assert parse_lists(cut) == parse_view(json.dumps({"items": [_node("m1", "True"), pressed]}))
    assert parse_lists("") == parse_lists("curl: (7) Failed to connect") == parse_view("")


class _Api:
    """A master whose kubectl answers with `views` in turn, recording what it is asked."""

    def __init__(self, *views: str) -> None:
        self.views, self.commands_run = list(views), 0
        self.asked: list[str] = []
        self.host = "m3"

    def run(self, script: str, **_: Any) -> Any:
        from roles.engine.transport import CommandResult

        self.asked.append(script)
        self.commands_run += 1
        asks = "get csr,nodes" in script or "certificatesigningrequests" in script  # kubectl, or ClusterView's curl
        return CommandResult(0, self.views.pop(0) if asks else "", "")


def _ready_view(*not_ready: str) -> str:
    names = ("m1", "m2", "m3", "w1")
    nodes = [_node(n, "False" if n in not_ready else "True") for n in names]
    coredns = {"kind": "Deployment", "metadata": {"name": "coredns"}, "status": {"availableReplicas": 1}}
    return json.dumps({"kind": "List", "items": [*nodes, coredns]})


def test_a_no_op_nodes_phase_reads_the_cluster_from_the_last_masters_batch(tmp_path: Path) -> None:
    from roles.control_plane.cluster_ops import KUBEADM_DONE
    from roles.control_plane.manifests import ApplyManifests
    from roles.control_plane.nodes import ClusterView, ServingCertPresent, ServingCertsAndReady
    from roles.engine.context import HostContext, RunContext
    from tests.fake_pool import FakePool

    cluster = parse_inventory(INVENTORY)
    phase = ServingCertsAndReady()
    asked = {h.name: {f.key for f in phase.facts(HostContext(cluster, h, tmp_path))} for h in cluster.hosts}
    assert [n for n, keys in asked.items() if ClusterView().key in keys] == ["m3"]  # one master asks the API
    flannel = ApplyManifests("Cluster network | flannel", lambda c: {"cni-flannel": "kind: Namespace"})
    assert {f.key for f in flannel.facts(HostContext(cluster, cluster.masters[-1], tmp_path))} <= asked[
        "m3"
    ]  # same read
    api = _Api()
    batch = {ClusterView().key: ClusterView().parse(_ready_view(), 0), ServingCertPresent().key: True,
             KUBEADM_DONE.key: True}  # fmt: skip
    pool = FakePool(cluster)
    pool.transports = {h.name: api if h.name == "m3" else None for h in cluster.hosts}  # type: ignore[misc]
    pool.gathered = lambda host, key: (key in batch, batch.get(key))
    outcomes = phase.run(RunContext(cluster, tmp_path), pool)  # type: ignore[arg-type]
    assert not any(o.changed for o in outcomes.values())
    assert api.asked == []  # nothing asked beyond the batch


def test_the_nodes_phase_looks_again_until_every_node_is_ready(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from roles.control_plane import nodes
    from roles.control_plane.cluster_ops import KUBEADM_DONE
    from roles.control_plane.nodes import ClusterView, ServingCertPresent, ServingCertsAndReady
    from roles.engine.context import RunContext
    from tests.fake_pool import FakePool

    monkeypatch.setattr(nodes, "POLL_S", 0.0)
    cluster = parse_inventory(INVENTORY)
    api = _Api(_ready_view("w1"), _ready_view())
    batch = {ClusterView().key: ClusterView().parse(_ready_view("w1", "m2"), 0), ServingCertPresent().key: True,
             KUBEADM_DONE.key: True}  # fmt: skip
    pool = FakePool(cluster)
    pool.transports = {h.name: api if h.name == "m3" else None for h in cluster.hosts}  # type: ignore[misc]
    pool.gathered = lambda host, key: (key in batch, batch.get(key))
    ServingCertsAndReady().run(RunContext(cluster, tmp_path), pool)  # type: ignore[arg-type]
    assert len(api.asked) == 2 and all(s == ClusterView().command() for s in api.asked)  # fresh looks


def test_the_cluster_view_reads_the_api_as_the_admin_kubeconfig_says(tmp_path: Path) -> None:
    """ClusterView's command through a real shell, with a stand-in curl: the kubeconfig's server and its three PEMs
    (in a private folder, removed after), the four reads; no kubeconfig: nothing asked, an empty view."""
    import base64
    import os
    import subprocess

    from roles.control_plane.nodes import API_READS, ClusterView

    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    conf = tmp_path / "admin.conf"
    conf.write_text(
        "apiVersion: v1\nclusters:\n- cluster:\n"
        f"    certificate-authority-data: {b64('CA PEM')}\n    server: https://198.18.1.100:6443\n  name: kubernetes\n"
        "users:\n- name: kubernetes-admin\n  user:\n"
        f"    client-certificate-data: {b64('CERT PEM')}\n    client-key-data: {b64('KEY PEM')}\n"
    )
    bin_dir, seen = tmp_path / "bin", tmp_path / "seen"
    bin_dir.mkdir()
    (bin_dir / "curl").write_text(
        "#!/bin/bash\nwhile [ $# -gt 0 ]; do case $1 in\n"
        f'  --cacert|--cert|--key) echo "$1 $(cat "$2") $(stat -c %a "$(dirname "$2")")" >> {seen}; '
        f'dirname "$2" >> {seen}.dir; shift 2;;\n'
        f'  https://*) echo "$1" >> {seen}; echo \'{{"kind": "NodeList", "items": []}}\'; shift;;\n'
        "  *) shift;;\nesac; done\n"
    )
    (bin_dir / "curl").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    fact = ClusterView(str(conf))
    proc = subprocess.run(["bash", "-c", fact.command()], capture_output=True, text=True, check=False, env=env)
    assert proc.returncode == 0 and proc.stdout.count("NodeList") == 4
    lines = seen.read_text().splitlines()
    assert lines[:3] == ["--cacert CA PEM 700", "--cert CERT PEM 700", "--key KEY PEM 700"]
    assert lines[3:] == [f"https://198.18.1.100:6443{path}" for path in API_READS]
    assert not any(Path(d).exists() for d in Path(f"{seen}.dir").read_text().split())  # the PEMs are gone
    assert fact.parse(proc.stdout, 0) == fact.parse("", 0)  # (empty lists)

    seen.unlink()
    conf.write_text(conf.read_text().replace("server: https://198.18.1.100:6443", 'server: "https://[fd00::1]:6443"'))
    subprocess.run(["bash", "-c", fact.command()], capture_output=True, text=True, check=True, env=env)
    assert seen.read_text().splitlines()[3] == f"https://[fd00::1]:6443{API_READS[0]}"  # a quoted server

    seen.unlink()
    missing = ClusterView(str(tmp_path / "none.conf"))
    proc = subprocess.run(["bash", "-c", missing.command()], capture_output=True, text=True, check=False, env=env)
    assert (proc.stdout, proc.returncode, seen.exists()) == ("", 0, False)
