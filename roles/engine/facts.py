"""Facts: what a host looks like, each one a shell snippet plus a pure parser (pyinfra's shape).

A phase gathers every fact its steps need in ONE command per host (`batch_script`), split back by `split_batch`.
"""

from __future__ import annotations

import secrets
import shlex
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Self, TypeVar

T = TypeVar("T")
q = shlex.quote


class Fact(ABC, Generic[T]):
    """`command()` prints what `parse()` reads. Parsers are pure and tolerate junk (they return a safe default)."""

    @property
    @abstractmethod
    def key(self) -> str: ...

    @abstractmethod
    def command(self) -> str: ...

    @abstractmethod
    def parse(self, stdout: str, rc: int) -> T: ...

    # In a batch, the facts of one kind may share their work: `shared(facts)` is a script run once before the
    # batch's facts (its output discarded) that leaves answers in shell variables, and each fact's `from_shared()`
    # prints from them exactly what its own command would print, or runs its own command where they hold no answer.
    # On a master a no-op's batch forked ~150 processes, ~90 of them a stat and a sha256sum per file: each fork and
    # exec is host CPU on the same cores as every other host. None: the kind has nothing to share.
    @classmethod
    def shared(cls, facts: Sequence[Self]) -> str | None:
        return None

    def from_shared(self) -> str:
        return self.command()


class FactValues:
    """Parsed facts of one host, by key."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)

    def get(self, fact: Fact[T]) -> T:
        if fact.key not in self._values:
            raise KeyError(f"fact {fact.key} was not gathered (declare it in the step's facts())")
        value: T = self._values[fact.key]
        return value

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def keys(self) -> Iterable[str]:
        return self._values.keys()


# A batch writes its output in many small pieces (two markers and the fact's own output per fact), and sshd sends
# each piece it reads as its own SSH packet, which keelson decrypts and hands between threads in Python: ~107 packets
# per host for the host-level facts of a no-op, ~2.7 KB in all. dd gathers the output into one block first (with
# ibs and obs different it reblocks: it writes full obs blocks, and what is left at the end): 16 packets per host,
# the handshake's included. Where dd refuses these options (an old or minimal dd), cat passes the output through.
GATHER_OUTPUT = "dd ibs=65536 obs=1048576 status=none 2>/dev/null || cat"


def shared_scripts(facts: Sequence[Fact[Any]]) -> tuple[list[str], set[type]]:
    """The `shared` scripts of the kinds with more than one fact in `facts`, and those kinds."""
    kinds: dict[type[Fact[Any]], list[Fact[Any]]] = {}
    for fact in facts:
        kinds.setdefault(type(fact), []).append(fact)
    scripts, sharing = [], set()
    for kind, group in kinds.items():
        script = kind.shared(group) if len(group) > 1 else None
        if script:
            scripts.append(f"{{ {script}\n}} >/dev/null 2>&1")
            sharing.add(kind)
    return scripts, sharing


def batch_script(facts: Sequence[Fact[Any]], nonce: str | None = None) -> tuple[str, str]:
    """One script printing every fact between markers, its output sent in one piece. Returns (script, nonce)."""
    nonce = nonce or secrets.token_hex(6)
    parts, sharing = shared_scripts(facts)
    for i, fact in enumerate(facts):
        begin = f"printf '\\n@@KF-{nonce} {i}@@\\n'"
        end = f"printf '\\n@@KR-{nonce} {i} %d@@\\n' $?"
        command = fact.from_shared() if type(fact) in sharing else fact.command()
        parts.append(f"{begin}; {{ {command}\n}} 2>/dev/null; {end}")
    body = "\n".join(parts) or ":"
    return f"{{\n{body}\n}} | {{ {GATHER_OUTPUT}; }}\n", nonce


def split_batch(stdout: str, count: int, nonce: str) -> list[tuple[str, int]]:
    """Each fact's (stdout, rc) from a batch's output. A fact whose markers are missing gets ('', -1)."""
    out: list[tuple[str, int]] = [("", -1)] * count
    for chunk in stdout.split(f"\n@@KF-{nonce} ")[1:]:
        head, _, rest = chunk.partition("@@\n")
        body, _, tail = rest.rpartition(f"\n@@KR-{nonce} ")
        try:
            index = int(head)
            rc = int(tail.split("@@", 1)[0].split()[1])
        except (ValueError, IndexError):
            continue
        if 0 <= index < count:
            out[index] = (body, rc)
    return out


# -- ready-made facts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileState:
    mode: int
    owner: str
    group: str
    sha256: str


@dataclass(frozen=True)
class FileInfo(Fact[FileState | None]):
    """A regular file's mode, owner, group and sha256; None when it does not exist."""

    path: str

    @property
    def key(self) -> str:
        return f"file:{self.path}"

    def command(self) -> str:
        p = q(self.path)
        return f"[ -f {p} ] && stat -c '%a %U %G' {p} && sha256sum < {p}"

    @classmethod
    def shared(cls, facts: Sequence[FileInfo]) -> str:
        # one stat and one sha256sum for every regular file, kept by name; a name that prints oddly (a backslash, a
        # trailing blank) is missing from an answer and its fact runs its own command, as does one with a newline
        paths = " ".join(q(f.path) for f in facts)
        return (
            "declare -A __kf_s __kf_d; __kf=(); "
            f'for __p in {paths}; do [ -f "$__p" ] && [[ $__p != *$\'\\n\'* ]] && __kf+=("$__p"); done; '
            "if [ ${#__kf[@]} -gt 0 ]; then "
            "__o=$(stat -c '%a %U %G %n' -- \"${__kf[@]}\"); "
            'while read -r __m __u __g __n; do [ -n "$__n" ] && __kf_s[$__n]="$__m $__u $__g"; done <<< "$__o"; '
            '__o=$(sha256sum -- "${__kf[@]}"); '
            'while read -r __d __n; do [ ${#__d} -eq 64 ] && [ -n "$__n" ] && __kf_d[$__n]=$__d; done <<< "$__o"; fi'
        )

    def from_shared(self) -> str:
        return (
            f"__p={q(self.path)}; "
            'if [ -n "${__kf_s[$__p]+x}" ] && [ -n "${__kf_d[$__p]+x}" ]; then '
            'printf \'%s\\n%s  -\\n\' "${__kf_s[$__p]}" "${__kf_d[$__p]}"; '
            f"else {self.command()}; fi"
        )

    def parse(self, stdout: str, rc: int) -> FileState | None:
        lines = stdout.split()
        if rc != 0 or len(lines) < 4:
            return None
        try:
            mode = int(lines[0], 8)
        except ValueError:
            return None
        digest = lines[3]
        if len(digest) != 64:
            return None
        return FileState(mode, lines[1], lines[2], digest)


