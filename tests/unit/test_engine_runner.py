"""The runner without SSH: each "host" is a folder on this machine and its transport a local bash (no root needed).

Facts, plans, changes, handlers, serial gates, fail-fast and dry runs are the real runner's; only the wire is fake.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from inventory.loader import parse_inventory
from inventory.model import Cluster, Host
from roles.engine import handlers as handlers_module
from roles.engine import runner as runner_module
from roles.engine.command import Command
from roles.engine.context import HostContext, RunContext
from roles.engine.errors import CommandFailed
from roles.engine.events import Event, HostFailed, HostPlanned
from roles.engine.facts import CommandOutput, Fact, FactValues
from roles.engine.phase import AnyPhase, CustomPhase, HostOutcome, Phase, all_hosts, matches, role_names, unknown_names
from roles.engine.step import CommandStep, Handler, Step
from roles.engine.transport import CommandResult, ConnectionPool, Transport
from tests.fake_pool import use_fake_pool

LAB = (Path(__file__).parents[2] / "inventory" / "examples" / "lab.yaml").read_text()


class LocalTransport:
    def __init__(self, host: str, root: Path) -> None:
        self.host = host
        self.commands_run = 0
        self.root = root
        self.scripts: list[str] = []
        self.private: list[bool] = []  # per script: whether it was to travel as a private file

    def run(
        self, script: str, *, timeout: float | None = None, check: bool = False, private: bool = False
    ) -> CommandResult:
        self.commands_run += 1
        self.scripts.append(script)
        self.private.append(private)
        proc = subprocess.run(
            ["bash", "-c", script], capture_output=True, text=True, env={"H": str(self.root)}, check=False
        )
        if check and proc.returncode:
            raise CommandFailed(self.host, proc.stderr)
        return CommandResult(proc.returncode, proc.stdout, proc.stderr)

    def put(self, path: str, data: bytes, mode: int = 0o644) -> None:
        raise NotImplementedError

    def send_files(self, files: list[tuple[Path, str]]) -> str:
        raise NotImplementedError

    def get(self, path: str) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        return None


@pytest.fixture
def hosts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, LocalTransport]:
    cluster = parse_inventory(LAB)
    made = {}
    for host in cluster.hosts:
        (tmp_path / host.name).mkdir()
        made[host.name] = LocalTransport(host.name, tmp_path / host.name)
    use_fake_pool(monkeypatch, made)
    monkeypatch.setattr(handlers_module, "PENDING_DIR", '"$H"/pending-handlers')  # each host's own folder
    return made


def value_step(name: str, value: str, notifies: tuple[str, ...] = ()) -> Step:
    """File $H/<name> holds `value`."""
    fact = CommandOutput(f"value-{name}", f'cat "$H/{name}"')
    return CommandStep(
        f"test | {name}",
        (fact,),
        lambda ctx, facts: facts.get(fact)[0] == value,
        lambda ctx, facts: [Command(f'printf %s {value} > "$H/{name}"')],
        notifies=notifies,
    )


def touch_handler(name: str) -> Handler:
    return Handler(name, lambda ctx, facts: [Command(f'echo x >> "$H/{name}.log"')])


def run(plan: Sequence[AnyPhase], events: list[Event] | None = None, **kw: Any) -> runner_module.RunReport:
    cluster = parse_inventory(LAB)
    sink = events.append if events is not None else (lambda e: None)
    return runner_module.run_plan(plan, RunContext(cluster, Path("/nonexistent"), events=sink, **kw))


def test_apply_then_rerun_is_no_op_in_one_command_per_host(hosts: dict[str, LocalTransport]) -> None:
    plan = [
        Phase("One", all_hosts, [value_step("a", "1")]),
        Phase("Two", all_hosts, [value_step("b", "2", notifies=("h",))], handlers=[touch_handler("h")]),
    ]
    first = run(plan)
    assert first.ok and sorted(first.changed_hosts) == sorted(hosts)
    assert (hosts["m1"].root / "b").read_text() == "2" and (hosts["m1"].root / "h.log").read_text() == "x\n"
    again = run(plan)
    assert again.ok and again.changed_hosts == [] and again.changes() == {}
    assert sorted(first.changes()) == sorted(hosts)
    # phase Two: the handler noted as due, b's write, the handler, its note cleared
    assert [line.split(":")[0] for line in first.changes()["m1"]] == ["One", "Two", "Two", "Two", "Two"]
    assert not any(list((t.root / "pending-handlers").glob("*")) for t in hosts.values())
    assert all(t.commands_run - 4 == 1 for t in hosts.values())  # first run: facts, run, facts, run; rerun: facts
    assert (hosts["m1"].root / "h.log").read_text() == "x\n"  # the handler ran only with its change


def test_dry_run_runs_nothing_and_shows_what_apply_runs(hosts: dict[str, LocalTransport]) -> None:
    plan = [Phase("One", all_hosts, [value_step("a", "1")])]
    events: list[Event] = []
    planned = run(plan, events, dry_run=True)
    assert not (hosts["w1"].root / "a").exists()
    assert {e.host for e in events if isinstance(e, HostPlanned)} == set(hosts)
    applied = run(plan)
    assert {p: {h: [c.script for c in cs] for h, cs in by.items()} for p, by in planned.planned.items()} == {
        p: {h: [c.script for c in cs] for h, cs in by.items()} for p, by in applied.planned.items()
    }


def test_a_failing_command_stops_the_plan_after_its_phase(hosts: dict[str, LocalTransport]) -> None:
    fact = CommandOutput("never", "false")
    boom = CommandStep(
        "test | boom",
        (fact,),
        lambda ctx, facts: ctx.host.name != "w2",
        lambda ctx, facts: [Command("echo s3cret-token >&2; exit 7", secrets=("s3cret-token",))],
    )
    events: list[Event] = []
    report = run(
        [Phase("One", all_hosts, [value_step("a", "1"), boom]), Phase("Two", all_hosts, [value_step("b", "2")])],
        events,
    )
    assert not report.ok and report.stopped_after == "One"
    (error,) = report.hosts["w2"].errors
    assert error.startswith("One: w2:") and "exit 7" in error and "***" in error and "s3cret" not in error
    assert (hosts["m1"].root / "a").exists()  # the phase finished on the other hosts
    assert not any((t.root / "b").exists() for t in hosts.values())  # but no later phase ran anywhere
    assert [e.host for e in events if isinstance(e, HostFailed)] == ["w2"]


def test_serial_phase_gates_each_host_and_stops_at_the_first_failure(hosts: dict[str, LocalTransport]) -> None:
    order: list[str] = []

    def gate(ctx: HostContext, transport: Transport) -> None:
        order.append(ctx.host.name)
        if ctx.host.name == "m2":
            raise CommandFailed("m2", "not healthy before the deadline")

    report = run([Phase("Rolling", lambda c: c.masters, [value_step("r", "1")], serial=True, gate=gate)])
    assert order == ["m1", "m2"]
    assert not report.ok and not (hosts["m3"].root / "r").exists()
    assert "not healthy" in report.hosts["m2"].errors[0]


def test_only_and_hosts_select(hosts: dict[str, LocalTransport]) -> None:
    plan = [Phase("One", all_hosts, [value_step("a", "1")]), Phase("Two things", all_hosts, [value_step("b", "2")])]
    report = run(plan, only=frozenset({"two"}), host_names=frozenset({"w1"}))
    assert report.ok and list(report.hosts) == ["w1"]
    assert (hosts["w1"].root / "b").exists() and not (hosts["w1"].root / "a").exists()
    assert not (hosts["m1"].root / "b").exists()


def test_a_step_without_its_fact_declared_fails_loudly() -> None:
    fact = CommandOutput("undeclared", "true")
    step = CommandStep("test | sloppy", (), lambda ctx, facts: facts.get(fact)[1] == 0, lambda c, f: [])
    cluster = parse_inventory(LAB)
    with pytest.raises(KeyError, match="not gathered"):
        step.check(HostContext(cluster, cluster.hosts[0], Path("/x")), FactValues({}))


def test_a_handler_cut_off_by_a_failure_still_runs_on_the_next_run(hosts: dict[str, LocalTransport]) -> None:
    """The file is written, then the run dies before its handler has run (here the handler itself fails once). The
    rerun finds the file already right, yet runs the handler, because the host noted it as due before the write."""
    flaky = Handler("h", lambda ctx, facts: [Command('[ -e "$H/allow" ] && echo x >> "$H/h.log"')])
    plan = [Phase("Two", all_hosts, [value_step("b", "2", notifies=("h",))], handlers=[flaky])]
    first = run(plan)
    assert not first.ok
    assert (hosts["m1"].root / "b").read_text() == "2" and not (hosts["m1"].root / "h.log").exists()
    for transport in hosts.values():
        (transport.root / "allow").touch()
    second = run(plan)
    assert second.ok and sorted(second.changed_hosts) == sorted(hosts)
    assert not any("printf" in line for line in second.changes()["m1"])  # b is not written again
    assert (hosts["m1"].root / "h.log").read_text() == "x\n"
    assert run(plan).changes() == {}  # done: nothing is due any more


def test_a_phase_holding_a_secret_sends_its_script_privately(hosts: dict[str, LocalTransport]) -> None:
    """Facts and plain phases go as command lines; the phase that writes a secret file goes as a private file."""
    import base64

    from roles.engine.step import FileStep

    key = b"-----BEGIN PRIVATE KEY-----\nsecret-material\n"
    m1 = hosts["m1"]
    first = lambda c: c.masters[:1]  # noqa: E731 - a host selector
    plan = [
        Phase("Plain", first, [FileStep(str(m1.root / "plain"), b"x")]),
        Phase("Keys", first, [FileStep(str(m1.root / "key"), key, 0o600, secret=True)]),
    ]
    events: list[Event] = []
    assert run(plan, events, dry_run=True).ok
    shown = [line for e in events if isinstance(e, HostPlanned) for line in e.commands]
    assert shown[-1].startswith(f"write {m1.root / 'key'} (secret, {len(key)} bytes, mode 0600, sha256 ")
    assert all(base64.b64encode(key).decode() not in line for line in shown)
    m1.scripts.clear()
    m1.private.clear()
    assert run(plan).ok
    assert (m1.root / "key").read_bytes() == key
    assert m1.private == [False, False, False, True]  # facts, the plain write, facts again, the secret write
    payload = base64.b64encode(key).decode()
    assert payload in m1.scripts[3]  # the key's bytes are in that script: it must not be a command line
    assert all(payload not in script for script in m1.scripts[:3])


class CutOffTransport(LocalTransport):
    """Returns a fact batch without the tail of its output, as the SSH transport did when it stopped reading at the
    exit status (sshd sends it before the last of the output)."""

    def run(
        self, script: str, *, timeout: float | None = None, check: bool = False, private: bool = False
    ) -> CommandResult:
        result = super().run(script, timeout=timeout, check=check, private=private)
        if "@@KF-" in script:
            return CommandResult(result.rc, result.stdout[: len(result.stdout) // 2], result.stderr)
        return result


def test_facts_cut_off_fail_the_host_instead_of_reading_as_absent(hosts: dict[str, LocalTransport]) -> None:
    """A fact whose output did not arrive must not read as "missing" (that restarted a healthy etcd member)."""
    plan = [Phase("One", all_hosts, [value_step("a", "1"), value_step("b", "2")])]
    assert run(plan).ok
    hosts["m2"] = CutOffTransport("m2", hosts["m2"].root)
    report = run(plan)
    assert not report.ok and report.changed_hosts == []
    (error,) = report.hosts["m2"].errors
    assert "incomplete output" in error and "value-b" in error
    assert [s for s in hosts["m2"].scripts if "@@KF-" not in s] == []  # nothing ran on the host


class RefusingTransport(LocalTransport):
    """Every command refused before the shell starts, as `sudo -n` refuses a user without a sudoers entry."""

    def run(
        self, script: str, *, timeout: float | None = None, check: bool = False, private: bool = False
    ) -> CommandResult:
        self.scripts.append(script)
        return CommandResult(1, "", "sudo: a password is required\n")


def test_a_fact_batch_the_shell_never_ran_says_why(hosts: dict[str, LocalTransport]) -> None:
    plan = [Phase("One", all_hosts, [value_step("a", "1")])]
    hosts["m2"] = RefusingTransport("m2", hosts["m2"].root)
    report = run(plan)
    (error,) = report.hosts["m2"].errors
    assert "1 of 1 facts missing" in error and "exit 1): sudo: a password is required" in error, error
    assert "the host's shell said why" in error


def test_only_takes_role_names_slugs_and_titles(hosts: dict[str, LocalTransport]) -> None:
    plan = [
        Phase("Validate", all_hosts, [value_step("v", "1")], always=True, role="validate"),
        Phase("Container runtime", all_hosts, [value_step("a", "1")], role="containerd"),
        Phase("lb | config", all_hosts, [value_step("b", "2")], role="loadbalancer"),
        Phase("lb | vip", all_hosts, [value_step("c", "3")], role="loadbalancer"),
    ]
    report = run(plan, only=frozenset({"Load-Balancer"}), host_names=frozenset({"w1"}))  # a role: all its phases
    assert report.ok and sorted(report.planned) == ["Validate", "lb | config", "lb | vip"]
    report = run(plan, only=frozenset({"containerd"}), host_names=frozenset({"w2"}))  # the help's example
    assert sorted(report.planned) == ["Container runtime", "Validate"]
    assert matches(plan[2], "lb-config") and matches(plan[2], "lb | config") and not matches(plan[3], "lb-config")
    assert unknown_names(plan, ["containerd", "nosuch", "lb"]) == ["nosuch"]
    assert role_names(plan) == ["validate", "containerd", "loadbalancer"]


def test_every_phase_of_the_apply_plan_names_its_role() -> None:
    from roles.plans import apply

    phases = apply.phases(parse_inventory(LAB))
    assert all(p.role for p in phases), [p.title for p in phases if not p.role]
    assert {"common", "containerd", "pki", "etcd", "loadbalancer", "backups"} <= set(role_names(phases))
    said = ["containerd", "common", "pki", "etcd", "loadbalancer", "backups", "control-plane", "etcd-binaries"]
    assert unknown_names(phases, said) == []


class CountFiles(CustomPhase):
    """A custom phase that asks every host how many files its folder holds (a fact from the batch when it can)."""

    title = "Custom | count"
    fact = CommandOutput("files", 'ls "$H" | wc -l')

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    def hosts(self, cluster: Cluster) -> list[Host]:
        return list(cluster.hosts)

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (self.fact,)

    def dry_run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, list[Command]]:
        return {}

    def run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, HostOutcome]:
        counts = pool.read_facts(rc.cluster.hosts, lambda _: self.fact)
        self.seen = {name: out.strip() for name, (out, _) in counts.items()}
        return {h.name: HostOutcome() for h in rc.cluster.hosts}


def test_a_custom_phase_reads_its_facts_from_the_batch_while_the_run_changed_nothing(
    hosts: dict[str, LocalTransport],
) -> None:
    """A no-op asks each host one question, custom phases included; once the run changed something, a custom phase
    asks again (a cluster-wide answer may have changed with another host)."""
    run([Phase("One", all_hosts, [value_step("a", "1")])])
    before = {name: t.commands_run for name, t in hosts.items()}
    counting = CountFiles()
    report = run([Phase("One", all_hosts, [value_step("a", "1")]), counting])
    assert report.ok and counting.seen == {name: "1" for name in hosts}
    assert all(t.commands_run - before[name] == 1 for name, t in hosts.items())  # the batch only

    before = {name: t.commands_run for name, t in hosts.items()}
    counting = CountFiles()
    report = run([Phase("One", all_hosts, [value_step("b", "2")]), counting])  # changes every host first
    assert report.ok and counting.seen == {name: "2" for name in hosts}  # read after the change, not from the batch
    assert all(t.commands_run - before[name] == 3 for name, t in hosts.items())  # batch, change, the phase's read


def test_a_gate_after_changes_only_skips_hosts_that_needed_nothing(hosts: dict[str, LocalTransport]) -> None:
    gated: list[str] = []

    def gate(ctx: HostContext, transport: Transport) -> None:
        gated.append(ctx.host.name)

    (hosts["m2"].root / "r").write_text("1")  # m2 already has it
    phase = Phase("Rolling", lambda c: c.masters, [value_step("r", "1")], serial=True, gate=gate)
    phase.gate_after_changes_only = True
    assert run([phase]).ok and gated == ["m1", "m3"]
    assert run([phase]).ok and gated == ["m1", "m3"]  # the no-op gates nobody
    phase.gate_after_changes_only = False
    assert run([phase]).ok and gated == ["m1", "m3", "m1", "m2", "m3"]


def test_hosts_with_nothing_to_do_are_planned_in_the_runners_thread(hosts: dict[str, LocalTransport]) -> None:
    import threading

    planned_in: dict[str, set[str]] = {}

    class Where(Step):
        name = "test | where"

        def __init__(self, phase: str, value: str) -> None:
            self.phase, self.inner = phase, value_step(phase, value)

        def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
            return self.inner.facts(ctx)

        def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
            planned_in.setdefault(self.phase, set()).add(threading.current_thread().name)
            return self.inner.check(ctx, facts)

    plan = [Phase("One", all_hosts, [Where("a", "1")]), Phase("Two", all_hosts, [Where("b", "2")])]
    assert run(plan).ok
    (hosts["m2"].root / "b").write_text("drifted")
    planned_in.clear()
    again = run(plan)
    assert again.changed_hosts == ["m2"] and (hosts["m2"].root / "b").read_text() == "2"
    assert threading.current_thread().name not in planned_in["a"]  # facts to gather: each host on a thread
    assert planned_in["b"] == {threading.current_thread().name}  # gathered: planned here, m2's change run on one
    assert all(t.commands_run == (6 if n == "m2" else 5) for n, t in hosts.items())  # fresh 4, again 1 (m2: 2)


def test_the_runs_workers_are_all_started_before_any_phase() -> None:
    """The run's thread pool starts all its threads when it is made (ThreadPoolExecutor alone starts them one per
    task, each start waiting for the interpreter lock while the first hosts' batches hold it): a phase of as many
    slow tasks as workers runs them all together, on threads that existed before it."""
    workers = runner_module._all_started(6)
    try:
        before = {t.ident for t in threading.enumerate()}
        list(workers.map(lambda _: None, range(6)))  # a phase of quick tasks (a Connect whose logins were ahead)
        together = threading.Barrier(6)

        def slow(_: int) -> int | None:
            together.wait(timeout=10)  # a phase run in waves would break the barrier
            return threading.get_ident()

        assert set(workers.map(slow, range(6))) <= before
    finally:
        workers.shutdown()
