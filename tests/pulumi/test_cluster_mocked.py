"""The cluster ComponentResource under Pulumi mocks: its resources, names, parents, secrets, and a provider that
pickles. (Mocks stand in for the engine here only; test_engine_lab.py runs the real one.)"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import dill  # type: ignore[import-untyped]
import pulumi
import pytest
import yaml

from provision.cluster import ClusterArgs, ClusterHost, KeelsonCluster, groups
from provision.cluster.provider import PhaseGroupProvider
from tests.pulumi.conftest import Recorder, is_secret, pulumi_test

ROOT = Path(__file__).resolve().parents[2]
PHASE_GROUP = "pulumi-python:dynamic/keelson:PhaseGroup"
KUBECONFIG = "pulumi-python:dynamic/keelson:AdminKubeconfig"


def _inventory() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "inventory/examples/lab.yaml").read_text())
    return data


def _hosts(data: dict[str, Any]) -> list[ClusterHost]:
    return [ClusterHost(h["name"], tuple(h["roles"])) for h in data["hosts"]]


def _state_outputs(args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    return {"state": {"pki/etcd/ca.crt": base64.b64encode(b"not a real certificate").decode()}, "kubeconfig": "x"}


def _build(mocks: Recorder, kubernetes: bool = False) -> KeelsonCluster:
    mocks.extra[PHASE_GROUP] = _state_outputs
    mocks.extra[KUBECONFIG] = lambda args: {"kubeconfig": "apiVersion: v1\nkind: Config\n"}
    data = _inventory()
    args = ClusterArgs(
        inventory=data,
        hosts=_hosts(data),
        private_key=pulumi.Output.secret("-----BEGIN OPENSSH PRIVATE KEY-----\nstand-in\n"),
        known_hosts="198.18.0.11 ssh-ed25519 AAAA\n",
        env=pulumi.Output.secret({"AWS_SECRET_ACCESS_KEY": "s3cr3t"}),
        groups=groups.enabled(kubernetes=kubernetes),
    )
    return KeelsonCluster("lab", args)


@pulumi_test
def test_one_resource_per_host_and_per_cluster_wide_group(mocks: Recorder) -> Any:
    cluster = _build(mocks)

    def check(_: Any) -> None:
        assert mocks.names("keelson:cluster:Cluster") == ["lab"]
        assert sorted(mocks.names(PHASE_GROUP)) == sorted([
            "lab-host-m1", "lab-host-m2", "lab-host-m3", "lab-host-w1", "lab-host-w2",
            "lab-pki", "lab-etcd", "lab-lb", "lab-backups",
        ])  # fmt: skip
        assert list(cluster.resources)[-4:] == ["lab-pki", "lab-etcd", "lab-lb", "lab-backups"]  # the chain's order
        assert mocks.names(KUBECONFIG) == ["lab-kubeconfig"]
        by_name = {r.name: r.inputs for r in mocks.of_type(PHASE_GROUP)}
        assert by_name["lab-host-w1"]["hosts"] == ["w1"] and by_name["lab-host-w1"]["group"] == "host"
        assert by_name["lab-etcd"]["hosts"] == ["m1", "m2", "m3", "w1", "w2"]
        assert by_name["lab-pki"]["chain"] is True and by_name["lab-host-m1"]["chain"] is False
        assert "state" not in by_name["lab-pki"] or by_name["lab-pki"]["state"] is None  # the chain starts here
        assert by_name["lab-etcd"]["state"] == _state_outputs(None)["state"]  # type: ignore[arg-type]

    return pulumi.Output.all(*[r.urn for r in cluster.resources.values()]).apply(check)


@pulumi_test
def test_children_are_parented_and_named_from_the_component(mocks: Recorder) -> Any:
    cluster = _build(mocks)

    def check(urns: list[str]) -> None:
        for urn in urns:
            assert "keelson:cluster:Cluster$pulumi-python:dynamic/keelson:PhaseGroup::lab-" in urn

    return pulumi.Output.all(*[r.urn for r in cluster.resources.values()]).apply(check)


@pulumi_test
def test_the_kubernetes_groups_join_with_the_one_switch(mocks: Recorder) -> Any:
    cluster = _build(mocks, kubernetes=True)

    def check(_: Any) -> None:
        names = list(cluster.resources)  # in the order they were declared (registration is concurrent)
        assert sorted(names) == sorted(mocks.names(PHASE_GROUP))
        assert names.index("lab-lb") < names.index("lab-control-plane") < names.index("lab-network")
        assert [n for n in names if n.startswith("lab-worker-")] == ["lab-worker-w1", "lab-worker-w2"]
        hosts = ("m1", "m2", "m3", "w1", "w2")
        assert [n for n in names if n.startswith("lab-node-")] == [f"lab-node-{h}" for h in hosts]
        assert names[-1] == "lab-backups"

    return pulumi.Output.all(*[r.urn for r in cluster.resources.values()]).apply(check)


@pulumi_test
def test_outputs_endpoint_nodes_and_a_secret_kubeconfig(mocks: Recorder) -> Any:
    """(That state and access end up encrypted is the engine's work, `additional_secret_outputs`: the mocks do not
    model it; test_engine_lab.py greps the real state file.)"""
    cluster = _build(mocks)

    def check(values: list[Any]) -> None:
        endpoint, nodes, kube_secret = values
        assert endpoint == "https://198.18.0.100:8443"
        assert [n["name"] for n in nodes] == ["m1", "m2", "m3", "w1", "w2"]
        assert kube_secret is True

    return pulumi.Output.all(cluster.api_endpoint, cluster.nodes, is_secret(cluster.kubeconfig)).apply(check)


def test_the_provider_pickles_small_and_by_reference() -> None:
    provider = PhaseGroupProvider()
    data = dill.dumps(provider, recurse=True)
    assert b"provision.cluster.provider" in data and len(data) < 400
    again = dill.loads(data)
    assert isinstance(again, PhaseGroupProvider)
    assert vars(again) == {}  # nothing captured: no connection, lock or file between calls


def test_the_program_leaves_the_roles_to_the_provider_process_which_imports_them_at_its_first_check() -> None:
    """The program pickles the providers without importing the roles; the dynamic provider process's first check
    (the machines' or a cluster resource's) starts importing them in the background, for the diffs that follow."""
    import subprocess
    import sys

    code = """if True:
        import sys, threading
        import provision.stack.program, provision.machines.lab
        print("roles.plans.apply" in sys.modules)
        provision.machines.lab.LabProvider().check({}, {"lab": "t"})
        for thread in threading.enumerate():
            if thread.name == "keelson-warm-up":
                thread.join()
        print("roles.plans.apply" in sys.modules)
    """
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert run.stdout.split() == ["False", "True"]


def test_the_program_and_the_provider_process_exit_without_a_last_collection() -> None:
    """The program's main and the provider process's first call leave every object to gc.freeze at exit, so the
    interpreter's shutdown does not traverse them all again (freeze_at_exit); a plain interpreter does not."""
    import subprocess
    import sys

    code = """if True:
        import atexit, gc, sys, threading
        atexit.register(lambda: print(gc.get_freeze_count() > 0))  # registered first: runs last
        import provision.stack.program as program, provision.machines.lab
        print(gc.get_freeze_count() > 0)
        if sys.argv[1] == "program":
            program.build = lambda: None
            program.main()
        elif sys.argv[1] == "provider":
            provision.machines.lab.LabProvider().check({}, {"lab": "t"})
            for thread in threading.enumerate():
                if thread.name == "keelson-warm-up":
                    thread.join()
    """
    for who, frozen in (("program", "True"), ("provider", "True"), ("neither", "False")):
        run = subprocess.run([sys.executable, "-c", code, who], capture_output=True, text=True, check=True, cwd=ROOT)
        assert run.stdout.split() == ["False", frozen], who


