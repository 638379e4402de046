"""Masters joining and leaving a running cluster, without hosts: the quorum and odd-count refusal table, what
`etcdctl member list -w json` says and the join decisions taken from it (a member already listed is not added again),
the etcd config of a joining member against the members that run (theirs does not change when the inventory grows,
so nothing restarts), and the join and remove plans' phases."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from inventory.loader import parse_inventory
from inventory.model import Cluster
from roles.control_plane.node_ops import DeleteNodes, DrainNodes
from roles.engine.context import HostContext, RunContext
from roles.engine.facts import FactValues, FileInfo, FileState, FileText, ServiceState, UnitState
from roles.engine.phase import Plan
from roles.engine.runner import RunReport
from roles.engine.transport import CommandResult
from roles.etcd.defaults import DEFAULTS as ETCD
from roles.etcd.facts import MemberState, MemberStateFact
from roles.etcd.members import (
    Member,
    MemberJoin,
    MembershipRefused,
    count_problem,
    find_member,
    initial_cluster_for,
    join_plan,
    parse_member_list,
    peer_names,
    without,
)
from roles.etcd.membership import AddMembers, RemoveMembers, StayingMembersHealthy, run_member_add
from roles.etcd.render import block_state, joining_block, kept_block, render_config
from roles.etcd.steps import EtcdConfigStep, RestartOnChange, desired_digest
from roles.loadbalancer import render as lb_render
from roles.pki.store import ensure_etcd_pki
from roles.plans import join, remove
from roles.state import StateDir

EXAMPLES = Path(__file__).parents[2] / "inventory" / "examples"
NOW = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
M4: dict[str, object] = {"name": "m4", "address": "198.18.0.14", "roles": ["master"]}
M5: dict[str, object] = {"name": "m5", "address": "198.18.0.15", "roles": ["master"]}


def lab(*masters: Mapping[str, object]) -> Cluster:
    """The example lab (3 masters, 2 workers) with more masters after m3."""
    data = yaml.safe_load((EXAMPLES / "lab.yaml").read_text())
    data["hosts"][3:3] = list(masters)
    return parse_inventory(yaml.safe_dump(data))


THREE, FIVE = lab(), lab(M4, M5)
ALL5 = ["m1", "m2", "m3", "m4", "m5"]

# -- the refusal table --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("members", "leaving", "force", "refused"),
    [
        (3, 0, False, None),  # workers only
        (3, 1, False, "3 → 2 etcd members is an even count: 2 members tolerate 0 failures, no more than 1 would"),
        (3, 1, True, None),
        (3, 2, False, "3 → 1 etcd members loses quorum: 1 of 3 is not a majority (2)"),
        (3, 2, True, None),
        (3, 3, False, "3 → 0 etcd members: none would be left"),
        (3, 3, True, "3 → 0 etcd members: none would be left"),  # never, even forced
        (5, 1, False, "5 → 4 etcd members is an even count: 4 members tolerate 1 failure, no more than 3 would"),
        (5, 1, True, None),
        (5, 2, False, None),  # 5 → 3: odd, a majority of 5
        (5, 3, False, "5 → 2 etcd members loses quorum: 2 of 5 is not a majority (3)"),
        (5, 4, False, "5 → 1 etcd members loses quorum: 1 of 5 is not a majority (3)"),
        (5, 4, True, None),
    ],
)
def test_the_quorum_and_odd_count_rule(members: int, leaving: int, force: bool, refused: str | None) -> None:
    assert count_problem(members, leaving, force=force) == refused


def test_remove_refuses_masters_before_touching_anything() -> None:
    with pytest.raises(remove.RemoveRefused, match="m5: refused, 5 → 4 etcd members is an even count") as caught:
        remove.removing(FIVE, ["m5"])
    assert caught.value.exit_code == 2 and "keelson remove -i INVENTORY m4 m5" in str(caught.value)
    assert [h.name for h in remove.removing(FIVE, ["m5"], force=True)] == ["m5"]
    assert [h.name for h in remove.removing(FIVE, ["m4", "m5"])] == ["m4", "m5"]
    assert [h.name for h in remove.removing(FIVE, ["m4", "w2", "m5"])] == ["m4", "w2", "m5"]
    with pytest.raises(remove.RemoveRefused, match="5 → 2 etcd members loses quorum"):
        remove.removing(FIVE, ["m3", "m4", "m5"])
    with pytest.raises(remove.RemoveRefused, match="that is every master"):
        remove.removing(THREE, ["m1", "m2", "m3"], force=True)
    with pytest.raises(remove.RemoveRefused, match="3 → 2 etcd members"):
        remove.removing(THREE, ["m1"])


# -- member list, and what a join does from it --------------------------------------------------------------------

BIG = 17237436991929493444  # ids are uint64: above 2**63, exact only if never read as a float


def member(ident: int, name: str, ip: str) -> str:
    return f'{{"ID":{ident},"name":"{name}","peerURLs":["https://{ip}:2380"],"clientURLs":["https://{ip}:2379"]}}'


HEAD = f'{{"header":{{"cluster_id":14841639068965178418,"member_id":{BIG},"raft_term":2}},"members":['
THREE_LISTED = ",".join(
    [member(BIG, "m1", "198.18.0.11"), member(2, "m2", "198.18.0.12"), member(3, "m3", "198.18.0.13")]
)
LIST = HEAD + THREE_LISTED + "%s]}"  # %s: what else etcd lists
UNSTARTED_M4 = ',{"ID":4,"peerURLs":["https://198.18.0.14:2380"]}'
STARTED_M4 = ',{"ID":4,"name":"m4","peerURLs":["https://198.18.0.14:2380"],"clientURLs":["https://198.18.0.14:2379"]}'


def test_member_list_is_parsed_with_exact_ids_and_unstarted_members() -> None:
    members = parse_member_list("some warning\n" + LIST % UNSTARTED_M4)
    assert [(m.name, m.started) for m in members] == [("m1", True), ("m2", True), ("m3", True), ("", False)]
    assert members[0].id == BIG and members[0].hex_id == format(BIG, "x")
    assert members[3].peer_urls == ("https://198.18.0.14:2380",) and members[3].client_urls == ()
    learner = parse_member_list('{"members":[{"ID":9,"name":"m9","peerURLs":["https://a:2380"],"isLearner":true}]}')
    assert learner[0].learner
    assert parse_member_list("") == parse_member_list("Error: context deadline exceeded") == []
    assert parse_member_list('{"members": "nope"}') == parse_member_list("[1, 2]") == []
    assert parse_member_list('{"members":[{"ID":"x","peerURLs":["u"]},{"ID":5}]}') == []  # no id, no peer URL


def test_a_host_is_found_by_its_name_or_by_its_peer_url() -> None:
    members = parse_member_list(LIST % UNSTARTED_M4)
    assert find_member(members, "m2", "https://elsewhere:2380") == members[1]
    assert find_member(members, "m4", "https://198.18.0.14:2380") == members[3]  # added, never started: no name
    assert find_member(members, "m5", "https://198.18.0.15:2380") is None


def state(running: bool, data: bool) -> MemberState:
    return MemberState("active" if running else "inactive", has_data=data, marker="")


FRESH = {"m4": state(False, False), "m5": state(False, False)}


def test_join_adds_a_member_only_when_etcd_does_not_list_it() -> None:
    plain = parse_member_list(LIST % "")
    assert join_plan(FIVE, {"m4", "m5"}, plain, FRESH) == [MemberJoin("m4", True, True), MemberJoin("m5", True, True)]
    added = parse_member_list(LIST % UNSTARTED_M4)  # an interrupted join: m4 added, never started
    assert join_plan(FIVE, {"m4", "m5"}, added, FRESH)[0] == MemberJoin("m4", add=False, start=True)
    joined = parse_member_list(LIST % STARTED_M4)
    states = {"m4": state(True, True), "m5": state(False, False)}
    assert join_plan(FIVE, {"m4", "m5"}, joined, states)[0] == MemberJoin("m4", add=False, start=False)
    stopped = {"m4": state(False, True), "m5": state(False, False)}
    assert join_plan(FIVE, {"m4", "m5"}, joined, stopped)[0] == MemberJoin("m4", add=False, start=True)


@pytest.mark.parametrize(
    ("listed", "states", "names", "fragment"),
    [
        ("", FRESH, {"m4"}, "m5: in the inventory as etcd member(s) but not started member(s)"),
        ("", {"m4": state(False, True), "m5": state(False, False)}, {"m4", "m5"}, "m4: has etcd data but is not"),
        (STARTED_M4, FRESH, {"m4", "m5"}, "m4: etcd lists it as a started member (id 4) but its data dir is empty"),
    ],
)
def test_join_refuses_a_cluster_that_is_not_the_inventorys(
    listed: str, states: dict[str, MemberState], names: set[str], fragment: str
) -> None:
    with pytest.raises(MembershipRefused) as caught:
        join_plan(FIVE, names, parse_member_list(LIST % listed), states)
    assert fragment in caught.value.message and caught.value.hint


def test_the_initial_cluster_is_every_member_the_add_answered_unstarted_ones_by_inventory_name() -> None:
    members = parse_member_list(LIST % UNSTARTED_M4)
    initial = initial_cluster_for(members, peer_names(FIVE), [h.name for h in FIVE.etcd_members])
    assert initial == ",".join(f"m{i}=https://198.18.0.1{i}:2380" for i in range(1, 5))
    stranger = [*members, Member(7, "", ("https://10.9.9.9:2380",))]
    with pytest.raises(MembershipRefused, match="etcdctl member remove 7"):
        initial_cluster_for(stranger, peer_names(FIVE))


# -- the etcd config: a joining member's, and the running members' unchanged ----------------------------------------


def config_facts(cluster: Cluster, text: bytes | None, data: bool, marker: str | None = None) -> FactValues:
    """What the config step and the restart step read on a member (running iff it has data)."""
    info = FileState(0o644, "root", "root", hashlib.sha256(text).hexdigest()) if text is not None else None
    return FactValues(
        {
            FileInfo(ETCD.config_file).key: info,
            FileText(ETCD.config_file).key: text.decode() if text is not None else None,
            MemberStateFact(cluster.etcd.data_dir).key: state(data, data),
            FileText(ETCD.applied_marker).key: marker,
            ServiceState(ETCD.unit_name).key: UnitState("active" if data else "inactive", "enabled"),
        }
    )


def test_a_joining_member_starts_existing_with_the_running_members_and_keeps_it() -> None:
    initial = ",".join(f"m{i}=https://198.18.0.1{i}:2380" for i in range(1, 5))
    block = joining_block(FIVE, initial)
    conf = yaml.safe_load(render_config(FIVE, FIVE.host("m4"), bootstrap=block))
    assert conf["initial-cluster-state"] == "existing" and conf["initial-cluster"] == initial
    assert conf["name"] == "m4" and conf["initial-advertise-peer-urls"] == "https://198.18.0.14:2380"
    new = yaml.safe_load(render_config(FIVE, FIVE.host("m1")))  # a new cluster's member: every inventory member
    assert new["initial-cluster-state"] == "new" and new["initial-cluster"].count("=") == 5
    written = render_config(FIVE, FIVE.host("m4"), bootstrap=block)
    assert kept_block(written.decode(), has_data=False) == block  # joining: kept even before it has data
    assert kept_block(written.decode(), has_data=True) == block
    ctx = HostContext(FIVE, FIVE.host("m4"), Path("/nonexistent"))
    assert EtcdConfigStep().check(ctx, config_facts(FIVE, written, data=True)) == []


def test_the_running_members_config_does_not_change_when_masters_are_added(tmp_path: Path) -> None:
    """m1 was bootstrapped from the 3-master inventory; the 5-master inventory renders m1's config with the lines it
    has (it has data), so no file is written and, its digest unchanged, etcd is not restarted."""
    ensure_etcd_pki(FIVE, StateDir(tmp_path), NOW)
    ctx = HostContext(FIVE, FIVE.host("m1"), tmp_path)
    before = render_config(THREE, THREE.host("m1"))
    started_with = desired_digest(THREE, THREE.host("m1"), ctx.state)  # the digest it was started with
    assert started_with is not None
    facts = config_facts(FIVE, before, data=True, marker=started_with + "\n")
    assert EtcdConfigStep().check(ctx, facts) == []
    assert RestartOnChange().check(ctx, facts) == []
    assert RestartOnChange().check(ctx, config_facts(FIVE, before, data=True, marker="other"))  # a real change would
    # without data (a new cluster, or a reset member), the inventory's members and `new`
    fresh = EtcdConfigStep().check(ctx, config_facts(FIVE, before, data=False))
    assert len(fresh) == 1 and "write /etc/etcd/etcd.conf.yml" in fresh[0].shown()
    assert block_state(kept_block(render_config(FIVE, FIVE.host("m1")).decode(), has_data=True) or "") == "new"


def test_the_bootstrap_lines_are_not_kept_from_a_config_without_them() -> None:
    assert kept_block(None, has_data=True) is None
    assert kept_block("name: m1\ndata-dir: /var/lib/etcd\n", has_data=True) is None
    assert kept_block('initial-cluster: "m1=x"\nname: m1\n', has_data=True) is None  # no state line after it


# -- the plans ----------------------------------------------------------------------------------------------------


def test_a_master_joins_through_the_applys_phases_with_etcd_member_add_and_the_load_balancers_after() -> None:
    phases = join.phases(FIVE, ["m4", "m5"])
    seen = [(p.title, [h.name for h in p.hosts(FIVE)]) for p in phases]
    titles = [t for t, _ in seen]
    on = dict(seen)
    assert [type(p) for p in phases if isinstance(p, AddMembers)] == [AddMembers]
    assert on["etcd | Add members to the running cluster (member add, start; one at a time, healthy between)"] == [
        "m4",
        "m5",
    ]
    assert "etcd | Start members (parallel) and wait until healthy" not in titles
    configure = next(p for p in phases if p.title.startswith("etcd | Configure members"))
    assert not any(isinstance(s, EtcdConfigStep) for s in getattr(configure, "steps", []))  # AddMembers writes it
    assert on["Load balancer | The other hosts' backends and VRRP peers (reload)"] == ["m1", "m2", "m3"]
    assert on["Load balancer"] == ["m4", "m5"]
    order = [
        "PKI | Issue etcd certificates (operator side)",
        "etcd | Add members to the running cluster (member add, start; one at a time, healthy between)",
        "Control plane | Join masters, restart changed apiservers (one at a time, healthy through the VIP)",
        "Load balancer | The other hosts' backends and VRRP peers (reload)",
        "Load balancer",
        "Nodes | Kubelet serving certificates, nodes Ready, cluster DNS up",
    ]
    assert [t for t in titles if t in order] == order
    changing_others = {t for t, hosts in seen if set(hosts) - {"m4", "m5"}}
    assert changing_others == {  # the operator-side PKI changes no host; the load balancers reload
        "PKI | Issue etcd certificates (operator side)",
        "PKI | Kubernetes CA (operator side)",
        "Load balancer | The other hosts' backends and VRRP peers (reload)",
    }
    assert "Control plane | First master (kubeadm init)" not in titles and not any(
        "Cluster network" in t for t in titles
    )


def test_a_worker_join_has_no_etcd_or_load_balancer_phase() -> None:
    cluster = lab(M4, M5, {"name": "w3", "address": "198.18.0.23", "roles": ["worker"]})
    titles = [p.title for p in join.phases(cluster, ["w3"])]
    assert not any(t.startswith(("etcd", "PKI", "Load balancer")) for t in titles)


def test_removing_masters_checks_etcd_first_then_drains_deletes_and_removes_members_from_those_that_stay() -> None:
    plan = remove.cluster_plan(FIVE, remove.removing(FIVE, ["m4", "m5"]))
    assert [type(p) for p in plan.phases] == [StayingMembersHealthy, DrainNodes, DeleteNodes, RemoveMembers]
    for phase in plan.phases:
        assert [h.name for h in phase.hosts(FIVE)] == ["m1", "m2", "m3"], phase.title  # a dead m5 is never asked
    workers = remove.cluster_plan(FIVE, remove.removing(FIVE, ["w2"]))
    assert [type(p) for p in workers.phases] == [DrainNodes, DeleteNodes]
    assert remove.balancer_plan(FIVE, remove.removing(FIVE, ["w2"])) is None


def test_the_load_balancers_that_stay_are_rendered_as_the_smaller_inventory_renders_them() -> None:
    balancers = remove.balancer_plan(FIVE, remove.removing(FIVE, ["m4", "m5"]))
    assert balancers is not None
    (phase,) = balancers.phases
    left = without(FIVE, {"m4", "m5"})
    assert [h.name for h in phase.hosts(left)] == ["m1", "m2", "m3"]
    assert lb_render.haproxy_cfg(left) == lb_render.haproxy_cfg(THREE)  # the apply of the 3-master one: no change
    for name in ("m1", "m2", "m3"):
        state_dir = StateDir(Path("/nonexistent"))
        assert lb_render.keepalived_conf(left, left.host(name), "host0", state_dir) == lb_render.keepalived_conf(
            THREE, THREE.host(name), "host0", state_dir
        )
    assert "server m4" in lb_render.haproxy_cfg(FIVE) and "server m4" not in lb_render.haproxy_cfg(left)


def test_a_removal_stops_the_vip_on_the_removed_hosts_before_the_others_drop_them_then_resets_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ran: list[tuple[list[str], list[str]]] = []  # each plan run: its phases' titles, the cluster's masters

    def run_plan(plan: Plan, rc: RunContext) -> RunReport:
        ran.append(([p.title for p in plan.phases], [m.name for m in rc.cluster.masters]))
        return RunReport(dry_run=rc.dry_run)

    monkeypatch.setattr(remove, "run_plan", run_plan)
    monkeypatch.setattr(remove, "answering", lambda cluster, hosts, rc: (list(hosts)[:1], {"m5": "powered off"}))
    done = remove.remove(RunContext(FIVE, tmp_path), ["m4", "m5"])
    assert done.ok and done.unreachable == {"m5": "powered off"}
    assert [titles[0].split(" (")[0] for titles, _ in ran] == [
        "etcd | The members that stay are healthy",
        "Reset | Load balancer",  # on m4, which answers: keepalived stopped, the VIP leaves it
        "Load balancer | The other hosts' backends and VRRP peers",
        "Reset | Kubernetes node",
    ]
    assert ran[1][0] == ["Reset | Load balancer (keepalived, proxy)"]
    assert ran[2][1] == ["m1", "m2", "m3"]  # the load balancers rendered from the cluster without m4 and m5
    assert ran[3][1] == ALL5


class _AnswersInTurn:
    """A stand-in transport answering each `run` with the next of `answers` (the last one again when they run out)."""

    host = "m1"
    commands_run = 0

    def __init__(self, *answers: CommandResult) -> None:
        self.answers = list(answers)
        self.scripts: list[str] = []

    def run(self, script: str, timeout: float = 0, check: bool = False) -> CommandResult:
        self.scripts.append(script)
        return self.answers[min(len(self.scripts), len(self.answers)) - 1]


REFUSED_UNHEALTHY = CommandResult(
    1, "", '{"error":"rpc error: code = Unavailable"}\nError: etcdserver: unhealthy cluster'
)


def test_a_member_add_refused_as_unhealthy_right_after_a_start_is_asked_again_until_etcd_takes_it() -> None:
    added = CommandResult(0, '{"members": []}', "")
    transport = _AnswersInTurn(REFUSED_UNHEALTHY, REFUSED_UNHEALTHY, added)
    assert run_member_add(transport, "etcdctl member add m5", deadline_s=30) == added  # type: ignore[arg-type]
    assert transport.scripts == ["etcdctl member add m5"] * 3


def test_a_member_add_failing_otherwise_is_not_asked_again_and_a_lasting_refusal_ends_at_the_deadline() -> None:
    other = CommandResult(1, "", "Error: etcdserver: Peer URLs already exists")
    transport = _AnswersInTurn(other, CommandResult(0, "", ""))
    assert run_member_add(transport, "add", deadline_s=30) == other  # type: ignore[arg-type]
    assert len(transport.scripts) == 1
    stuck = _AnswersInTurn(REFUSED_UNHEALTHY)
    assert run_member_add(stuck, "add", deadline_s=1.5) == REFUSED_UNHEALTHY  # type: ignore[arg-type]
    assert 2 <= len(stuck.scripts) <= 3
