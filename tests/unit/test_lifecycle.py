"""Join, remove and reset without hosts: which phases each plan runs on which hosts, what each refuses before touching
anything, the reset steps' facts and commands (a clean host yields nothing), the drain and delete commands."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from inventory.loader import parse_inventory
from inventory.model import Cluster
from roles.control_plane.cluster_ops import JoinToken
from roles.control_plane.node_ops import DeleteNodes, DrainNodes, drain_command, present_nodes
from roles.control_plane.nodes import ServingCertsAndReady
from roles.engine.context import HostContext
from roles.engine.facts import FactValues
from roles.engine.phase import CustomPhase, Phase
from roles.engine.transport import CommandResult
from roles.plans import apply, join, remove, reset
from roles.reset.steps import leftovers_script, node_step, parse_leftovers

EXAMPLES = Path(__file__).parents[2] / "inventory" / "examples"


def lab(*extra: Mapping[str, object]) -> Cluster:
    data = yaml.safe_load((EXAMPLES / "lab.yaml").read_text())
    data["hosts"] += list(extra)
    return parse_inventory(yaml.safe_dump(data))


W3: dict[str, object] = {"name": "w3", "address": "198.18.0.23", "roles": ["worker"]}
LB1: dict[str, object] = {"name": "lb1", "address": "198.18.0.41", "roles": ["lb"]}
LB2: dict[str, object] = {"name": "lb2", "address": "198.18.0.42", "roles": ["lb"]}


def test_join_runs_the_applys_worker_phases_on_the_new_host_only() -> None:
    cluster = lab(W3)
    phases = join.phases(cluster, ["w3"])
    for phase in phases:
        assert [h.name for h in phase.hosts(cluster)] == ["w3"], phase.title
    titles = [p.title for p in phases]
    worker_phases = [
        p.title for p in apply.phases(cluster) if isinstance(p, Phase) and "w3" in [h.name for h in p.hosts(cluster)]
    ]
    assert [t for t in titles if t in worker_phases] == worker_phases  # every apply phase a worker gets, in order
    assert [type(p) for p in phases if isinstance(p, CustomPhase)] == [join.JoinTokenFor, join.ReadyFor]
    assert titles.index("Control plane | Join token") < titles.index("Workers | Join (in parallel)")
    assert isinstance(phases[titles.index("Control plane | Join token")], JoinToken)
    assert isinstance(phases[-1], ServingCertsAndReady)
    assert not any(t.startswith(("etcd", "PKI", "Load balancer", "backups", "Cluster network")) for t in titles)


@pytest.mark.parametrize(
    ("names", "fragment"),
    [
        ([], "name at least one host"),
        (["zz"], "not in the inventory: zz"),
        (["lb1"], "lb1: neither a worker, a master nor an etcd member"),
    ],
)
def test_join_refuses_before_touching_anything(names: list[str], fragment: str) -> None:
    with pytest.raises(join.JoinRefused, match=fragment) as caught:
        join.plan(lab(W3, LB1, LB2), names)
    assert caught.value.exit_code == 2


def test_join_refuses_windows_workers() -> None:
    windows = {"name": "win1", "address": "198.18.0.31", "roles": ["worker"], "os": "windows"}
    with pytest.raises(join.JoinRefused, match="keelson apply -i INVENTORY --hosts win1"):
        join.plan(lab(windows), ["win1"])


def test_remove_refuses_unknown_names_and_runs_from_masters_that_stay() -> None:
    cluster = lab(W3)
    with pytest.raises(remove.RemoveRefused, match="3 → 2 etcd members is an even count"):
        remove.removing(cluster, ["w3", "m2"])  # masters: tests/unit/test_masters_day2.py
    with pytest.raises(remove.RemoveRefused, match="not in the inventory: nope"):
        remove.removing(cluster, ["nope"])
    assert [h.name for h in remove.removing(cluster, ["w3", "w3"])] == ["w3"]
    plan = remove.cluster_plan(cluster, remove.removing(cluster, ["w3"]))
    assert [type(p) for p in plan.phases] == [DrainNodes, DeleteNodes]
    assert [h.name for h in plan.phases[0].hosts(cluster)] == ["m1", "m2", "m3"]  # run from masters that stay


def test_drain_respects_budgets_unless_forced() -> None:
    evict = drain_command("w3", force=False).script
    assert "cordon w3" in evict and "drain w3" in evict and "--ignore-daemonsets" in evict
    assert "--disable-eviction" not in evict  # evictions: the API refuses what a PodDisruptionBudget forbids
    assert "--skip-wait-for-delete-timeout=" in evict  # a dead node's pods never finish terminating
    assert "--disable-eviction" in drain_command("w3", force=True).script
    assert present_nodes("node/m1\nnode/w3\nWarning: junk\n\n") == {"m1", "w3"}
    assert present_nodes("") == set()


def test_reset_chooses_and_refuses() -> None:
    cluster = lab(W3)
    assert [h.name for h in reset.chosen(cluster, ["w3"], everything=False, force=False)] == ["w3"]
    assert len(reset.chosen(cluster, [], everything=True, force=False)) == len(cluster.hosts)
    with pytest.raises(reset.ResetRefused, match="a master or etcd member"):
        reset.chosen(cluster, ["m1"], everything=False, force=False)
    assert [h.name for h in reset.chosen(cluster, ["m1"], everything=False, force=True)] == ["m1"]
    with pytest.raises(reset.ResetRefused, match="name the hosts to reset, or --all"):
        reset.chosen(cluster, [], everything=False, force=False)
    with pytest.raises(reset.ResetRefused, match="not both"):
        reset.chosen(cluster, ["w3"], everything=True, force=False)
    with pytest.raises(reset.ResetRefused, match="not in the inventory: q"):
        reset.chosen(cluster, ["q"], everything=False, force=False)


def test_reset_plan_on_a_worker_is_the_node_phase_only_and_on_all_every_phase() -> None:
    cluster = lab(W3)
    worker = reset.plan(cluster, reset.chosen(cluster, ["w3"], everything=False, force=False))
    assert [p.title for p in worker.phases] == ["Reset | Kubernetes node (kubeadm reset, kubelet, CNI)"]
    assert [h.name for h in worker.phases[0].hosts(cluster)] == ["w3"]
    everything = reset.plan(cluster, cluster.hosts)
    assert [p.title.split(" (")[0] for p in everything.phases] == [
        "Reset | Kubernetes node",
        "Reset | Load balancer",
        "Reset | Backup timer",
        "Reset | etcd member",
    ]


def test_reset_step_yields_nothing_on_a_clean_host_and_only_what_is_left() -> None:
    cluster = lab(W3)
    ctx = HostContext(cluster, cluster.hosts[-1], Path("/nonexistent"))
    step = node_step()
    (fact,) = step.facts(ctx)
    assert step.check(ctx, FactValues({fact.key: ("", 0)})) == []
    assert step.check(ctx, FactValues({fact.key: ("junk\npath\nunit\n", 0)})) == []  # junk is ignored
    left = "path /etc/kubernetes\nunit kubelet.service\nlink flannel.1\n"
    commands = [c.shown() for c in step.check(ctx, FactValues({fact.key: (left, 0)}))]
    assert commands[0].startswith("systemctl disable --now kubelet.service")
    assert "kubeadm reset -f" in commands[1]
    assert "/etc/kubernetes" in commands[2] and "/var/lib/kubelet" not in commands[2]
    assert commands[3] == "ip link delete flannel.1"
    assert "restart containerd" in commands[4]  # the CRI forgets the removed CNI config
    only_link = [c.shown() for c in step.check(ctx, FactValues({fact.key: ("link cni0\n", 0)}))]
    assert not any("kubeadm reset" in c for c in only_link)  # kubeadm reset only when its files are there
    assert parse_leftovers(left).paths == ("/etc/kubernetes",)
    script = leftovers_script(["/a b"], ["x.service"], ["l0"])
    assert "'/a b'" in script and script.endswith("true")


def test_the_joins_cluster_side_phases_see_only_the_masters_and_the_new_hosts() -> None:
    cluster = lab(W3)
    seen = join.masters_and(cluster, {"w3"})
    assert [h.name for h in seen.hosts] == ["m1", "m2", "m3", "w3"]  # w1, w2 are never asked (one may be down)
    assert [h.name for h in cluster.hosts] == ["m1", "m2", "m3", "w1", "w2", "w3"]


class _RefusingApi:
    """The master's kubectl refusing the drain because of pods no controller owns (its real output)."""

    host = "m1"

    def run(self, script: str, timeout: float | None = None) -> CommandResult:
        return CommandResult(
            1,
            "node/w3 cordoned\n",
            'error: unable to drain node "w3" due to error: cannot delete Pods that declare no controller '
            "(use --force to override): default/client\n",
        )


@pytest.mark.parametrize("force", [False, True])
def test_a_drain_refused_for_bare_pods_says_what_to_do(monkeypatch: pytest.MonkeyPatch, force: bool) -> None:
    phase = DrainNodes(["w3"], force=force)
    monkeypatch.setattr(phase, "_api", lambda rc, pool: _RefusingApi())
    monkeypatch.setattr(phase, "_present", lambda api: {"w3"})
    outcomes = phase.run(SimpleNamespace(cluster=lab(W3)), None)  # type: ignore[arg-type]
    error = outcomes["m1"].error or ""
    assert "cannot delete Pods that declare no controller" in error
    assert ("rerun with --force to delete them" in error) is not force
