"""Fact batches sent before the plan is built (roles/engine/facts_ahead.py): the last run's first batch of each host,
sent again as soon as its login is done, and used only when the run's own first script is that very text.

Hosts are folders on this machine with a local bash as their transport (as in test_engine_runner.py); the logins
ahead are stood in for by sending each host's kept script from a thread of its own, as the login's thread does."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path
from typing import Any, cast

import pytest

from inventory.loader import parse_inventory
from inventory.model import Host
from keelson import engine_cmd
from roles.engine import handlers as handlers_module
from roles.engine.context import RunContext
from roles.engine.errors import HostUnreachable
from roles.engine.facts_ahead import NONCE_SLOT, FactsAhead
from roles.engine.phase import Phase, all_hosts
from roles.engine.runner import RunReport, run_plan
from roles.engine.transport import MAX_ARG_SCRIPT, CommandResult, ConnectionPool
from tests.fake_pool import FakePool, use_fake_pool
from tests.unit.test_engine_runner import LAB, LocalTransport, value_step


@pytest.fixture
def hosts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, LocalTransport]:
    made = {}
    for host in parse_inventory(LAB).hosts:
        (tmp_path / host.name).mkdir()
        made[host.name] = LocalTransport(host.name, tmp_path / host.name)
    use_fake_pool(monkeypatch, made)
    monkeypatch.setattr(handlers_module, "PENDING_DIR", '"$H"/pending-handlers')
    return made


PLAN = [Phase("One", all_hosts, [value_step("a", "1")]), Phase("Two", all_hosts, [value_step("b", "2")])]


def cli_run(hosts: dict[str, Any], kept: Path, plan: list[Phase] = PLAN) -> RunReport:
    """A run as the CLI makes it: the kept scripts loaded, each sent from a login's thread, the plan run, saved."""
    cluster = parse_inventory(LAB)
    ahead = FactsAhead(kept)
    pool = FakePool(cluster)
    pool.facts_ahead = ahead
    logins = []
    for name, transport in hosts.items():
        sent = ahead.prepare(name)
        if sent is not None:
            logins.append(threading.Thread(target=sent.run, args=(transport,)))
            logins[-1].start()
    try:
        rc = RunContext(cluster, Path("/nonexistent"), events=lambda e: None)
        return run_plan(plan, rc, cast("ConnectionPool", pool))  # the stand-in, with the run's interface
    finally:
        for login in logins:
            login.join()
        ahead.save()


def counts(hosts: dict[str, LocalTransport]) -> dict[str, int]:
    return {name: t.commands_run for name, t in hosts.items()}


def test_a_no_op_runs_the_batch_sent_ahead_as_its_one_command_per_host(
    hosts: dict[str, LocalTransport], tmp_path: Path
) -> None:
    kept = tmp_path / "kept.json"
    first = cli_run(hosts, kept)  # nothing kept yet: the batch as before, then the changes
    assert first.ok and sorted(first.changed_hosts) == sorted(hosts) and first.facts_ahead == []
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    kept_scripts = json.loads(kept.read_text())["hosts"]
    assert sorted(kept_scripts) == sorted(hosts) and all(NONCE_SLOT in s for s in kept_scripts.values())
    assert kept_scripts["m1"] == hosts["m1"].scripts[0].replace(first_nonce(hosts["m1"].scripts[0]), NONCE_SLOT)

    before = counts(hosts)
    again = cli_run(hosts, kept)
    assert again.ok and again.changed_hosts == [] and again.facts_ahead == sorted(hosts)
    assert all(t.commands_run - before[name] == 1 for name, t in hosts.items())  # the one sent ahead
    assert first_nonce(hosts["m1"].scripts[-1]) != first_nonce(hosts["m1"].scripts[0])  # a new nonce each run

    (hosts["w1"].root / "b").write_text("drifted")  # the host changes behind keelson's back
    before = counts(hosts)
    drifted = cli_run(hosts, kept)
    assert drifted.changed_hosts == ["w1"] and (hosts["w1"].root / "b").read_text() == "2"  # read live, not kept
    assert drifted.facts_ahead == sorted(hosts)
    assert all(t.commands_run - before[name] == (2 if name == "w1" else 1) for name, t in hosts.items())


def first_nonce(script: str) -> str:
    return script.split("@@KF-", 1)[1].split(" ", 1)[0]


