"""`modules_prefetched`: while the body runs, `go mod download` runs in each recipe folder in order, in the
background; leaving the context stops the downloads not yet started and waits for the one running; a failing
download does not raise (the recipe's own build reports it). A stand-in `go` on PATH records where it ran."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from provision.artifacts import gotool


def _fake_go(tmp_path: Path, exit_code: int) -> Path:
    log = tmp_path / "calls.log"
    go = tmp_path / "bin" / "go"
    go.parent.mkdir()
    go.write_text(f'#!/bin/sh\necho "$PWD $*" >> {log}\nexit {exit_code}\n')
    go.chmod(0o755)
    return log


@pytest.mark.parametrize("exit_code", [0, 1])
def test_each_folder_gets_a_module_download_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exit_code: int
) -> None:
    log = _fake_go(tmp_path, exit_code)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("KEELSON_CACHE_DIR", str(tmp_path / "cache"))
    folders = [tmp_path / name for name in ("coredns", "etcd", "flannel")]
    for folder in folders:
        folder.mkdir()
    with gotool.modules_prefetched(folders):
        deadline = time.monotonic() + 20
        while len(_lines(log)) < len(folders) and time.monotonic() < deadline:
            time.sleep(0.05)  # polling a condition with a deadline: the body stands in for a compile
    assert _lines(log) == [f"{folder} mod download" for folder in folders]


def test_leaving_early_stops_the_downloads_not_yet_started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = _fake_go(tmp_path, 0)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    folders = [tmp_path / f"r{i}" for i in range(50)]
    for folder in folders:
        folder.mkdir()
    with gotool.modules_prefetched(folders):
        pass
    assert len(_lines(log)) < len(folders)


def _lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_nothing_to_prefetch_runs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = _fake_go(tmp_path, 0)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    with gotool.modules_prefetched([]):
        pass
    assert not log.exists()
