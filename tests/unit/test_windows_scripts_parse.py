"""Every PowerShell script keelson can send a Windows host parses with tree-sitter-powershell with no ERROR or
MISSING node: each `.ps1.j2` template of roles/windows (rendered in each of its shapes), every command of every
Windows phase of inventory/examples/ha-5-windows.yaml, the runner's fact batches and host scripts around them, the
transport's stdin bootstrap and put/get, and the Windows facts. The role's other templates (TOML, JSON, YAML) are
read by their own parsers. Windows cannot run here: parsing is the check these scripts get before a Windows host.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import tree_sitter
import tree_sitter_powershell
import yaml

from inventory.loader import parse_inventory
from inventory.model import OS, Cluster
from provision.artifacts.serve import MirrorServer
from roles.engine import powershell
from roles.engine.command import Command
from roles.engine.context import RunContext
from roles.engine.nodes import NodeIPFact
from roles.engine.phase import Phase
from roles.engine.transport import CommandResult, PowerShellTransport
from roles.pki import kubernetes as k8s_pki
from roles.state import StateDir
from roles.windows import nodes, render
from roles.windows.defaults import DEFAULTS
from roles.windows.phases import phases as windows_phases
from tests.windows_helpers import fake_windows_mirror, windows_phase_commands, windows_variant

TEMPLATES = Path(render.__file__).parent / "templates"
PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))


def problems(script: str) -> list[str]:
    """Every ERROR or MISSING node, with its line and the text around it."""
    data = script.encode()
    tree = PARSER.parse(data)
    found = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            row, column = node.start_point
            line = data.splitlines()[row].decode(errors="replace") if row < len(data.splitlines()) else ""
            found.append(f"{'MISSING' if node.is_missing else 'ERROR'} {node.type} at {row + 1}:{column + 1}: {line}")
        stack.extend(node.children)
    assert bool(found) == tree.root_node.has_error, found
    return found


def test_the_parser_finds_broken_scripts() -> None:
    """The check can fail: scripts with a missing brace, an unclosed string, a broken here-string."""
    assert problems("if ($a -eq 1) { Write-Output 'x' }") == []
    assert problems("if ($a -eq 1) { Write-Output 'x' ")
    assert problems("Write-Output 'unterminated")
    assert problems("$x = @'\nnot closed\n")
    assert problems("foreach ($p in @('a', 'b') { $p }")


# -- the role's templates, each rendered in every shape it has -------------------------------------------------------

PS1: dict[str, list[Callable[[], str]]] = {
    "write-file.ps1.j2": [
        lambda: render.write_file(r"C:\etc\x\a b.conf", b"it's\n", secret=False),
        lambda: render.write_file(
            DEFAULTS.kube_proxy_kubeconfig, b"key", secret=True, then=render.restart("service", "kube-proxy")
        ),
    ],
    "restart.ps1.j2": [lambda: render.restart("service", "containerd"), lambda: render.restart("task", "flanneld")],
    "folders.ps1.j2": [lambda: render.folders([r"C:\k", r"C:\Program Files\containerd", "C:\\it's"])],
    "feature.ps1.j2": [lambda: render.feature("Containers")],
    "firewall.ps1.j2": [lambda: render.firewall(list(DEFAULTS.firewall_rules))],
    "fetch.ps1.j2": [
        lambda: render.fetch(
            [render.FetchPayload("release/x/kubelet.exe", "a" * 64, "https://dl.k8s.io/release/x/kubelet.exe")],
            [render.FetchFile("a" * 64, r"C:\k\kubelet.exe")],
            [
                render.FetchArchive(
                    "containerd/v2/containerd.tar.gz",
                    "b" * 64,
                    (("bin/containerd.exe", r"C:\Program Files\containerd\containerd.exe"),),
                    r"C:\ProgramData\keelson\artifacts\containerd.tar.gz.installed",
                )
            ],
            services=("kubelet",),
            tasks=("flanneld",),
        )
    ],
    "containerd-service.ps1.j2": [render.containerd_service],
    "service.ps1.j2": [
        lambda: render.service(
            "kubelet",
            render.kubelet_command("w", "10.0.0.1", ["a=b"]),
            description="d",
            depends="containerd",
            start=False,
        ),
        lambda: render.service("kube-proxy", render.kube_proxy_command(), description="d", start=True),
    ],
    "start-service.ps1.j2": [lambda: render.start_service("kubelet")],
    "start-flanneld.ps1.j2": [lambda: render.start_flanneld("win-1", "10.30.0.31")],
    "flanneld-task.ps1.j2": [render.flanneld_task],
    "join.ps1.j2": [lambda: render.join(False), lambda: render.join(True)],
    "kube-proxy.ps1.j2": [
        lambda: render.kube_proxy_script('apiVersion: v1\nkind: X\nsourceVip: "@@KEELSON_SOURCE_VIP@@"\n')
    ],
}


def example_cluster() -> Cluster:
    return parse_inventory(yaml.safe_dump(windows_variant("http://127.0.0.1:1")))


OTHER: dict[str, Callable[[], object]] = {
    "containerd-config.toml.j2": lambda: tomllib.loads(render.containerd_config("registry.k8s.io/pause:3.10.2")),
    "cni-flannel.conf.j2": lambda: json.loads(render.cni_conf(example_cluster())),
    "flannel-net-conf.json.j2": lambda: json.loads(render.flannel_net_conf(example_cluster())),
    "kube-proxy-config.yaml.j2": lambda: yaml.safe_load(
        render.kube_proxy_config(example_cluster(), "win-1", "10.2.3.4")
    ),
    "kubeconfig.yaml.j2": lambda: yaml.safe_load(render.kubeconfig(example_cluster(), "win-1", "u", b"c", b"c", b"k")),
}


def test_every_template_is_in_a_table() -> None:
    assert sorted(p.name for p in TEMPLATES.iterdir()) == sorted([*PS1, *OTHER])


@pytest.mark.parametrize(("name", "index"), [(n, i) for n, shapes in PS1.items() for i in range(len(shapes))])
def test_each_powershell_template_parses(name: str, index: int) -> None:
    assert problems(PS1[name][index]()) == []


@pytest.mark.parametrize("name", list(OTHER))
def test_each_other_template_is_valid_in_its_own_format(name: str) -> None:
    assert OTHER[name]()


def test_the_kube_proxy_config_is_valid_yaml_once_the_host_fills_the_vip() -> None:
    config = render.kube_proxy_config(example_cluster(), "win-1", render.VIP_TOKEN)
    doc = yaml.safe_load(config.replace(render.VIP_TOKEN, "10.244.3.2"))
    assert doc["winkernel"] == {"networkName": "flannel.4096", "sourceVip": "10.244.3.2", "enableDSR": False}
    assert doc["mode"] == "kernelspace" and doc["clientConnection"]["kubeconfig"] == DEFAULTS.kube_proxy_kubeconfig


# -- every command of every Windows phase, and the runner's scripts around them -----------------------------------


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, dict[tuple[str, str], list[Command]]]]:
    root = tmp_path_factory.mktemp("mirror")
    fake_windows_mirror(root)
    state = tmp_path_factory.mktemp("state")
    k8s_pki.ensure(StateDir(state))
    with MirrorServer(root, "127.0.0.1") as server:
        cluster = parse_inventory(yaml.safe_dump(windows_variant(server.url)))
        yield cluster, windows_phase_commands(cluster, state)


def test_every_command_of_every_windows_phase_parses(
    planned: tuple[Cluster, dict[tuple[str, str], list[Command]]],
) -> None:
    _, commands = planned
    assert len(commands) == 10  # 5 phases of steps x 2 Windows workers
    for (title, host), cmds in commands.items():
        for command in cmds:
            assert problems(command.script) == [], f"{title} on {host}: {command.shown()}"


def test_the_runners_windows_scripts_parse(
    planned: tuple[Cluster, dict[tuple[str, str], list[Command]]], tmp_path: Path
) -> None:
    cluster, commands = planned
    for (title, _host), cmds in commands.items():
        assert problems(powershell.host_script(cmds, "0123456789ab")) == [], title
    ctx = RunContext(cluster, tmp_path).host_context(cluster.host("win-1"))
    facts = {f.key: f for p in windows_phases(cluster) if isinstance(p, Phase) for s in p.steps for f in s.facts(ctx)}
    script, _ = powershell.batch_script(list(facts.values()))
    assert len(facts) > 10 and problems(script) == []
    for fact in facts.values():
        assert problems(fact.command()) == [], fact.key


class RecordingSSH:
    """Stands in for the SSH connection under PowerShellTransport: records what would be sent, answers rc 0."""

    host = "win-1"

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None]] = []

    def _exec(self, command: str, stdin: bytes | None, timeout: float | None) -> CommandResult:
        self.sent.append((command, stdin))
        return CommandResult(0, "QUJD\r\n", "")

    def close(self) -> None:
        return None


def decoded(command: str, stdin: bytes | None) -> str:
    """The script a Windows host runs: the -EncodedCommand (UTF-16LE), or what the stdin bootstrap reads."""
    script = base64.b64decode(command.rsplit(" ", 1)[1]).decode("utf-16-le")
    if script == powershell.STDIN_BOOTSTRAP:
        assert stdin is not None
        return base64.b64decode(stdin.strip()).decode()
    return script


def test_the_transports_scripts_and_the_other_windows_commands_parse() -> None:
    assert problems(powershell.STDIN_BOOTSTRAP) == []
    assert problems(nodes.WindowsServingCertPresent().command()) == []
    assert problems(NodeIPFact(ipaddress.IPv4Interface("10.30.0.10/24"), OS.WINDOWS).command()) == []
    ssh = RecordingSSH()
    transport = PowerShellTransport(ssh)  # type: ignore[arg-type]
    transport.put("C:\\it's\\a.txt", b"\x00\xffdata")
    assert transport.get("C:\\it's\\a.txt") == b"ABC"  # CRLF from Windows made LF, base64 decoded
    for command, stdin in ssh.sent:
        assert problems(decoded(command, stdin)) == []
