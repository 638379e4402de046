"""Large files a host gets from somewhere else — downloaded by the host from a URL, or streamed up by the runner from
this machine — checked against a digest resolved on the operator side, and installed all or nothing.

`FetchStep(name, wanted, origin, ca_file)`: `wanted()` gives the files (a payload installed at a path) and the
archives (a payload whose members are installed at paths). The step yields commands only when an installed file's
sha256 differs, or an archive's marker (its digest, then each member's) does not match what is on disk: nothing is
fetched or uploaded when the host already has it. The command fetches every distinct payload once into a private
temp folder, checks each against its digest — a mismatch names the file, the expected and the actual digest, and
exits 66 with nothing installed — and only then installs (temp file beside the target, then rename).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roles.engine.command import UPLOAD_DIR, Command, Upload
from roles.engine.context import HostContext
from roles.engine.facts import Fact, FactValues
from roles.engine.step import Step

q = shlex.quote
MISMATCH_RC = 66
MARKER_DIR = "/var/lib/keelson/artifacts"  # what each installed archive put where (with the sha256s)
DOWNLOAD_DIR = "/var/tmp"  # private temp folders for fetched payloads, removed after each install


@dataclass(frozen=True)
class Payload:
    """One file as a host gets it: from `url` (the host downloads it) or the local `path` (the runner uploads it),
    with the digest it must have."""

    name: str  # for messages: its path in the artifact layout
    sha256: str
    url: str | None = None
    path: Path | None = None


@dataclass(frozen=True)
class FileInstall:
    dest: str
    payload: Payload


@dataclass(frozen=True)
class ArchiveInstall:
    payload: Payload
    members: tuple[tuple[str, str], ...]  # (name in the archive, destination)

    @property
    def marker(self) -> str:
        return marker_path(self.payload.name)


def marker_path(name: str) -> str:
    """Where a host records what an archive installed (its digest, then each member's)."""
    return f"{MARKER_DIR}/{name.rsplit('/', 1)[-1]}.installed"


# -- the installed state --------------------------------------------------------------------------------------------


DIGEST_CACHE = f"{MARKER_DIR}/digests"  # per installed path: its stat signature and sha256 (see `Installed`)
SIGNATURE = "%s:%i:%.9Z:%.9Y"  # stat's format: size, inode, ctime and mtime in ns
# keep DIR FILE SIGNATURE DIGEST: FILE's cache entry in DIR (0700), written whole (the fact and the install share it)
KEEP = (
    'keelson_keep() { local k="$1/${2//\\//%}"; '
    'mkdir -p -m 0700 "$1" && echo "$3 $4" > "$k.tmp" && mv -f "$k.tmp" "$k"; }'
)


@dataclass(frozen=True)
class Installed(Fact[tuple[dict[str, str], dict[str, str]]]):
    """sha256 of each destination file that exists, and the content of each archive marker that exists.

    Hashing every Kubernetes binary on every run cost a no-op ~6 s per host under load (kubelet alone is 170 MB),
    so a digest is read from a cache when the file's stat signature (size, inode, ctime and mtime to the
    nanosecond) is the one recorded beside it, as git's index does: any write, rename or chmod changes the ctime or
    the inode. A file changed within `settle_s` seconds of being hashed is not cached (the kernel's ctime clock is
    coarse: a second write in the same tick could keep the signature — git's "racy" case)."""

    paths: tuple[str, ...]
    markers: tuple[str, ...]
    cache_dir: str = DIGEST_CACHE
    settle_s: int = 2

    @property
    def key(self) -> str:
        return "installed-artifacts:" + ",".join(self.paths + self.markers)

    def command(self) -> str:
        files = " ".join(q(p) for p in self.paths)
        marks = "; ".join(f"[ -f {q(m)} ] && {{ echo '@@marker {m}'; cat {q(m)}; }}" for m in self.markers)
        # one stat for every file, kept by name (a name that prints oddly is asked alone, as it always was)
        digests = (
            f"{KEEP}; c={q(self.cache_dir)}; printf -v now '%(%s)T' -1; declare -A st=(); e=(); "
            f'for f in {files}; do [ -f "$f" ] && [[ $f != *$\'\\n\'* ]] && e+=("$f"); done; '
            f'[ ${{#e[@]}} -eq 0 ] || while read -r ct sig f; do [ -n "$f" ] && st[$f]="$ct $sig"; '
            f'done <<< "$(stat -c \'%Z {SIGNATURE} %n\' -- "${{e[@]}}")"; '
            f'for f in {files}; do [ -f "$f" ] || continue; '
            'if [ -n "${st[$f]+x}" ]; then ct=${st[$f]%% *}; sig=${st[$f]#* }; '
            f"else read -r ct sig < <(stat -c '%Z {SIGNATURE}' -- \"$f\"); fi; "
            'm= d=; [ -f "$c/${f//\\//%}" ] && read -r m d < "$c/${f//\\//%}"; '
            'if [ "$m" != "$sig" ] || [ ${#d} -ne 64 ]; then d=$(sha256sum < "$f"); d=${d%% *}; '
            f'[ $((now - ct)) -lt {self.settle_s} ] || keelson_keep "$c" "$f" "$sig" "$d"; fi; '
            'echo "$d  $f"; done'
        )
        return f"{digests}; {marks or 'true'}; true"

    def parse(self, stdout: str, rc: int) -> tuple[dict[str, str], dict[str, str]]:
        digests: dict[str, str] = {}
        markers: dict[str, list[str]] = {}
        current: str | None = None
        for line in stdout.splitlines():
            if line.startswith("@@marker "):
                current = line.split(" ", 1)[1].strip()
                markers[current] = []
            elif current is not None:
                markers[current].append(line)
            else:
                parts = line.split()
                if len(parts) == 2 and len(parts[0]) == 64:
                    digests[parts[1]] = parts[0]
        return digests, {m: "\n".join(lines) for m, lines in markers.items()}


def archive_ok(archive: ArchiveInstall, digests: dict[str, str], marker: str | None) -> bool:
    """The marker names this archive's digest and lists every member with the digest it has now."""
    if marker is None:
        return False
    lines = marker.splitlines()
    if not lines or lines[0].strip() != archive.payload.sha256:
        return False
    recorded = {parts[1]: parts[0] for parts in (line.split() for line in lines[1:]) if len(parts) == 2}
    return all(dest in recorded and digests.get(dest) == recorded[dest] for _, dest in archive.members)


# -- the install script ---------------------------------------------------------------------------------------------


def fetch_lines(payloads: list[Payload], ca_file: str | None) -> list[str]:
    """Put each payload at "$d/<sha256>": downloaded from its URL, or moved from where the runner uploaded it."""
    lines = []
    for p in payloads:
        target = f'"$d"/{p.sha256}'
        if p.url is not None:
            ca = f" --cacert {q(ca_file)}" if ca_file else ""
            lines.append(
                f"curl --fail --silent --show-error --location --retry 3 --connect-timeout 10{ca} "
                f"-o {target} {q(p.url)} || {{ echo {q(f'cannot download {p.url}')} >&2; exit 65; }}"
            )
        else:
            lines.append(f"mv -f {UPLOAD_DIR}/{p.sha256} {target}")
    return lines


def verify_lines(payloads: list[Payload]) -> list[str]:
    lines = []
    for p in payloads:
        origin = p.url or f"the local set ({p.name})"
        message = f"{p.name}: sha256 mismatch: expected {p.sha256}, got $got (from {origin}): nothing installed"
        lines.append(
            f'got=$(sha256sum < "$d"/{p.sha256} | cut -c1-64); '
            f'[ "$got" = {p.sha256} ] || {{ echo "{message}" >&2; exit {MISMATCH_RC}; }}'
        )
    return lines


def _place(source: str, dest: str) -> str:
    folder, name = dest.rsplit("/", 1)
    tmp = f"{folder}/.{name}.keelson"
    return f"install -D -m 0755 -o root -g root {source} {q(tmp)} && mv -f {q(tmp)} {q(dest)}"


def _link(first: str, source: str, dest: str) -> str:
    """`dest` as a hard link of `first` (installed just before with the same content); a copy where they are on
    different file systems."""
    folder, name = dest.rsplit("/", 1)
    tmp = f"{folder}/.{name}.keelson"
    return (
        f"mkdir -p {q(folder)} && {{ ln -f {q(first)} {q(tmp)} 2>/dev/null || "
        f"install -m 0755 -o root -g root {source} {q(tmp)}; }} && mv -f {q(tmp)} {q(dest)}"
    )


def install_lines(files: list[FileInstall], archives: list[ArchiveInstall]) -> list[str]:
    """Files with the same content (the multi-call binary under kubeadm, kubelet, kubectl) are one file on the
    host, hard-linked under each name: its size once on disk, not once per name."""
    lines = []
    first: dict[str, str] = {}
    for f in files:
        source = f'"$d"/{f.payload.sha256}'
        if f.payload.sha256 in first:
            lines.append(_link(first[f.payload.sha256], source, f.dest))
        else:
            lines.append(_place(source, f.dest))
            first[f.payload.sha256] = f.dest
    for a in archives:
        x = f'"$d"/x{a.payload.sha256[:12]}'
        lines.append(f'mkdir -p {x} && tar -xzf "$d"/{a.payload.sha256} -C {x}')
        lines += [_place(f"{x}/{q(member)}", dest) for member, dest in a.members]
        dests = " ".join(q(dest) for _, dest in a.members)
        lines.append(
            f"mkdir -p {MARKER_DIR} && {{ echo {a.payload.sha256}; sha256sum {dests}; }} > {q(a.marker)}.tmp"
            f" && mv -f {q(a.marker)}.tmp {q(a.marker)}"
        )
    return lines


def remember_lines(files: list[FileInstall], archives: list[ArchiveInstall]) -> list[str]:
    """Record each installed file's digest with its stat signature, last (hard links change the ctime), so the next
    run's `Installed` fact reads it instead of hashing the file. The content is what this script verified; the
    signature is taken after its last write."""
    record = (
        f"remember() {{ local sig; sig=$(stat -c '{SIGNATURE}' -- \"$1\") && "
        f'keelson_keep {DIGEST_CACHE} "$1" "$sig" "$2" || true; }}'  # a cache it cannot write fails no install
    )
    lines = [KEEP, record]
    lines += [f"remember {q(f.dest)} {f.payload.sha256}" for f in files]
    lines += [f'tail -n +2 {q(a.marker)} | while read -r dg p; do remember "$p" "$dg"; done' for a in archives]
    return lines


def distinct(payloads: Sequence[Payload]) -> list[Payload]:
    seen: dict[str, Payload] = {}
    for p in payloads:
        seen.setdefault(p.sha256, p)
    return list(seen.values())


def script(files: list[FileInstall], archives: list[ArchiveInstall], ca_file: str | None) -> str:
    payloads = distinct([f.payload for f in files] + [a.payload for a in archives])
    head = ["set -e", f"d=$(mktemp -d {DOWNLOAD_DIR}/keelson-fetch.XXXXXX) || exit $?", "trap 'rm -rf \"$d\"' EXIT"]
    # each line stops the script itself: set -e lets a failed `install … && mv …` list go on (only the list's last
    # command counts), and until the runner honoured set -e (runner.host_script) a failed `mv` went on to the digest
    # records (the old file's signature with the new digest) and exit 0
    steps = fetch_lines(payloads, ca_file) + verify_lines(payloads) + install_lines(files, archives)
    body = [f"{line} || exit $?" for line in steps] + remember_lines(files, archives)
    return "\n".join(head + body)


def uploads(payloads: Sequence[Payload]) -> tuple[Upload, ...]:
    """The payloads the runner streams up (those with a local path), each under its digest."""
    return tuple(Upload(p.path, p.sha256) for p in distinct(payloads) if p.path is not None)


# -- the step --------------------------------------------------------------------------------------------------------

Wanted = tuple[list[FileInstall], list[ArchiveInstall]]


@dataclass
class FetchStep(Step):
    """Files and archives at the digests their source publishes (see the module docstring)."""

    name: str
    wanted: Callable[[], Wanted]  # resolved lazily: resolving may read a mirror's .sha256 files
    paths: tuple[str, ...]  # every destination the wanted files and members may have
    markers: tuple[str, ...]  # every archive marker (marker_path of each archive's layout path)
    origin: Callable[[], str] = lambda: ""
    ca_file: str | None = None

    def _fact(self) -> Installed:
        return Installed(self.paths, self.markers)

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (self._fact(),)

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        digests, markers = facts.get(self._fact())
        files, archives = self.wanted()
        files = [f for f in files if digests.get(f.dest) != f.payload.sha256]
        archives = [a for a in archives if not archive_ok(a, digests, markers.get(a.marker))]
        if not files and not archives:
            return []
        names = {f.dest.rsplit("/", 1)[1] for f in files} | {a.payload.name.rsplit("/", 1)[1] for a in archives}
        origin = self.origin()
        return [
            Command(
                script(files, archives, self.ca_file),
                description=f"install {', '.join(sorted(names))} ({origin + '; ' if origin else ''}sha256-checked, "
                "all or nothing)",
                summary_only=True,
                uploads=uploads([f.payload for f in files] + [a.payload for a in archives]),
            )
        ]
