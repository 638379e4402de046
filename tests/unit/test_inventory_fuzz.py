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
