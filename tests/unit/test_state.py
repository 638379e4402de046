from __future__ import annotations

import stat
from pathlib import Path

from roles.state import StateDir


def test_secret_is_created_once_and_private(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "c1")
    first = state.secret("vrrp/auth", lambda: "abc12345")
    assert first == "abc12345"
    assert state.secret("vrrp/auth", lambda: "other") == "abc12345"
    assert stat.S_IMODE(state.file("vrrp/auth").stat().st_mode) == 0o600
    assert stat.S_IMODE(state.path.stat().st_mode) == 0o700
    assert stat.S_IMODE(state.file("vrrp").stat().st_mode) == 0o700
    state.write("a/b/c/key", b"x")
    for folder in ("a", "a/b", "a/b/c"):
        assert stat.S_IMODE(state.file(folder).stat().st_mode) == 0o700


def test_default_secret_is_random(tmp_path: Path) -> None:
    a = StateDir(tmp_path / "a").secret("token")
    b = StateDir(tmp_path / "b").secret("token")
    assert a != b
    assert len(a) >= 24


def test_env_root(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("KEELSON_STATE_DIR", str(tmp_path))
    assert StateDir.for_cluster("lab").path == tmp_path / "lab"
