"""`keelson backup verify`: a snapshot file checked with no cluster."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from backups.snapshots import SnapshotRejected
from keelson import backup_cmd
from tests.backup_helpers import write_snapshot


def test_cli_verify(tmp_path: Path) -> None:
    runner = CliRunner()
    good = write_snapshot(tmp_path / "good.db.gz")
    result = runner.invoke(backup_cmd.app, ["verify", str(good), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["valid"] is True
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0xFF
    good.write_bytes(bytes(data))
    result = runner.invoke(backup_cmd.app, ["verify", str(good)])
    assert result.exit_code != 0
    assert isinstance(result.exception, SnapshotRejected)
