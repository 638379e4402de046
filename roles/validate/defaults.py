"""What the live validation accepts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ValidateDefaults:
    os_family: str = "debian"  # /etc/os-release ID or ID_LIKE: Debian, Ubuntu and their derivatives
    architectures: tuple[str, ...] = ("x86_64", "aarch64")


DEFAULTS = ValidateDefaults()
