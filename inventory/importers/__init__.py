"""Turn another tool's inventory into a keelson inventory (a plain dict, validated by the loader)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml

from inventory.errors import KeelsonError
from inventory.importers import k0sctl, kubespray
from inventory.importers.common import FormatError
from inventory.loader import parse_inventory
from inventory.model import Cluster

ImportKind = Literal["kubespray", "k0sctl"]


class ImportFailed(KeelsonError):
    exit_code = 2


def import_file(
    kind: ImportKind, path: Path, *, vip: str | None = None, name: str | None = None
) -> tuple[str, Cluster]:
    """Read `path`, convert it, validate the result. Returns (YAML text, validated cluster)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ImportFailed(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ImportFailed(f"{where}: YAML syntax error: {getattr(exc, 'problem', exc)}") from None
    converter = kubespray.convert if kind == "kubespray" else k0sctl.convert
    try:
        inventory = converter(data, vip=vip, name=name or _name_from(path))
    except FormatError as exc:
        raise ImportFailed(f"{path}: not a {kind} inventory: {exc}", hint=exc.hint) from None
    text = dump(inventory, source=f"{kind} {path}")
    return text, parse_inventory(text, source=f"<imported from {path}>")


def dump(inventory: dict[str, Any], *, source: str) -> str:
    header = f"# keelson inventory imported from {source}; review the VIP, SSH and network settings.\n"
    return header + yaml.safe_dump(inventory, sort_keys=False, default_flow_style=None, width=110)


def _name_from(path: Path) -> str:
    stem = "".join(c if c.isalnum() else "-" for c in path.resolve().parent.name.lower()).strip("-")
    return stem[:63] or "imported"
