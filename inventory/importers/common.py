"""Pieces both importers share."""

from __future__ import annotations

import ipaddress
import re
from typing import Any


class FormatError(ValueError):
    """The input does not have the shape its tool documents."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


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
    """'v1.31.2+k0s.0' or 'v1.31.2' → '1.31.2'; None when absent or unrecognised."""
    if not isinstance(text, str):
        return None
    m = re.match(r"^v?(\d+\.\d+\.\d+)", text.strip())
    return m.group(1) if m else None


def as_mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise FormatError(f"{what} must be a mapping, got {type(value).__name__}")
    return value


def dns_label(text: str) -> str:
    label = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return label[:63] or "host"
