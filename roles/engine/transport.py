"""How commands reach hosts: one persistent SSH connection per host, strict host keys, sudo for non-root users.

Roles never import paramiko: they see `Transport` (run, put, get, close). Scripts travel as one quoted
`bash -c` argument, never through stdin. Two kinds go as an uploaded file instead (SFTP, as the login user, created
0600 with O_EXCL so it is private from the moment it exists; removed when the script ends): large ones (over
`MAX_ARG_SCRIPT`), and `private` ones — a script that carries a secret (a key, a password) never sits in a process's
argv (`/proc/*/cmdline` is world-readable). Windows hosts get PowerShell with `-EncodedCommand` (UTF-16LE base64)
over the same SSH connection; a private or large script goes through stdin there (`PowerShellTransport`).
"""

from __future__ import annotations

import base64
import collections
import contextlib
import functools
import io
import logging
import os
import select
import shlex
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from inventory.model import OS, Cluster, Host
from roles.engine.errors import AuthFailed, EngineError, HostUnreachable
from roles.engine.facts import Fact
from roles.engine.logins import Gateways, LoginFiles, fingerprint, login, login_error, with_retries
from roles.engine.ssh_route import Route, load_config, resolve

if TYPE_CHECKING:
    import paramiko
    from paramiko import MissingHostKeyPolicy, SSHConfig

    from roles.engine.facts_ahead import FactsAhead

log = logging.getLogger(__name__)
MAX_ARG_SCRIPT = 96 * 1024  # larger scripts go as a file (Linux caps one argument at 128 KiB)
Notice = Callable[[str, str], None]
T = TypeVar("T")


@dataclass(frozen=True)
class CommandResult:
    rc: int
    stdout: str
    stderr: str


class Transport(Protocol):
    host: str
    commands_run: int

    def run(
        self, script: str, *, timeout: float | None = None, check: bool = False, private: bool = False
    ) -> CommandResult: ...
    def put(self, path: str, data: bytes, mode: int = 0o644) -> None: ...
    def get(self, path: str) -> bytes: ...
    def send_files(self, files: list[tuple[Path, str]]) -> str: ...
    def close(self) -> None: ...


_known_hosts_lock = threading.Lock()