def test_a_kept_script_that_is_not_the_runs_own_is_never_used(hosts: dict[str, LocalTransport], tmp_path: Path) -> None:
    kept = tmp_path / "kept.json"
    assert cli_run(hosts, kept).ok
    # a kept script that answers "already 1" without looking: sent, never read (the run's own script differs)
    doc = json.loads(kept.read_text())
    doc["hosts"] = {name: s.replace('cat "$H/a"', "echo -n 1") for name, s in doc["hosts"].items()}
    kept.write_text(json.dumps(doc))
    for transport in hosts.values():
        (transport.root / "a").write_text("0")
    before = counts(hosts)
    report = cli_run(hosts, kept)
    assert report.ok and sorted(report.changed_hosts) == sorted(hosts) and report.facts_ahead == []
    assert all((t.root / "a").read_text() == "1" for t in hosts.values())
    # sent, the run's own, the change, phase Two's facts after it
    assert all(t.commands_run - before[name] == 4 for name, t in hosts.items())
    assert 'cat "$H/a"' in json.loads(kept.read_text())["hosts"]["m1"]  # the run's own kept for the next

    # the plan changed (a step more): its first batch differs from the kept one, which is dropped
    before = counts(hosts)
    plan = [*PLAN, Phase("Three", all_hosts, [value_step("c", "3")])]
    report = cli_run(hosts, kept, plan)
    assert report.ok and report.facts_ahead == [] and all((t.root / "c").read_text() == "3" for t in hosts.values())
    assert all(t.commands_run - before[name] == 3 for name, t in hosts.items())
    assert cli_run(hosts, kept, plan).facts_ahead == sorted(hosts)


