"""How commands reach hosts: one persistent SSH connection per host, strict host keys, sudo for non-root users.

Roles never import paramiko: they see `Transport` (run, put, get, close). Scripts travel as one quoted
`bash -c` argument (large ones as an uploaded file), never through stdin. Windows hosts get PowerShell with
`-EncodedCommand` (UTF-16LE base64) over the same SSH connection.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import select
import shlex
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from paramiko import MissingHostKeyPolicy

from inventory.model import OS, Cluster, Host
from roles.engine.errors import AuthFailed, EngineError, HostKeyMismatch, HostKeyUnknown, HostUnreachable

if TYPE_CHECKING:
    import paramiko

log = logging.getLogger(__name__)
MAX_ARG_SCRIPT = 96 * 1024  # larger scripts go as a file (Linux caps one argument at 128 KiB)
CONNECT_ATTEMPTS = 4
Notice = Callable[[str, str], None]


@dataclass(frozen=True)
class CommandResult:
    rc: int
    stdout: str
    stderr: str


class Transport(Protocol):
    host: str
    commands_run: int

    def run(self, script: str, *, timeout: float | None = None, check: bool = False) -> CommandResult: ...
    def put(self, path: str, data: bytes, mode: int = 0o644) -> None: ...
    def get(self, path: str) -> bytes: ...
    def close(self) -> None: ...


def fingerprint(key: paramiko.PKey) -> str:
    import hashlib

    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def known_hosts_name(address: str, port: int) -> str:
    return address if port == 22 else f"[{address}]:{port}"


_known_hosts_lock = threading.Lock()


class SSHTransport:
    """A paramiko connection to one host. Every command runs as root (through sudo for other users)."""

    def __init__(
        self,
        host: Host,
        cluster: Cluster,
        *,
        trust_on_first_use: bool = False,
        notice: Notice | None = None,
    ) -> None:
        self.host = host.name
        self._notice = notice
        self.commands_run = 0
        self._ssh = cluster.ssh_for(host)
        self._address = str(host.address)
        self._tofu = trust_on_first_use
        self._sudo_password = os.environ.get(self._ssh.sudo_password_env) if self._ssh.sudo_password_env else None
        if self._ssh.sudo_password_env and self._sudo_password is None:
            raise AuthFailed(
                self.host,
                f"sudo password variable {self._ssh.sudo_password_env} is not set",
                hint=f"export {self._ssh.sudo_password_env}=… (the inventory names it)",
            )
        self._client = self._connect()

    # -- connecting ------------------------------------------------------------------------------------
    def _connect(self) -> paramiko.SSHClient:
        import paramiko
        from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

        known = Path(self._ssh.known_hosts)
        retrying = Retrying(
            retry=retry_if_exception_type(
                (socket.timeout, ConnectionError, paramiko.ssh_exception.NoValidConnectionsError, EOFError)
            ),
            stop=stop_after_attempt(CONNECT_ATTEMPTS),
            wait=wait_exponential(multiplier=0.2, max=2),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._connect_once(paramiko, known)
        except paramiko.BadHostKeyException as exc:
            raise HostKeyMismatch(
                self.host,
                f"host key CHANGED for {self._address}: expected {fingerprint(exc.expected_key)}, "
                f"got {fingerprint(exc.key)} ({exc.key.get_name()}) — refusing to connect",
                hint=f"if the host was really reinstalled, remove its line from {known} and verify the new key",
            ) from exc
        except paramiko.AuthenticationException as exc:
            raise AuthFailed(
                self.host,
                f"SSH authentication as {self._ssh.user} failed: {exc}",
                hint="check ssh.user and ssh.key in the inventory",
            ) from exc
        except (OSError, EOFError, paramiko.SSHException) as exc:
            if isinstance(exc, paramiko.SSHException) and "not found in known_hosts" in str(exc):
                raise HostKeyUnknown(
                    self.host,
                    f"no known host key for {self._address} in {known}: refusing to trust it blindly",
                    hint="add the host's key to known_hosts (ssh-keyscan + verify), or rerun with --trust-on-first-use",
                ) from exc
            raise HostUnreachable(
                self.host,
                f"cannot connect to {self._address}:{self._ssh.port}: {exc}",
                hint="is the host up and sshd running?",
            ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _connect_once(self, paramiko: object, known: Path) -> paramiko.SSHClient:
        import paramiko as pm

        client = pm.SSHClient()
        if known.exists():
            client.load_host_keys(str(known))
        policy = _RecordPolicy(known, self.host, self._notice) if self._tofu else pm.RejectPolicy()
        client.set_missing_host_key_policy(policy)
        # Our own socket, so TCP_NODELAY is set before the handshake: with Nagle's algorithm every small SSH packet
        # that follows an unacknowledged one waits for the peer's delayed ACK (~40 ms per exec, measured).
        sock = socket.create_connection((self._address, self._ssh.port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            client.connect(
                self._address,
                port=self._ssh.port,
                sock=sock,
                username=self._ssh.user,
                key_filename=self._ssh.key,
                look_for_keys=self._ssh.key is None,
                allow_agent=self._ssh.key is None,
                timeout=10,
                banner_timeout=15,
                auth_timeout=15,
            )
        except BaseException:
            client.close()
            sock.close()
            raise
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(15)
        return client

    # -- running ---------------------------------------------------------------------------------------
    def _wrap(self, script: str) -> tuple[str, bytes | None]:
        command = "bash -c " + shlex.quote(script)
        if self._ssh.user == "root":
            return command, None
        if self._sudo_password is None:
            return "sudo -n -H -- " + command, None
        return "sudo -S -p '' -H -- " + command, (self._sudo_password + "\n").encode()

    def run(self, script: str, *, timeout: float | None = None, check: bool = False) -> CommandResult:
        if len(script.encode()) > MAX_ARG_SCRIPT:
            path = self._upload(script.encode())
            script = f"trap 'rm -f {path}' EXIT; bash {path}"
        command, stdin = self._wrap(script)
        result = self._exec(command, stdin, timeout)
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
                elif chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                    break
                elif chan.closed or not transport.is_active():
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

    def _upload(self, data: bytes) -> str:
        """SFTP `data` to a private temp file (as the login user); returns its path."""
        tmp = f"/tmp/.keelson-{os.urandom(6).hex()}"
        try:
            sftp = self._client.open_sftp()
            try:
                with sftp.file(tmp, "wb") as handle:
                    handle.write(data)
                sftp.chmod(tmp, 0o600)
            finally:
                sftp.close()
        except (OSError, EOFError) as exc:
            raise HostUnreachable(self.host, f"upload failed: {exc}") from exc
        return tmp

    def put(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Upload, then move into place as root (owner root:root, `mode`)."""
        tmp = shlex.quote(self._upload(data))
        self.run(f"chown root:root {tmp} && chmod {mode:04o} {tmp} && mv -f {tmp} {shlex.quote(path)}", check=True)

    def get(self, path: str) -> bytes:
        result = self.run(f"base64 -w0 {shlex.quote(path)}", check=True)
        return base64.b64decode(result.stdout)

    def close(self) -> None:
        self._client.close()