class SSHTransport:
    """A paramiko connection to one host. Every command runs as root (through sudo for other users).

    The connection follows the host's route (roles/engine/ssh_route.py): directly, or through the jump hosts that
    `gateways` holds open for the run (roles/engine/logins.py); every hop's host key is checked the same way."""

    def __init__(
        self,
        host: Host,
        cluster: Cluster,
        *,
        trust_on_first_use: bool = False,
        notice: Notice | None = None,
        route: Route | None = None,
        gateways: Gateways | None = None,
        login_files: LoginFiles | None = None,
    ) -> None:
        self.host = host.name
        self._notice = notice
        self.commands_run = 0
        self._ssh = cluster.ssh_for(host)
        self._route = route or resolve(cluster, host, None)
        self._user = self._route.target.user
        self._tofu = trust_on_first_use
        self._known = Path(self._ssh.known_hosts)
        self._files = login_files or LoginFiles()  # the run's known_hosts and keys, read once (ConnectionPool's)
        self._gateways = gateways or Gateways(self._known, self._policy, self._files)
        self._sudo_password = os.environ.get(self._ssh.sudo_password_env) if self._ssh.sudo_password_env else None
        if self._ssh.sudo_password_env and self._sudo_password is None:
            raise AuthFailed(
                self.host,
                f"sudo password variable {self._ssh.sudo_password_env} is not set",
                hint=f"export {self._ssh.sudo_password_env}=… (the inventory names it)",
            )
        self._sftp_client: paramiko.SFTPClient | None = None
        self._client = self._connect()

    # -- connecting ------------------------------------------------------------------------------------
    def _policy(self) -> MissingHostKeyPolicy:
        import paramiko

        return _record_policy(self._known, self.host, self._notice) if self._tofu else paramiko.RejectPolicy()

    def _connect(self) -> paramiko.SSHClient:
        route = self._route
        try:
            via = self._gateways.get(route.jumps, self.host) if route.jumps else None
            return with_retries(lambda: login(route.target, self._known, self._policy(), via, self._files))
        except EngineError:
            raise
        except Exception as exc:
            error = login_error(exc, self.host, route.target, self._known, route.via)
            if error is None:
                raise
            raise error from exc

    # -- running ---------------------------------------------------------------------------------------
    def _wrap(self, script: str) -> tuple[str, bytes | None]:
        command = "bash -c " + shlex.quote(script)
        if self._user == "root":
            return command, None
        if self._sudo_password is None:
            return "sudo -n -H -- " + command, None
        return "sudo -S -p '' -H -- " + command, (self._sudo_password + "\n").encode()

    def run(
        self, script: str, *, timeout: float | None = None, check: bool = False, private: bool = False
    ) -> CommandResult:
        """Run `script` as root. `private`: it holds a secret, so it goes as a 0600 file by SFTP, never in argv."""
        uploaded = None
        if private or len(script.encode()) > MAX_ARG_SCRIPT:
            uploaded = self._upload(script.encode())
            script = f"trap 'rm -f {uploaded}' EXIT; bash {uploaded}"
        command, stdin = self._wrap(script)
        result = self._exec(command, stdin, timeout)
        if uploaded is not None and result.rc != 0:
            self._forget(uploaded)  # a script that never started (sudo refused it) left its file behind
        if check and result.rc != 0:
            from roles.engine.errors import CommandFailed

            raise CommandFailed(self.host, f"exit {result.rc}: {(result.stderr or result.stdout).strip()[-600:]}")
        return result

    def _exec(self, command: str, stdin: bytes | None, timeout: float | None) -> CommandResult:
        self.commands_run += 1
        try:
            transport = self._client.get_transport()
            if transport is None or not transport.is_active():
                raise EOFError("connection closed")
            chan = transport.open_session(timeout=10)
            chan.exec_command(command)
            if stdin is not None:
                chan.sendall(stdin)
            chan.shutdown_write()
            out, err = io.BytesIO(), io.BytesIO()
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                if chan.recv_ready():
                    out.write(chan.recv(65536))
                elif chan.recv_stderr_ready():
                    err.write(chan.recv_stderr(65536))
                elif _finished(chan):
                    break
                elif chan.closed or not transport.is_active():
                    # paramiko's reader thread may have delivered the exit status, EOF and close after the checks
                    # above: look again before calling the connection lost
                    if _finished(chan) or chan.recv_ready() or chan.recv_stderr_ready():
                        continue
                    raise EOFError("connection lost while the command ran")
                else:
                    if deadline is not None and time.monotonic() > deadline:
                        chan.close()
                        raise TimeoutError(f"no result after {timeout:.0f} s")
                    select.select([chan], [], [], 0.2)
            rc = chan.recv_exit_status()
            chan.close()
            if rc == -1:  # the channel closed without an exit status: the connection (or sshd) went away
                raise EOFError("the connection closed before the command finished")
        except (OSError, EOFError, TimeoutError) as exc:
            raise HostUnreachable(
                self.host, f"connection lost: {exc}", hint="check the host and rerun: apply converges"
            ) from exc
        except Exception as exc:
            import paramiko

            if isinstance(exc, paramiko.SSHException):
                raise HostUnreachable(self.host, f"connection lost: {exc}", hint="rerun when the host is back") from exc
            raise
        return CommandResult(rc, out.getvalue().decode(errors="replace"), err.getvalue().decode(errors="replace"))

    def _sftp(self) -> paramiko.SFTPClient:
        """One SFTP session per connection, opened on the first upload (an `exec` never needs it)."""
        if self._sftp_client is None:
            self._sftp_client = self._client.open_sftp()
        return self._sftp_client

    def _upload(self, data: bytes) -> str:
        """SFTP `data` to a new private file in /tmp (as the login user); returns its path."""
        import paramiko

        tmp = f"/tmp/.keelson-{os.urandom(8).hex()}"
        try:
            with create_private(self._sftp(), tmp) as handle:
                handle.set_pipelined(True)
                handle.write(data)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            self._sftp_client = None
            raise HostUnreachable(self.host, f"upload of {tmp} failed: {exc}") from exc
        return tmp

    def _forget(self, path: str) -> None:
        """Remove an uploaded file its script did not (after a failure: the script may never have started)."""
        import paramiko

        try:
            self._sftp().remove(path)
        except FileNotFoundError:
            return  # the script's own trap removed it: the usual case
        except (OSError, EOFError, paramiko.SSHException) as exc:
            log.warning("%s: could not remove the uploaded %s: %s", self.host, path, exc)

    def put(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Upload privately, then as root copy it beside `path` (root:root, `mode`) and rename it into place."""
        tmp = self._upload(data)
        target = shlex.quote(path)
        directory = shlex.quote(path.rsplit("/", 1)[0] or "/")
        script = (
            f"set -e; trap 'rm -f {tmp}' EXIT; t=$(mktemp {directory}/.keelson.XXXXXXXX); "
            f'cat {tmp} > "$t"; chown root:root "$t"; chmod {mode:04o} "$t"; mv -f "$t" {target}'
        )
        result = self.run(script)
        if result.rc != 0:
            self._forget(tmp)
            from roles.engine.errors import CommandFailed

            raise CommandFailed(self.host, f"put {path}: exit {result.rc}: {(result.stderr or result.stdout).strip()}")

    def get(self, path: str) -> bytes:
        result = self.run(f"base64 -w0 {shlex.quote(path)}", check=True)
        return base64.b64decode(result.stdout)

    def send_files(self, files: list[tuple[Path, str]]) -> str:
        """Stream local files by SFTP into the login user's private upload folder on the host (0700, checked to be
        ours, not a symlink), each as `name` (written as `name.part`, created 0600, then renamed). Returns the
        folder's path."""
        import stat

        import paramiko

        folder = f"/var/tmp/.keelson-uploads-{self._user}"
        try:
            sftp = self._sftp()
            try:
                st = sftp.lstat(folder)
            except FileNotFoundError:
                sftp.mkdir(folder, 0o700)
                st = sftp.lstat(folder)
            mine = sftp.lstat(".").st_uid  # the login user's home: ours
            if st.st_mode is None or not stat.S_ISDIR(st.st_mode) or st.st_uid != mine:
                raise EngineError(self.host, f"{folder} exists and is not a folder of {self._user}: refusing")
            sftp.chmod(folder, 0o700)
            for source, name in files:
                part = f"{folder}/{name}.part"
                with contextlib.suppress(FileNotFoundError):
                    sftp.remove(part)  # left by an interrupted upload: the new one is created exclusively, 0600
                with source.open("rb") as local, create_private(sftp, part) as remote:
                    remote.set_pipelined(True)
                    while chunk := local.read(1 << 20):
                        remote.write(chunk)
                sftp.posix_rename(part, f"{folder}/{name}")
        except (OSError, EOFError, paramiko.SSHException) as exc:
            self._sftp_client = None
            raise HostUnreachable(self.host, f"upload failed: {exc}") from exc
        return folder

    def close(self) -> None:
        if self._sftp_client is not None:
            self._sftp_client.close()
        self._client.close()


