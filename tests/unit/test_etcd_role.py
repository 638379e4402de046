"""The etcd role's pure parts: templates, facts, the bootstrap decision, the restart-on-change step, health parsing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from inventory.model import Cluster
from roles.engine.context import HostContext
from roles.engine.facts import CommandOutput, FactValues, FileText, ServiceState, UnitState
from roles.engine.transport import CommandResult
from roles.etcd.bootstrap import NewMemberOfRunningCluster, decide
from roles.etcd.commands import EtcdVersion
from roles.etcd.defaults import DEFAULTS as ETCD
from roles.etcd.facts import EtcdVersionFact, MemberState, MemberStateFact, member_state_script, parse_member_state
from roles.etcd.health import EtcdUnhealthy, missing_or_sick, parse_health, wait_healthy
from roles.etcd.render import render_config, render_unit
from roles.etcd.steps import RestartOnChange, desired_digest, etcd_binaries, version_check
from roles.pki.defaults import DEFAULTS as PKI
from roles.pki.store import ensure_etcd_pki
from roles.state import StateDir

NOW = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
ETCD_DATA_DIR = "/var/lib/etcd"


def make_cluster(n: int = 3) -> Cluster:
    return Cluster.model_validate(
        {
            "name": "roletest",
            "hosts": [{"name": f"m{i}", "address": f"10.2.0.{10 + i}", "roles": ["master"]} for i in range(1, n + 1)],
            "control_plane": {"vip": "10.2.0.100/24"},
        }
    )


@pytest.fixture
def ctx(tmp_path: Path) -> HostContext:
    cluster = make_cluster()
    ensure_etcd_pki(cluster, StateDir(tmp_path), NOW)
    return HostContext(cluster, cluster.host("m2"), tmp_path)


# -- templates ------------------------------------------------------------------------------------------------


def test_config_is_yaml_with_tls_everywhere_and_client_cert_auth():
    c = make_cluster()
    conf = yaml.safe_load(render_config(c, c.host("m2")))
    assert conf["name"] == "m2"
    assert conf["listen-peer-urls"] == conf["initial-advertise-peer-urls"] == "https://10.2.0.12:2380"
    assert conf["listen-client-urls"] == "https://10.2.0.12:2379,https://127.0.0.1:2379"
    assert conf["advertise-client-urls"] == "https://10.2.0.12:2379"
    assert conf["initial-cluster"].count("https://") == 3
    assert conf["initial-cluster-state"] == "new"
    assert conf["initial-cluster-token"] == "keelson-roletest"
    assert conf["data-dir"] == "/var/lib/etcd"
    for side in ("client-transport-security", "peer-transport-security"):
        assert conf[side]["client-cert-auth"] is True
        assert conf[side]["auto-tls"] is False
        assert conf[side]["trusted-ca-file"] == PKI.etcd_ca_cert
    assert conf["peer-transport-security"]["key-file"] == PKI.etcd_peer_key
    assert "http://" not in render_config(c, c.host("m2")).decode()


def test_config_is_stable_and_per_member():
    c = make_cluster()
    assert render_config(c, c.host("m1")) == render_config(c, c.host("m1"))
    assert render_config(c, c.host("m1")) != render_config(c, c.host("m2"))


def test_unit_orders_after_network_online_and_restarts_on_failure():
    unit = render_unit(make_cluster()).decode()
    for line in (
        "After=network-online.target",
        "Wants=network-online.target",
        "Restart=on-failure",
        "RestartSec=2",
        "Type=notify",
        "User=etcd",
        f"ExecStart=/usr/local/bin/etcd --config-file {ETCD.config_file}",
        "WantedBy=multi-user.target",
        "StartLimitIntervalSec=0",
    ):
        assert line in unit.splitlines(), line


# -- facts ----------------------------------------------------------------------------------------------------


def test_version_fact():
    fact = EtcdVersionFact()
    assert fact.parse("etcd Version: 3.4.23\nGit SHA: Not provided\n", 0) == EtcdVersion(3, 4, 23)
    assert fact.parse("", 127) is None
    assert fact.parse("garbage", 0) is None


def test_member_state_parse():
    assert parse_member_state("active=active\ndata=yes\nmarker=abc\nend=1\n") == MemberState("active", True, "abc")
    assert parse_member_state("active=inactive\ndata=no\nmarker=\nend=1\n") == MemberState("inactive", False, "")
    junk = parse_member_state("ssh: garbage")
    assert junk == MemberState("unknown", False, "", complete=False)
    assert not junk.running
    # an output cut off after its first line reads as "no data": it must be known as incomplete, not acted on
    assert not parse_member_state("active=active\n").complete
    assert "/var/lib/etcd/member" in member_state_script("/var/lib/etcd/")


# -- the bootstrap decision -----------------------------------------------------------------------------------


def states(**kw: tuple[str, bool]) -> dict[str, MemberState]:
    return {name: MemberState(active, data, "") for name, (active, data) in kw.items()}


def test_fresh_cluster_starts_every_member():
    plan = decide(make_cluster(), states(m1=("inactive", False), m2=("inactive", False), m3=("failed", False)), False)
    assert plan.start == ["m1", "m2", "m3"]


def test_healthy_cluster_starts_nothing():
    plan = decide(make_cluster(), states(m1=("active", True), m2=("active", True), m3=("active", True)), True)
    assert plan.start == []


def test_stopped_member_of_existing_cluster_is_started():
    plan = decide(make_cluster(), states(m1=("active", True), m2=("inactive", True), m3=("active", True)), True)
    assert plan.start == ["m2"]


def test_interrupted_bootstrap_is_finished():
    # m1 started earlier (made its WAL, waits for peers): no quorum, so the others start as initial members
    plan = decide(
        make_cluster(), states(m1=("activating", True), m2=("inactive", False), m3=("inactive", False)), False
    )
    assert plan.start == ["m2", "m3"]


def test_debians_own_etcd_on_an_empty_data_dir_is_replaced():
    plan = decide(make_cluster(), states(m1=("active", False), m2=("inactive", False), m3=("inactive", False)), False)
    assert plan.start == ["m1", "m2", "m3"]


def test_new_member_next_to_a_live_cluster_is_refused_with_the_join_as_hint():
    with pytest.raises(NewMemberOfRunningCluster) as err:
        decide(make_cluster(), states(m1=("active", True), m2=("active", True), m3=("inactive", False)), True)
    assert "m3" in err.value.message
    assert err.value.hint == "keelson join -i INVENTORY m3"


# -- restart on change ----------------------------------------------------------------------------------------


def restart_facts(marker: str | None, active: str = "active", config: str | None = None) -> FactValues:
    return FactValues(
        {
            FileText(ETCD.applied_marker).key: marker,
            ServiceState(ETCD.unit_name).key: UnitState(active, "enabled"),
            FileText(ETCD.config_file).key: config,
            MemberStateFact(ETCD_DATA_DIR).key: MemberState(active, has_data=True, marker=marker or ""),
        }
    )


def test_restart_noop_when_marker_matches(ctx: HostContext):
    digest = desired_digest(ctx.cluster, ctx.host, ctx.state)
    assert digest is not None
    assert RestartOnChange().check(ctx, restart_facts(digest + "\n")) == []


def test_restart_when_marker_differs_is_guarded_snapshotted_and_marked(ctx: HostContext):
    commands = RestartOnChange().check(ctx, restart_facts("old"))
    scripts = [c.script for c in commands]
    assert "endpoint health --cluster" in scripts[0]
    assert "exit 75" in scripts[0]  # refuses to restart unless the whole cluster is healthy
    assert "snapshot save" in scripts[1]
    assert scripts[2] == "systemctl restart etcd.service"
    digest = desired_digest(ctx.cluster, ctx.host, ctx.state)
    assert digest is not None
    assert digest in scripts[3]
    assert ETCD.applied_marker in scripts[3]


def test_restart_leaves_a_stopped_member_to_the_bootstrap_phase(ctx: HostContext):
    assert RestartOnChange().check(ctx, restart_facts("old", active="inactive")) == []


def test_digest_follows_certificates(ctx: HostContext):
    before = desired_digest(ctx.cluster, ctx.host, ctx.state)
    ctx.state.file("pki/etcd/m2/peer.crt").unlink()
    assert desired_digest(ctx.cluster, ctx.host, ctx.state) is None
    ensure_etcd_pki(ctx.cluster, ctx.state, NOW)
    assert desired_digest(ctx.cluster, ctx.host, ctx.state) not in (None, before)
    other = HostContext(ctx.cluster, ctx.cluster.host("m1"), ctx.state_dir)
    assert desired_digest(other.cluster, other.host, other.state) != desired_digest(ctx.cluster, ctx.host, ctx.state)


# -- packages and version -------------------------------------------------------------------------------------


def test_binaries_come_from_the_artifact_source(ctx: HostContext, tmp_path):
    """etcd, etcdctl and etcdutl are one archive of the set, installed under /usr/local/bin, all or nothing."""
    from roles.engine.fetch import FetchStep, Installed

    (ca_or_step, *rest) = etcd_binaries(ctx.cluster)
    step = rest[-1] if rest else ca_or_step
    assert isinstance(step, FetchStep)
    assert step.paths == ("/usr/local/bin/etcd", "/usr/local/bin/etcdctl", "/usr/local/bin/etcdutl")
    assert step.markers == ("/var/lib/keelson/artifacts/etcd-v3.6.16-linux-amd64.tar.gz.installed",)
    assert isinstance(step.facts(ctx)[0], Installed)


@pytest.mark.parametrize(
    ("version", "fails"),
    [
        (EtcdVersion(3, 6, 16), False),
        (EtcdVersion(3, 5, 24), False),
        (EtcdVersion(3, 4, 23), True),  # kubeadm 1.37 refuses an external etcd older than 3.5.24
        (None, False),  # not installed yet: a dry run before the binaries phase, nothing to check
    ],
)
def test_version_check(ctx: HostContext, version, fails):
    from roles.engine.errors import HostCheckFailed

    facts = FactValues({EtcdVersionFact().key: version})
    if fails:
        with pytest.raises(HostCheckFailed):
            version_check().check(ctx, facts)
    else:
        assert version_check().check(ctx, facts) == []


# -- health ---------------------------------------------------------------------------------------------------

HEALTH_OK = (
    '[{"endpoint":"https://10.2.0.11:2379","health":true,"took":"5ms"},'
    '{"endpoint":"https://10.2.0.12:2379","health":true,"took":"7ms"},'
    '{"endpoint":"https://10.2.0.13:2379","health":true,"took":"7ms"}]\n'
)
HEALTH_ONE_DOWN = (
    '[{"endpoint":"https://10.2.0.11:2379","health":true,"took":"5ms"},'
    '{"endpoint":"https://10.2.0.13:2379","health":false,"took":"5s","error":"context deadline exceeded"}]'
)


def test_parse_health():
    assert missing_or_sick(make_cluster(), parse_health(HEALTH_OK)) == []
    sick = missing_or_sick(make_cluster(), parse_health(HEALTH_ONE_DOWN))
    assert sick == ["https://10.2.0.12:2379", "https://10.2.0.13:2379"]
    assert parse_health("Error: unhealthy cluster") == []
    assert parse_health("[not json") == []
    assert parse_health('{"endpoint": "x"}') == []


class FakeTransport:
    host = "m1"
    commands_run = 0

    def __init__(self, outputs: list[str]) -> None:
        self.outputs = outputs

    def run(
        self, script: str, *, timeout: float | None = None, check: bool = False, private: bool = False
    ) -> CommandResult:
        assert "endpoint health --cluster" in script
        assert "--cert=/etc/etcd/pki/healthcheck-client.crt" in script
        self.commands_run += 1
        out = self.outputs.pop(0) if self.outputs else HEALTH_ONE_DOWN
        return CommandResult(0 if out == HEALTH_OK else 1, out, "")

    def send_files(self, files: list[tuple[Path, str]]) -> str:
        raise NotImplementedError

    def put(self, path: str, data: bytes, mode: int = 0o644) -> None:
        raise AssertionError("the health gate uploads nothing")

    def get(self, path: str) -> bytes:
        raise AssertionError("the health gate downloads nothing")

    def close(self) -> None:
        pass


def test_wait_healthy_polls_until_all_members_are_healthy():
    clock = [0.0]
    transport = FakeTransport(["", HEALTH_ONE_DOWN, HEALTH_OK])
    waited = wait_healthy(
        make_cluster(),
        transport,
        timeout=10,
        clock=lambda: clock[0],
        sleep=lambda s: clock.__setitem__(0, clock[0] + s),
    )
    assert transport.commands_run == 3
    assert waited == 2 * ETCD.health_poll_s


def test_wait_healthy_gives_up_at_the_deadline_naming_the_sick_members():
    clock = [0.0]
    with pytest.raises(EtcdUnhealthy) as err:
        wait_healthy(
            make_cluster(),
            FakeTransport([]),
            timeout=3,
            clock=lambda: clock[0],
            sleep=lambda s: clock.__setitem__(0, clock[0] + s),
        )
    assert "https://10.2.0.13:2379" in err.value.message
    assert "context deadline exceeded" in err.value.message
    assert err.value.hint


def test_data_dir_step_is_noop_when_owned_by_etcd(ctx: HostContext):
    from roles.etcd.steps import data_dir_step

    step = data_dir_step(ctx.cluster)
    (fact,) = step.needs
    assert isinstance(fact, CommandOutput)
    assert step.check(ctx, FactValues({fact.key: ("etcd etcd 700\n", 0)})) == []
    (fix,) = step.check(ctx, FactValues({fact.key: ("", 1)}))
    assert fix.script == "install -d -o etcd -g etcd -m 0700 /var/lib/etcd"


def test_member_state_script_output_is_complete(tmp_path):
    import subprocess

    script = member_state_script(str(tmp_path))
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=False).stdout
    state = parse_member_state(out)
    assert state.complete and not state.has_data


def _start_members_run(tmp_path: Path, batch_health: str, live: list[str]) -> tuple[dict[str, int], list[str]]:
    """StartMembers.run on 3 running members with data; the middle one's batch says `batch_health`."""
    from roles.engine.context import RunContext
    from roles.etcd.bootstrap import StartMembers, health_fact
    from tests.fake_pool import FakePool

    cluster = make_cluster()
    phase = StartMembers()
    running = MemberState("active", True, "")
    batch: dict[str, object] = {MemberStateFact(cluster.etcd.data_dir).key: running, FileText(ETCD.config_file).key: ""}
    batch[health_fact(cluster, RunContext(cluster, tmp_path).nodes).key] = (batch_health, 0)
    pool = FakePool(cluster)
    transports = {h.name: FakeTransport(list(live)) for h in cluster.hosts}
    pool.transports = transports  # type: ignore[misc,assignment]
    pool.gathered = lambda host, key: (key in batch and (key != "cmd:etcd-health" or host == "m2"), batch.get(key))
    outcomes = phase.run(RunContext(cluster, tmp_path), pool)  # type: ignore[arg-type]
    assert not any(o.changed for o in outcomes.values())
    return {n: t.commands_run for n, t in transports.items()}, transports["m1"].outputs


