"""Load an inventory YAML file into a validated `Cluster`, or raise `InventoryError` naming file, line and field."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from inventory.errors import InventoryError, InventoryProblem
from inventory.model import Cluster
from inventory.positions import dotted, load_with_nodes, locate, node_lines
from inventory.rules import violations


def load_inventory(path: str | Path) -> Cluster:
    """Read, parse, validate. Relative SSH key/known_hosts paths resolve against the file's folder."""
    p = Path(path)
    return parse_inventory(read_source(p), source=str(p), base_dir=p.parent)


def read_source(path: Path) -> str:
    """The text of an inventory file (ours or another tool's), or an InventoryError saying why it cannot be read:
    missing, a directory, not readable, not UTF-8 (with the line of the first bad byte)."""

    def problem(message: str, line: int | None = None) -> InventoryError:
        return InventoryError([InventoryProblem(str(path), line, "", message)])

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise problem("file not found") from None
    except IsADirectoryError:
        raise problem("is a directory, not a file") from None
    except OSError as exc:
        raise problem(f"cannot read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise problem(f"not UTF-8 text (byte {data[exc.start]:#04x}); save the file as UTF-8", line) from None


def parse_inventory(text: str, *, source: str = "<inventory>", base_dir: Path | None = None) -> Cluster:
    try:
        data, root = load_with_nodes(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise InventoryError([InventoryProblem(source, line, "", f"YAML syntax error: {problem}")]) from None
    if not isinstance(data, dict):
        kind = "empty" if data is None else type(data).__name__
        raise InventoryError([InventoryProblem(source, 1, "", f"the inventory must be a mapping, got {kind}")])
    try:
        cluster = Cluster.model_validate(_absolute_paths(data, base_dir))
    except ValidationError as exc:
        lines = node_lines(root)
        raise InventoryError([_problem(source, lines, err) for err in exc.errors()]) from None
    found = violations(cluster)
    if found:
        lines = node_lines(root)
        problems = []
        for v in found:
            _, line = locate(lines, v.path)
            problems.append(InventoryProblem(source, line, dotted(v.path), v.message))
        raise InventoryError(problems)
    return cluster


def _problem(source: str, lines: dict[Any, int], err: Any) -> InventoryProblem:
    loc = tuple(err.get("loc", ()))
    found, line = locate(lines, loc)
    field = dotted(found) if err.get("type") != "missing" else dotted(_real_prefix(loc))
    message = _message(err)
    return InventoryProblem(source, line, field, message)


def _real_prefix(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """For a missing field keep the whole path except union tags (pydantic inserts them as strings like 's3')."""
    return tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))


def _message(err: Any) -> str:
    kind = err.get("type", "")
    msg = str(err.get("msg", "invalid value"))
    value = err.get("input")
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        return "unknown field (check its spelling; unknown fields are rejected)"
    if kind == "missing":
        return "required field is missing"
    if kind == "literal_error":
        return f"{_short(value)} is not allowed; allowed: {ctx.get('expected', '')}"
    if kind == "enum":
        return f"{_short(value)} is not allowed; allowed: {ctx.get('expected', '')}"
    if kind == "union_tag_invalid":
        return f"kind {_short(ctx.get('tag'))} is not allowed; allowed: {ctx.get('expected_tags', '')}"
    if kind == "value_error":  # our own validators' messages name the value already
        return msg.removeprefix("Value error, ")
    if kind == "string_pattern_mismatch":
        return f"{_short(value)} does not match the allowed form {ctx.get('pattern', '')}"
    return f"{msg} (got {_short(value)})" if value is not None and not isinstance(value, dict | list) else msg


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _absolute_paths(data: dict[str, Any], base_dir: Path | None) -> dict[str, Any]:
    """Relative key/known_hosts paths in the file mean 'next to this file', not 'next to where you ran keelson'."""
    if base_dir is None:
        return data

    def fix(section: Any, field: str) -> None:
        if isinstance(section, dict):
            value = section.get(field)
            if isinstance(value, str) and value and not value.startswith(("/", "~")):
                section[field] = os.path.normpath(os.path.join(os.path.abspath(base_dir), value))

    ssh = data.get("ssh")
    fix(ssh, "key")
    fix(ssh, "known_hosts")
    if isinstance(ssh, dict) and ssh.get("config") != "none":
        fix(ssh, "config")
    sections = [ssh] + [h.get("ssh") for h in data.get("hosts") or [] if isinstance(h, dict)]
    for section in sections:
        fix(section, "key")
        if isinstance(section, dict):
            fix(section.get("bastion"), "key")
    return data
