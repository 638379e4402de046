"""Machine sources under Pulumi mocks.

STAND-IN NOTE: no cloud or hypervisor is reachable here, so libvirt and hcloud are only ever run against these
mocks (the real providers' resource types, with made-up ids and addresses). The lab source runs for real in
test_engine_lab.py; here only its shape is checked.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from inventory.errors import KeelsonError
from provision.machines.cloud import plan_hosts
from provision.machines.cloud_init import CloudInit, public_key_of
from tests.pulumi.conftest import Recorder, is_secret, pulumi_test

SECRET_SIG = "4dabf18193072939515e22adb298388d"  # how a secret input reaches the monitor: {sig: …, value: …}


def _secret_value(value: Any) -> str:
    assert isinstance(value, dict) and SECRET_SIG in value, "expected a secret"
    return str(value["value"])


HOSTS = [
    {"name": "m1", "roles": ["master"]},
    {"name": "m2", "roles": ["master"]},
    {"name": "m3", "roles": ["master"], "internal_address": "10.17.0.50"},
    {"name": "w1", "roles": ["worker"]},
]


def _key() -> tuple[str, str]:
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private, public.decode()


def _tls_outputs(args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    private, public = _key()
    return {"private_key_openssh": private, "public_key_openssh": public}


def test_addresses_are_planned_in_the_network_keeping_fixed_ones() -> None:
    planned = plan_hosts(HOSTS, "10.17.0.0/24")
    assert [(h.name, h.address) for h in planned] == [
        ("m1", "10.17.0.10"), ("m2", "10.17.0.11"), ("m3", "10.17.0.50"), ("w1", "10.17.0.12"),
    ]  # fmt: skip
    with pytest.raises(KeelsonError, match="outside the source's network"):
        plan_hosts([{"name": "x", "roles": ["worker"], "internal_address": "192.0.2.1"}], "10.17.0.0/24")
    with pytest.raises(KeelsonError, match="no free address"):
        plan_hosts(HOSTS, "10.17.0.0/30")


def test_cloud_init_installs_the_stack_key_for_root_and_the_generated_host_key() -> None:
    stack_private, stack_public = _key()
    host_private, host_public = _key()
    text = CloudInit("prod", "m1", public_key_of(stack_private), host_private, host_public).user_data()
    assert text.startswith("#cloud-config\n")
    data = yaml.safe_load(text)
    assert data["users"][0]["name"] == "root"
    assert data["users"][0]["ssh_authorized_keys"] == [stack_public]
    assert data["ssh_keys"]["ed25519_private"].strip() == host_private.strip()
    assert data["ssh_keys"]["ed25519_public"] == host_public
    assert data["ssh_pwauth"] is False and data["ssh_deletekeys"] is True and data["ssh_genkeytypes"] == []


@pulumi_test
def test_libvirt_makes_network_base_image_and_per_host_disk_seed_and_domain(mocks: Recorder) -> Any:
    from provision.machines.libvirt import LibvirtArgs, LibvirtMachines

    mocks.extra["tls:index/privateKey:PrivateKey"] = _tls_outputs
    private, _ = _key()
    source = LibvirtMachines("prod-machines", LibvirtArgs("prod", HOSTS, pulumi.Output.secret(private)))

    def check(values: list[Any]) -> None:
        hosts, known = values
        assert mocks.names("libvirt:index/network:Network") == ["prod-machines-net"]
        assert mocks.names("libvirt:index/volume:Volume").count("prod-machines-base") == 1
        assert sorted(mocks.names("libvirt:index/domain:Domain")) == [f"prod-machines-{h['name']}" for h in HOSTS]
        disks = [r for r in mocks.of_type("libvirt:index/volume:Volume") if r.name.endswith("-disk")]
        assert len(disks) == 4 and all(r.inputs["baseVolumeId"] == "prod-machines-base-id" for r in disks)
        seeds = {r.name: r.inputs for r in mocks.of_type("libvirt:index/cloudInitDisk:CloudInitDisk")}
        assert "ssh_authorized_keys" in _secret_value(seeds["prod-machines-m1-cloudinit"]["userData"])
        m3 = next(r for r in mocks.of_type("libvirt:index/domain:Domain") if r.name == "prod-machines-m3")
        assert m3.inputs["networkInterfaces"][0]["addresses"] == ["10.17.0.50"]
        assert m3.inputs["cloudinit"] == "prod-machines-m3-cloudinit-id"
        assert [h["address"] for h in hosts] == ["10.17.0.10", "10.17.0.11", "10.17.0.50", "10.17.0.12"]
        assert known.count("ssh-ed25519") == 4 and known.startswith("10.17.0.10 ssh-ed25519 ")
        assert [h.name for h in source.hosts] == ["m1", "m2", "m3", "w1"]

    return pulumi.Output.all(source.inventory_hosts, source.known_hosts).apply(check)


@pulumi_test
def test_hcloud_makes_network_subnet_key_and_servers_reached_on_their_public_ip(mocks: Recorder) -> Any:
    from provision.machines.hcloud import HcloudArgs, HcloudMachines

    mocks.extra["tls:index/privateKey:PrivateKey"] = _tls_outputs
    mocks.extra["hcloud:index/server:Server"] = lambda a: {"ipv4Address": f"203.0.113.{10 + len(mocks.resources)}"}
    private, public = _key()

    def check(values: list[Any]) -> None:
        hosts, known = values
        assert mocks.names("hcloud:index/network:Network") == ["prod-machines-net"]
        assert mocks.names("hcloud:index/networkSubnet:NetworkSubnet") == ["prod-machines-subnet"]
        (key,) = mocks.of_type("hcloud:index/sshKey:SshKey")
        assert key.inputs["publicKey"] == public
        servers = {r.name: r.inputs for r in mocks.of_type("hcloud:index/server:Server")}
        assert sorted(servers) == [f"prod-machines-{h['name']}" for h in HOSTS]
        assert servers["prod-machines-m3"]["networks"][0]["ip"] == "10.20.0.50"
        assert servers["prod-machines-m1"]["sshKeys"] == [str(1000 + mocks.resources.index(key) + 1)]
        assert "#cloud-config" in _secret_value(servers["prod-machines-w1"]["userData"])
        assert all(h["address"].startswith("203.0.113.") for h in hosts)
        assert [h["internal_address"] for h in hosts] == ["10.20.0.10", "10.20.0.11", "10.20.0.50", "10.20.0.12"]
        for h in hosts:
            assert f"{h['address']} ssh-ed25519 " in known

    hosts = [dict(h) for h in HOSTS]
    hosts[2]["internal_address"] = "10.20.0.50"
    source = HcloudMachines("prod-machines", HcloudArgs("prod", hosts, pulumi.Output.secret(private)))
    return pulumi.Output.all(source.inventory_hosts, source.known_hosts).apply(check)


@pulumi_test
def test_lab_source_is_one_lab_resource_with_its_key_secret(mocks: Recorder) -> Any:
    from provision.machines.lab import LabArgs, LabMachines

    def lab_outputs(args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
        return {
            "hosts": [{"name": "m1", "address": "198.18.7.11", "roles": ["master"]}],
            "vip": "198.18.7.100/24",
            "interface": "host0",
            "knownHosts": "m1,198.18.7.11 ssh-ed25519 AAAA\n",
            "privateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\n",
        }

    mocks.extra["pulumi-python:dynamic/keelson:LabHosts"] = lab_outputs
    source = LabMachines("t-machines", LabArgs("t-pulumi", masters=1, workers=0))

    def check(values: list[Any]) -> None:
        control_plane, key_secret = values
        (lab,) = mocks.of_type("pulumi-python:dynamic/keelson:LabHosts")
        assert lab.name == "t-machines-hosts"
        assert {k: lab.inputs[k] for k in ("lab", "masters", "workers", "lbs")} == {
            "lab": "t-pulumi", "masters": 1, "workers": 0, "lbs": 0,
        }  # fmt: skip
        assert control_plane == {"vip": "198.18.7.100/24", "interface": "host0"}
        assert key_secret is True
        assert [(h.name, h.roles) for h in source.hosts] == [("m1", ("master",))]

    return pulumi.Output.all(source.control_plane, is_secret(source.private_key)).apply(check)


def test_lab_provider_replaces_the_lab_when_its_size_changes() -> None:
    from provision.machines.lab import LabProvider

    olds = {"lab": "a", "masters": 3, "workers": 2, "lbs": 0}
    same = LabProvider().diff("a", olds, dict(olds))
    assert same.changes is False
    bigger = LabProvider().diff("a", olds, {**olds, "workers": 3})
    assert bigger.changes is True and bigger.replaces == ["workers"] and bigger.delete_before_replace is True
