"""`keelson exec` without SSH: selection, the command line each host gets, exit codes and events, with each "host"
a local bash behind the test's fake connection pool (the host's `timeout` wrapper runs for real)."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from inventory.loader import parse_inventory
from inventory.model import Cluster
from roles.engine import adhoc
from roles.engine import events as ev
from roles.engine.adhoc import Status, UsageError
from roles.engine.errors import HostKeyMismatch, HostUnreachable
from roles.engine.transport import CommandResult
from tests.fake_pool import FakePool

ROOT = Path(__file__).parents[2]
LAB = (ROOT / "inventory" / "examples" / "lab.yaml").read_text()
DEDICATED = (ROOT / "inventory" / "examples" / "ha-5-windows.yaml").read_text()


class LocalHost:
    """A host whose transport is this machine's bash: `HOST` names it; scripts arrive as the transport gets them."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.commands_run = 0
        self.scripts: list[str] = []

    def run(self, script: str, *, timeout: float | None = None, check: bool = False, private: bool = False):
        self.commands_run += 1
        self.scripts.append(script)
        proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env={"HOST": self.host,
                              "PATH": "/usr/bin:/bin"}, timeout=timeout, check=False)  # fmt: skip
        return CommandResult(proc.returncode, proc.stdout, proc.stderr)

    def close(self) -> None:
        return None


class HangingHost(LocalHost):
    """The connection goes quiet: the transport's own deadline fires (as SSHTransport reports it)."""

    def run(self, script: str, **kw: Any) -> CommandResult:
        raise HostUnreachable(self.host, "connection lost: no result after 2 s") from TimeoutError("no result")


@pytest.fixture
def cluster() -> Cluster:
    return parse_inventory(LAB)


def pool(cluster: Cluster, hosts: dict[str, Any]) -> FakePool:
    fake = FakePool(cluster)
    fake.transports = hosts  # type: ignore[misc]  # this pool's own hosts, not the class's
    return fake


def run(cluster: Cluster, hosts: dict[str, Any], argv: list[str], **kw: Any) -> tuple[adhoc.ExecReport, list[Any]]:
    events: list[ev.Event] = []
    chosen = [cluster.host(n) for n in hosts]
    report = adhoc.run_exec(cluster, chosen, argv, pool=pool(cluster, hosts), events=events.append, **kw)
    return report, events


# -- selection -------------------------------------------------------------------------------------------------


def names(hosts: list[Any]) -> list[str]:
    return [h.name for h in hosts]


def test_selection_by_name_role_or_all(cluster: Cluster) -> None:
    assert names(adhoc.select_hosts(cluster)) == ["m1", "m2", "m3", "w1", "w2"]
    assert names(adhoc.select_hosts(cluster, hosts="w2, m1,w2")) == ["w2", "m1"]  # given order, once each
    assert names(adhoc.select_hosts(cluster, role="master")) == ["m1", "m2", "m3"]
    assert names(adhoc.select_hosts(cluster, role="workers")) == ["w1", "w2"]  # the plural reads as well
    assert names(adhoc.select_hosts(cluster, role="etcd")) == ["m1", "m2", "m3"]  # etcd on the masters
    assert names(adhoc.select_hosts(cluster, role="lb")) == ["m1", "m2", "m3"]  # no dedicated lb: the masters


def test_selection_follows_dedicated_lb_hosts() -> None:
    cluster = parse_inventory(DEDICATED)
    assert names(adhoc.select_hosts(cluster, role="lb")) == ["lb-1", "lb-2"]
    assert names(adhoc.select_hosts(cluster, role="etcd")) == names(cluster.masters)


@pytest.mark.parametrize(
    ("hosts", "role", "message"),
    [
        ("m1,zz,yy", None, "unknown hosts: zz, yy"),
        (" , ", None, "names no host"),
        (None, "boss", "--role boss: no such role"),
        ("m1", "master", "both given"),
    ],
)
def test_bad_selection_is_a_usage_error(cluster: Cluster, hosts: str | None, role: str | None, message: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        adhoc.select_hosts(cluster, hosts, role)
    assert caught.value.exit_code == 2


def test_a_role_no_host_has_is_refused(cluster: Cluster) -> None:
    with pytest.raises(UsageError, match="no host of the inventory has it"):
        adhoc.select_hosts(cluster.model_copy(update={"hosts": cluster.masters}), role="worker")


# -- the command line ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [["uptime"], ["echo", "a b", "$HOME", "`id`", "it's"], ["sh", "-c", "echo one | tr a-z A-Z; exit 3"], ["--", "x"]],
)
def test_each_word_reaches_the_host_as_one_word(argv: list[str]) -> None:
    command = adhoc.remote_command(argv)
    assert shlex.split(command) == argv
    script = adhoc.host_script(command, 30)
    assert shlex.split(script) == ["timeout", "--kill-after=5", "30", *argv]


@pytest.mark.parametrize("argv", [[], [""], ["  "]])
def test_no_command_is_a_usage_error(argv: list[str]) -> None:
    with pytest.raises(UsageError, match="no command given"):
        adhoc.remote_command(argv)


