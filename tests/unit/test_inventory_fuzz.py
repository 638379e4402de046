"""Mutated inventories fail only with InventoryError, never with another exception."""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inventory.errors import InventoryError
from inventory.loader import parse_inventory
from inventory.model import Role

EXAMPLES = Path(__file__).parents[2] / "inventory" / "examples"
BASES = [yaml.safe_load((EXAMPLES / f"{n}.yaml").read_text()) for n in ("lab", "ha-3", "ha-5-windows")]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(
        [
            "master",
            "worker",
            "lb",
            "etcd",
            "windows",
            "198.18.0.12",
            "198.18.0.100/24",
            "10.0.0.0/8",
            "keepalived+nginx",
            "external",
            "dedicated",
            "s3",
            "ssh",
            "1.31.2",
            "-",
            "m1",
            "::1",
            "0/0",
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    doc = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["replace", "delete", "add", "duplicate"]))
        if not path:
            continue
        parent: Any = doc
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        if op == "replace":
            parent[last] = draw(values)
        elif op == "delete":
            del parent[last]
        elif op == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = draw(values)
        elif op == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[last]))
    return doc


@settings(max_examples=1200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutations_fail_only_with_inventory_error(doc: Any) -> None:
    text = yaml.safe_dump(doc)
    try:
        parse_inventory(text, source="fuzz.yaml")
    except InventoryError as exc:
        problems = exc.problems
    else:
        return
    assert problems
    for problem in problems:
        assert problem.file == "fuzz.yaml"
        assert problem.message


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_fails_only_with_inventory_error(text: str) -> None:
    with contextlib.suppress(InventoryError):
        parse_inventory(text, source="fuzz.yaml")


@st.composite
def structured(draw: st.DrawFn) -> dict[str, Any]:
    """A valid-shaped cluster with a few targeted twists, so the cross-field rules (not the schema) see odd shapes."""
    masters = draw(st.sampled_from([1, 3, 3, 4, 5, 5]))
    workers = draw(st.integers(min_value=0, max_value=3))
    lbs = draw(st.sampled_from([0, 0, 1, 2]))
    hosts: list[dict[str, Any]] = []
    for role, count in (("master", masters), ("worker", workers), ("lb", lbs)):
        for i in range(count):
            hosts.append({"name": f"{role}{i}", "address": f"198.18.0.{len(hosts) + 11}", "roles": [role]})
    doc: dict[str, Any] = {
        "name": "fuzz",
        "non_ha": draw(st.booleans()),
        "hosts": hosts,
        "control_plane": {"vip": "198.18.0.100/24"},
        "backups": {"targets": [{"kind": "ssh", "host": "worker0", "path": "/b"}]},
    }
    twist = st.integers(min_value=0, max_value=3).map(lambda x: x == 0)  # each twist ~1 in 4
    host_index = st.integers(min_value=0, max_value=len(hosts) - 1)
    if draw(twist):
        hosts[draw(host_index)]["address"] = hosts[draw(host_index)]["address"]
    if draw(twist):
        hosts[draw(host_index)]["os"] = "windows"
    if draw(twist):
        hosts[draw(host_index)]["roles"] = draw(st.sampled_from([["master", "worker"], ["worker", "etcd"], ["etcd"]]))
    if draw(twist):
        doc["etcd"] = {"placement": "dedicated"}
    if draw(twist):
        doc["control_plane"]["vip"] = draw(st.sampled_from(["198.18.0.0/24", "10.0.0.100/8", "198.18.0.11/24"]))
    if draw(twist):
        doc["control_plane"]["load_balancer"] = draw(st.sampled_from(["keepalived+nginx", "external"]))
        if draw(st.booleans()):
            doc["control_plane"]["endpoint"] = "lb.example:6443"
    if draw(twist):
        doc["network"] = {
            "pod_cidr": draw(st.sampled_from(["198.18.0.0/16", "10.0.0.0/8", "10.96.0.0/16"])),
            "service_cidr": draw(st.sampled_from(["10.96.0.0/12", "10.244.0.0/20"])),
        }
    if draw(twist):
        doc["addons"] = {"storage": "nfs"}
    if draw(twist):
        doc["backups"]["targets"][0]["path"] = "relative/dir"
    return doc


@settings(max_examples=1000, deadline=None)
@given(structured())
def test_structured_inventories_fail_only_with_inventory_error(doc: dict[str, Any]) -> None:
    try:
        cluster = parse_inventory(yaml.safe_dump(doc), source="fuzz.yaml")
    except InventoryError as exc:
        problems = exc.problems
    else:
        problems = []
    if problems:
        assert all(p.field and p.message for p in problems)
        return
    # whatever passes really satisfies the core rules
    assert len(cluster.masters) in (3, 5) or (len(cluster.masters) == 1 and cluster.non_ha)
    assert len({h.address for h in cluster.hosts}) == len(cluster.hosts)
    assert all(h.roles == [Role.WORKER] for h in cluster.hosts if h.os.value == "windows")
