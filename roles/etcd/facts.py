"""Facts the etcd role reads on a member: the etcd version, and its local state for the bootstrap decision."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from roles.engine.facts import Fact
from roles.engine.fetch import KEEP, MARKER_DIR, SIGNATURE
from roles.etcd.commands import EtcdVersion, EtcdVersionError
from roles.etcd.defaults import DEFAULTS as ETCD

q = shlex.quote


VERSION_CACHE = f"{MARKER_DIR}/versions"  # per binary: its stat signature and the first line of its --version


@dataclass(frozen=True)
class EtcdVersionFact(Fact[EtcdVersion | None]):
    """`etcd --version`'s first line; None when etcd is missing or prints something else.

    Starting etcd to learn its version cost a master ~15-25 ms of CPU on every run, so the line is kept beside the
    binary's stat signature (size, inode, ctime and mtime to the nanosecond, as the installed digests are:
    roles/engine/fetch.py `Installed`) and read from there while the signature is the same: a binary replaced,
    rewritten or renamed over has another, and is asked again. Not kept within `settle_s` seconds of the binary's
    last change (the racy case), nor when the cache cannot be written (the line is still printed)."""

    binary: str = ETCD.binary
    cache_dir: str = VERSION_CACHE
    settle_s: int = 2

    @property
    def key(self) -> str:
        return f"etcd-version:{self.binary}"

    def command(self) -> str:
        return (
            f"{KEEP}; c={q(self.cache_dir)}; b={q(self.binary)}; printf -v now '%(%s)T' -1; "
            '[ -x "$b" ] && { '
            f"read -r ct sig < <(stat -c '%Z {SIGNATURE}' -- \"$b\"); "
            'm= v=; [ -f "$c/${b//\\//%}" ] && read -r m v < "$c/${b//\\//%}"; '
            'if [ "$m" != "$sig" ] || [ -z "$v" ]; then v=$("$b" --version) && v=${v%%$\'\\n\'*} && '
            f'{{ [ $((now - ct)) -lt {self.settle_s} ] || keelson_keep "$c" "$b" "$sig" "$v" || true; }}; fi && '
            'echo "$v"; }'
        )

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
