"""Facts the etcd role reads on a member: the etcd version, and its local state for the bootstrap decision."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from roles.engine.facts import Fact
from roles.etcd.commands import EtcdVersion, EtcdVersionError
from roles.etcd.defaults import DEFAULTS as ETCD

q = shlex.quote


@dataclass(frozen=True)
class EtcdVersionFact(Fact[EtcdVersion | None]):
    """`etcd --version`; None when etcd is missing or prints something else."""

    binary: str = ETCD.binary

    @property
    def key(self) -> str:
        return f"etcd-version:{self.binary}"

    def command(self) -> str:
        return f"[ -x {q(self.binary)} ] && {q(self.binary)} --version"

    def parse(self, stdout: str, rc: int) -> EtcdVersion | None:
        if rc != 0:
            return None
        try:
            return EtcdVersion.parse(stdout)
        except EtcdVersionError:
            return None


@dataclass(frozen=True)
class MemberState:
    active: str  # systemctl is-active: active | activating | inactive | failed | …
    has_data: bool  # <data_dir>/member exists: this member was bootstrapped (or began to be)
    marker: str  # digest the running etcd was started with ("" when none)
    complete: bool = True  # the script's output arrived whole (a cut-off output must not be read as "not running")

    @property
    def running(self) -> bool:
        return self.active in ("active", "activating", "reloading")


def member_state_script(data_dir: str) -> str:
    unit = q(ETCD.unit_name)
    return (
        f"echo active=$(systemctl is-active {unit}); "
        f"if [ -d {q(data_dir.rstrip('/') + '/member')} ]; then echo data=yes; else echo data=no; fi; "
        f"echo marker=$(cat {q(ETCD.applied_marker)} 2>/dev/null); echo end=1"
    )


def parse_member_state(stdout: str) -> MemberState:
    values = dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)
    return MemberState(
        active=values.get("active", "").strip() or "unknown",
        has_data=values.get("data", "").strip() == "yes",
        marker=values.get("marker", "").strip(),
        complete=values.get("end", "").strip() == "1",
    )


@dataclass(frozen=True)
class MemberStateFact(Fact[MemberState]):
    """The member's local state (`member_state_script`), read by the start phase from the host's fact batch."""

    data_dir: str

    @property
    def key(self) -> str:
        return f"etcd-member-state:{self.data_dir}"

    def command(self) -> str:
        return member_state_script(self.data_dir)

    def parse(self, stdout: str, rc: int) -> MemberState:
        return parse_member_state(stdout)