def _finished(chan: paramiko.Channel) -> bool:
    """The command's output is complete: its exit status AND the channel's EOF have arrived, with nothing left in
    the buffers. The exit status alone is not enough: sshd sends it as soon as the process exits, while output it
    has not read from the pipe yet follows it (OpenSSH session.c, session_exit_message), so stopping there lost the
    tail of the output now and then (a fact batch lost its last facts; etcd saw no restart marker and restarted)."""
    done = (chan.eof_received or chan.closed) and chan.exit_status_ready()
    return bool(done) and not chan.recv_ready() and not chan.recv_stderr_ready()


class PowerShellTransport:
    """Windows over OpenSSH: each script runs as `powershell -NoProfile -NonInteractive -EncodedCommand …`.

    A script holding a secret, or one whose command line would pass Windows' limit, runs as a small fixed
    bootstrap (`roles/engine/powershell.py` `STDIN_BOOTSTRAP`) that reads the script, base64, from stdin: no
    secret in a command line, no file on the host. Output comes back with CRLF line ends made LF.

    Windows cannot run here: tests run this against a labelled stand-in `powershell` on a lab Linux host."""

    def __init__(self, inner: SSHTransport) -> None:
        self.inner = inner
        self.host = inner.host
        self.commands_run = 0

    @staticmethod
    def encode(script: str) -> str:
        return (
            "powershell -NoProfile -NonInteractive -EncodedCommand "
            + base64.b64encode(script.encode("utf-16-le")).decode()
        )

    @classmethod
    def wire(cls, script: str, *, private: bool = False) -> tuple[str, bytes | None]:
        """The command line and the stdin a script travels as (pure: tests decode both)."""
        from roles.engine.powershell import MAX_COMMAND_LINE, STDIN_BOOTSTRAP

        inline = cls.encode(script)
        if not private and len(inline) <= MAX_COMMAND_LINE:
            return inline, None
        return cls.encode(STDIN_BOOTSTRAP), base64.b64encode(script.encode()) + b"\n"

    def run(
        self, script: str, *, timeout: float | None = None, check: bool = False, private: bool = False
    ) -> CommandResult:
        self.commands_run += 1
        command, stdin = self.wire(script, private=private)
        raw = self.inner._exec(command, stdin, timeout)
        result = CommandResult(raw.rc, raw.stdout.replace("\r\n", "\n"), raw.stderr.replace("\r\n", "\n"))
        if check and result.rc != 0:
            from roles.engine.errors import CommandFailed

            raise CommandFailed(self.host, f"exit {result.rc}: {(result.stderr or result.stdout).strip()[-600:]}")
        return result

    def put(self, path: str, data: bytes, mode: int = 0o644) -> None:
        b64 = base64.b64encode(data).decode()
        target = path.replace("'", "''")
        self.run(f"[IO.File]::WriteAllBytes('{target}', [Convert]::FromBase64String('{b64}'))", check=True)

    def get(self, path: str) -> bytes:
        source = path.replace("'", "''")
        return base64.b64decode(
            self.run(f"[Convert]::ToBase64String([IO.File]::ReadAllBytes('{source}'))", check=True).stdout
        )

    def send_files(self, files: list[tuple[Path, str]]) -> str:
        raise EngineError(
            self.host,
            "uploading files to Windows hosts is not supported: Windows workers download their files themselves",
            hint="use kubernetes.artifacts source upstream (or a mirror) for clusters with Windows workers",
        )

    def close(self) -> None:
        self.inner.close()


