"""The backup host's receiver (`agent.RECEIVER`), run here by /bin/sh the two ways a backup host runs it: as the
agent's own command on a plain account, and as the forced command of a restricted key (SSH_ORIGINAL_COMMAND)."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from backups import agent
from tests.backup_helpers import write_snapshot

NAME = "lab-20261123T071500Z-rev42.db.gz"


def plain(command: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """What a plain account's login shell does with the agent's command (under a permissive umask)."""
    return subprocess.run(["sh", "-c", "umask 000; " + command], input=stdin, capture_output=True, check=False)


def forced(installed: Path, pinned: Path, original: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """What sshd does for a key with restrict,command="RECEIVER PINNED": the client's command is only in the env."""
    env = {"PATH": os.environ["PATH"], "SSH_ORIGINAL_COMMAND": original}
    return subprocess.run(
        ["sh", "-c", 'umask 000; exec "$0" "$1"', str(installed), str(pinned)],
        input=stdin,
        env=env,
        capture_output=True,
        check=False,
    )


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    path = tmp_path / "backup-receiver"
    path.write_text(agent.RECEIVER)
    path.chmod(0o755)
    return path


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_plain_account_put_commit_list_private_files(tmp_path: Path) -> None:
    snap = write_snapshot(tmp_path / NAME)
    data = snap.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    dest = tmp_path / "host" / "backups"
    put = plain(agent.receiver_command(str(dest), "put", NAME), data)
    assert put.returncode == 0, put.stderr
    assert put.stdout.decode().split() == [sha]
    assert not (dest / NAME).exists()  # only the .part until the hash is compared
    assert _mode(dest / f".{NAME}.part") == 0o600 and _mode(dest) == 0o700 and _mode(dest.parent) == 0o700
    commit = plain(agent.receiver_command(str(dest), "commit", NAME, sha))
    assert commit.returncode == 0, commit.stderr
    assert (dest / NAME).read_bytes() == data
    assert _mode(dest / NAME) == 0o600 and _mode(dest / f"{NAME}.sha256") == 0o600
    check = subprocess.run(["sha256sum", "-c", f"{NAME}.sha256"], cwd=dest, capture_output=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    listed = plain(agent.receiver_command(str(dest), "list"))
    assert listed.stdout.decode().split("\n")[0] == f"{len(data)} {NAME}"
    assert sorted(p.name for p in dest.iterdir()) == [NAME, f"{NAME}.sha256"]


def test_commit_refuses_a_copy_whose_hash_differs(tmp_path: Path) -> None:
    dest = tmp_path / "b"
    assert plain(agent.receiver_command(str(dest), "put", NAME), b"partial").returncode == 0
    wrong = plain(agent.receiver_command(str(dest), "commit", NAME, "0" * 64))
    assert wrong.returncode != 0 and b"sha256 mismatch" in wrong.stderr
    assert not (dest / NAME).exists()


def test_restricted_key_runs_the_agents_requests(tmp_path: Path, installed: Path) -> None:
    data = b"snapshot bytes"
    sha = hashlib.sha256(data).hexdigest()
    pinned = tmp_path / "pinned"
    put = forced(installed, pinned, agent.receiver_command(str(pinned), "put", NAME), data)
    assert put.returncode == 0, put.stderr
    assert put.stdout.decode().split() == [sha]
    assert forced(installed, pinned, agent.receiver_command(str(pinned), "commit", NAME, sha)).returncode == 0
    assert (pinned / NAME).read_bytes() == data and _mode(pinned / NAME) == 0o600 and _mode(pinned) == 0o700
    listed = forced(installed, pinned, agent.receiver_command(str(pinned), "list"))
    assert listed.stdout.decode().strip() == f"{len(data)} {NAME}"


@pytest.mark.parametrize(
    "original",
    [
        "{run}",
        "",
        "sh -c '{run}'",
        "/bin/bash -i",
        "cat /etc/shadow",
        "PINNED put ../escape.db.gz",
        "PINNED put .hidden.db.gz",
        "PINNED put name-without-suffix",
        "PINNED put a.db.gz extra",
        "PINNED commit a.db.gz nothex",
        "PINNED list; {run}",
        "PINNED rm a.db.gz",
        "/elsewhere put a.db.gz",
        "x keelson-backup-receiver /elsewhere list",
        "x keelson-backup-receiver PINNED put $({run}).db.gz",
        "x keelson-backup-receiver PINNED list `{run}`",
        "x keelson-backup-receiver PINNED put *",
    ],
)
def test_restricted_key_refuses_everything_else(tmp_path: Path, installed: Path, original: str) -> None:
    pinned = tmp_path / "pinned"
    marker = tmp_path / "ran"
    original = original.replace("PINNED", str(pinned)).replace("{run}", f"touch {marker}")
    proc = forced(installed, pinned, original, b"data")
    assert proc.returncode != 0
    assert b"keelson-backup-receiver:" in proc.stderr
    assert not marker.exists()  # nothing of the request ran
    assert not pinned.exists() or not any(pinned.iterdir())


def test_forced_receiver_needs_its_folder(tmp_path: Path, installed: Path) -> None:
    env = {"PATH": os.environ["PATH"], "SSH_ORIGINAL_COMMAND": "list"}
    proc = subprocess.run([str(installed)], env=env, capture_output=True, check=False)
    assert proc.returncode != 0 and b"installed wrongly" in proc.stderr


def test_plain_mode_checks_names_too(tmp_path: Path) -> None:
    for args in (("put", "../x.db.gz"), ("put", "x"), ("commit", "x.db.gz", "abc"), ("drop", "x.db.gz")):
        proc = plain(agent.receiver_command(str(tmp_path / "d"), *args))
        assert proc.returncode != 0, args
    assert plain(agent.receiver_command("relative/dir", "list")).returncode != 0


# -- prune ------------------------------------------------------------------------------------------------------


def _snapshots(folder: Path) -> list[str]:
    import datetime as dt

    folder.mkdir(parents=True, exist_ok=True)
    names = [agent.snapshot_name("lab", dt.datetime(2022, 5, d, tzinfo=dt.UTC), 100 + d) for d in range(1, 5)]
    for name in names:
        (folder / name).write_bytes(b"snap")
        (folder / f"{name}.sha256").write_text("x")
    for other in ("prod-20220501T000000Z-rev1.db.gz", "lab-latest.db.gz", "notes.txt", f".{names[0]}.part"):
        (folder / other).write_bytes(b"other")
    (folder / "lab-20000101T000000Z-rev1.db.gz").mkdir()  # a folder with a snapshot's name: never touched
    return names


def test_prune_keeps_the_newest_n_of_the_cluster_and_touches_nothing_else(tmp_path: Path, installed: Path) -> None:
    plain_dir, forced_dir = tmp_path / "plain", tmp_path / "forced"
    names = _snapshots(plain_dir)
    _snapshots(forced_dir)
    before = {p.name for p in plain_dir.iterdir()}
    proc = plain(agent.receiver_command(str(plain_dir), "prune", "lab", "2"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().split() == [names[1], names[0]]  # newest first: the order they were considered
    gone = {names[0], names[1], f"{names[0]}.sha256", f"{names[1]}.sha256"}
    assert {p.name for p in plain_dir.iterdir()} == before - gone
    again = plain(agent.receiver_command(str(plain_dir), "prune", "lab", "2"))
    assert again.returncode == 0 and again.stdout == b""

    pinned = forced(installed, forced_dir, agent.receiver_command(str(forced_dir), "prune", "lab", "3"))
    assert pinned.returncode == 0, pinned.stderr
    assert pinned.stdout.decode().split() == [names[0]]
    assert plain(agent.receiver_command(str(tmp_path / "absent"), "prune", "lab", "1")).returncode == 0


@pytest.mark.parametrize(
    "args",
    [("lab", "0"), ("lab", "-1"), ("lab", "01"), ("lab", "x"), ("lab", "1234567"), ("LAB", "1"), ("*", "1"),
     ("../lab", "1"), ("-lab", "1"), ("lab",), ("lab", "1", "2"), ("", "1")],
)  # fmt: skip
def test_prune_refuses_bad_requests_and_deletes_nothing(tmp_path: Path, installed: Path, args: tuple[str, ...]) -> None:
    folder = tmp_path / "d"
    _snapshots(folder)
    before = sorted(p.name for p in folder.iterdir())
    for proc in (
        plain(agent.receiver_command(str(folder), "prune", *args)),
        forced(installed, folder, agent.receiver_command(str(folder), "prune", *args)),
    ):
        assert proc.returncode != 0, (args, proc.stdout)
        assert b"keelson-backup-receiver:" in proc.stderr
    assert sorted(p.name for p in folder.iterdir()) == before
