"""The program (provision/stack/program.py) under Pulumi mocks with stack config: the `existing` source adopts the
inventory's hosts, the labels from config land in the inventory the cluster gets, bad settings are clear errors."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest

from inventory.loader import load_inventory
from provision.stack import program
from provision.stack.settings import SettingsError, StackSettings
from tests.pulumi.conftest import Recorder, pulumi_test

ROOT = Path(__file__).resolve().parents[2]
PHASE_GROUP = "pulumi-python:dynamic/keelson:PhaseGroup"


def _config(values: dict[str, str], secret: list[str] | None = None) -> None:
    pulumi.runtime.set_all_config(values, secret or [])


@pytest.fixture
def known_hosts(tmp_path: Path) -> Path:
    path = tmp_path / "known_hosts"
    path.write_text("198.18.0.11 ssh-ed25519 AAAA\n")
    return path


@pulumi_test
def test_existing_source_with_config_labels_and_secrets(mocks: Recorder, known_hosts: Path) -> Any:
    mocks.extra[PHASE_GROUP] = lambda a: {"state": {}}
    _config(
        {
            "keelson:inventory": "inventory/examples/lab.yaml",
            "keelson:machines": "existing",
            "keelson:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nstand-in\n",
            "keelson:knownHosts": known_hosts.read_text(),
            "keelson:labels": '{"w1": {"tier": "web"}}',
        },
        ["keelson:sshPrivateKey"],
    )
    cluster = program.build().cluster

    def check(_: Any) -> None:
        assert mocks.names("keelson:machines:Existing") == ["lab-machines"]
        groups = {r.name: r.inputs for r in mocks.of_type(PHASE_GROUP)}
        inventory = groups["lab-host-w1"]["inventory"]
        w1 = next(h for h in inventory["hosts"] if h["name"] == "w1")
        assert w1["labels"] == {"tier": "web"}
        assert inventory["ssh"]["key"] == program.KEY_PLACEHOLDER
        access = groups["lab-host-w1"]["access"]
        assert "stand-in" in access["value"]["privateKey"]  # a secret input: {sig, value}
        assert access["value"]["knownHosts"] == known_hosts.read_text()

    return pulumi.Output.all(*[r.urn for r in cluster.resources.values()]).apply(check)


def test_settings_name_the_key_that_is_wrong() -> None:
    _config({"keelson:machines": "aws"})
    with pytest.raises(SettingsError, match=r"keelson:machines is 'aws'; use one of: existing, lab, libvirt, hcloud"):
        StackSettings.load(pulumi.Config("keelson"))
    _config({"keelson:labels": '{"w1": "web"}'})
    with pytest.raises(SettingsError, match="keelson:labels must map host names"):
        StackSettings.load(pulumi.Config("keelson"))


def test_labels_for_hosts_the_machines_do_not_have_are_refused() -> None:
    base = load_inventory(ROOT / "inventory/examples/lab.yaml")
    hosts = program.host_entries(base)
    with pytest.raises(SettingsError, match="keelson:labels names hosts the machines do not have: w9"):
        program.stack_inventory(base, hosts, {}, {"w9": {"a": "b"}}, "root")


def test_stack_inventory_takes_the_sources_hosts_and_vip_and_keeps_the_files_settings() -> None:
    base = load_inventory(ROOT / "inventory/examples/lab.yaml")
    made = [{"name": "m1", "address": "198.18.9.11", "roles": ["master"]}]
    data = program.stack_inventory(base, made, {"vip": "198.18.9.100/24", "interface": "host0"}, {}, "root")
    assert data["hosts"] == [{"name": "m1", "address": "198.18.9.11", "roles": ["master"], "labels": {}}]
    assert data["control_plane"]["vip"] == "198.18.9.100/24"
    assert data["backups"]["retention"] == base.backups.retention
    assert data["ssh"]["known_hosts"] == program.KNOWN_HOSTS_PLACEHOLDER


def test_s3_targets_need_the_secret_credentials() -> None:
    from provision.stack.settings import secret_env

    data = load_inventory(ROOT / "inventory/examples/ha-3.yaml")
    _config({})
    with pytest.raises(SettingsError, match="keelson:s3Credentials is not set"):
        secret_env(pulumi.Config("keelson"), data)


def _lab_with_addons(mocks: Recorder, known_hosts: Path) -> program.Built:
    """The program on the lab example (its default addons: storage, metrics, ingress), machines adopted, built."""
    mocks.extra[PHASE_GROUP] = lambda a: {"state": {}}
    _config(
        {
            "keelson:inventory": "inventory/examples/lab.yaml",
            "keelson:machines": "existing",
            "keelson:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nstand-in\n",
            "keelson:knownHosts": known_hosts.read_text(),
        },
        ["keelson:sshPrivateKey"],
    )
    built = program.build()
    assert built.addons is not None
    return built


def _when_made(built: program.Built, check: Callable[[Any], None]) -> Any:
    """`check` once every cluster resource and every addon part and its objects are registered."""
    assert built.addons is not None
    addons = [built.addons, *built.addons.parts, *(part.objects for part in built.addons.parts)]
    urns = [r.urn for r in built.cluster.resources.values()] + [r.urn for r in addons]
    return pulumi.Output.all(*urns).apply(check)


@pulumi_test
def test_the_addons_follow_the_cluster_through_a_provider_made_from_its_kubeconfig(
    mocks: Recorder, known_hosts: Path
) -> Any:
    built = _lab_with_addons(mocks, known_hosts)

    def check(_: Any) -> None:
        assert mocks.names("keelson:addons:ClusterAddons") == ["lab-addons"]
        assert mocks.names("keelson:addons:LocalPathStorage") == ["lab-addons-local-path"]
        assert mocks.names("keelson:addons:MetricsServer") == ["lab-addons-metrics-server"]
        assert mocks.names("keelson:addons:TraefikIngress") == ["lab-addons-traefik"]
        (provider,) = mocks.of_type("pulumi:providers:kubernetes")
        assert provider.name == "lab-addons-kubernetes"
        groups = mocks.of_type("kubernetes:yaml/v2:ConfigGroup")
        assert sorted(g.name for g in groups) == [
            "lab-addons-local-path",
            "lab-addons-metrics-server",
            "lab-addons-traefik",
        ]

    return _when_made(built, check)


@pulumi_test
def test_the_kubernetes_provider_waits_for_the_control_plane_and_the_addons_for_the_nodes(
    mocks: Recorder, known_hosts: Path, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """The provider is configured once the API answers (it then overlaps the rest of the cluster's resources); every
    addon's objects wait for every cluster resource but the backup agent's."""
    from pulumi.runtime.mocks import MockMonitor

    waits: dict[str, set[str]] = {}
    register: Any = MockMonitor.RegisterResource  # untyped in the SDK

    def recording(monitor: MockMonitor, request: Any) -> Any:
        if not request.type.startswith("kubernetes:yaml"):  # a ConfigGroup has its addon's name
            waits[request.name] = {urn.rpartition("::")[2] for urn in request.dependencies}
        return register(monitor, request)

    monkeypatch.setattr(MockMonitor, "RegisterResource", recording)
    built = _lab_with_addons(mocks, known_hosts)
    cluster = set(built.cluster.resources)

    def check(_: Any) -> None:
        assert waits["lab-addons-kubernetes"] == {"lab-control-plane", "lab-kubeconfig"}  # its kubeconfig input
        for part in ("lab-addons-local-path", "lab-addons-metrics-server", "lab-addons-traefik"):
            assert waits[part] == cluster - {"lab-backups"}, part
        assert "lab-worker-w2" in waits["lab-addons-traefik"] and "lab-nodes" in waits["lab-addons-traefik"]

    return _when_made(built, check)


def test_an_air_gapped_cluster_refuses_addons_not_in_the_set_before_anything_is_made(
    mocks: Recorder, tmp_path: Path
) -> None:
    from addons.cluster import AddonNotBuilt

    inventory = tmp_path / "inventory.yaml"
    text = (ROOT / "inventory/examples/lab.yaml").read_text()
    air_gapped = text.replace(
        "kubernetes: {version: v1.37.2}", "kubernetes: {version: v1.37.2, artifacts: {source: local}}"
    )
    assert air_gapped != text
    inventory.write_text(air_gapped + "\naddons: {ingress: nginx}\n")
    _config({"keelson:inventory": str(inventory), "keelson:machines": "existing"})
    with pytest.raises(
        AddonNotBuilt, match=r"addons\.ingress: nginx \(not in the set: registry\.k8s\.io/ingress-nginx/"
    ):
        program.build()
    assert mocks.resources == []


def test_grafana_without_its_password_stops_the_program_before_anything_is_made(
    mocks: Recorder, tmp_path: Path
) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text((ROOT / "inventory/examples/lab.yaml").read_text() + "\naddons: {logging: true}\n")
    _config({"keelson:inventory": str(inventory), "keelson:machines": "existing"})
    with pytest.raises(SettingsError, match="keelson:grafanaAdminPassword"):
        program.build()
    assert mocks.resources == []


@pulumi_test
def test_nodes_that_pull_get_the_addons_from_upstream_images(mocks: Recorder, known_hosts: Path, tmp_path: Path) -> Any:
    """lab.yaml's source is upstream: ingress-nginx, NFS, monitoring, logging and the dashboard are made, logging
    without a Grafana of its own (monitoring's shows Loki), Grafana's admin password a secret from config."""
    mocks.extra[PHASE_GROUP] = lambda a: {"state": {}}
    inventory = tmp_path / "inventory.yaml"
    every = "{ingress: nginx, storage: nfs, nfs: {server: 198.18.0.21, path: /srv/nfs}, monitoring: true, "
    every += "logging: true, dashboard: true}"
    inventory.write_text((ROOT / "inventory/examples/lab.yaml").read_text() + f"\naddons: {every}\n")
    _config(
        {
            "keelson:inventory": str(inventory),
            "keelson:machines": "existing",
            "keelson:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nstand-in\n",
            "keelson:knownHosts": known_hosts.read_text(),
            "keelson:grafanaAdminPassword": "not-a-default",
        },
        ["keelson:sshPrivateKey", "keelson:grafanaAdminPassword"],
    )
    built = program.build()
    assert built.addons is not None

    def check(_: Any) -> None:
        for kind, name in [
            ("NFSStorage", "lab-addons-nfs"),
            ("MetricsServer", "lab-addons-metrics-server"),
            ("IngressNginx", "lab-addons-ingress-nginx"),
            ("Monitoring", "lab-addons-monitoring"),
            ("Logging", "lab-addons-logging"),
            ("Dashboard", "lab-addons-dashboard"),
        ]:
            assert mocks.names(f"keelson:addons:{kind}") == [name]
        assert not mocks.names("keelson:addons:TraefikIngress") and not mocks.names("keelson:addons:LocalPathStorage")
        groups = {g.name: g.inputs for g in mocks.of_type("kubernetes:yaml/v2:ConfigGroup")}
        assert sorted(groups) == [
            "lab-addons-dashboard",
            "lab-addons-ingress-nginx",
            "lab-addons-logging",
            "lab-addons-metrics-server",
            "lab-addons-monitoring",
            "lab-addons-monitoring-namespace",  # first the namespace, then Grafana's Secret, then the rest
            "lab-addons-nfs",
        ]
        assert [o["kind"] for o in groups["lab-addons-monitoring-namespace"]["objs"]] == ["Namespace"]
        kinds = [(o["kind"], o["metadata"]["name"]) for o in groups["lab-addons-monitoring"]["objs"]]
        assert ("Deployment", "grafana") in kinds and ("Secret", "grafana-admin") not in kinds
        logging = [(o["kind"], o["metadata"]["name"]) for o in groups["lab-addons-logging"]["objs"]]
        assert ("Deployment", "loki") in logging and ("Deployment", "grafana") not in logging
        (secret,) = mocks.of_type("kubernetes:core/v1:Secret")
        assert secret.name == "lab-addons-monitoring-grafana-admin"
        assert secret.inputs["metadata"] == {"name": "grafana-admin", "namespace": "monitoring"}
        assert "not-a-default" in str(secret.inputs["stringData"])

    addons = [built.addons, *built.addons.parts, *(part.objects for part in built.addons.parts)]
    return pulumi.Output.all(*[r.urn for r in addons]).apply(check)


def test_the_program_asks_for_no_resource_references(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing reads a ConfigGroup's `resources`: the SDK need not rebuild each object with a call to the engine."""
    monkeypatch.delenv("PULUMI_DISABLE_RESOURCE_REFERENCES", raising=False)
    monkeypatch.setattr(program, "build", lambda: None)
    program.main()
    assert os.environ["PULUMI_DISABLE_RESOURCE_REFERENCES"] == "true"  # monkeypatch takes it away afterwards


@pytest.mark.parametrize("entry", ["provision/__main__.py", "LocalStack.MAIN"])
def test_the_program_takes_its_dataclasses_code_from_keelsons_cache(entry: str, tmp_path: Path) -> None:
    """Both ways the program is started (Pulumi.yaml's `main: provision/`, the local stacks' __main__.py) install
    keelson's dataclass code cache before the program's modules are imported, and keep what they compiled."""
    import subprocess
    import sys

    code = """if True:
        import dataclasses, runpy, sys, types
        from provision.stack.local import MAIN
        seen = []
        program = types.ModuleType("provision.stack.program")  # a stand-in: its import records what was installed
        program.main = lambda: seen.append(getattr(dataclasses, "exec", None))
        sys.modules["provision.stack.program"] = program
        if sys.argv[1] == "LocalStack.MAIN":
            exec(MAIN, {"__name__": "__main__"})
        else:
            runpy.run_path(sys.argv[1], run_name="__main__")
        print(type(getattr(seen[0], "__self__", None)).__name__)
        @dataclasses.dataclass
        class Made:
            x: int
    """
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    run = subprocess.run(
        [sys.executable, "-c", code, entry], capture_output=True, text=True, check=True, cwd=ROOT, env=env
    )
    assert run.stdout.split() == ["DataclassCode"]
    assert list((tmp_path / "keelson").glob("dataclasses-*.marshal"))  # saved at exit
