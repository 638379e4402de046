"""The SSH connect path: what keelson offers the server (no network: a transport is made on a socket pair)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from roles.engine.logins import _gcm_first


@pytest.fixture
def sock() -> Iterator[socket.socket]:
    ours, theirs = socket.socketpair()
    yield ours
    ours.close()
    theirs.close()


def test_aes_gcm_is_offered_first_and_ctr_stays_as_fallback(sock: socket.socket) -> None:
    # what paramiko's SSHClient.connect passes to a transport_factory
    transport = _gcm_first(sock, disabled_algorithms=None)
    ciphers = list(transport.preferred_ciphers)  # what goes into the KEXINIT
    assert ciphers[:2] == ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"]
    assert "aes128-ctr" in ciphers
    kex = list(transport.preferred_kex)
    assert kex.index("curve25519-sha256@libssh.org") < kex.index("ecdh-sha2-nistp256")


def test_disabled_algorithms_are_still_honoured(sock: socket.socket) -> None:
    disabled = {"ciphers": ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"]}
    transport = _gcm_first(sock, disabled_algorithms=disabled)
    ciphers = list(transport.preferred_ciphers)  # what goes into the KEXINIT
    assert ciphers[0] == "aes128-ctr"
    assert not [c for c in ciphers if "gcm" in c]
