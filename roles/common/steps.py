"""common: kernel modules, sysctl, swap off, time sync, base packages, hostname and the hosts file."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from roles.common.defaults import DEFAULTS
from roles.engine.command import Command, FileWrite
from roles.engine.context import HostContext
from roles.engine.facts import CommandOutput, Fact, FactValues, FileText, KernelModules, ServiceState, Sysctl
from roles.engine.step import CommandStep, FileStep, PackagesStep, ServiceStep, Step
from roles.templating import render

q = shlex.quote
# systemd (PID 1) writes the container manager's name here when it runs in one (systemd-detect-virt reads it too)
VIRT = CommandOutput("container", 'read -r v < /run/systemd/container && echo "$v"')
# an active swap line in /etc/fstab, as both the fact and the fix see it
FSTAB_SWAP = r"^[^#].*[[:space:]]swap([[:space:]]|$)"
SWAP = CommandOutput(
    "swap",
    # active swap areas (the lines of /proc/swaps after its header, counted with builtins), then fstab swap lines
    "n=0; { read -r _; while read -r _; do n=$((n+1)); done; } < /proc/swaps; echo $n; "
    f"grep -cE {q(FSTAB_SWAP)} /etc/fstab",
)
HOSTNAME = CommandOutput("hostname", 'read -r h < /proc/sys/kernel/hostname && echo "$h"')


def in_container(facts: FactValues) -> bool:
    out, rc = facts.get(VIRT)
    return rc == 0 and out.strip() not in ("", "none")


@dataclass
class SysctlStep(Step):
    """Each key at its value now (the file persists it across reboots). Read-only keys are reported, not retried."""

    values: dict[str, str]
    name: str = "sysctl | apply"

    def _fact(self) -> Sysctl:
        return Sysctl(tuple(self.values))

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (self._fact(),)

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        current = facts.get(self._fact())
        wrong = [k for k, v in self.values.items() if current[k].value != v and current[k].writable]
        return [Command("sysctl -q -w " + " ".join(q(f"{k}={self.values[k]}") for k in wrong))] if wrong else []

    def warnings(self, ctx: HostContext, facts: FactValues) -> list[str]:
        current = facts.get(self._fact())
        return [
            f"sysctl {k} is {current[k].value or 'absent'} (want {v}) and read-only here: set it on the machine's host"
            for k, v in self.values.items()
            if current[k].value != v and not current[k].writable
        ]


@dataclass
class ModulesStep(Step):
    """Kernel modules loaded now (the modules-load.d file loads them at boot). A container shares its machine's
    kernel and cannot load modules: a module missing there is reported, not retried on every run."""

    modules: tuple[str, ...]
    name: str = "kernel modules | load"

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (KernelModules(self.modules), VIRT)

    def _missing(self, facts: FactValues) -> list[str]:
        have = facts.get(KernelModules(self.modules))
        return [m for m in self.modules if m not in have]

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        if in_container(facts):
            return []
        return [Command(f"modprobe {q(m)}") for m in self._missing(facts)]

    def warnings(self, ctx: HostContext, facts: FactValues) -> list[str]:
        if not in_container(facts):
            return []
        return [
            f"kernel module {m} is not loaded and this host is a container: load it on the machine (modprobe {m})"
            for m in self._missing(facts)
        ]


@dataclass
class TimeSyncStep(Step):
    """systemd-timesyncd enabled, and running unless the host is a container (its clock is the host kernel's)."""

    name: str = "time sync | systemd-timesyncd"

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (ServiceState("systemd-timesyncd"), VIRT)

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        step = ServiceStep("systemd-timesyncd", running=not in_container(facts))
        return step.check(ctx, facts)


@dataclass
class HostsBlockStep(Step):
    """A managed block of cluster hosts in /etc/hosts; the rest of the file is left as it is."""

    name: str = "hosts file | cluster block"
    path: str = "/etc/hosts"

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (FileText(self.path),)

    def block(self, ctx: HostContext) -> str:
        c = ctx.cluster
        return render(
            __file__,
            "hosts-block.j2",
            marker=DEFAULTS.hosts_marker,
            vip=c.control_plane.vip.ip,
            cluster=c.name,
            hosts=c.hosts,
        )

    def desired(self, ctx: HostContext, current: str) -> str:
        block = self.block(ctx)
        m = DEFAULTS.hosts_marker
        pattern = re.compile(rf"^# BEGIN {m}:.*?^# END {m}\n?", re.S | re.M)
        if pattern.search(current):
            return pattern.sub(lambda _: block, current, count=1)
        return current + ("" if current.endswith("\n") or not current else "\n") + block

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        current = facts.get(FileText(self.path)) or ""
        wanted = self.desired(ctx, current)
        return [] if wanted == current else [FileWrite(self.path, wanted.encode()).to_command()]


def _swap_off(ctx: HostContext, facts: FactValues) -> list[Command]:
    out: list[Command] = []
    active, in_fstab = _swap_counts(facts)
    if active:
        out.append(Command("swapoff -a"))
    if in_fstab:
        script = f"s/^({FSTAB_SWAP[1:]}.*)$/# keelson: swap off for kubelet: \\1/"
        out.append(Command(f"sed -i -E {q(script)} /etc/fstab"))
    return out


def _swap_counts(facts: FactValues) -> tuple[int, int]:
    out, _ = facts.get(SWAP)
    numbers = [int(n) for n in out.split() if n.isdigit()]
    padded = [*numbers, 0, 0]
    return padded[0], padded[1]


def steps() -> list[Step]:
    d = DEFAULTS
    return [
        PackagesStep(d.packages, name="packages | base"),
        FileStep(
            d.modules_file, render(__file__, "modules-load.conf.j2", modules=d.modules), name="kernel modules | persist"
        ),
        ModulesStep(d.modules),
        FileStep(d.sysctl_file, render(__file__, "sysctl.conf.j2", sysctl=d.sysctl), name="sysctl | persist"),
        SysctlStep(d.sysctl),
        CommandStep("swap | off", (SWAP,), lambda ctx, facts: _swap_counts(facts) == (0, 0), _swap_off),
        TimeSyncStep(),
        FileStep("/etc/hostname", lambda ctx: ctx.host.name + "\n", name="hostname | file"),
        CommandStep(
            "hostname | set",
            (HOSTNAME,),
            lambda ctx, facts: facts.get(HOSTNAME)[0].strip() == ctx.host.name,
            lambda ctx, facts: [Command(f"hostname {q(ctx.host.name)}")],
        ),
        HostsBlockStep(),
    ]