class PowerShellTransport:
    """Windows over OpenSSH: each script runs as `powershell -NoProfile -NonInteractive -EncodedCommand …`."""

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

    def run(self, script: str, *, timeout: float | None = None, check: bool = False) -> CommandResult:
        self.commands_run += 1
        result = self.inner._exec(self.encode(script), None, timeout)
        if check and result.rc != 0:
            from roles.engine.errors import CommandFailed

            raise CommandFailed(self.host, f"exit {result.rc}: {(result.stderr or result.stdout).strip()[-600:]}")
        return result

    def put(self, path: str, data: bytes, mode: int = 0o644) -> None:
        b64 = base64.b64encode(data).decode()
        self.run(f"[IO.File]::WriteAllBytes('{path}', [Convert]::FromBase64String('{b64}'))", check=True)

    def get(self, path: str) -> bytes:
        return base64.b64decode(
            self.run(f"[Convert]::ToBase64String([IO.File]::ReadAllBytes('{path}'))", check=True).stdout
        )

    def close(self) -> None:
        self.inner.close()


class _RecordPolicy(MissingHostKeyPolicy):
    """Trust on first use, only when asked: record the unknown key in known_hosts and say so."""

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


class ConnectionPool:
    """One persistent connection per host, opened on first use, thread-safe; `close()` closes them all."""

    def __init__(self, cluster: Cluster, *, trust_on_first_use: bool = False, notice: Notice | None = None) -> None:
        self.cluster = cluster
        self.trust_on_first_use = trust_on_first_use
        self.notice = notice  # told (host, message) when an unknown host key is trusted and recorded
        self._conns: dict[str, Transport] = {}
        self._locks: dict[str, threading.Lock] = {h.name: threading.Lock() for h in cluster.hosts}

    def get(self, host: Host) -> Transport:
        with self._locks[host.name]:
            if host.name not in self._conns:
                ssh = SSHTransport(host, self.cluster, trust_on_first_use=self.trust_on_first_use, notice=self.notice)
                self._conns[host.name] = PowerShellTransport(ssh) if host.os is OS.WINDOWS else ssh
            return self._conns[host.name]

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
        for host in list(self._conns):
            self.drop(self.cluster.host(host))


__all__ = ["CommandResult", "ConnectionPool", "EngineError", "PowerShellTransport", "SSHTransport", "Transport"]
