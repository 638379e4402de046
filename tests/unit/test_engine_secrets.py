"""Secrets never travel in a command line: which commands are sensitive, and SFTP files private from creation.

The SFTP side runs against `StandInSFTPServer`, a **TEST STAND-IN** for OpenSSH's sftp-server (this machine has no
openssh-sftp-server; the lab hosts' real one is exercised by tests/lab/test_secrets.py). It creates files the way
sftp-server.c's `process_open` does: `mode = (attrs carry PERMISSIONS) ? attrs.perm : 0666; open(name, flags, mode)`.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from paramiko import SFTPClient
from paramiko.message import Message
from paramiko.sftp import (
    CMD_CLOSE,
    CMD_HANDLE,
    CMD_INIT,
    CMD_OPEN,
    CMD_STATUS,
    CMD_VERSION,
    CMD_WRITE,
    SFTP_FAILURE,
    SFTP_FLAG_CREATE,
    SFTP_FLAG_EXCL,
    SFTP_FLAG_TRUNC,
    SFTP_FLAG_WRITE,
    SFTP_OK,
)
from paramiko.sftp_attr import SFTPAttributes

from roles.engine.command import Command, FileWrite
from roles.engine.transport import create_private


def test_sensitive_commands() -> None:
    assert FileWrite("/etc/k.key", b"KEY", mode=0o600, secret=True).to_command().sensitive
    assert not FileWrite("/etc/x.conf", b"x=1").to_command().sensitive
    assert Command("curl -u admin:hunter2 https://x", secrets=("hunter2",)).sensitive
    assert not Command("true").sensitive and not Command("true", secrets=("",)).sensitive


def test_secret_write_shows_path_mode_and_digest_only() -> None:
    write = FileWrite("/etc/k.key", b"-----BEGIN PRIVATE KEY-----\nabc\n", mode=0o600, secret=True).to_command()
    assert write.shown().startswith("write /etc/k.key (secret, 32 bytes, mode 0600, sha256 ")
    assert "PRIVATE" not in write.shown() and "LS0t" not in write.shown()


class StandInSFTPServer:
    """TEST STAND-IN for OpenSSH's sftp-server: INIT, OPEN, WRITE, CLOSE, with sftp-server.c's create mode."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.opens: list[tuple[str, int, int]] = []  # (path, SFTP flags, mode passed to open(2))
        self.modes_at_creation: list[int] = []
        self.fds: dict[bytes, int] = {}

    def _read(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def _packet(self) -> tuple[int, Message]:
        (size,) = struct.unpack(">I", self._read(4))
        body = self._read(size)
        return body[0], Message(body[1:])

    def _send(self, kind: int, msg: Message) -> None:
        body = bytes([kind]) + msg.asbytes()
        self.sock.sendall(struct.pack(">I", len(body)) + body)

    def _status(self, request: int, code: int, text: str) -> None:
        m = Message()
        m.add_int(request)
        m.add_int(code)
        m.add_string(text)
        m.add_string("")
        self._send(CMD_STATUS, m)

    def _open(self, request: int, msg: Message) -> None:
        path, pflags = msg.get_text(), msg.get_int()
        attr_flags = msg.get_int()  # SFTPv3 ATTRS: flags, then the fields they announce (size, uid/gid, perms)
        if attr_flags & SFTPAttributes.FLAG_SIZE:
            msg.get_int64()
        if attr_flags & SFTPAttributes.FLAG_UIDGID:
            msg.get_int(), msg.get_int()
        mode = msg.get_int() if attr_flags & SFTPAttributes.FLAG_PERMISSIONS else 0o666
        flags = os.O_WRONLY if pflags & SFTP_FLAG_WRITE else os.O_RDONLY
        flags |= os.O_CREAT if pflags & SFTP_FLAG_CREATE else 0
        flags |= os.O_EXCL if pflags & SFTP_FLAG_EXCL else 0
        flags |= os.O_TRUNC if pflags & SFTP_FLAG_TRUNC else 0
        self.opens.append((path, pflags, mode))
        try:
            fd = os.open(path, flags, mode)
        except OSError as exc:
            self._status(request, SFTP_FAILURE, exc.strerror or "failure")
            return
        self.modes_at_creation.append(os.fstat(fd).st_mode & 0o7777)
        handle = f"h{fd}".encode()
        self.fds[handle] = fd
        m = Message()
        m.add_int(request)
        m.add_string(handle)
        self._send(CMD_HANDLE, m)

    def serve(self) -> None:
        try:
            kind, _ = self._packet()
            assert kind == CMD_INIT
            version = Message()
            version.add_int(3)
            self._send(CMD_VERSION, version)
            while True:
                kind, msg = self._packet()
                request = msg.get_int()
                if kind == CMD_OPEN:
                    self._open(request, msg)
                elif kind == CMD_WRITE:
                    fd, offset, chunk = self.fds[msg.get_binary()], msg.get_int64(), msg.get_binary()
                    os.pwrite(fd, chunk, offset)
                    self._status(request, SFTP_OK, "")
                elif kind == CMD_CLOSE:
                    os.close(self.fds.pop(msg.get_binary()))
                    self._status(request, SFTP_OK, "")
                else:
                    self._status(request, SFTP_FAILURE, "not in the stand-in")
        except EOFError:
            return


class Wire:
    """A socket as the channel paramiko's SFTPClient expects (send, recv, and a name for its log lines)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def send(self, data: bytes) -> int:
        return self.sock.send(data)

    def recv(self, size: int) -> bytes:
        return self.sock.recv(size)

    def get_name(self) -> str:
        return "stand-in"

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def sftp() -> Iterator[tuple[SFTPClient, StandInSFTPServer]]:
    ours, theirs = socket.socketpair()
    server = StandInSFTPServer(theirs)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    old = os.umask(0)  # no umask to hide behind: the mode must come from the request itself
    client = SFTPClient(Wire(ours))  # type: ignore[arg-type]  # a Channel in production
    try:
        yield client, server
    finally:
        os.umask(old)
        client.close()  # the stand-in sees EOF and returns
        thread.join(timeout=10)
        theirs.close()


def test_uploads_are_created_0600_and_exclusive(sftp: tuple[SFTPClient, StandInSFTPServer], tmp_path: Path) -> None:
    client, server = sftp
    target = tmp_path / ".keelson-upload"
    with create_private(client, str(target)) as handle:
        handle.set_pipelined(True)
        handle.write(b"secret" * 50_000)
    assert target.read_bytes() == b"secret" * 50_000
    assert server.modes_at_creation == [0o600]  # as open(2) made it, before one byte was written
    ((_, flags, mode),) = server.opens
    assert mode == 0o600 and flags & SFTP_FLAG_EXCL and flags & SFTP_FLAG_CREATE
    # paramiko's own open would have asked for 0666 (world-readable until a chmod): the reason for create_private
    with client.open(str(tmp_path / "plain"), "wb") as plain:
        plain.write(b"x")
    assert server.opens[-1][2] == 0o666 and server.modes_at_creation[-1] == 0o666


def test_an_existing_path_or_symlink_is_refused(sftp: tuple[SFTPClient, StandInSFTPServer], tmp_path: Path) -> None:
    client, _ = sftp
    victim = tmp_path / "victim"
    victim.write_text("keep")
    planted = tmp_path / ".keelson-planted"
    planted.symlink_to(victim)
    with pytest.raises(OSError):
        create_private(client, str(planted))
    (tmp_path / ".keelson-exists").write_text("other")
    with pytest.raises(OSError):
        create_private(client, str(tmp_path / ".keelson-exists"))
    assert victim.read_text() == "keep" and (tmp_path / ".keelson-exists").read_text() == "other"