def test_start_members_no_op_gates_on_the_health_its_batch_gathered(tmp_path: Path) -> None:
    from roles.etcd.bootstrap import StartMembers, health_fact

    cluster = make_cluster()
    keys = {h.name: [f.key for f in StartMembers().facts(HostContext(cluster, h, tmp_path))] for h in cluster.hosts}
    asked = [
        n
        for n, k in keys.items()
        if health_fact(cluster, HostContext(cluster, cluster.hosts[0], tmp_path).nodes).key in k
    ]
    assert asked == ["m2"]  # the middle member: the first and last masters' batches ask the API
    runs, _ = _start_members_run(tmp_path, HEALTH_OK, [])
    assert runs == {"m1": 0, "m2": 0, "m3": 0}  # healthy in the batch: nothing asked again
    runs, left = _start_members_run(tmp_path, HEALTH_ONE_DOWN, [HEALTH_OK])
    assert runs == {"m1": 1, "m2": 0, "m3": 0} and left == []  # not healthy there: the gate polls, as after a start


def test_version_fact_keeps_the_line_while_the_binary_is_the_same(tmp_path: Path) -> None:
    import os
    import subprocess

    def install(version: str) -> None:  # as an install does: a new file renamed over the old one
        new = tmp_path / "etcd.new"
        new.write_text(f'#!/bin/sh\necho run >> {tmp_path}/runs\nprintf "etcd Version: {version}\\nGit SHA: x\\n"\n')
        new.chmod(0o755)
        os.replace(new, tmp_path / "etcd")

    def ask(fact: EtcdVersionFact) -> EtcdVersion | None:
        proc = subprocess.run(["bash", "-c", fact.command()], capture_output=True, text=True, check=False)
        return fact.parse(proc.stdout, proc.returncode)

    def runs() -> int:
        return len((tmp_path / "runs").read_text().splitlines()) if (tmp_path / "runs").exists() else 0

    fact = EtcdVersionFact(str(tmp_path / "etcd"), cache_dir=str(tmp_path / "versions"), settle_s=0)
    assert ask(fact) is None  # not installed
    install("3.6.16")
    assert ask(fact) == EtcdVersion(3, 6, 16) and runs() == 1
    assert ask(fact) == EtcdVersion(3, 6, 16) and runs() == 1  # kept: etcd not started again
    install("3.5.24")
    assert ask(fact) == EtcdVersion(3, 5, 24) and runs() == 2  # another binary: asked again
    (tmp_path / "etcd").write_text((tmp_path / "etcd").read_text().replace("3.5.24", "3.4.23"))  # written in place
    assert ask(fact) == EtcdVersion(3, 4, 23) and runs() == 3
    settling = EtcdVersionFact(fact.binary, cache_dir=str(tmp_path / "fresh"), settle_s=3600)
    assert ask(settling) == EtcdVersion(3, 4, 23) and not (tmp_path / "fresh").exists()  # changed just now: not kept
    (tmp_path / "readonly").write_text("a file where the cache folder would be")
    unwritable = EtcdVersionFact(fact.binary, cache_dir=str(tmp_path / "readonly" / "versions"), settle_s=0)
    assert ask(unwritable) == EtcdVersion(3, 4, 23)  # a cache it cannot write fails nothing
