"""The SSH transport's own logic without a network: reading a command's whole output, known_hosts errors, and the
run's known_hosts and keys read once for all its logins."""

from __future__ import annotations

import io
import select
from collections import deque
from pathlib import Path
from typing import Any

import paramiko
import pytest

from roles.engine.errors import EngineError
from roles.engine.logins import KnownHostsUnreadable, LoginFiles, load_known_hosts, login_error
from roles.engine.ssh_route import Endpoint
from roles.engine.transport import SSHTransport


class ScriptedChannel:
    """A paramiko Channel whose packets arrive in a fixed order, one arrival per wait of the reader. The default
    order is what OpenSSH does when a command exits while output is still in its pipe: the exit status first,
    then the rest of the output, then EOF (session.c, session_exit_message)."""

    def __init__(self, arrivals: list[tuple[str, Any]]) -> None:
        self.arrivals = deque(arrivals)
        self.out, self.err = io.BytesIO(), io.BytesIO()
        self.status: int | None = None
        self.eof_received = False
        self.closed = False
        self.arrive()  # what was there before the first look

    def arrive(self) -> None:
        if not self.arrivals:
            return
        kind, value = self.arrivals.popleft()
        if kind == "out":
            self.out = io.BytesIO(self.out.read() + value)
        elif kind == "err":
            self.err = io.BytesIO(self.err.read() + value)
        elif kind == "status":
            self.status = value
        elif kind == "eof":
            self.eof_received = True

    # the part of paramiko.Channel the transport uses
    def exec_command(self, command: str) -> None: ...
    def shutdown_write(self) -> None: ...
    def close(self) -> None: ...

    def recv_ready(self) -> bool:
        return self.out.tell() < len(self.out.getbuffer())

    def recv_stderr_ready(self) -> bool:
        return self.err.tell() < len(self.err.getbuffer())

    def recv(self, n: int) -> bytes:
        return self.out.read(n)

    def recv_stderr(self, n: int) -> bytes:
        return self.err.read(n)

    def exit_status_ready(self) -> bool:
        return self.status is not None

    def recv_exit_status(self) -> int:
        return -1 if self.status is None else self.status


class FakeSSHClient:
    def __init__(self, channel: ScriptedChannel) -> None:
        self.channel = channel

    def get_transport(self) -> FakeSSHClient:
        return self

    def is_active(self) -> bool:
        return True

    def open_session(self, timeout: float | None = None) -> ScriptedChannel:
        return self.channel


def transport_over(channel: ScriptedChannel, monkeypatch: pytest.MonkeyPatch) -> SSHTransport:
    """An SSHTransport on a scripted channel (no connection is made); each wait lets the next packet arrive."""
    monkeypatch.setattr(select, "select", lambda *args: channel.arrive())  # the reader's wait
    ssh = SSHTransport.__new__(SSHTransport)
    ssh.host, ssh.commands_run = "m1", 0
    ssh._client = FakeSSHClient(channel)  # type: ignore[assignment]
    return ssh


def test_output_after_the_exit_status_is_not_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    """sshd may send the exit status before the last of the output: the reader waits for EOF (it used to stop at
    the exit status, and a fact batch lost its last facts — the etcd restart marker among them)."""
    channel = ScriptedChannel(
        [("out", b"head\n"), ("status", 0), ("err", b"warning\n"), ("out", b"tail\n"), ("eof", None)]
    )
    result = transport_over(channel, monkeypatch)._exec("true", None, timeout=30)
    assert (result.rc, result.stdout, result.stderr) == (0, "head\ntail\n", "warning\n")


def test_eof_before_the_exit_status_waits_for_the_status(monkeypatch: pytest.MonkeyPatch) -> None:
    channel = ScriptedChannel([("out", b"all\n"), ("eof", None), ("status", 3)])
    result = transport_over(channel, monkeypatch)._exec("true", None, timeout=30)
    assert (result.rc, result.stdout) == (3, "all\n")


class ClosingBehindTheReader(ScriptedChannel):
    """The race paramiko's reader thread can win: the exit status, EOF and the channel's close all arrive just after
    the reader's 'finished?' check looked at `closed`, and before its 'closed?' check looks again."""

    def __init__(self) -> None:
        self._closed, self.looks = False, 0
        super().__init__([])

    @property
    def closed(self) -> bool:
        self.looks += 1
        was = self._closed
        if self.looks == 1:  # everything lands right after this answer
            self.status, self.eof_received, self._closed = 0, True, True
        return was

    @closed.setter
    def closed(self, value: bool) -> None:
        self._closed = value


def test_a_command_that_ends_between_two_checks_is_not_a_lost_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """CI saw `etcd | Binaries: m3: connection lost while the command ran` on a healthy host: the channel closed
    (normally, after its exit status) between the reader's 'finished?' and 'closed?' checks."""
    channel = ClosingBehindTheReader()
    result = transport_over(channel, monkeypatch)._exec("true", None, timeout=30)
    assert (result.rc, result.stdout) == (0, "")


# -- known_hosts ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"# ok\n\n198.18.0.11 ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ\n", ":3: malformed known_hosts line"),
        (b"198.18.0.11 ssh-ed25519 AAAA!!!notbase64\n", ":1: malformed known_hosts line"),
        (b"# wrong numbers\n198.18.0.11 ssh-rsa AAAAB3NzaC1yc2EAAAADAQAB\n", ":2: malformed known_hosts line"),
        (b"# ok\n\xff\xfe ssh-ed25519 AAAA\n", ":2: known_hosts is not UTF-8 text (byte 0xff)"),
    ],
)
def test_a_bad_known_hosts_line_is_an_error_naming_file_and_line(tmp_path: Path, content: bytes, message: str) -> None:
    known = tmp_path / "known_hosts"
    known.write_bytes(content)
    with pytest.raises(KnownHostsUnreadable) as caught:
        load_known_hosts(known)
    assert str(caught.value).startswith(f"{known}{message}")
    error = login_error(caught.value, "m1", Endpoint("198.18.0.11", 22, "root"), known)  # the host's Connect error
    assert isinstance(error, EngineError) and str(error).startswith(f"m1: {known}{message}")
    assert "hint: fix or delete that line" in str(error)