@dataclass(frozen=True)
class FileText(Fact[str | None]):
    """A small text file's content; None when missing."""

    path: str

    @property
    def key(self) -> str:
        return f"text:{self.path}"

    def command(self) -> str:
        return f"cat {q(self.path)}"

    def parse(self, stdout: str, rc: int) -> str | None:
        return stdout if rc == 0 else None


@dataclass(frozen=True)
class UnitState:
    active: str  # active | inactive | failed | activating | unknown
    enabled: str  # enabled | disabled | static | masked | not-found | unknown


@dataclass(frozen=True)
class ServiceState(Fact[UnitState]):
    unit: str

    @property
    def key(self) -> str:
        return f"service:{self.unit}"

    def command(self) -> str:
        # is-enabled reads the unit's links on disk: `show`'s UnitFileState is the loaded unit's, stale after an
        # `enable --no-reload` until the next daemon-reload (a re-apply would enable it again every time)
        unit = q(self.unit)
        return (
            f"systemctl show --property=ActiveState -- {unit}; printf 'UnitFileState='; systemctl is-enabled -- {unit}"
        )

    @classmethod
    def shared(cls, facts: Sequence[ServiceState]) -> str:
        # one `show` and one `is-enabled` for every unit, each line in the order of the units; an answer is used only
        # when it has a line for every unit (is-enabled stops at the first unit it cannot find, e.g. before install)
        units = " ".join(q(f.unit) for f in facts)
        return (
            f"declare -A __ks_a __ks_e; __ku=({units}); __ka=(); __ke=(); "
            '__o=$(systemctl show --property=ActiveState -- "${__ku[@]}"); '
            'while IFS= read -r __l; do [ -n "$__l" ] && __ka+=("$__l"); done <<< "$__o"; '
            '__o=$(systemctl is-enabled -- "${__ku[@]}"); '
            'while IFS= read -r __l; do [ -n "$__l" ] && __ke+=("$__l"); done <<< "$__o"; '
            "if [ ${#__ka[@]} -eq ${#__ku[@]} ] && [ ${#__ke[@]} -eq ${#__ku[@]} ]; then "
            'for __i in "${!__ku[@]}"; do __l=${__ku[__i]}; '
            "__ks_a[$__l]=${__ka[__i]}; __ks_e[$__l]=${__ke[__i]}; done; fi"
        )

    def from_shared(self) -> str:
        return (
            f"__u={q(self.unit)}; "
            'if [ -n "${__ks_a[$__u]+x}" ]; then '
            'printf \'%s\\nUnitFileState=%s\\n\' "${__ks_a[$__u]}" "${__ks_e[$__u]}"; '
            f"else {self.command()}; fi"
        )

    def parse(self, stdout: str, rc: int) -> UnitState:
        values = dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)
        active = values.get("ActiveState", "").strip() or "unknown"
        return UnitState(active, values.get("UnitFileState", "").strip() or "not-found")


