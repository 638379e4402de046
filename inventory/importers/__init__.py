"""Turn another tool's inventory into a keelson inventory (a plain dict, validated by the loader).

kubespray: `inventory.ini` (Ansible INI) or `hosts.yaml` (Ansible YAML), told apart by `fmt`, else by the file's
extension (.ini/.cfg → INI; .yaml/.yml/.json → YAML), else by its content (a `[group]` header or `name key=value`
lines are INI; a YAML mapping is YAML). k0sctl: `k0sctl.yaml`, one or several YAML documents.
A result that cannot be a keelson cluster (2 masters, no hosts …) is refused with the reasons (exit 2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from inventory.errors import InventoryError, KeelsonError
from inventory.importers import ansible, k0sctl, kubespray
from inventory.importers.common import Conversion, FormatError
from inventory.loader import parse_inventory, read_source
from inventory.model import Cluster
from inventory.rules import notes

ImportKind = Literal["kubespray", "k0sctl"]
SourceFormat = Literal["auto", "ini", "yaml"]


class ImportFailed(KeelsonError):
    exit_code = 2


@dataclass(frozen=True)
class Imported:
    text: str  # the keelson inventory YAML, with a header naming its source and the notes as comments
    cluster: Cluster
    notes: list[str] = field(default_factory=list)


def import_file(
    kind: ImportKind,
    path: Path,
    *,
    vip: str | None = None,
    name: str | None = None,
    fmt: SourceFormat = "auto",
) -> Imported:
    """Read `path`, convert it, validate the result."""
    text = _read(path)
    try:
        if kind == "kubespray":
            inv = _ansible(text, path, fmt)
            conversion = kubespray.convert(inv, vip=vip, name=name or _name_from(path))
        else:
            conversion = k0sctl.convert(_yaml_documents(text, path), vip=vip, name=name or _name_from(path))
    except FormatError as exc:
        raise ImportFailed(f"{path}: not a {kind} inventory keelson can read: {exc}", hint=exc.hint) from None
    return _validated(conversion, source=f"{kind} {path}", path=path)


def _read(path: Path) -> str:
    try:
        return read_source(path)
    except InventoryError as exc:  # missing, a directory, unreadable, not UTF-8: the reason, with the line
        raise ImportFailed("\n".join(str(p) for p in exc.problems)) from None


def source_format(path: Path, text: str, fmt: SourceFormat = "auto") -> Literal["ini", "yaml"]:
    if fmt != "auto":
        return fmt
    suffix = path.suffix.lower()
    if suffix in (".ini", ".cfg"):
        return "ini"
    if suffix in (".yaml", ".yml", ".json"):
        return "yaml"
    first = next((ln.strip() for ln in text.splitlines() if ln.strip() and ln.strip()[0] not in "#;"), "")
    if re.match(r"^\[[^\]\s]+\]", first):
        return "ini"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return "ini"
    return "yaml" if isinstance(data, dict) else "ini"


def _ansible(text: str, path: Path, fmt: SourceFormat) -> ansible.AnsibleInventory:
    if source_format(path, text, fmt) == "ini":
        return ansible.from_ini(text)
    return ansible.from_yaml(_yaml_documents(text, path)[0] if text.strip() else None)


def _yaml_documents(text: str, path: Path) -> list[Any]:
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ImportFailed(f"{where}: YAML syntax error: {getattr(exc, 'problem', exc)}") from None
    return docs or [None]


def _validated(conversion: Conversion, *, source: str, path: Path) -> Imported:
    text = dump(conversion.inventory, source=source, notes=conversion.notes)
    try:
        cluster = parse_inventory(text, source=f"<imported from {path}>")
    except InventoryError as exc:
        hosts = conversion.inventory.get("hosts") or []
        reasons = "\n".join(f"  {_field(p.field, hosts)}: {p.message}" for p in exc.problems)
        raise ImportFailed(
            f"{path}: cannot become a keelson cluster ({len(exc.problems)} problem"
            f"{'s' if len(exc.problems) != 1 else ''}):\n{reasons}",
            hint="fix the source inventory and import again",
        ) from None
    return Imported(text, cluster, [*conversion.notes, *notes(cluster)])


def _field(name: str, hosts: list[dict[str, Any]]) -> str:
    """`hosts[3].address` → `hosts[3] (node4).address`: the reader has not seen the generated YAML."""
    match = re.match(r"^hosts\[(\d+)\]", name)
    if match and int(match.group(1)) < len(hosts):
        return f"{match.group(0)} ({hosts[int(match.group(1))].get('name')}){name[match.end() :]}"
    return name or "inventory"


def dump(inventory: dict[str, Any], *, source: str, notes: list[str] | None = None) -> str:
    header = f"# keelson inventory imported from {source}; review the VIP, SSH and network settings.\n"
    header += "".join(f"# note: {n}\n" for n in notes or [])
    return header + yaml.safe_dump(inventory, sort_keys=False, default_flow_style=None, width=110)


def _name_from(path: Path) -> str:
    stem = "".join(c if c.isalnum() else "-" for c in path.resolve().parent.name.lower()).strip("-")
    return stem[:63] or "imported"
