"""What `keelson lab up` says when the machine cannot run a lab: not root, host packages missing and no apt."""

from __future__ import annotations

import sys

import pytest

from keelson import cli
from provision.lab import LabError, host_setup


def test_not_root_is_a_clear_error_without_traceback(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr("provision.lab.host_setup.os.geteuid", lambda: 1000)
    monkeypatch.setattr(sys, "argv", ["keelson", "lab", "up", "--masters", "1", "--workers", "0", "--name", "nr"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "the lab needs root" in err and "sudo" in err
    assert "Traceback" not in err


def test_bad_master_count_is_refused_before_anything_happens(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", ["keelson", "lab", "up", "--masters", "2"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 1
    assert "--masters 2" in capsys.readouterr().err


def test_missing_packages_without_apt_print_the_exact_command(monkeypatch: pytest.MonkeyPatch) -> None:
    present = {"ip", "ssh", "ssh-keygen"}
    monkeypatch.setattr(
        "provision.lab.host_setup.shutil.which", lambda tool: f"/usr/bin/{tool}" if tool in present else None
    )
    assert host_setup.missing_host_packages() == ["debootstrap", "systemd-container"]
    with pytest.raises(LabError) as raised:
        host_setup.ensure_host_packages()
    assert raised.value.hint == "apt-get install -y --no-install-recommends debootstrap systemd-container"