def test_a_known_hosts_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(KnownHostsUnreadable, match=f"cannot read known_hosts {tmp_path}: Is a directory"):
        load_known_hosts(tmp_path)


# -- a run's known_hosts and keys, read once ---------------------------------------------------------------------


def _ed25519(password: bytes | None = None) -> tuple[paramiko.Ed25519Key, bytes]:
    """A new ed25519 key, and its private key file's content (OpenSSH format; encrypted with `password`)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.generate()
    plain, fmt = serialization.NoEncryption(), serialization.PrivateFormat.OpenSSH
    pem = private.private_bytes(serialization.Encoding.PEM, fmt, plain)
    key = paramiko.Ed25519Key.from_private_key(io.StringIO(pem.decode()))
    if password is not None:
        pem = private.private_bytes(serialization.Encoding.PEM, fmt, serialization.BestAvailableEncryption(password))
    return key, pem


def _line(names: str, key: paramiko.PKey) -> str:
    return f"{names} {key.get_name()} {key.get_base64()}\n"


def test_each_login_gets_what_paramiko_would_look_up_for_its_host(tmp_path: Path) -> None:
    one, two, other, port_key, hashed_key = (_ed25519()[0] for _ in range(5))
    hashed = paramiko.HostKeys.hash_host("198.18.0.13")
    known = tmp_path / "known_hosts"
    known.write_text(
        _line("m1,198.18.0.11", one)
        + _line("198.18.0.11", two)  # a second key of the same type: paramiko answers the first
        + _line("m2,198.18.0.12", other)
        + _line("[198.18.0.11]:2222", port_key)
        + _line(hashed, hashed_key)
    )
    files = LoginFiles()

    def given(host: str, port: int = 22) -> dict[str, dict[str, paramiko.PKey]]:
        client = paramiko.SSHClient()
        files.give_host_keys(client, known, Endpoint(host, port, "root"))
        return {name: dict(keys) for name, keys in client.get_host_keys().items()}

    assert given("198.18.0.11") == {"198.18.0.11": {"ssh-ed25519": one}}
    assert given("198.18.0.11", 2222) == {"[198.18.0.11]:2222": {"ssh-ed25519": port_key}}
    assert given("198.18.0.13") == {"198.18.0.13": {"ssh-ed25519": hashed_key}}
    assert given("198.18.0.99") == {}  # unknown: the login's policy decides (strict: refused)
    reference = paramiko.SSHClient()
    reference.load_host_keys(str(known))
    for name in ("198.18.0.11", "[198.18.0.11]:2222", "198.18.0.13", "m2"):
        host, _, port = name.strip("[").partition("]:")
        assert given(host, int(port or 22))[name] == dict(reference.get_host_keys()[name])


def test_known_hosts_is_parsed_once_and_again_when_it_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import roles.engine.logins as logins

    parsed: list[Path] = []
    real = logins.load_known_hosts

    def counted(known: Path) -> paramiko.HostKeys:
        parsed.append(known)
        return real(known)

    monkeypatch.setattr(logins, "load_known_hosts", counted)
    first, recorded = _ed25519()[0], _ed25519()[0]
    known = tmp_path / "known_hosts"
    known.write_text(_line("198.18.0.11", first))
    files = LoginFiles()
    for _ in range(3):
        files.give_host_keys(paramiko.SSHClient(), known, Endpoint("198.18.0.11", 22, "root"))
    assert parsed == [known]
    with known.open("a") as handle:  # a key recorded on first use, mid-run
        handle.write(_line("198.18.0.12", recorded))
    client = paramiko.SSHClient()
    files.give_host_keys(client, known, Endpoint("198.18.0.12", 22, "root"))
    assert parsed == [known, known]
    assert dict(client.get_host_keys()["198.18.0.12"]) == {"ssh-ed25519": recorded}
    files.give_host_keys(paramiko.SSHClient(), tmp_path / "absent", Endpoint("198.18.0.11", 22, "root"))  # no file


def test_a_bad_known_hosts_is_an_error_at_every_login(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_bytes(b"198.18.0.11 ssh-ed25519 AAAA!!!notbase64\n")
    files = LoginFiles()
    for _ in range(2):  # never kept: each login says so
        with pytest.raises(KnownHostsUnreadable, match=":1: malformed known_hosts line"):
            files.give_host_keys(paramiko.SSHClient(), known, Endpoint("198.18.0.11", 22, "root"))


def test_private_keys_load_once_or_are_left_to_paramiko(tmp_path: Path) -> None:
    key, pem = _ed25519()
    path = tmp_path / "id_ed25519"
    path.write_bytes(pem)
    locked = tmp_path / "id_locked"
    locked.write_bytes(_ed25519(password=b"a passphrase")[1])
    files = LoginFiles()
    loaded = files.private_keys((str(path),))
    assert loaded is not None and loaded[0] == key
    path.unlink()
    assert files.private_keys((str(path),)) == loaded  # read once per run
    assert files.private_keys((str(locked),)) is None  # a passphrase: paramiko reads it at the login, and says why
    assert files.private_keys((str(tmp_path / "absent"),)) is None
    assert files.private_keys((str(locked), str(tmp_path / "id_ed25519"))) is None
