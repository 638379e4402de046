"""Plans say which inventory sections they do not apply yet: decided in the plan layer, announced by the runner as
one event, shown by the CLI as one line."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from inventory.loader import parse_inventory
from inventory.model import Cluster
from keelson.render import RichProgress
from roles.engine.context import RunContext
from roles.engine.events import Event, JsonLines, NotAppliedYet, PhaseStarted
from roles.engine.phase import Plan
from roles.engine.runner import run_plan
from roles.plans import apply

EXAMPLES = Path(__file__).parents[2] / "inventory" / "examples"
ADDONS = apply.ADDONS_BY_PULUMI


def example(name: str, **sections: object) -> Cluster:
    data = yaml.safe_load((EXAMPLES / name).read_text())
    data.update(sections)
    return parse_inventory(yaml.safe_dump(data))


def test_the_apply_plan_names_what_it_does_not_apply_from_this_inventory() -> None:
    lab = example("lab.yaml")  # flannel (applied), the default addons (ingress, storage, metrics: not yet)
    assert apply.not_applied_yet(lab) == (ADDONS,)
    assert apply.not_applied_yet(example("ha-5-windows.yaml")) == (ADDONS,)  # Windows workers on flannel: applied
    calico = example("ha-5-windows.yaml", network={"cni": "calico"})  # no Windows side for calico here
    assert apply.not_applied_yet(calico) == ("network.cni (calico)", ADDONS, "hosts (windows)")
    bare = example("lab.yaml", addons={"ingress": "none", "storage": "none", "metrics": False})
    assert apply.not_applied_yet(bare) == ()  # CoreDNS comes with kubeadm; nothing else asked for
    assert apply.not_applied_yet(example("lab.yaml", addons={"dashboard": True})) == (ADDONS,)
    assert apply.plan(lab).not_applied == apply.not_applied_yet(lab)
    assert apply.plan(bare).not_applied == ()


def test_the_runner_says_it_once_before_the_first_phase(tmp_path: Path) -> None:
    cluster = example("lab.yaml")
    events: list[Event] = []
    plan = Plan("apply", [], not_applied=("network.cni", "addons"))
    run_plan(plan, RunContext(cluster, tmp_path, dry_run=True, events=events.append))
    assert events[0] == NotAppliedYet("apply", ["network.cni", "addons"])
    assert isinstance(events[1], PhaseStarted)
    assert sum(isinstance(e, NotAppliedYet) for e in events) == 1
    stream = io.StringIO()
    JsonLines(stream)(events[0])
    assert json.loads(stream.getvalue()) == {
        "event": "not_applied_yet",
        "plan": "apply",
        "sections": ["network.cni", "addons"],
    }
    quiet: list[Event] = []
    run_plan(Plan("restore", []), RunContext(cluster, tmp_path, dry_run=True, events=quiet.append))
    assert not any(isinstance(e, NotAppliedYet) for e in quiet)


def test_the_cli_shows_it_as_one_line_however_narrow_the_terminal() -> None:
    out = io.StringIO()
    progress = RichProgress(Console(file=out, width=30, color_system=None), dry_run=True)
    progress(NotAppliedYet("apply", ["kubernetes_version", "network.cni", "addons", "security"]))
    assert out.getvalue() == "not applied yet by this version: kubernetes_version, network.cni, addons, security\n"


def test_apply_refuses_a_cni_it_renders_but_cannot_bring_up() -> None:
    for cni in ("calico", "canal", "cilium"):
        cluster = example("lab.yaml", network={"cni": cni})
        with pytest.raises(apply.CniNotApplied, match=f"network.cni: {cni} is not applied") as refused:
            apply.refuse_unapplied_cni(cluster)
        assert refused.value.exit_code == 2
        assert ("images are not built" in str(refused.value)) == (cni != "cilium")
        with pytest.raises(apply.CniNotApplied):
            apply.refuse_unapplied_cni(cluster, ["etcd", "cni"])  # the pod network is among the phases asked for
        apply.refuse_unapplied_cni(cluster, ["etcd", "control-plane"])  # the pod network is not: nothing refused
    apply.refuse_unapplied_cni(example("lab.yaml"))  # flannel
