"""The Ansible inventory readers the kubespray importer stands on: INI as Ansible reads it, YAML, precedence."""

from __future__ import annotations

import pytest
import yaml

from inventory.importers.ansible import expand, from_ini, from_yaml, literal
from inventory.importers.common import FormatError

INI = """\
# comment
; another comment
solo ansible_host=192.0.2.9   # an ungrouped host

[web]
host1
host2:2222 user=admin
tomcat[1:3] java="'17'" heap="512"

[web:vars]
http_port=8080
flags={"a": 1, "b": [2, 3]}

[app:children]
web

[app:vars]
http_port=9090
tier=app

[all:vars]
tier=all
ansible_user=ops
"""


def test_ini_hosts_groups_and_values() -> None:
    inv = from_ini(INI)
    assert list(inv.host_vars) == ["solo", "host1", "host2", "tomcat1", "tomcat2", "tomcat3"]
    assert inv.groups["ungrouped"].hosts == ["solo"]
    assert inv.members("app") == ["host1", "host2", "tomcat1", "tomcat2", "tomcat3"]
    assert inv.members("all") == list(inv.host_vars)
    assert inv.host_vars["host2"] == {"user": "admin", "ansible_port": 2222}
    assert inv.host_vars["tomcat2"] == {"java": "17", "heap": 512}  # as Ansible: one quote layer is the shell's
    assert inv.groups["web"].vars == {"http_port": 8080, "flags": {"a": 1, "b": [2, 3]}}  # literals


def test_precedence_all_then_parents_then_children_then_host() -> None:
    inv = from_ini(INI)
    host1 = inv.vars_for("host1")
    assert host1["http_port"] == 8080  # web (child) over app (parent)
    assert host1["tier"] == "app" and host1["ansible_user"] == "ops"
    assert inv.vars_for("solo") == {"tier": "all", "ansible_user": "ops", "ansible_host": "192.0.2.9"}


@pytest.mark.parametrize(
    ("pattern", "names"),
    [
        ("node[1:3]", ["node1", "node2", "node3"]),
        ("web[01:10:4]", ["web01", "web05", "web09"]),
        ("[a:c].example", ["a.example", "b.example", "c.example"]),
        ("r[1:2]c[1:2]", ["r1c1", "r1c2", "r2c1", "r2c2"]),
        ("plain", ["plain"]),
    ],
)
def test_ranges(pattern: str, names: list[str]) -> None:
    assert expand(pattern, 1) == names


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[g]\nnode[1:b]\n", "line 2: host range [1:b]"),
        ("[g]\nhost:ssh\n", "line 2: 'host:ssh': the part after ':' must be an SSH port"),
        ("[g]\nhost 'unclosed\n", "line 2: cannot read the host line"),
        ("[g:vars]\njust-a-word\n", "line 2: expected key=value in [g:vars]"),
        ("[g:vars]\nx=1\n", "line 1: group 'g' is used but never declared with [g]"),
        ("[bad group]\n", "line 1: '[bad group]' is not a section header"),
    ],
)
def test_ini_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(FormatError, match="line") as info:
        from_ini(text)
    assert message in str(info.value)


def test_values_read_like_ansible() -> None:
    assert literal("22") == 22 and literal("'22'") == "22" and literal("True") is True
    assert literal("10.0.0.1") == "10.0.0.1"  # not a literal: stays text
    assert literal("~/.ssh/id") == "~/.ssh/id" and literal("") == ""


def test_yaml_top_level_groups_and_nested_children() -> None:
    inv = from_yaml(
        yaml.safe_load(
            """
all:
  vars: {ansible_user: ops}
  hosts:
    a: {ip: 10.0.0.1}
  children:
    k8s_cluster:
      vars: {ansible_user: k8s}
      children:
        kube_node:
          hosts:
            b:
kube_control_plane:
  hosts:
    a:
"""
        )
    )
    assert inv.members("k8s_cluster") == ["b"]
    assert inv.members("kube_control_plane") == ["a"]
    assert inv.vars_for("b") == {"ansible_user": "k8s"}
    assert inv.vars_for("a") == {"ansible_user": "ops", "ip": "10.0.0.1"}


def test_yaml_shapes_that_are_not_inventories() -> None:
    with pytest.raises(FormatError, match="must be a mapping"):
        from_yaml(["a", "b"])
    with pytest.raises(FormatError, match=r"all\.hosts must be a mapping"):
        from_yaml({"all": {"hosts": ["a"]}})