def create_private(sftp: paramiko.SFTPClient, path: str) -> paramiko.SFTPFile:
    """Open a NEW file for writing over SFTP, mode 0600 from the moment it exists.

    paramiko's `open` sends empty attributes, and OpenSSH's sftp-server then creates the file `0666 & ~umask`
    (`process_open`: `mode = (a.flags & SSH2_FILEXFER_ATTR_PERMISSIONS) ? a.perm : 0666; open(name, flags, mode)`),
    readable by everyone until a chmod. Here the OPEN request carries the permissions, so the server's own open(2)
    creates it 0600; O_EXCL refuses anything already at the path (a planted file or symlink).
    """
    from paramiko.sftp import CMD_HANDLE, CMD_OPEN, SFTP_FLAG_CREATE, SFTP_FLAG_EXCL, SFTP_FLAG_WRITE, SFTPError
    from paramiko.sftp_attr import SFTPAttributes
    from paramiko.sftp_file import SFTPFile

    attrs = SFTPAttributes()
    attrs.st_mode = 0o600
    flags = SFTP_FLAG_WRITE | SFTP_FLAG_CREATE | SFTP_FLAG_EXCL
    kind, msg = sftp._request(CMD_OPEN, path, flags, attrs)  # type: ignore[attr-defined]  # not in the stubs
    if kind != CMD_HANDLE:
        raise SFTPError(f"expected a handle for {path}, got message type {kind}")
    return SFTPFile(sftp, msg.get_binary(), "wb")


class _RecordPolicy:
    """Trust on first use, only when asked: record the unknown key in known_hosts and say so. A paramiko
    MissingHostKeyPolicy by its one method (paramiko calls `missing_host_key`), not by subclassing, so that importing
    the engine does not import paramiko: a Pulumi diff renders phases and connects nowhere."""

    def __init__(self, known: Path, host: str, notice: Notice | None) -> None:
        self.known = known
        self.host = host
        self.notice = notice

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        with _known_hosts_lock:
            self.known.parent.mkdir(parents=True, exist_ok=True)
            with self.known.open("a") as handle:
                handle.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
        message = f"trusted on first use: recorded {key.get_name()} key {fingerprint(key)} in {self.known}"
        log.warning("%s: %s", self.host, message)
        if self.notice is not None:
            self.notice(self.host, message)


