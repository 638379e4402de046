"""Inventory fields that reach ssh command lines and systemd units: user names, backup hosts and folders, the
backup schedule (a systemd OnCalendar expression, checked in Python and cross-checked with systemd-analyze)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from inventory.errors import InventoryError
from inventory.loader import parse_inventory
from inventory.oncalendar import calendar_problem

BASE = """\
name: fields
ssh: {user: root}
hosts:
  - {name: m1, address: 198.18.0.11, roles: [master]}
  - {name: m2, address: 198.18.0.12, roles: [master]}
  - {name: m3, address: 198.18.0.13, roles: [master]}
  - {name: w1, address: 198.18.0.21, roles: [worker]}
control_plane: {vip: 198.18.0.100/24}
backups:
  schedule: "SCHEDULE"
  targets:
    - {kind: ssh, host: w1}
"""

# (expression, valid) — each one's verdict is systemd 252's (`systemd-analyze calendar`), checked below when it runs
CALENDAR = [
    ("hourly", True),
    ("Daily", True),
    ("WEEKLY", True),
    ("minutely", True),
    ("monthly", True),
    ("quarterly", True),
    ("semi-annually", True),
    ("yearly", True),
    ("annually", True),
    ("daily UTC", True),
    ("hourly Europe/Berlin", True),
    ("*:0/30", True),
    ("*:0/15 UTC", True),
    ("*-*-* 02:00", True),
    ("*-*-* 02:00:00", True),
    ("Mon..Fri 02:00", True),
    ("mon-fri 8..18:0/15", True),
    ("Sat,Sun *-*-* 00..06:00", True),
    ("Mon,Fri,", True),
    ("Monday", True),
    ("*-*~03", True),
    ("*-02~1..3 04:00", True),
    ("2024-02-29 12:00", True),
    ("69-01-01", True),
    ("*-*-* 1,2,3:0,30", True),
    ("*-*-* 08..18/2:00", True),
    ("*:*:59.999999", True),
    ("10:00:00.5", True),
    ("@1700000000", True),
    ("*-*-* 10:00 America/New_York", True),
    ("*:0..59/60", True),
    ("*-*-* 5..5:00", True),
    ("bad", False),
    ("", False),
    ("every hour", False),
    ("*/15", False),
    ("*:*/15", False),
    ("*", False),
    ("12", False),
    ("25:00", False),
    ("*-*-* 24:00", False),
    ("*:60", False),
    ("12:00:60", False),
    ("*:*:59.9999995", False),
    ("*-13-01", False),
    ("0-0-0", False),
    ("2200-01-01", False),
    ("*-*~29", False),
    ("*-*-1~3", False),
    ("*-*-* 10..5:00", False),
    ("*:50/15", False),
    ("*:0/0", False),
    ("Fri..Mon", False),
    ("Mon..", False),
    ("Mon Tue", False),
    ("Mo 10:00", False),
    ("+1:00", False),
    ("1.5:00", False),
    ("*-*-* 10:00 Nowhere/Zone", False),
    ("now", False),
    ("hourly; rm -rf /", False),
    ("*:\u0663\u0660", False),  # Arabic-Indic digits: systemd reads ASCII digits only
    ("Mon\u00a010:00", False),
    ("daily\nExecStart=/bin/sh", False),
]


@pytest.mark.parametrize(("expression", "valid"), CALENDAR)
def test_calendar_expressions(expression: str, valid: bool) -> None:
    problem = calendar_problem(expression)
    assert (problem is None) == valid, problem


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed on this machine")
def test_calendar_table_agrees_with_systemd_analyze() -> None:
    disagree = []
    for expression, _ in CALENDAR:
        proc = subprocess.run(["systemd-analyze", "calendar", expression], capture_output=True, check=False)
        if (proc.returncode == 0) != (calendar_problem(expression) is None):
            disagree.append((expression, proc.returncode, calendar_problem(expression)))
    assert disagree == []


def _problems(text: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(InventoryError) as info:
        parse_inventory(text, source="inv.yaml")
    return [(p.line, p.field, p.message) for p in info.value.problems]


def test_a_bad_schedule_is_an_inventory_error_with_its_line() -> None:
    ((line, field, message),) = _problems(BASE.replace("SCHEDULE", "Mon..Fri 25:00"))
    assert (line, field) == (10, "backups.schedule")
    assert "not a systemd OnCalendar expression" in message and "hour 25" in message
    assert parse_inventory(BASE.replace("SCHEDULE", "Mon..Fri 02:00")).backups.schedule == "Mon..Fri 02:00"


@pytest.mark.parametrize("user", ["-oProxyCommand=id", "root;id", "a b", "", "x" * 33, "ünï", "$(id)", "-"])
def test_ssh_users_are_posix_names(user: str) -> None:
    text = BASE.replace("SCHEDULE", "hourly").replace("ssh: {user: root}", f"ssh: {{user: {user!r}}}")
    ((line, field, message),) = _problems(text)
    assert (line, field) == (2, "ssh.user") and "not a POSIX user name" in message
    host_level = BASE.replace("SCHEDULE", "hourly").replace(
        "roles: [worker]}", f"roles: [worker], ssh: {{user: {user!r}}}}}"
    )
    ((line, field, _),) = _problems(host_level)
    assert (line, field) == (7, "hosts[3].ssh.user")


@pytest.mark.parametrize("user", ["root", "ops", "keelson-backup", "Administrator", "svc_backup", "a.b", "_x"])
def test_ordinary_users_are_fine(user: str) -> None:
    text = BASE.replace("SCHEDULE", "hourly").replace("{kind: ssh, host: w1}", f"{{kind: ssh, host: w1, user: {user}}}")
    assert parse_inventory(text).backups.targets[0].user == user  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("target", "field"),
    [
        ("{kind: ssh, host: w1, user: '-oProxyCommand=id'}", "user"),
        ("{kind: ssh, host: '-oProxyCommand=id'}", "host"),
        ("{kind: ssh, host: 'w1 -v'}", "host"),
        ("{kind: ssh, host: w1, path: relative/dir}", "path"),
        ("{kind: ssh, host: w1, path: /srv/../etc}", "path"),
        ("{kind: ssh, host: w1, path: '/srv/my backups'}", "path"),
        ('{kind: ssh, host: w1, path: "/srv/x\\"y"}', "path"),
    ],
)
def test_backup_target_fields(target: str, field: str) -> None:
    text = BASE.replace("SCHEDULE", "hourly").replace("{kind: ssh, host: w1}", target)
    ((line, found, _),) = _problems(text)
    assert (line, found) == (12, f"backups.targets[0].{field}")


def test_default_backup_user_is_dedicated_and_root_still_allowed() -> None:
    cluster = parse_inventory(BASE.replace("SCHEDULE", "hourly"))
    assert cluster.backups.targets[0].user == "keelson-backup"  # type: ignore[union-attr]
    explicit = BASE.replace("SCHEDULE", "hourly").replace("{kind: ssh, host: w1}", "{kind: ssh, host: w1, user: root}")
    assert parse_inventory(explicit).backups.targets[0].user == "root"  # type: ignore[union-attr]


def test_one_folder_per_backup_account() -> None:
    text = BASE.replace("SCHEDULE", "hourly").replace(
        "    - {kind: ssh, host: w1}\n",
        "    - {kind: ssh, host: w1}\n    - {kind: ssh, host: 198.18.0.21, path: /srv/other}\n",
    )
    ((line, field, message),) = _problems(text)
    assert (line, field) == (13, "backups.targets[1].path") and "pinned to one folder per user" in message
    other_user = text.replace("path: /srv/other}", "path: /srv/other, user: other}")
    assert len(parse_inventory(other_user).backups.targets) == 2
