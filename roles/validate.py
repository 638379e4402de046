"""Validate twice: the inventory with no network (the loader), then the live hosts, here, before any change."""

from __future__ import annotations

from inventory.model import Cluster
from roles.engine.context import HostContext
from roles.engine.facts import CommandOutput, FactValues, OSRelease
from roles.engine.phase import Phase, linux_hosts
from roles.engine.step import HostCheck

SYSTEMD = CommandOutput("systemd-pid1", "[ -d /run/systemd/system ] && echo yes")
ARCH = CommandOutput("arch", "uname -m")


def _os_problem(ctx: HostContext, facts: FactValues) -> str | None:
    release = facts.get(OSRelease())
    family = {release.get("ID", ""), *release.get("ID_LIKE", "").split()}
    if "debian" not in family:
        name = release.get("PRETTY_NAME") or release.get("ID") or "unknown"
        return f"unsupported OS {name} (keelson supports Debian and Ubuntu)"
    return None


def _systemd_problem(ctx: HostContext, facts: FactValues) -> str | None:
    return None if facts.get(SYSTEMD)[0].strip() == "yes" else "systemd is not the init system (PID 1)"


def _arch_problem(ctx: HostContext, facts: FactValues) -> str | None:
    arch = facts.get(ARCH)[0].strip()
    return None if arch in ("x86_64", "aarch64") else f"unsupported architecture {arch or 'unknown'}"


def phases(cluster: Cluster) -> list[Phase]:
    checks = [
        HostCheck("validate | os", (OSRelease(),), _os_problem),
        HostCheck("validate | systemd", (SYSTEMD,), _systemd_problem),
        HostCheck("validate | architecture", (ARCH,), _arch_problem),
    ]
    return [Phase("Validate hosts", linux_hosts, checks, always=True)]