def _record_policy(known: Path, host: str, notice: Notice | None) -> MissingHostKeyPolicy:
    return cast("MissingHostKeyPolicy", _RecordPolicy(known, host, notice))  # paramiko calls missing_host_key only


class ConnectionPool:
    """One persistent connection per host, opened on first use (or ahead, `connect_ahead`), thread-safe; `close()`
    closes them all."""

    def __init__(self, cluster: Cluster, *, trust_on_first_use: bool = False, notice: Notice | None = None) -> None:
        self.cluster = cluster
        self.trust_on_first_use = trust_on_first_use
        self.notice = notice  # told (host, message) when an unknown host key is trusted and recorded
        self._heard: list[tuple[str, str]] = []  # notices while no one listens (`listen`)
        self._notice_lock = threading.Lock()
        self._conns: dict[str, Transport] = {}
        self._locks: dict[str, threading.Lock] = {h.name: threading.Lock() for h in cluster.hosts}
        self._ahead: dict[str, Future[Transport]] = {}  # logins started by connect_ahead, not yet asked for
        known = Path(cluster.ssh_for(cluster.hosts[0]).known_hosts)
        self._login_files = LoginFiles()  # known_hosts and keys read once for all the run's logins
        self._gateways = Gateways(known, lambda: self._gateway_policy(known), self._login_files)
        self._config_lock = threading.Lock()
        self._config: tuple[SSHConfig | None] | None = None  # read once, on the first connection
        self.gathered: Callable[[str, str], tuple[bool, Any]] | None = None  # the run's fact batch (see read_fact)
        self.facts_ahead: FactsAhead | None = None  # fact batches sent after the logins ahead (connect_ahead)

    def _gateway_policy(self, known: Path) -> MissingHostKeyPolicy:
        import paramiko

        if self.trust_on_first_use:
            return _record_policy(known, "bastion", self._notify)
        return paramiko.RejectPolicy()

    def _notify(self, host: str, message: str) -> None:
        with self._notice_lock:
            if self.notice is None:
                self._heard.append((host, message))
                return
            notice = self.notice
        notice(host, message)

    def listen(self, notice: Notice) -> None:
        """From now on tell `notice` (host, message) of every host key trusted on first use, and tell it now of the
        ones trusted before (by logins started ahead, before the run's Connect phase began)."""
        with self._notice_lock:
            self.notice, heard, self._heard = notice, self._heard, []
        for host, message in heard:
            notice(host, message)

    def connect_ahead(self, hosts: Sequence[Host], at_once: int, facts: FactsAhead | None = None) -> None:
        """Start logging in to `hosts`, at most `at_once` at a time, in threads of their own, and return: a `get` of
        one of them waits for its login and answers with its connection, or raises its error (the login is not tried
        again for that `get`). `facts`: the fact batches kept from the last run, each sent by the login's thread as
        soon as its login is done (roles/engine/facts_ahead.py; the run uses one only if it is its own first batch).

        The CLI starts these before it imports the roles and builds the plan (keelson/engine_cmd.py), so that the
        logins' round trips and the hosts' own work (sshd's key exchange, authentication) overlap keelson's CPU
        instead of following it. paramiko, tenacity and the ssh config are loaded here first, in the caller's thread:
        the login threads import nothing while the caller imports modules of its own. The threads are daemons: a
        run that stops before it asks for a host does not wait at exit for a login still under way."""
        import paramiko  # noqa: F401 - loaded in this thread (above)
        import tenacity  # noqa: F401

        self.facts_ahead = facts
        todo: collections.deque[tuple[Host, Future[Transport]]] = collections.deque()
        for host in hosts:
            if host.name not in self._ahead:
                self._ahead[host.name] = Future()
                todo.append((host, self._ahead[host.name]))
        if todo:
            self.route(todo[0][0])  # the ssh config, read once
        for index in range(min(at_once, len(todo))):
            thread = threading.Thread(target=self._logins_ahead, args=(todo,), name=f"login-{index}")
            thread.daemon = True
            thread.start()

    def _logins_ahead(self, todo: collections.deque[tuple[Host, Future[Transport]]]) -> None:
        while True:
            try:
                host, pending = todo.popleft()
            except IndexError:
                return
            try:
                transport = self._open(host)
            except BaseException as exc:  # the host's error, raised where its connection is asked for
                pending.set_exception(exc)
                continue
            # registered before the connection is handed over: the run's first batch on the host finds it
            sent = self.facts_ahead.prepare(host.name) if self.facts_ahead and host.os is OS.LINUX else None
            try:
                pending.set_result(transport)
            finally:
                if sent is not None:  # run whatever happens: the run's first batch on the host waits for it
                    sent.run(transport)

    def _drop_when_done(self, host: Host, _: Future[Transport]) -> None:
        self.drop(host)

    def route(self, host: Host) -> Route:
        """How `host` is reached: the inventory, then the ssh config it names (read once per pool)."""
        with self._config_lock:
            if self._config is None:
                self._config = (load_config(self.cluster.ssh.config),)
        return resolve(self.cluster, host, self._config[0])

    def get(self, host: Host) -> Transport:
        ahead = self._ahead.pop(host.name, None)
        if ahead is not None:
            ahead.result()  # the login started ahead: its connection (below), or its error
        return self._open(host)

    def _open(self, host: Host) -> Transport:
        with self._locks[host.name]:
            if host.name not in self._conns:
                ssh = SSHTransport(
                    host,
                    self.cluster,
                    trust_on_first_use=self.trust_on_first_use,
                    notice=self._notify,
                    route=self.route(host),
                    gateways=self._gateways,
                    login_files=self._login_files,
                )
                self._conns[host.name] = PowerShellTransport(ssh) if host.os is OS.WINDOWS else ssh
            return self._conns[host.name]

    def read_fact(self, host: Host, fact: Fact[T], *, fresh: bool = False) -> T:
        """`fact` on `host`, for a custom phase: answered from the run's fact batch while the run has changed
        nothing (the runner sets `gathered`; a custom phase lists the facts it reads in `facts()`), else by running
        its command now. `fresh`: always run it (a value polled in a loop, or read after this phase changed
        something)."""
        found, value = self._from_batch(host, fact, fresh)
        if found:
            return value
        result = self.get(host).run(fact.command(), timeout=60)
        return fact.parse(result.stdout, result.rc)

    def _from_batch(self, host: Host, fact: Fact[T], fresh: bool) -> tuple[bool, T]:
        if fresh or self.gathered is None:
            return False, cast("T", None)
        found, value = self.gathered(host.name, fact.key)
        return found, cast("T", value)

    def read_facts(
        self, hosts: Sequence[Host], fact: Callable[[Host], Fact[T]], *, fresh: bool = False
    ) -> dict[str, T]:
        """`read_fact` on each of `hosts` at once (the fact each host is asked for may depend on the host). Answers
        from the run's fact batch are taken in this thread; a thread per host only for those asked now (on a busy
        machine each thread's start and hand-back waits for a CPU: 0.4-0.9 s in a no-op's phases at load 45)."""
        values: dict[str, T] = {}
        asked: list[tuple[Host, Fact[T]]] = []
        for host in hosts:
            wanted = fact(host)
            found, value = self._from_batch(host, wanted, fresh)
            if found:
                values[host.name] = value
            else:
                asked.append((host, wanted))
        if asked:
            with ThreadPoolExecutor(max_workers=len(asked)) as ex:
                read = ex.map(lambda pair: self.read_fact(*pair, fresh=fresh), asked)
                values.update(zip([h.name for h, _ in asked], read, strict=True))
        return {h.name: values[h.name] for h in hosts}

    def drop(self, host: Host) -> None:
        """Forget a broken connection: the next `get` reconnects."""
        with self._locks[host.name]:
            conn = self._conns.pop(host.name, None)
        if conn is not None:
            try:
                conn.close()
            except Exception as exc:  # closing a dead connection may fail in many ways; none matter
                log.debug("%s: close failed: %s", host.name, exc)

    def commands_run(self) -> dict[str, int]:
        return {name: conn.commands_run for name, conn in self._conns.items()}

    def close(self) -> None:
        for name, pending in list(self._ahead.items()):  # never asked for (the run stopped before its Connect phase)
            pending.add_done_callback(functools.partial(self._drop_when_done, self.cluster.host(name)))
        self._ahead.clear()
        for host in list(self._conns):
            self.drop(self.cluster.host(host))
        self._gateways.close()  # after the hosts whose connections go through them


__all__ = ["CommandResult", "ConnectionPool", "EngineError", "PowerShellTransport", "SSHTransport", "Transport"]
