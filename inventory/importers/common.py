"""Pieces both importers share."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any


class FormatError(ValueError):
    """The input does not have the shape its tool documents."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


@dataclass
class Conversion:
    """A converted inventory (a plain dict the loader validates) and what the user should know about it."""

    inventory: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def vip_with_prefix(address: str, *, default_prefix: int = 24) -> str:
    """'10.0.0.10' → '10.0.0.10/24'; keeps an explicit prefix. Raises FormatError on garbage."""
    text = str(address).strip()
    if "/" not in text:
        text = f"{text}/{default_prefix}"
    try:
        return str(ipaddress.IPv4Interface(text))
    except ValueError:
        raise FormatError(f"VIP {address!r} is not an IPv4 address", hint="pass --vip ADDRESS/PREFIX") from None


def kube_version(text: Any) -> str | None:
    """'v1.37.2+k0s.0' or '1.37.2' → 'v1.37.2' when keelson installs that release; None when absent, unrecognised
    or not supported (the imported inventory then gets keelson's default version)."""
    from provision.artifacts.catalog import RELEASES

    if not isinstance(text, str):
        return None
    m = re.match(r"^v?(\d+\.\d+\.\d+)", text.strip())
    version = f"v{m.group(1)}" if m else None
    return version if version in RELEASES else None


def as_mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise FormatError(f"{what} must be a mapping, got {type(value).__name__}")
    return value


def dns_label(text: str) -> str:
    label = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return label[:63] or "host"


def unique_names(wanted: list[str]) -> list[str]:
    """Host names as DNS labels, made unique with -2, -3 … in order."""
    out: list[str] = []
    for name in wanted:
        label, n = dns_label(name), 1
        candidate = label
        while candidate in out:
            n += 1
            candidate = f"{label[: 63 - len(str(n)) - 1]}-{n}"
        out.append(candidate)
    return out


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip())
    except ValueError:
        return False
    return True


def name_for(address: str) -> str:
    """A node name from an address: a DNS name's first label, an IP address with dashes (10-0-0-1)."""
    return address.replace(".", "-").replace(":", "-") if is_ip(address) else address.split(".", maxsplit=1)[0]


def ssh_section(user: Any, port: Any, key: Any) -> dict[str, Any]:
    return {k: v for k, v in (("user", user), ("port", port), ("key", key)) if v not in (None, "")}


def hoist_ssh(hosts: list[dict[str, Any]]) -> dict[str, Any]:
    """SSH settings every host shares move to the cluster's `ssh:` (the file reads like one written by hand)."""
    shared: dict[str, Any] = {}
    for key in ("user", "port", "key"):
        values = [h.get("ssh", {}).get(key) for h in hosts]
        if values and values[0] is not None and all(v == values[0] for v in values):
            shared[key] = values[0]
    for host in hosts:
        ssh = {k: v for k, v in host.get("ssh", {}).items() if k not in shared}
        if ssh:
            host["ssh"] = ssh
        else:
            host.pop("ssh", None)
    return shared
