"""The Windows role offline (Windows cannot run here): every phase of inventory/examples/ha-5-windows.yaml rendered
for both Windows workers from fresh-host facts, with the artifact digests resolved from a TEST STAND-IN mirror on
loopback (tests/windows_helpers.py); each step's no-op case; what is refused up front; the facts' parsers on
output in the shapes their PowerShell prints, junk included."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from inventory.errors import KeelsonError
from inventory.loader import parse_inventory
from inventory.model import Cluster
from provision.artifacts import layout
from provision.artifacts.serve import MirrorServer
from provision.artifacts.sources import release_asset_digest
from roles.cni.render import manifests
from roles.engine.command import Command
from roles.engine.context import RunContext
from roles.engine.facts import FactValues
from roles.engine.phase import Phase
from roles.pki import kubernetes as k8s_pki
from roles.plans import apply
from roles.state import StateDir
from roles.windows import credentials, render
from roles.windows import fetch as win_fetch
from roles.windows import steps as win_steps
from roles.windows.defaults import DEFAULTS
from roles.windows.facts import (
    FeatureState,
    FileHashes,
    FirewallRules,
    Folders,
    ScheduledTask,
    Services,
    TaskInfo,
    TextFiles,
)
from roles.windows.phases import phases as windows_phases
from tests.windows_helpers import fake_windows_mirror, plan_phase, windows_phase_commands, windows_variant

WINDOWS_PHASES = [
    "Windows workers | Prepare (Containers feature, folders, firewall)",
    "Windows workers | Binaries",
    "Windows workers | containerd",
    "Windows workers | Join (in parallel)",
    "Windows workers | flanneld and kube-proxy",
    "Windows workers | Kubelet serving certificates, nodes Ready",
]


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    root = tmp_path_factory.mktemp("windows-mirror")
    digests = fake_windows_mirror(root)
    with MirrorServer(root, "127.0.0.1") as server:
        yield server.url, digests


def cluster_of(doc: dict[str, Any]) -> Cluster:
    return parse_inventory(yaml.safe_dump(doc))


@pytest.fixture
def cluster(mirror: tuple[str, dict[str, str]]) -> Cluster:
    return cluster_of(windows_variant(mirror[0]))


@pytest.fixture
def state(tmp_path: Path) -> Path:
    k8s_pki.ensure(StateDir(tmp_path))  # the cluster CA exists, as after the apply's PKI phase
    return tmp_path


def written(command: Command) -> str:
    """The content a write-file script carries (base64 inside it)."""
    b64 = re.search(r"FromBase64String\('([A-Za-z0-9+/=]*)'\)", command.script)
    assert b64 is not None, command.shown()
    return base64.b64decode(b64.group(1)).decode()


def test_the_apply_plan_runs_the_windows_phases_after_the_linux_workers(cluster: Cluster) -> None:
    titles = [p.title for p in apply.plan(cluster).phases]
    assert titles[-len(WINDOWS_PHASES) - 1 : -1] == WINDOWS_PHASES  # then the backups, last
    assert titles.index("Workers | Join (in parallel)") < titles.index(WINDOWS_PHASES[0])
    assert apply.plan(cluster).not_applied == (apply.ADDONS_BY_PULUMI,)  # Windows hosts are applied now
    for phase in apply.plan(cluster).phases:
        names = {h.name for h in phase.hosts(cluster)}
        assert ({"win-1", "win-2"} & names == set()) or phase.title in WINDOWS_PHASES, phase.title


def test_every_windows_phase_renders_for_both_hosts_offline(cluster: Cluster, state: Path) -> None:
    commands = windows_phase_commands(cluster, state)
    assert {host for _, host in commands} == {"win-1", "win-2"}
    assert {title for title, _ in commands} == set(WINDOWS_PHASES[:-1])
    for (title, host), cmds in commands.items():
        assert cmds, f"{title} on {host}: a fresh host needs every phase"
        for command in cmds:
            assert (command.shown() and "\n" not in command.shown()) or not command.summary_only
    token = k8s_pki.bootstrap_token(StateDir(state))
    join = commands[("Windows workers | Join (in parallel)", "win-1")]
    secret = [c for c in join if c.sensitive]
    assert len(secret) == 1 and token in written(secret[0])  # the join config: sent through stdin, never argv
    assert all(token not in c.shown() for cmds in commands.values() for c in cmds)
    kube_proxy = commands[("Windows workers | flanneld and kube-proxy", "win-2")]
    assert [c for c in kube_proxy if c.sensitive]  # its kubeconfig holds a private key


def test_the_join_config_is_the_linux_workers_with_containerds_pipe(cluster: Cluster, state: Path) -> None:
    ctx = RunContext(cluster, state).host_context(cluster.host("win-1"))
    doc = yaml.safe_load(win_steps.join_config(ctx).split("\n", 1)[1])
    assert doc["kind"] == "JoinConfiguration"
    assert doc["nodeRegistration"]["criSocket"] == "npipe:////./pipe/containerd-containerd"
    assert doc["nodeRegistration"]["name"] == "win-1"
    assert {"name": "node-ip", "value": "10.30.0.31"} in doc["nodeRegistration"]["kubeletExtraArgs"]
    assert doc["discovery"]["bootstrapToken"]["apiServerEndpoint"] == "10.30.0.10:6443"
    pki = k8s_pki.load(StateDir(state))
    assert pki is not None and doc["discovery"]["bootstrapToken"]["caCertHashes"] == [pki.discovery_hash]


def test_the_fetch_downloads_and_checks_everything_before_installing_anything(
    cluster: Cluster, state: Path, mirror: tuple[str, dict[str, str]]
) -> None:
    [command] = windows_phase_commands(cluster, state)[("Windows workers | Binaries", "win-1")]
    script = command.script
    digests = mirror[1]
    assert set(digests.values()) <= set(script.split("'"))  # every payload, by its digest
    last_download = script.rindex("Invoke-WebRequest")
    first_check = script.index("Get-FileHash")
    first_install = script.index("Move-Item")
    assert last_download < first_check < first_install
    assert script.count("sha256 mismatch") == len(digests)
    assert "Stop-Service -Name 'kubelet'" in script and "Stop-ScheduledTask -TaskName 'flanneld'" in script
    assert "containerd-2.3.4-windows-amd64.tar.gz" in command.shown() and "all or nothing" in command.shown()


def converged_fetch_outputs(cluster: Cluster, state: Path) -> dict[str, str]:
    phase = next(p for p in windows_phases(cluster) if isinstance(p, Phase) and p.title.endswith("Binaries"))
    [step] = phase.steps
    assert isinstance(step, win_fetch.WindowsFetchStep)
    r = step.resolver
    lines, markers = [], []
    for remote, dest in win_fetch.binaries(r):
        lines.append(f"{r.payload(remote).sha256} {dest}")
    for archive in win_fetch.archives(r):
        members = [(dest, hashlib.sha256(dest.encode()).hexdigest()) for _, dest in archive.members]
        lines += [f"{digest} {dest}" for dest, digest in members]
        marker = "\n".join([r.payload(archive.remote).sha256, *(f"{d} {dest}" for dest, d in members)]) + "\n"
        markers.append(f"{base64.b64encode(marker.encode()).decode()} {archive.marker}")
    hashes = FileHashes(step._paths())
    texts = TextFiles(step._markers())
    return {hashes.key: "\n".join(lines), texts.key: "\n".join(markers)}


def test_nothing_is_fetched_when_the_installed_digests_match(cluster: Cluster, state: Path) -> None:
    phase = next(p for p in windows_phases(cluster) if isinstance(p, Phase) and p.title.endswith("Binaries"))
    ctx = RunContext(cluster, state).host_context(cluster.host("win-1"))
    outputs = converged_fetch_outputs(cluster, state)
    assert plan_phase(phase, ctx, outputs) == []
    # one member changed on disk (paths with spaces: containerd's folder): that archive again, nothing else
    key = next(k for k in outputs if k.startswith("win-hashes:"))
    ctr = r"C:\Program Files\containerd\ctr.exe"
    outputs[key] = outputs[key].replace(f"{hashlib.sha256(ctr.encode()).hexdigest()} {ctr}", f"{'0' * 64} {ctr}")
    [command] = plan_phase(phase, ctx, outputs)
    assert "containerd-2.3.4-windows-amd64.tar.gz" in command.shown() and "kubelet.exe" not in command.shown()


def test_each_step_yields_nothing_once_the_host_matches(cluster: Cluster, state: Path) -> None:
    ctx = RunContext(cluster, state).host_context(cluster.host("win-2"))
    file_step = win_steps.WinFileStep(DEFAULTS.cni_conf, lambda c: render.cni_conf(c.cluster))
    digest = hashlib.sha256(render.cni_conf(cluster).encode()).hexdigest()
    assert file_step.check(ctx, FactValues({FileHashes((DEFAULTS.cni_conf,)).key: {DEFAULTS.cni_conf: digest}})) == []
    kubelet = win_steps.kubelet_service()
    command = kubelet.command(ctx)
    joined = {FileHashes((DEFAULTS.join_marker,)).key: {DEFAULTS.join_marker: "0" * 64}}
    running = Services(("kubelet",)).parse(f"kubelet|Running|Auto|{command}", 0)
    assert kubelet.check(ctx, FactValues({Services(("kubelet",)).key: running, **joined})) == []
    stopped = Services(("kubelet",)).parse(f"kubelet|Stopped|Auto|{command}", 0)
    [start] = kubelet.check(ctx, FactValues({Services(("kubelet",)).key: stopped, **joined}))
    assert start.shown() == "start kubelet"
    not_joined: dict[str, dict[str, str]] = {FileHashes((DEFAULTS.join_marker,)).key: {}}
    # not joined yet: kubeadm starts it
    assert kubelet.check(ctx, FactValues({Services(("kubelet",)).key: stopped, **not_joined})) == []
    old = Services(("kubelet",)).parse("kubelet|Running|Auto|C:\\k\\kubelet.exe --old", 0)
    [update] = kubelet.check(ctx, FactValues({Services(("kubelet",)).key: old, **joined}))
    assert "Restart-Service -Name $name -Force" in update.script
    task = win_steps.FlanneldTaskStep()
    ok = {ScheduledTask("flanneld").key: TaskInfo("Running", render.task_arguments())}
    assert task.check(ctx, FactValues(ok)) == []
    config = render.kube_proxy_config(cluster, "win-2", "10.244.7.2")
    kube_proxy = win_steps.KubeProxyConfigStep()
    key = TextFiles((DEFAULTS.kube_proxy_config,)).key
    assert kube_proxy.check(ctx, FactValues({key: {DEFAULTS.kube_proxy_config: config}})) == []
    other = config.replace("10.244.0.0/16", "10.245.0.0/16")
    [rewrite] = kube_proxy.check(ctx, FactValues({key: {DEFAULTS.kube_proxy_config: other}}))
    assert render.VIP_TOKEN in rewrite.script and "Restart-Service -Name 'kube-proxy'" in rewrite.script
    join = win_steps.JoinStep()
    marker = FileHashes((DEFAULTS.join_marker, DEFAULTS.kubelet_conf))
    assert join.check(ctx, FactValues({marker.key: {DEFAULTS.join_marker: "0" * 64}})) == []
    [rejoin] = join.check(ctx, FactValues({marker.key: {DEFAULTS.kubelet_conf: "0" * 64}}))
    assert "reset -f" in rejoin.script and "(reset first)" in rejoin.shown()
    prepare = win_steps.prepare_steps()
    folders = next(s for s in prepare if isinstance(s, win_steps.FoldersStep))
    assert folders.check(ctx, FactValues({Folders(folders.paths).key: frozenset(folders.paths)})) == []
    rules = FirewallRules(tuple(r[0] for r in DEFAULTS.firewall_rules))
    assert win_steps.FirewallStep().check(ctx, FactValues({rules.key: frozenset(rules.names)})) == []
    feature = FeatureState("Containers")
    assert win_steps.FeatureStep().check(ctx, FactValues({feature.key: "Installed"})) == []


def test_a_pending_reboot_stops_the_run_with_what_to_do(cluster: Cluster, state: Path) -> None:
    ctx = RunContext(cluster, state).host_context(cluster.host("win-1"))
    feature = FeatureState("Containers")
    with pytest.raises(KeelsonError, match="waits for a reboot") as info:
        win_steps.FeatureStep().check(ctx, FactValues({feature.key: "InstallPending"}))
    assert "Restart-Computer" in str(info.value)
    with pytest.raises(KeelsonError, match="Windows Server 2019"):
        win_steps.FeatureStep().check(ctx, FactValues({feature.key: "unknown"}))


@pytest.mark.parametrize(
    ("artifacts", "says"),
    [
        ({"source": "local"}, "builds linux/amd64 sets only"),
        ({"source": "mirror", "mirror": "http://127.0.0.1:1"}, "pause image is a Windows image"),
        ({"source": "mirror", "mirror": "http://127.0.0.1:1", "images": "pull", "ca_file": __file__}, "own store"),
    ],
)
def test_sources_a_windows_worker_cannot_use_are_refused_before_anything_runs(
    artifacts: dict[str, str], says: str
) -> None:
    cluster = cluster_of(windows_variant("http://127.0.0.1:1", kubernetes={"artifacts": artifacts}))
    with pytest.raises(KeelsonError, match=says) as info:
        apply.plan(cluster)
    assert "win-1, win-2" in str(info.value)


def test_no_windows_phases_for_a_cni_without_a_windows_side(mirror: tuple[str, dict[str, str]]) -> None:
    calico = cluster_of(windows_variant(mirror[0], network={"cni": "calico"}))
    assert windows_phases(calico) == []
    assert "hosts (windows)" in apply.not_applied_yet(calico)


def test_linux_flannel_uses_the_vni_and_port_windows_accepts_only_with_windows_workers(cluster: Cluster) -> None:
    text = manifests(cluster)["cni-flannel"]
    assert '"Backend": {"Type": "vxlan", "VNI": 4096, "Port": 4789}' in text
    linux_only = cluster_of({**yaml.safe_load(yaml.safe_dump(windows_variant("http://x"))), "hosts": [
        h for h in windows_variant("http://x")["hosts"] if h.get("os") != "windows"]})  # fmt: skip
    assert '"Backend": {"Type": "vxlan"}' in manifests(linux_only)["cni-flannel"]
    assert '"VNI": 4096, "Port": 4789' in render.flannel_net_conf(cluster)


def test_kube_proxy_credentials_are_made_once_and_say_system_kube_proxy(cluster: Cluster, state: Path) -> None:
    first = credentials.kube_proxy_kubeconfig(cluster, "win-1", StateDir(state))
    again = credentials.kube_proxy_kubeconfig(cluster, "win-1", StateDir(state))
    assert first == again  # stable: a re-apply writes nothing
    from cryptography import x509

    doc = yaml.safe_load(first)
    cert = x509.load_pem_x509_certificate(base64.b64decode(doc["users"][0]["user"]["client-certificate-data"]))
    assert cert.subject.rfc4514_string() == "CN=system:kube-proxy"
    assert doc["clusters"][0]["cluster"]["server"] == "https://10.30.0.10:6443"
    fresh = credentials.kube_proxy_kubeconfig(cluster, "win-1", StateDir(state / "none"))
    assert fresh.startswith("# the cluster CA does not exist yet")


def test_windows_remotes_follow_the_upstream_release_sites() -> None:
    rel = windows_variant  # noqa: F841 - the helper's release is the catalogue's
    from tests.windows_helpers import REL

    assert layout.kube_binary_windows(REL, "kubelet").upstream_url == (
        "https://dl.k8s.io/release/v1.37.2/bin/windows/amd64/kubelet.exe"
    )
    containerd = layout.containerd_windows_archive("v2.3.4")
    assert containerd.upstream_url.endswith("/v2.3.4/containerd-2.3.4-windows-amd64.tar.gz")
    assert containerd.upstream_sums is not None and containerd.upstream_sums.endswith(
        "/v2.3.4/containerd-2.3.4-windows-amd64.tar.gz.sha256sum"
    )
    flanneld = layout.flanneld_windows_archive(REL)
    assert flanneld.upstream_release_api == "https://api.github.com/repos/flannel-io/flannel/releases/tags/v0.28.10"
    assert layout.cni_windows_archive(REL).path == "cni-plugins/v1.9.1/cni-plugins-windows-amd64-v1.9.1.tgz"


def test_release_asset_digest_parser() -> None:
    digest = "ab" * 32
    text = (
        '{"tag_name": "v0.28.10", "assets": [{"name": "flanneld-amd64", "digest": "sha256:' + "cd" * 32 + '"},'
        ' {"name": "flannel-v0.28.10-windows-amd64.tar.gz", "digest": "sha256:' + digest.upper() + '"}]}'
    )
    assert release_asset_digest(text, "flannel-v0.28.10-windows-amd64.tar.gz") == digest
    assert release_asset_digest(text, "missing.tar.gz") is None
    assert release_asset_digest('{"assets": [{"name": "x", "digest": null}]}', "x") is None
    assert release_asset_digest('{"assets": [{"name": "x", "digest": "sha1:abc"}]}', "x") is None
    assert release_asset_digest("<html>rate limited</html>", "x") is None


def test_fact_parsers_read_their_output_and_tolerate_junk() -> None:
    paths = (r"C:\k\kubelet.exe", r"C:\Program Files\containerd\containerd.exe")
    hashes = FileHashes(paths)
    out = f"{'a' * 64} {paths[0]}\n{'b' * 64} {paths[1]}\nGet-FileHash : junk\n{'c' * 63} {paths[0]}\n"
    assert hashes.parse(out, 0) == {paths[0]: "a" * 64, paths[1]: "b" * 64}
    texts = TextFiles((r"C:\m",))
    assert texts.parse(base64.b64encode(b"x\ny\n").decode() + r" C:\m" + "\n!!! C:\\m\n", 0) == {r"C:\m": "x\ny\n"}
    services = Services(("kubelet", "containerd"))
    parsed = services.parse('kubelet|Running|Auto|"C:\\k\\kubelet.exe" --a=b|c\nnoise\nother|x|y|z\n', 0)
    assert list(parsed) == ["kubelet"] and parsed["kubelet"].path == '"C:\\k\\kubelet.exe" --a=b|c'
    assert FeatureState("Containers").parse("Installed\r\n", 0) == "Installed"
    assert FeatureState("Containers").parse("Get-WindowsFeature : not recognized", 1) == "unknown"
    assert ScheduledTask("flanneld").parse("Running|-File x.ps1", 0) == TaskInfo("Running", "-File x.ps1")
    assert ScheduledTask("flanneld").parse("", 0) is None
    assert Folders((r"C:\k",)).parse("C:\\k\nC:\\other\n", 0) == frozenset({r"C:\k"})
    assert FirewallRules(("keelson-vxlan",)).parse("keelson-vxlan\r\n", 0) == frozenset({"keelson-vxlan"})
    assert win_steps.source_vip('winkernel:\n  sourceVip: "10.244.3.2"\n') == "10.244.3.2"
    assert win_steps.source_vip("junk") is None and win_steps.source_vip(None) is None


def test_the_kubelet_service_command_line() -> None:
    command = render.kubelet_command("win-1", "10.30.0.31", ["zone=a", "tier=web"])
    assert command.startswith('"C:\\k\\kubelet.exe" --windows-service ')
    assert "--container-runtime-endpoint=npipe:////./pipe/containerd-containerd" in command
    assert "--node-ip=10.30.0.31" in command and "--hostname-override=win-1" in command
    assert '--enforce-node-allocatable="" --resolv-conf=""' in command and "--cgroups-per-qos=false" in command
    assert command.endswith("--node-labels=zone=a,tier=web")
    expected = '"C:\\k\\kube-proxy.exe" --windows-service --config=C:\\etc\\kube-proxy\\config.yaml'
    assert render.kube_proxy_command() == expected