class FailsOnce(LocalTransport):
    """The batch sent ahead is lost (the connection dropped, or its output came back cut off)."""

    def __init__(self, host: str, root: Path, how: str) -> None:
        super().__init__(host, root)
        self.how = how

    def run(self, script: str, **kw: Any) -> CommandResult:
        if self.how == "lost" and self.commands_run == 0:
            self.commands_run += 1
            raise HostUnreachable(self.host, "connection lost")
        result = super().run(script, **kw)
        if self.how == "cut" and self.commands_run == 1:
            return CommandResult(result.rc, result.stdout[: len(result.stdout) // 2], result.stderr)
        return result


@pytest.mark.parametrize("how", ["lost", "cut"])
def test_a_batch_sent_ahead_that_failed_is_replaced_by_the_runs_own(
    hosts: dict[str, LocalTransport], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    kept = tmp_path / "kept.json"
    assert cli_run(hosts, kept).ok
    failing = {name: FailsOnce(name, t.root, how) for name, t in hosts.items()}
    monkeypatch.setattr(FakePool, "transports", failing)
    (failing["m2"].root / "a").write_text("drifted")
    report = cli_run(failing, kept)
    assert report.ok and report.changed_hosts == ["m2"] and report.facts_ahead == []
    assert (failing["m2"].root / "a").read_text() == "1"
    assert all(t.commands_run == (4 if name == "m2" else 2) for name, t in failing.items())


def test_a_batch_sent_ahead_always_answers_even_when_its_thread_is_stopped(tmp_path: Path) -> None:
    """The run's first batch on a host waits for what was sent there: an exception that is not a transport's error
    (the thread stopped) still leaves an answer, None, so the run sends its own instead of waiting forever."""

    class Stopped:
        host, commands_run = "m1", 0

        def run(self, script: str, **_: Any) -> CommandResult:
            raise SystemExit(1)

    kept = tmp_path / "kept.json"
    kept.write_text(json.dumps({"format": 1, "hosts": {"m1": f"batch {NONCE_SLOT}"}}))
    sent = FactsAhead(kept).prepare("m1")
    assert sent is not None
    with pytest.raises(SystemExit):
        sent.run(Stopped())  # type: ignore[arg-type]  # a stand-in with the one method used
    assert sent.result(timeout=1) is None


def test_what_was_sent_ahead_is_not_read_once_the_run_has_changed_a_host(
    hosts: dict[str, LocalTransport], tmp_path: Path
) -> None:
    """A host whose first batch comes after a phase changed another host (here w1 joins the plan in its second phase,
    after the first changed m1): what was sent to it before the run is not read, the run asks again."""
    masters = Phase("Masters", lambda c: c.masters, [value_step("a", "1")])
    everyone = Phase("Everyone", all_hosts, [value_step("b", "2")])
    workers = Phase("Workers", lambda c: c.workers, [value_step("c", "3")])
    kept = tmp_path / "kept.json"
    assert cli_run(hosts, kept, [masters, everyone, workers]).ok
    (hosts["m1"].root / "a").write_text("drifted")
    before = counts(hosts)
    report = cli_run(hosts, kept, [masters, everyone, workers])
    assert report.ok and report.changed_hosts == ["m1"]
    assert report.facts_ahead == ["m1", "m2", "m3"]
    assert all(
        t.commands_run - before[name] == (2 if name.startswith("w") else 1) for name, t in hosts.items() if name != "m1"
    )


def test_in_a_serial_phase_a_host_after_one_that_changed_asks_again(
    hosts: dict[str, LocalTransport], tmp_path: Path
) -> None:
    """One host at a time: m2's and m3's batches come after m1's change, so what was sent to them before is not read."""
    serial = Phase("Serial", lambda c: c.masters, [value_step("a", "1")], serial=True)
    kept = tmp_path / "kept.json"
    assert cli_run(hosts, kept, [serial]).ok
    assert cli_run(hosts, kept, [serial]).facts_ahead == ["m1", "m2", "m3"]  # nothing changed: all used
    (hosts["m1"].root / "a").write_text("drifted")
    before = counts(hosts)
    report = cli_run(hosts, kept, [serial])
    assert report.changed_hosts == ["m1"] and report.facts_ahead == ["m1"]
    assert [hosts[n].commands_run - before[n] for n in ("m1", "m2", "m3")] == [2, 2, 2]


def test_the_kept_file_holds_templates_and_is_ignored_when_it_cannot_be_read(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "kept.json"
    ahead = FactsAhead(path)
    assert ahead.prepare("m1") is None  # nothing kept: nothing sent
    ahead.remember("m1", "printf '@@KF-abc123 0@@'; x\n", "abc123")
    ahead.remember("m1", "a later batch\n", "def456")  # only a host's first batch of the run is kept
    ahead.save()
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700 and stat.S_IMODE(path.stat().st_mode) == 0o600
    again = FactsAhead(path)
    assert again.kept == {"m1": f"printf '@@KF-{NONCE_SLOT} 0@@'; x\n"}
    one, two = again.prepare("m1"), FactsAhead(path).prepare("m1")
    assert one is not None and two is not None and one.nonce != two.nonce
    assert one.script == f"printf '@@KF-{one.nonce} 0@@'; x\n"
    mtime = path.stat().st_mtime_ns
    again.remember("m1", one.script, one.nonce)
    again.save()
    assert path.stat().st_mtime_ns == mtime  # unchanged: not written
    big = FactsAhead(tmp_path / "big.json")
    big.remember("m1", "x" * (MAX_ARG_SCRIPT + 1), "n")
    big.save()
    assert not (tmp_path / "big.json").exists()  # too large for a command line: never sent ahead
    for junk in ("{not json", '{"format": 99, "hosts": {"m1": "x"}}', '["m1"]', '{"format": 1, "hosts": {"m1": 3}}'):
        path.write_text(junk)
        assert FactsAhead(path).kept == {}


def test_the_folder_keeps_the_latest_files_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("roles.engine.facts_ahead.MAX_FILES", 3)
    for i in range(5):
        ahead = FactsAhead(tmp_path / f"{i}.json")
        ahead.remember("m1", f"batch {i} n", "n")
        ahead.save()
        os.utime(ahead.path, ns=(i * 10**9, i * 10**9))  # type: ignore[arg-type]
    FactsAhead(tmp_path / "5.json").save()  # nothing seen: nothing written, nothing removed
    assert sorted(f.name for f in tmp_path.glob("*.json")) == ["2.json", "3.json", "4.json"]


def test_the_cli_keeps_one_file_per_inventory_selection_and_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    inventory = tmp_path / "inv.yaml"
    path = engine_cmd._facts_ahead(inventory, None, None).path
    assert path is not None and path.parent == tmp_path / "cache" / "keelson" / "facts-ahead"
    assert (
        engine_cmd._facts_ahead(inventory, None, " m1,m2").path
        == engine_cmd._facts_ahead(inventory, None, "m2,m1").path
    )
    others = {
        engine_cmd._facts_ahead(tmp_path / "other.yaml", None, None).path,
        engine_cmd._facts_ahead(inventory, ["prepare-hosts"], None).path,
        engine_cmd._facts_ahead(inventory, None, "m1").path,
    }
    monkeypatch.setattr("keelson.__version__", "0.0.0-other")
    others.add(engine_cmd._facts_ahead(inventory, None, None).path)
    assert path not in others and len(others) == 4


def test_a_login_ahead_sends_the_kept_batch_before_handing_over_its_connection(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """ConnectionPool.connect_ahead: each login's thread registers the kept batch before the run can have the
    connection (so the run's first batch finds it, never sending a second), then runs it there; a failed login sends
    nothing."""
    from roles.engine import transport as transport_module

    ran: list[tuple[str, str]] = []

    class FakeSSH:
        def __init__(self, host: Host, cluster: Any, **_: Any) -> None:
            if host.name == "w1":
                raise HostUnreachable(host.name, "cannot connect: refused")
            self.host, self.commands_run = host.name, 0

        def run(self, script: str, **_: Any) -> CommandResult:
            ran.append((self.host, threading.current_thread().name))
            return CommandResult(0, "", "")

        def close(self) -> None:
            return None

    monkeypatch.setattr(transport_module, "SSHTransport", FakeSSH)
    monkeypatch.setattr(ConnectionPool, "route", lambda self, host: None)
    cluster = parse_inventory(LAB)
    kept = tmp_path / "kept.json"
    kept.write_text(json.dumps({"format": 1, "hosts": {h.name: f"batch {NONCE_SLOT}" for h in cluster.hosts}}))
    ahead = FactsAhead(kept)
    pool = ConnectionPool(cluster)
    pool.connect_ahead(cluster.hosts, at_once=2, facts=ahead)
    for host in cluster.hosts:
        if host.name == "w1":
            with pytest.raises(HostUnreachable):
                pool.get(host)
            assert ahead.take("w1") is None
            continue
        pool.get(host)
        sent = ahead.take(host.name)
        assert sent is not None and sent.script == f"batch {sent.nonce}"
        assert sent.result() == CommandResult(0, "", "")
    assert sorted(h for h, _ in ran) == sorted(h.name for h in cluster.hosts if h.name != "w1")
    assert {thread for _, thread in ran} <= {"login-0", "login-1"}
    pool.close()
