"""Ansible inventories (what kubespray users have), read into one plain model: hosts with their own variables, and
groups with hosts, child groups and variables. Two readers, both pure: `from_ini` (`inventory.ini`) and `from_yaml`
(`hosts.yaml`). No Ansible needed; what Ansible does that matters here is done the same way:

- INI: lines outside a section are 'ungrouped' hosts; `[g]` lists hosts (`name key=value …`, a `name:port`
  shorthand, numeric and letter ranges `node[1:3]`, `node[01:10:2]`, `[a:c]`), `[g:children]` lists groups,
  `[g:vars]` sets variables; `#` and `;` start comments. Values go through Python's literal syntax
  (`ast.literal_eval`: `22` is a number, `{"address": "10.0.0.1"}` a mapping), else stay strings, as in Ansible.
- Variable precedence: `all` < other groups (parents before children) < the host's own.
"""

from __future__ import annotations

import ast
import re
import shlex
import string
import warnings
from dataclasses import dataclass, field
from typing import Any

from inventory.importers.common import FormatError, as_mapping


@dataclass
class Group:
    hosts: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)


@dataclass
class AnsibleInventory:
    host_vars: dict[str, dict[str, Any]] = field(default_factory=dict)  # in order of first appearance
    groups: dict[str, Group] = field(default_factory=dict)

    def group(self, name: str) -> Group:
        return self.groups.setdefault(name, Group())

    def add_host(self, name: str, group: str, variables: dict[str, Any]) -> None:
        self.host_vars.setdefault(name, {}).update(variables)
        members = self.group(group).hosts
        if name not in members:
            members.append(name)

    def members(self, name: str) -> list[str]:
        """Every host of group `name` and of its children, in the order hosts first appeared."""
        seen: set[str] = set()
        todo, found = [name], set()
        while todo:
            current = todo.pop()
            if current in seen or current not in self.groups:
                continue
            seen.add(current)
            found.update(self.groups[current].hosts)
            todo.extend(self.groups[current].children)
        if name == "all":
            found.update(self.host_vars)
        return [h for h in self.host_vars if h in found]

    def _depth(self, name: str, seen: frozenset[str] = frozenset()) -> int:
        """How far below `all` a group sits (a cycle of children, which Ansible refuses, just stops counting)."""
        parents = [g for g, grp in self.groups.items() if name in grp.children and g not in seen]
        return 1 + max((self._depth(p, seen | {name}) for p in parents), default=0)

    def vars_for(self, host: str) -> dict[str, Any]:
        """The host's variables as Ansible sees them: `all`, then its groups (parents first), then its own."""
        out: dict[str, Any] = dict(self.groups["all"].vars) if "all" in self.groups else {}
        mine = [g for g in self.groups if g != "all" and host in self.members(g)]
        for name in sorted(mine, key=self._depth):
            out.update(self.groups[name].vars)
        out.update(self.host_vars.get(host, {}))
        return out


# -- INI ----------------------------------------------------------------------------------------------------------

_SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:[#;].*)?$")
_RANGE = re.compile(r"\[([0-9a-zA-Z]+):([0-9a-zA-Z]+)(?::(\d+))?\]")


def literal(text: str) -> Any:
    """An INI value as Ansible reads it: a Python literal when it is one, else the text itself."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def expand(pattern: str, line: int) -> list[str]:
    """`node[1:3]` → node1, node2, node3; `web[01:10:5]` keeps the width; `[a:c]` letters. One range per name."""
    match = _RANGE.search(pattern)
    if match is None:
        return [pattern]
    start, end, stride = match.group(1), match.group(2), int(match.group(3) or 1)
    head, tail = pattern[: match.start()], pattern[match.end() :]
    if start.isdigit() and end.isdigit():
        width = len(start) if start.startswith("0") else 0
        values = [str(i).zfill(width) for i in range(int(start), int(end) + 1, stride)]
    elif len(start) == len(end) == 1 and start.isalpha() and end.isalpha():
        letters = string.ascii_letters
        values = list(letters[letters.index(start) : letters.index(end) + 1 : stride])
    else:
        raise FormatError(f"line {line}: host range [{start}:{end}] is neither numeric nor single letters")
    if not values:
        raise FormatError(f"line {line}: host range [{start}:{end}] is empty")
    return [name for value in values for name in expand(head + value + tail, line)]


def _host_line(text: str, line: int) -> tuple[list[str], dict[str, Any]]:
    try:
        tokens = shlex.split(text, comments=True)
    except ValueError as exc:
        raise FormatError(f"line {line}: cannot read the host line: {exc}") from None
    if not tokens:
        return [], {}
    pattern, variables = tokens[0], {}
    for token in tokens[1:]:
        key, sep, value = token.partition("=")
        if not sep or not key:
            raise FormatError(f"line {line}: expected key=value after the host name, got {token!r}")
        variables[key] = literal(value)
    if pattern.count(":") == 1 and not pattern.endswith("]"):  # name:port (an IPv6 address has several colons)
        pattern, _, port = pattern.partition(":")
        if not port.isdigit():
            raise FormatError(f"line {line}: {tokens[0]!r}: the part after ':' must be an SSH port")
        variables.setdefault("ansible_port", int(port))
    return expand(pattern, line), variables


def from_ini(text: str) -> AnsibleInventory:
    """Parse an Ansible INI inventory. Raises FormatError naming the line of anything Ansible would refuse."""
    inv = AnsibleInventory()
    inv.group("all")
    group, kind = "ungrouped", "hosts"
    declared = {"all", "ungrouped"}
    wanted: dict[str, int] = {}  # groups named as children or vars before their own section: line
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        section = _SECTION.match(line)
        if section:
            group, kind = section.group(1), section.group(2) or "hosts"
            if kind not in ("hosts", "children", "vars"):
                raise FormatError(f"line {number}: section [{line[1:-1]}] has an unknown type {kind!r}")
            inv.group(group)
            if kind == "vars":
                wanted.setdefault(group, number)
            else:
                declared.add(group)
            continue
        if line.startswith("["):
            raise FormatError(f"line {number}: {line!r} is not a section header ([group], [group:children|vars])")
        if kind == "hosts":
            names, variables = _host_line(line, number)
            for name in names:
                inv.add_host(name, group, variables)
        elif kind == "vars":
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                raise FormatError(f"line {number}: expected key=value in [{group}:vars], got {line!r}")
            inv.group(group).vars[key.strip()] = literal(value.strip())
        else:
            child = line.split()[0]
            inv.group(group).children.append(child)
            inv.group(child)
            wanted.setdefault(child, number)
    missing = {g: n for g, n in wanted.items() if g not in declared}
    if missing:
        name, number = min(missing.items(), key=lambda item: item[1])
        raise FormatError(f"line {number}: group {name!r} is used but never declared with [{name}]")
    return inv


# -- YAML ---------------------------------------------------------------------------------------------------------


def from_yaml(data: Any) -> AnsibleInventory:
    """An Ansible YAML inventory (`all: {hosts, children, vars}`; other top-level groups too)."""
    inv = AnsibleInventory()
    inv.group("all")
    root = as_mapping(data, "the document")
    for name, body in root.items():
        _yaml_group(inv, str(name), body, str(name))
    return inv


def _yaml_group(inv: AnsibleInventory, name: str, body: Any, where: str) -> None:
    group = inv.group(name)
    section = as_mapping(body, where)
    for host, variables in as_mapping(section.get("hosts"), f"{where}.hosts").items():
        inv.add_host(str(host), name, as_mapping(variables, f"{where}.hosts.{host}"))
    group.vars.update(as_mapping(section.get("vars"), f"{where}.vars"))
    for child, child_body in as_mapping(section.get("children"), f"{where}.children").items():
        if str(child) not in group.children:
            group.children.append(str(child))
        _yaml_group(inv, str(child), child_body, f"{where}.children.{child}")