@dataclass(frozen=True)
class PackagesInstalled(Fact[frozenset[str]]):
    """Which of `names` dpkg says are installed."""

    names: tuple[str, ...]

    @property
    def key(self) -> str:
        return "packages:" + ",".join(sorted(self.names))

    def command(self) -> str:
        return "dpkg-query -W -f='${Package} ${db:Status-Abbrev}\\n' " + " ".join(q(n) for n in self.names)

    @classmethod
    def shared(cls, facts: Sequence[PackagesInstalled]) -> str:
        # one dpkg-query for every name (each reads the whole package database), its lines kept by package; a fact
        # with a name dpkg does not list (never installed) runs its own command
        names = " ".join(q(n) for n in sorted({n for f in facts for n in f.names}))
        return (
            f"declare -A __kp; __o=$(dpkg-query -W -f='${{Package}} ${{db:Status-Abbrev}}\\n' {names}); "
            'while IFS= read -r __l; do __n=${__l%% *}; [ -n "$__n" ] && __kp[$__n]+="$__l"$\'\\n\'; done <<< "$__o"'
        )

    def from_shared(self) -> str:
        names = " ".join(q(n) for n in self.names)
        return (
            f'__o=; for __n in {names}; do [ -n "${{__kp[$__n]+x}}" ] || {{ __o=-; break; }}; done; '
            f'if [ -z "$__o" ]; then for __n in {names}; do printf \'%s\' "${{__kp[$__n]}}"; done; '
            f"else {self.command()}; fi"
        )

    def parse(self, stdout: str, rc: int) -> frozenset[str]:
        found = set()
        for line in stdout.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[1].startswith("ii"):
                found.add(parts[0].split(":")[0])
        return frozenset(found)


# How to tell a module is usable when it may be built in (no /sys/module entry) or the host is a container.
MODULE_PROBES = {
    "overlay": "grep -qw overlay /proc/filesystems",
    "br_netfilter": "[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]",
}


@dataclass(frozen=True)
class KernelModules(Fact[frozenset[str]]):
    """Which of `names` the running kernel provides: loaded (/proc/modules), built in (/sys/module), or visibly
    working (MODULE_PROBES). A container shares its host's kernel and has neither /proc/modules nor /sys/module:
    the probes see what the host kernel already provides, so a module loaded there needs no modprobe here."""

    names: tuple[str, ...]

    @property
    def key(self) -> str:
        return "modules:" + ",".join(sorted(self.names))

    def command(self) -> str:
        checks = []
        for name in self.names:
            n = q(name)
            probe = MODULE_PROBES.get(name, "false")
            loaded = f"{{ [ -r /proc/modules ] && grep -q {q(f'^{name} ')} /proc/modules; }}"
            checks.append(f"{{ {loaded} || [ -d /sys/module/{n} ] || {probe}; }} && echo {n}")
        return "; ".join(checks) + "; true"

    def parse(self, stdout: str, rc: int) -> frozenset[str]:
        return frozenset(line.strip() for line in stdout.splitlines() if line.strip() in self.names)


@dataclass(frozen=True)
class SysctlValue:
    value: str | None
    writable: bool


@dataclass(frozen=True)
class Sysctl(Fact[dict[str, SysctlValue]]):
    """Current values of sysctl keys, and whether this host may change them (not in a read-only /proc/sys)."""

    keys: tuple[str, ...]

    @property
    def key(self) -> str:
        return "sysctl:" + ",".join(sorted(self.keys))

    def command(self) -> str:
        # shell builtins only (read, test, printf): no fork per key
        parts = []
        for k in self.keys:
            path = q("/proc/sys/" + k.replace(".", "/"))
            parts.append(
                f"v=-; read -r v < {path} || v=-; [ -w {path} ] && a=rw || a=ro; "
                f'printf \'%s %s %s\\n\' {q(k)} "$a" "$v"'
            )
        return "; ".join(parts)

    def parse(self, stdout: str, rc: int) -> dict[str, SysctlValue]:
        out = {k: SysctlValue(None, False) for k in self.keys}
        for line in stdout.splitlines():
            parts = line.split(None, 2)
            if len(parts) == 3 and parts[0] in out:
                value = None if parts[2].strip() == "-" else " ".join(parts[2].split())
                out[parts[0]] = SysctlValue(value, parts[1] == "rw")
        return out


@dataclass(frozen=True)
class CommandOutput(Fact[tuple[str, int]]):
    """Any command's raw (stdout, rc). `name` makes the key; keep the script read-only."""

    name: str
    script: str

    @property
    def key(self) -> str:
        return f"cmd:{self.name}"

    def command(self) -> str:
        return self.script

    def parse(self, stdout: str, rc: int) -> tuple[str, int]:
        return stdout, rc


@dataclass(frozen=True)
class OSRelease(Fact[dict[str, str]]):
    @property
    def key(self) -> str:
        return "os-release"

    def command(self) -> str:
        return "cat /etc/os-release"

    def parse(self, stdout: str, rc: int) -> dict[str, str]:
        out = {}
        for line in stdout.splitlines():
            k, sep, v = line.partition("=")
            if sep and k.strip().isidentifier():
                out[k.strip()] = v.strip().strip('"')
        return out