@pytest.mark.parametrize("bad", ["no-such-group"])
def test_check_names_a_bad_group_and_an_invalid_inventory(bad: str) -> None:
    data = _inventory()
    result = PhaseGroupProvider().check({}, {"group": bad, "hosts": ["m1"], "inventory": data})
    assert [f.property for f in result.failures] == ["group"]
    data["hosts"][1]["address"] = data["hosts"][0]["address"]
    result = PhaseGroupProvider().check({}, {"group": "host", "hosts": ["zz"], "inventory": data})
    messages = {f.property: f.reason for f in result.failures}
    assert "duplicate address" in messages["inventory"]


def test_diff_with_unknown_inputs_is_a_change_and_same_inputs_are_none(tmp_path: Path) -> None:
    from provision.cluster.provider import UNKNOWN, digest

    data = _inventory()
    access = {"privateKey": "stand-in", "knownHosts": "", "env": {}}
    news = {"group": "host", "hosts": ["w1"], "inventory": data, "state": {}, "chain": False, "access": access}
    olds = {**news, **digest(news, None)}
    assert PhaseGroupProvider().diff("id", olds, news).changes is False
    data2 = _inventory()
    data2["hosts"][3]["labels"] = {"tier": "web"}
    assert PhaseGroupProvider().diff("id", olds, {**news, "inventory": data2}).changes is True
    assert PhaseGroupProvider().diff("id", olds, {**news, "state": UNKNOWN}).changes is True


