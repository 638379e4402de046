"""common: kernel modules, sysctl, swap off, time sync, base packages, hostname and the hosts file."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from roles.common import render
from roles.common.defaults import DEFAULTS
from roles.common.facts import FSTAB_SWAP, HOSTNAME, SWAP, VIRT, in_container, swap_counts
from roles.engine.command import Command, FileWrite
from roles.engine.context import HostContext
from roles.engine.facts import Fact, FactValues, FileText, KernelModules, ServiceState, Sysctl
from roles.engine.step import CommandStep, FileStep, PackagesStep, ServiceStep, Step

q = shlex.quote


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

    def desired(self, ctx: HostContext, current: str) -> str:
        block = render.hosts_block(ctx.cluster, ctx.nodes)
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
    active, in_fstab = swap_counts(facts)
    if active:
        out.append(Command("swapoff -a"))
    if in_fstab:
        script = f"s/^({FSTAB_SWAP[1:]}.*)$/# keelson: swap off for kubelet: \\1/"
        out.append(Command(f"sed -i -E {q(script)} /etc/fstab"))
    return out


def steps() -> list[Step]:
    d = DEFAULTS
    return [
        PackagesStep(d.packages, name="packages | base"),
        FileStep(d.modules_file, render.modules_load_conf(), name="kernel modules | persist"),
        ModulesStep(d.modules),
        FileStep(d.sysctl_file, render.sysctl_conf(), name="sysctl | persist"),
        SysctlStep(d.sysctl),
        CommandStep("swap | off", (SWAP,), lambda ctx, facts: swap_counts(facts) == (0, 0), _swap_off),
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
