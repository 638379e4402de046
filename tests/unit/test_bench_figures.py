"""The benches' figures are computed by pure functions that can fail, and bench code is product code (no `tests`)."""

from __future__ import annotations

import ast
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from provision.bench import BenchError
from provision.bench.backup_bench import restore_and_compare
from provision.bench.etcd_keys import Keyspace, keys_lost, keys_off

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ["keelson", "inventory", "provision", "roles", "addons", "backups"]


def etcdctl_get(values: dict[str, str]) -> str:
    """What `etcdctl get PREFIX --prefix` prints: a key line, then its value line, in key order."""
    return "".join(f"{k}\n{v}\n" for k, v in sorted(values.items()))


def bench_keys(start: int, count: int, prefix: str = "/bench/") -> dict[str, str]:
    return {f"{prefix}{i:06d}": f"value-{i}" for i in range(start, start + count)}


class FakeEtcd:
    """Three members' keyspaces in memory, damaged and restored the way the etcd bench does it on the lab."""

    def __init__(self, values: dict[str, str]) -> None:
        self.members = {m: dict(values) for m in ("m1", "m2", "m3")}

    def damage(self) -> None:  # the bench's damage: 100 keys deleted, 500 added
        for store in self.members.values():
            for key in [k for k in store if k.startswith("/bench/0000")]:
                del store[key]
            store.update(bench_keys(0, 500, "/bench/x"))

    def read(self) -> dict[str, Keyspace]:
        return {m: Keyspace.parse(etcdctl_get(store)) for m, store in self.members.items()}

    def restore(self, values: dict[str, str]) -> None:
        self.members = {m: dict(values) for m in self.members}


SNAPSHOT = bench_keys(0, 10_000)


def test_parse_reads_etcdctl_output_and_ignores_a_torn_last_line() -> None:
    space = Keyspace.parse(etcdctl_get({"/a": "1", "/b": "two words"}) + "/c\n")
    assert space.values == {"/a": "1", "/b": "two words"}
    assert Keyspace.parse("").values == {}


def test_exact_restore_is_zero_and_digests_match() -> None:
    etcd = FakeEtcd(SNAPSHOT)
    snapshot = Keyspace.parse(etcdctl_get(SNAPSHOT))
    _, lost, after = restore_and_compare(snapshot, etcd.damage, lambda: etcd.restore(SNAPSHOT), etcd.read)
    assert lost == 0
    assert {k.digest for k in after.values()} == {snapshot.digest}


def test_skipped_restore_counts_deleted_and_added_keys() -> None:
    etcd = FakeEtcd(SNAPSHOT)
    snapshot = Keyspace.parse(etcdctl_get(SNAPSHOT))
    _, lost, after = restore_and_compare(snapshot, etcd.damage, lambda: None, etcd.read)
    assert lost == 100 + 500
    assert all(k.digest != snapshot.digest for k in after.values())


def test_restoring_the_wrong_state_is_not_zero() -> None:
    older = bench_keys(0, 9_000)  # an earlier snapshot: 1 000 keys short
    etcd = FakeEtcd(SNAPSHOT)
    snapshot = Keyspace.parse(etcdctl_get(SNAPSHOT))
    _, lost, _ = restore_and_compare(snapshot, etcd.damage, lambda: etcd.restore(older), etcd.read)
    assert lost == 1_000


def test_one_member_left_behind_is_the_figure() -> None:
    etcd = FakeEtcd(SNAPSHOT)
    snapshot = Keyspace.parse(etcdctl_get(SNAPSHOT))

    def restore_two() -> None:
        for member in ("m1", "m2"):
            etcd.members[member] = dict(SNAPSHOT)

    _, lost, _ = restore_and_compare(snapshot, etcd.damage, restore_two, etcd.read)
    assert lost == 600  # the worst member: m3, never restored


def test_changed_value_counts() -> None:
    snapshot = Keyspace(SNAPSHOT)
    changed = Keyspace({**SNAPSHOT, "/bench/000042": "value-other"})
    assert keys_off(snapshot, changed) == 1
    assert changed.digest != snapshot.digest
    assert keys_lost(snapshot, {"m1": snapshot, "m2": changed}) == 1


def test_damage_that_does_not_show_is_refused() -> None:
    """If the damage did not change what the members serve, a 0 would prove nothing: the bench stops."""
    etcd = FakeEtcd(SNAPSHOT)
    snapshot = Keyspace.parse(etcdctl_get(SNAPSHOT))
    with pytest.raises(BenchError, match="could not fail"):
        restore_and_compare(snapshot, lambda: None, lambda: None, etcd.read)


def test_no_members_is_an_error_not_zero() -> None:
    with pytest.raises(ValueError, match="no member"):
        keys_lost(Keyspace(SNAPSHOT), {})


def test_product_code_never_imports_tests() -> None:
    """`keelson bench` runs from an installed wheel, which has no `tests` package."""
    offenders = []
    for package in PRODUCT:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else []
                )
                offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n == "tests" or n.startswith("tests.")]
    assert offenders == []


def test_a_bench_stopped_by_sigterm_unwinds_and_takes_its_lab_down(tmp_path: Path) -> None:
    """SIGTERM (a CI timeout, `kill`) ends a bench like Ctrl-C: its `finally` (the lab's `down()`) runs."""
    marker = tmp_path / "cleaned"
    code = (
        "import os, signal, pathlib\n"
        "from keelson.signals import stop_cleanly_on_sigterm\n"
        "stop_cleanly_on_sigterm()\n"
        "try:\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    raise SystemExit('the signal did not stop the bench')\n"
        "finally:\n"
        f"    pathlib.Path({str(marker)!r}).write_text('down')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 128 + signal.SIGTERM, proc.stderr
    assert marker.read_text() == "down"
