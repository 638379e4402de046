"""The SSH connect path: what keelson offers the server (no network: a transport is made on a socket pair)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def test_trust_on_first_use_records_the_key_paramiko_hands_its_policy(tmp_path: Path) -> None:
    """The policy is a paramiko MissingHostKeyPolicy by its method only (importing the engine imports no paramiko)."""
    import subprocess
    import sys

    import paramiko

    from roles.engine.transport import _record_policy

    known = tmp_path / "known_hosts"
    key = paramiko.Ed25519Key.from_private_key_file(str(_ed25519(tmp_path)))
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(_record_policy(known, "m1", None))
    policy: Any = getattr(client, "_policy")  # noqa: B009 (private, untyped): what connect calls for a new key
    policy.missing_host_key(client, "198.18.0.11", key)
    assert known.read_text() == f"198.18.0.11 ssh-ed25519 {key.get_base64()}\n"
    code = "import sys, roles.engine.transport; print('paramiko' in sys.modules)"
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert fresh.stdout.strip() == "False"


def _ed25519(folder: Path) -> Path:
    import subprocess

    path = folder / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path
