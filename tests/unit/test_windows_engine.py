"""The engine's Windows path without a Windows host: how scripts travel (`PowerShellTransport.wire`: inline
-EncodedCommand, or the stdin bootstrap for secrets and long scripts), and a whole Windows phase run by the runner
against `EmulatedWindows` — a TEST STAND-IN for the SSH connection to a Windows host (Windows cannot run here) that
answers the runner's PowerShell fact batches and host scripts with the markers those scripts print, in Windows'
CRLF line ends. The lab test (tests/lab/test_windows_transport.py) sends the same scripts over real SSH."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
import yaml

from inventory.loader import parse_inventory
from roles.engine import powershell
from roles.engine.context import RunContext
from roles.engine.facts import split_batch
from roles.engine.phase import Phase, Plan
from roles.engine.runner import failed_command, run_plan
from roles.engine.transport import CommandResult, PowerShellTransport
from roles.pki import kubernetes as k8s_pki
from roles.state import StateDir
from roles.windows.phases import phases as windows_phases
from tests.fake_pool import use_fake_pool
from tests.windows_helpers import fake_windows_mirror, windows_variant

MAX = powershell.MAX_COMMAND_LINE


def decode(command: str, stdin: bytes | None) -> tuple[str, str]:
    """(how it travelled, the script the host runs), decoded as Windows and the bootstrap would."""
    assert command.startswith("powershell -NoProfile -NonInteractive -EncodedCommand ")
    script = base64.b64decode(command.rsplit(" ", 1)[1]).decode("utf-16-le")
    if script == powershell.STDIN_BOOTSTRAP:
        assert stdin is not None and stdin.endswith(b"\n")
        return "stdin", base64.b64decode(stdin.strip()).decode()
    assert stdin is None
    return "argv", script


def test_small_scripts_go_inline_secrets_and_long_ones_through_stdin() -> None:
    small = "Write-Output 'héllo'"
    command, stdin = PowerShellTransport.wire(small)
    assert decode(command, stdin) == ("argv", small) and len(command) <= MAX
    secret = "$token = 'abcdef.0123456789abcdef'"
    command, stdin = PowerShellTransport.wire(secret, private=True)
    assert decode(command, stdin) == ("stdin", secret)
    assert "abcdef" not in command and base64.b64encode(secret.encode("utf-16-le")).decode() not in command
    long = "# " + "x" * 4000 + "\nWrite-Output 1"  # fits Linux's argv, not cmd.exe's 8191 characters once encoded
    command, stdin = PowerShellTransport.wire(long)
    assert decode(command, stdin) == ("stdin", long) and len(command) <= MAX
    assert len(PowerShellTransport.encode(long)) > MAX


class EmulatedWindows:
    """TEST STAND-IN for the SSH connection to a Windows host: records what arrives and answers like the scripts
    would on Windows — every fact empty (a fresh host), every command succeeding, unless `fail_at` names a
    command index (then it prints the failure marker and exits 1)."""

    host = "win-1"

    def __init__(self, fail_at: int | None = None) -> None:
        self.received: list[tuple[str, str, str]] = []  # (command line, how, script)
        self.fail_at = fail_at

    def _exec(self, command: str, stdin: bytes | None, timeout: float | None) -> CommandResult:
        how, script = decode(command, stdin)
        self.received.append((command, how, script))
        out = []
        for nonce, index in re.findall(r'"`n@@KF-([0-9a-f]+) (\d+)@@"', script):
            out.append(f"\r\n@@KF-{nonce} {index}@@\r\n")
            out.append(f"\r\n@@KR-{nonce} {index} 0@@\r\n")
        for nonce, index in re.findall(r'"`n@@KC-([0-9a-f]+) (\d+)@@"', script):
            out.append(f"\r\n@@KC-{nonce} {index}@@\r\n")
            if self.fail_at == int(index):
                out.append(f"kubeadm join failed (exit 1)\r\n\r\n@@KX-{nonce} {index} 1@@\r\n")
                return CommandResult(1, "".join(out), "")
        return CommandResult(0, "".join(out), "")

    def close(self) -> None:
        return None


@pytest.fixture
def cluster_and_state(tmp_path: Path):
    from provision.artifacts.serve import MirrorServer

    root = tmp_path / "mirror"
    fake_windows_mirror(root)
    state = tmp_path / "state"
    k8s_pki.ensure(StateDir(state))
    with MirrorServer(root, "127.0.0.1") as server:
        yield parse_inventory(yaml.safe_dump(windows_variant(server.url))), state


def join_phase(cluster) -> Phase:
    phase = next(p for p in windows_phases(cluster) if p.title == "Windows workers | Join (in parallel)")
    assert isinstance(phase, Phase)
    return Phase(phase.title, lambda c: [c.host("win-1")], phase.steps)


def test_a_windows_phase_runs_through_the_runner_in_powershell(cluster_and_state, monkeypatch) -> None:
    cluster, state = cluster_and_state
    ssh = EmulatedWindows()
    use_fake_pool(monkeypatch, {"win-1": PowerShellTransport(ssh)})  # type: ignore[arg-type]
    report = run_plan(Plan("apply", [join_phase(cluster)]), RunContext(cluster, state))
    assert report.ok, report.hosts
    (facts_line, _, facts_script), (run_line, run_how, run_script) = ssh.received
    assert facts_script.startswith(powershell.PROLOGUE) and "@@KF-" in facts_script
    assert run_how == "stdin"  # the join configuration holds the token: never in a command line
    token = k8s_pki.bootstrap_token(StateDir(state))
    assert token not in run_line and token not in facts_line
    commands = report.planned["Windows workers | Join (in parallel)"]["win-1"]
    nonce = re.search(r"@@KC-([0-9a-f]{12}) 0@@", run_script)
    assert nonce is not None
    assert run_script == powershell.host_script(commands, nonce.group(1))  # byte for byte
    assert [c.shown().split(" (")[0] for c in commands][-1] == "kubeadm join as a Windows worker"


def test_a_failing_windows_command_is_named(cluster_and_state, monkeypatch) -> None:
    cluster, state = cluster_and_state
    use_fake_pool(monkeypatch, {"win-1": PowerShellTransport(EmulatedWindows(fail_at=4))})  # type: ignore[arg-type]
    report = run_plan(Plan("apply", [join_phase(cluster)]), RunContext(cluster, state))
    assert not report.ok
    [error] = report.hosts["win-1"].errors
    assert "`kubeadm join as a Windows worker` failed (exit 1): kubeadm join failed (exit 1)" in error


def test_the_markers_the_powershell_scripts_print_are_the_ones_the_runner_reads() -> None:
    script, nonce = powershell.batch_script([], "abc123abc123")
    assert script == powershell.PROLOGUE
    from roles.engine.facts import CommandOutput

    fact = CommandOutput("x", "'a'; 'b'")
    script, nonce = powershell.batch_script([fact, fact], "abc123abc123")
    assert '"`n@@KF-abc123abc123 1@@"' in script and '"`n@@KR-abc123abc123 1 $rc@@"' in script
    printed = (
        "\n@@KF-abc123abc123 0@@\na\nb\n\n@@KR-abc123abc123 0 0@@\n\n@@KF-abc123abc123 1@@\n\n@@KR-abc123abc123 1 3@@\n"
    )
    assert split_batch(printed, 2, nonce) == [("a\nb\n", 0), ("", 3)]
    from roles.engine.command import Command

    commands = [Command("'one'", description="first"), Command("throw 'boom'", description="second")]
    host = powershell.host_script(commands, "abc123abc123")
    assert host.endswith("exit 0\n") and '"`n@@KX-abc123abc123 1 $rc@@"; exit $rc' in host
    output = "\n@@KC-abc123abc123 0@@\none\n\n@@KC-abc123abc123 1@@\nboom\nAt line:1\n\n@@KX-abc123abc123 1 1@@\n"
    command, text = failed_command(output, commands, "abc123abc123")
    assert command is commands[1] and text.startswith("boom")
