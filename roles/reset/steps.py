"""The reset's steps: one fact per step says what is left on the host (a pure parser), the step removes only that."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from roles.engine.command import Command
from roles.engine.context import HostContext
from roles.engine.facts import CommandOutput, Fact, FactValues
from roles.engine.step import Step
from roles.etcd.defaults import DEFAULTS as ETCD
from roles.reset.defaults import DEFAULTS

q = shlex.quote


def leftovers_script(paths: Sequence[str], units: Sequence[str], links: Sequence[str]) -> str:
    """Prints `path P` (a file, or a folder with something in it: a folder may be a mount point, as
    /var/lib/kubelet often is, and stays), `unit U` (active or enabled) and `link L` for each one still there."""
    parts = [f'{{ [ -f {q(p)} ] || [ -n "$(ls -A {q(p)} 2>/dev/null)" ]; }} && echo path {q(p)}' for p in paths]
    parts += [
        f"{{ systemctl is-active -q {q(u)} || systemctl is-enabled -q {q(u)}; }} 2>/dev/null && echo unit {q(u)}"
        for u in units
    ]
    parts += [f"ip link show {q(link)} >/dev/null 2>&1 && echo link {q(link)}" for link in links]
    return "; ".join(parts) + "; true"


@dataclass(frozen=True)
class Leftovers:
    paths: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    links: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.paths or self.units or self.links)


def parse_leftovers(stdout: str) -> Leftovers:
    """The script's lines → what is left; other lines (junk, warnings) are ignored."""
    found: dict[str, list[str]] = {"path": [], "unit": [], "link": []}
    for line in stdout.splitlines():
        kind, _, rest = line.strip().partition(" ")
        if kind in found and rest:
            found[kind].append(rest)
    return Leftovers(tuple(found["path"]), tuple(found["unit"]), tuple(found["link"]))


def remove_command(paths: Sequence[str]) -> Command:
    """Unmount what is mounted below each path (deepest first), then remove the files and each folder's content."""
    script = "\n".join(
        f"findmnt -rn -o TARGET | grep -E {q('^' + p.rstrip('/') + '/')} | sort -r | xargs -r -n1 umount -l; "
        f"if [ -d {q(p)} ]; then find {q(p)} -mindepth 1 -maxdepth 1 -exec rm -rf -- {{}} +; else rm -f -- {q(p)}; fi"
        for p in paths
    )
    return Command(script, description="remove " + ", ".join(paths))


@dataclass
class ResetStep(Step):
    """Stop and disable `units`, run `before` (kubeadm reset) when `trigger` is left, remove `paths` and `links`."""

    name: str
    paths: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    before: str = ""
    trigger: str = ""  # the path whose presence makes `before` run
    after: str = ""  # run last when anything was removed

    def _fact(self, ctx: HostContext) -> CommandOutput:
        return CommandOutput(f"reset-{self.name}", leftovers_script(self._paths(ctx), self.units, self.links))

    def _paths(self, ctx: HostContext) -> tuple[str, ...]:
        return self.paths

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (self._fact(ctx),)

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        left = parse_leftovers(facts.get(self._fact(ctx))[0])
        out: list[Command] = []
        for unit in left.units:
            stop = f"systemctl disable --now {q(unit)} >/dev/null 2>&1; systemctl reset-failed {q(unit)} 2>/dev/null"
            out.append(Command(f"{stop}; true", description=f"stop and disable {unit}"))
        if self.before and self.trigger in left.paths:
            out.append(Command(self.before, description=self.name + " | " + self.before.split(";")[0]))
        if left.paths:
            out.append(remove_command(left.paths))
        for link in left.links:
            out.append(Command(f"ip link delete {q(link)}"))
        if out and self.after:
            out.append(Command(self.after))
        return out


@dataclass
class EtcdDataStep(ResetStep):
    """etcd stopped and disabled; its data dir (the inventory's `etcd.data_dir`), its config and keelson's applied
    marker gone (a config left behind could keep a joined member's bootstrap lines: `roles/etcd/render.py`)."""

    def _paths(self, ctx: HostContext) -> tuple[str, ...]:
        return (ctx.cluster.etcd.data_dir, ETCD.config_file, ETCD.applied_marker)


def node_step() -> ResetStep:
    d = DEFAULTS
    kubeadm = f"timeout {d.kubeadm_timeout_s} kubeadm reset -f >/dev/null 2>&1 || true"
    return ResetStep(
        "node",
        paths=d.node_paths,
        units=d.node_units,
        links=d.node_links,
        before=kubeadm,
        trigger="/etc/kubernetes",
        # containerd's CRI reads the CNI config once it appears and keeps it: forget the removed one now, or a
        # later join's kubelet stays NotReady ("cni plugin not initialized") with a fresh config in place
        after="systemctl is-active -q containerd && systemctl restart containerd; true",
    )


def etcd_step() -> ResetStep:
    return EtcdDataStep("etcd", units=DEFAULTS.etcd_units)


def lb_step() -> ResetStep:
    return ResetStep("load balancer", units=DEFAULTS.lb_units)


def backups_step() -> ResetStep:
    return ResetStep("backups", units=DEFAULTS.backup_units)
