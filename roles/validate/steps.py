"""The live checks of every Linux host: a Debian-family OS, systemd as PID 1, a supported architecture, and on a
master already running a control plane, that it runs the inventory's Kubernetes version (apply never changes a
running cluster's version: that is `keelson upgrade`, one node at a time)."""

from __future__ import annotations

from roles.engine.context import HostContext
from roles.engine.facts import CommandOutput, FactValues, OSRelease
from roles.engine.step import HostCheck, Step
from roles.validate.defaults import DEFAULTS

SYSTEMD = CommandOutput("systemd-pid1", "[ -d /run/systemd/system ] && echo yes")
ARCH = CommandOutput("arch", "uname -m")
APISERVER_IMAGE = CommandOutput(
    "apiserver-image", "sed -n 's/^ *image: *//p' /etc/kubernetes/manifests/kube-apiserver.yaml 2>/dev/null | head -n1"
)


def _os_problem(ctx: HostContext, facts: FactValues) -> str | None:
    release = facts.get(OSRelease())
    family = {release.get("ID", ""), *release.get("ID_LIKE", "").split()}
    if DEFAULTS.os_family not in family:
        name = release.get("PRETTY_NAME") or release.get("ID") or "unknown"
        return f"unsupported OS {name} (keelson supports Debian and Ubuntu)"
    return None


def _systemd_problem(ctx: HostContext, facts: FactValues) -> str | None:
    return None if facts.get(SYSTEMD)[0].strip() == "yes" else "systemd is not the init system (PID 1)"


def _arch_problem(ctx: HostContext, facts: FactValues) -> str | None:
    arch = facts.get(ARCH)[0].strip()
    return None if arch in DEFAULTS.architectures else f"unsupported architecture {arch or 'unknown'}"


def _version_problem(ctx: HostContext, facts: FactValues) -> str | None:
    from roles.upgrade.versions import Version

    image = facts.get(APISERVER_IMAGE)[0].strip()
    running = Version.parse(image.rsplit(":", 1)[-1]) if ":" in image else None
    wanted = ctx.cluster.kubernetes.release_version
    if running is None or str(running) == wanted:
        return None
    return (
        f"its control plane runs Kubernetes {running} but the inventory says {wanted}: apply does not change the "
        f"version of a running cluster; run `keelson upgrade --to {wanted}` (one node at a time), or set "
        f"kubernetes.version back to {running}"
    )


def checks() -> list[Step]:
    return [
        HostCheck("validate | os", (OSRelease(),), _os_problem),
        HostCheck("validate | systemd", (SYSTEMD,), _systemd_problem),
        HostCheck("validate | architecture", (ARCH,), _arch_problem),
        HostCheck("validate | kubernetes version", (APISERVER_IMAGE,), _version_problem),
    ]