def test_private_folders_are_in_memory_when_the_machine_has_a_place_for_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key, known_hosts and state of each call go to $XDG_RUNTIME_DIR, else /dev/shm, else the temporary folder;
    the folder is private and gone after the call."""
    import tempfile

    from provision.cluster import workdir

    runtime = tmp_path / "runtime"
    runtime.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    with workdir.private_dir() as work:
        assert work.parent == runtime
        assert work.stat().st_mode & 0o777 == 0o700
    assert list(runtime.iterdir()) == []
    shm = tmp_path / "shm"
    shm.mkdir()
    monkeypatch.setattr(workdir, "MEMORY_DIRS", (str(tmp_path / "none"), str(shm)))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "gone"))
    with workdir.private_dir() as work:
        assert work.parent == shm
    monkeypatch.setattr(workdir, "MEMORY_DIRS", ())
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    with workdir.private_dir() as work:
        assert work.parent == Path(tempfile.gettempdir())


def test_the_check_parses_an_inventory_once_and_a_changed_one_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every cluster resource checks the same inventory: one parse for all of them; a change is a new parse, with
    its own verdict (an error names the field, a host the inventory lacks is named)."""
    from provision.cluster import provider

    parsed: list[int] = []
    from provision.cluster.workdir import cluster_from as real

    def counting(inventory: Any, *args: Any) -> Any:
        parsed.append(len(inventory["hosts"]))
        return real(inventory, *args)

    monkeypatch.setattr(provider, "cluster_from", counting)
    provider.validated.cache_clear()
    data = _inventory()
    for host in ("m1", "m2", "w1"):
        assert PhaseGroupProvider().check({}, {"group": "host", "hosts": [host], "inventory": data}).failures == []
    assert len(parsed) == 1
    result = PhaseGroupProvider().check({}, {"group": "host", "hosts": ["zz"], "inventory": data})
    assert [(f.property, f.reason) for f in result.failures] == [("hosts", "not in the inventory: zz")]
    assert len(parsed) == 1
    changed = _inventory()
    changed["hosts"][1]["address"] = changed["hosts"][0]["address"]
    result = PhaseGroupProvider().check({}, {"group": "host", "hosts": ["m1"], "inventory": changed})
    assert "duplicate address" in {f.property: f.reason for f in result.failures}["inventory"]
    assert len(parsed) == 2
    provider.validated.cache_clear()


def test_the_provider_process_takes_the_roles_dataclasses_code_from_keelsons_cache(tmp_path: Path) -> None:
    """The provider process's first call installs keelson's dataclass code cache before the roles are imported in
    the background (warm_up); a process that made no call has none."""
    import os
    import subprocess
    import sys

    code = """if True:
        import dataclasses, sys, threading
        import provision.machines.lab
        if sys.argv[1] == "call":
            provision.machines.lab.LabProvider().check({}, {"lab": "t"})
            for thread in threading.enumerate():
                if thread.name == "keelson-warm-up":
                    thread.join()
        cache = getattr(getattr(dataclasses, "exec", None), "__self__", None)
        print(type(cache).__name__, "roles.plans.apply" in sys.modules)
    """
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    for how, expected in (("call", ["DataclassCode", "True"]), ("none", ["NoneType", "False"])):
        run = subprocess.run(
            [sys.executable, "-c", code, how], capture_output=True, text=True, check=True, cwd=ROOT, env=env
        )
        assert run.stdout.split() == expected, how
