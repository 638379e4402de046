"""An inventory host that receives SSH backups: its account, the receiver, the folder, the restricted key.

The etcd members hold keelson's backup key; whoever takes a master takes the key. So on the backup host the key can
do only what the agent does — nothing else:

- a dedicated account (`keelson-backup` unless the inventory names another), created here with a real shell
  (sshd runs forced commands through it) and a 0700 home; `user: root` is allowed but runs the receiver as root;
- `/usr/local/lib/keelson/backup-receiver` (the agent's `RECEIVER` text): put a `.part`, check its sha256, move it
  into place, list — in the target's folder only, files 0600, the folder 0700 and owned by the account;
- in that account's `authorized_keys`, the key with `restrict,command="RECEIVER FOLDER"` (no shell, pty,
  forwarding or agent), and the key in no other account's `authorized_keys` on the host (an earlier unrestricted
  line, e.g. root's from before, is removed: sshd would use the first line that matches).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from backups import agent
from inventory.model import Cluster, Host, SSHTarget
from roles.engine.command import Command
from roles.engine.context import HostContext
from roles.engine.errors import HostCheckFailed
from roles.engine.facts import Fact, FactValues
from roles.engine.step import FileStep, Step
from roles.state import StateDir

q = shlex.quote
RECEIVER_PATH = "/usr/local/lib/keelson/backup-receiver"
NO_LOGIN_SHELLS = ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false")


def targets_on(cluster: Cluster, host: Host) -> list[SSHTarget]:
    """The SSH targets whose `host` is this inventory host (by name, address or internal address)."""
    names = {host.name, str(host.address)} | ({str(host.internal_address)} if host.internal_address else set())
    return [t for t in cluster.backups.targets if isinstance(t, SSHTarget) and t.host in names]


def backup_hosts(cluster: Cluster) -> list[Host]:
    return [h for h in cluster.hosts if targets_on(cluster, h)]


def authorized_line(target: SSHTarget, public_key: str) -> str:
    """The key's line: it may run the receiver on the target's folder and nothing else."""
    return f'restrict,command="{RECEIVER_PATH} {target.path}" {public_key}'


def key_blob(public_key: str) -> str:
    """The base64 part of `ssh-ed25519 AAAA… comment`: what identifies the key in any authorized_keys line."""
    return public_key.split()[1]


# -- facts ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    home: str
    shell: str


@dataclass(frozen=True)
class AccountFact(Fact[Account | None]):
    """`getent passwd USER` → home and shell; None when there is no such user."""

    user: str

    @property
    def key(self) -> str:
        return f"account:{self.user}"

    def command(self) -> str:
        return f"getent passwd {q(self.user)}"

    def parse(self, stdout: str, rc: int) -> Account | None:
        fields = stdout.strip().split(":")
        if rc != 0 or len(fields) != 7 or fields[0] != self.user:
            return None
        return Account(home=fields[5], shell=fields[6])


@dataclass(frozen=True)
class FolderFact(Fact[tuple[str, str] | None]):
    """A folder's (owner, octal mode); None when it is missing or not a folder."""

    path: str

    @property
    def key(self) -> str:
        return f"folder:{self.path}"

    def command(self) -> str:
        return f"[ -d {q(self.path)} ] && stat -c '%U %a' {q(self.path)}"

    def parse(self, stdout: str, rc: int) -> tuple[str, str] | None:
        parts = stdout.split()
        return (parts[0], parts[1]) if rc == 0 and len(parts) == 2 else None


@dataclass(frozen=True)
class KeyHolders(Fact[frozenset[tuple[str, str]]]):
    """Every (user, line) of any account's authorized_keys on the host that holds the key `blob`."""

    blob: str

    @property
    def key(self) -> str:
        return f"key-holders:{self.blob[-16:]}"

    def command(self) -> str:
        return (
            'getent passwd | while IFS=: read -r u _ _ _ _ h _; do f="$h/.ssh/authorized_keys"; '
            f'[ -f "$f" ] || continue; grep -F -- {q(self.blob)} "$f" | while IFS= read -r l; do '
            'printf \'%s\\t%s\\n\' "$u" "$l"; done; done; true'
        )

    def parse(self, stdout: str, rc: int) -> frozenset[tuple[str, str]]:
        out = set()
        for raw in stdout.splitlines():
            user, tab, line = raw.partition("\t")
            if tab and user and self.blob in line:
                out.add((user, line))
        return frozenset(out)