def test_words_are_not_reinterpreted_by_the_hosts_shell(cluster: Cluster, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    hosts = {"m1": LocalHost("m1")}
    report, _ = run(cluster, hosts, ["echo", f"$(touch {marker})", "a  b", "*"])
    assert report.ok
    assert report.results["m1"].stdout == f"$(touch {marker}) a  b *\n"
    assert not marker.exists()
    assert "timeout --kill-after=5 60 echo" in hosts["m1"].scripts[0]  # one bash -c argument, never stdin


# -- results, exit codes, events -------------------------------------------------------------------------------


def test_output_per_host_and_every_kind_of_failure(cluster: Cluster) -> None:
    hosts: dict[str, Any] = {
        "m1": LocalHost("m1"),
        "m2": LocalHost("m2"),
        "m3": HostKeyMismatch("m3", "host key CHANGED for 198.18.0.13 — refusing to connect"),
        "w1": HangingHost("w1"),
        "w2": LocalHost("w2"),
    }
    script = 'echo "out $HOST"; echo "err $HOST" >&2; case $HOST in m2) exit 3;; w2) sleep 30;; esac'
    report, events = run(cluster, hosts, ["sh", "-c", script], timeout_s=1)
    r = report.results
    assert (r["m1"].status, r["m1"].rc, r["m1"].stdout, r["m1"].stderr) == (Status.OK, 0, "out m1\n", "err m1\n")
    assert (r["m2"].status, r["m2"].rc, r["m2"].stdout) == (Status.FAILED, 3, "out m2\n")
    assert r["m3"].status is Status.UNREACHABLE and "host key CHANGED" in r["m3"].error
    assert r["w1"].status is Status.TIMEOUT and r["w1"].rc is None
    assert (r["w2"].status, r["w2"].rc, r["w2"].stdout) == (Status.TIMEOUT, 124, "out w2\n")  # stopped on the host
    assert not report.ok
    assert report.summary().startswith(
        "5 hosts: 1 ok, 1 failed (m2 exit 3), 2 timed out (w1, w2), 1 unreachable (m3) in "
    )
    kinds = [e.kind for e in events]
    assert kinds[0] == "exec_started" and kinds[-1] == "exec_finished"
    outputs = {e.host: e for e in events if isinstance(e, adhoc.HostOutput)}
    failed = {e.host: e for e in events if isinstance(e, ev.HostFailed)}
    assert set(outputs) == {"m1", "m2", "w2"} and set(failed) == {"m3", "w1"}
    finished = events[-1]
    assert finished.hosts["m2"] == {"status": "failed", "rc": 3, "error": ""}
    json.dumps(finished.to_dict())  # the --json stream's last line


def test_all_ok_is_ok(cluster: Cluster) -> None:
    report, _ = run(cluster, {"m1": LocalHost("m1"), "w1": LocalHost("w1")}, ["true"])
    assert report.ok and report.summary().startswith("2 hosts: 2 ok, 0 failed, 0 timed out, 0 unreachable in ")


def test_a_bad_timeout_is_refused(cluster: Cluster) -> None:
    with pytest.raises(UsageError, match="more than 0"):
        run(cluster, {"m1": LocalHost("m1")}, ["true"], timeout_s=0)


# -- the CLI ---------------------------------------------------------------------------------------------------


def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, hosts: dict[str, Any], *args: str) -> Any:
    from keelson.cli import app
    from roles.engine import transport

    inventory = tmp_path / "lab.yaml"
    inventory.write_text(LAB)
    monkeypatch.setattr(FakePool, "transports", hosts)
    monkeypatch.setattr(transport, "ConnectionPool", FakePool)
    return CliRunner().invoke(app, ["exec", "-i", str(inventory), *args], catch_exceptions=False)


def test_cli_blocks_prefix_and_exit_codes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    down = HostUnreachable("w1", "cannot connect to 198.18.0.21:22: [Errno 113] No route to host")
    hosts: dict[str, Any] = {"m1": LocalHost("m1"), "m2": LocalHost("m2"), "w1": down}
    ok = cli(monkeypatch, tmp_path, hosts, "--hosts", "m1,m2", "--", "sh", "-c", "echo hi $HOST; echo oops >&2")
    assert ok.exit_code == 0, ok.output
    assert "── m1 (exit 0, " in ok.output and "hi m1\noops\n" in ok.output
    assert "2 hosts: 2 ok, 0 failed, 0 timed out, 0 unreachable" in ok.output

    prefixed = cli(monkeypatch, tmp_path, hosts, "--hosts", "m1,w1", "--prefix", "--", "sh", "-c", "echo a; echo b")
    assert prefixed.exit_code == 1
    lines = prefixed.output.splitlines()
    assert "m1: a" in lines and "m1: b" in lines
    assert any(line.startswith("w1: w1: cannot connect") for line in lines)
    assert lines[-1].startswith("2 hosts: 1 ok, 0 failed, 0 timed out, 1 unreachable (w1)")


def test_cli_json_stream(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hosts: dict[str, Any] = {"m1": LocalHost("m1"), "m2": LocalHost("m2"), "m3": LocalHost("m3")}
    proc = cli(monkeypatch, tmp_path, hosts, "--role", "master", "--json", "sh", "-c", "echo $HOST; exit ${#HOST}")
    assert proc.exit_code == 1  # exit 2 on every host: `sh -c … exit 2` (no `--`: the command's words stay its own)
    stream = [json.loads(line) for line in proc.output.splitlines()]
    assert stream[0]["event"] == "exec_started" and stream[-1]["event"] == "exec_finished"
    outputs = {e["host"]: (e["rc"], e["stdout"]) for e in stream if e["event"] == "host_output"}
    assert outputs == {"m1": (2, "m1\n"), "m2": (2, "m2\n"), "m3": (2, "m3\n")}
    assert stream[-1]["ok"] is False


def test_cli_usage_errors_exit_2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from keelson.cli import main

    inventory = tmp_path / "lab.yaml"
    inventory.write_text(LAB)
    monkeypatch.setattr("sys.argv", ["keelson", "exec", "-i", str(inventory), "--role", "boss", "--", "true"])
    with pytest.raises(SystemExit) as caught:
        main()
    assert caught.value.code == 2