# -- steps ------------------------------------------------------------------------------------------------------


def _public_key(ctx: HostContext) -> str:
    from backups.role.steps import backup_ssh_key

    return backup_ssh_key(StateDir(ctx.state_dir), ctx.cluster.name)[1]


def _users(ctx: HostContext) -> list[str]:
    """The accounts keelson makes on this host: the targets' users other than root."""
    return sorted({t.user for t in targets_on(ctx.cluster, ctx.host) if t.user != "root"})


def _folders(ctx: HostContext) -> list[tuple[str, str]]:
    return sorted({(t.path, t.user) for t in targets_on(ctx.cluster, ctx.host)})


@dataclass
class AccountsStep(Step):
    """Each backup account exists (a system user with /bin/sh and a 0700 home) and can run the receiver."""

    name: str = "backups | backup accounts"

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return [AccountFact(user) for user in _users(ctx)]

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        out = []
        for user in _users(ctx):
            account = facts.get(AccountFact(user))
            if account is None:
                home = q(f"/var/lib/{user}")
                out.append(
                    Command(
                        f"useradd --system --user-group --create-home --home-dir {home} --shell /bin/sh {q(user)} "
                        f"&& chmod 0700 {home}"
                    )
                )
            elif account.shell in NO_LOGIN_SHELLS:
                raise HostCheckFailed(
                    ctx.host.name,
                    f"backup user {user} has the shell {account.shell}: sshd runs the backup receiver through the "
                    "user's shell, so every backup to this host would be refused",
                    hint=f"give {user} a shell (usermod -s /bin/sh {user}), or leave the target's user out: "
                    "keelson then creates keelson-backup",
                )
        return out


@dataclass
class FoldersStep(Step):
    """Each target's folder: owned by its account, 0700."""

    name: str = "backups | backup folders"

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return [FolderFact(path) for path, _ in _folders(ctx)]

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        out = []
        for path, user in _folders(ctx):
            if facts.get(FolderFact(path)) != (user, "700"):
                p, u = q(path), q(user)
                out.append(Command(f"mkdir -p {p} && chown {u}: {p} && chmod 0700 {p}"))
        return out


@dataclass
class AuthorizedKeyStep(Step):
    """The backup key: restricted in each target user's authorized_keys on this host, and nowhere else."""

    name: str = "backups | restricted backup key"

    def wanted(self, ctx: HostContext) -> frozenset[tuple[str, str]]:
        public = _public_key(ctx)
        return frozenset((t.user, authorized_line(t, public)) for t in targets_on(ctx.cluster, ctx.host))

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (KeyHolders(key_blob(_public_key(ctx))),)

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        blob = key_blob(_public_key(ctx))
        have, wanted = facts.get(KeyHolders(blob)), self.wanted(ctx)
        if have == wanted:
            return []
        lines = ["set -e"]
        for user in sorted({u for u, _ in have}):  # drop every line with the key, keep the account's other keys
            lines.append(
                f'f="$(getent passwd {q(user)} | cut -d: -f6)/.ssh/authorized_keys"; t=$(mktemp); '
                f'grep -vF -- {q(blob)} "$f" > "$t" || true; cat "$t" > "$f"; rm -f "$t"'
            )
        for user, line in sorted(wanted):
            u = q(user)
            lines.append(
                f'h="$(getent passwd {u} | cut -d: -f6)"; install -d -m 0700 -o {u} -g "$(id -gn {u})" "$h/.ssh"; '
                f"printf '%s\\n' {q(line)} >> \"$h/.ssh/authorized_keys\"; "
                f'chown {u}: "$h/.ssh/authorized_keys"; chmod 0600 "$h/.ssh/authorized_keys"'
            )
        users = ", ".join(sorted({u for u, _ in wanted}))
        what = f"authorize keelson's backup key (restricted) for {users}"
        return [Command("\n".join(lines), description=what, summary_only=True)]


def steps() -> list[Step]:
    """A backup host's steps; each reads the targets of the host it runs on."""
    return [AccountsStep(), FileStep(RECEIVER_PATH, agent.RECEIVER, 0o755), FoldersStep(), AuthorizedKeyStep()]
