"""`keelson verify` without hosts: the key counts and their comparison (etcdctl's JSON as etcd 3.4 printed it here),
the choice of snapshot, the restore drill against members and a scratch host that answer like the real ones (the
scratch host taken down however the drill ends), the chaos member check's order (the member is always started
again), and the report (a SKIP is not a PASS and fails nothing)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from backups import keycount, scratch
from backups.keycount import KeysUnreadable, RegistryKeys, kind_of, parse_keys
from backups.operations import Members
from inventory.loader import parse_inventory
from inventory.model import Cluster
from provision.lab.scratch import ScratchHost, scratch_name
from roles.control_plane import verify_chaos
from roles.control_plane.verify import Check, Verified
from roles.engine import transport as transport_module
from roles.engine.transport import CommandResult
from tests.backup_helpers import fake_db, write_snapshot

EXAMPLES = Path(__file__).parents[2] / "inventory" / "examples"

# `etcdctl get /registry/ --prefix --keys-only -w json` from etcd 3.4.23 (this machine, a throwaway member)
CAPTURED = (
    '{"header":{"cluster_id":15118495548433857066,"member_id":13668033151171901709,"revision":5,"raft_term":2},'
    '"kvs":[{"key":"L3JlZ2lzdHJ5L2FwaXJlZ2lzdHJhdGlvbi5rOHMuaW8vYXBpc2VydmljZXMvdjE=","create_revision":3,'
    '"mod_revision":3,"version":1},{"key":"L3JlZ2lzdHJ5L3BvZHMvYS9i","create_revision":2,"mod_revision":5,'
    '"version":2},{"key":"L3JlZ2lzdHJ5L3BvZHMvYS9j","create_revision":4,"mod_revision":4,"version":1}],"count":3}\n'
)
NOTHING = '{"header":{"cluster_id":1,"member_id":2,"revision":5,"raft_term":2}}\n'
COMPACTED = (
    '{"level":"warn","msg":"retrying of unary invoker failed","error":"rpc error: code = OutOfRange desc = '
    'etcdserver: mvcc: required revision has been compacted"}\nError: etcdserver: mvcc: required revision has been '
    "compacted\n"
)


def keys_json(revision: int, created: dict[str, int]) -> str:
    kvs = [{"key": base64.b64encode(k.encode()).decode(), "create_revision": c, "mod_revision": c, "version": 1}
           for k, c in created.items()]  # fmt: skip
    return json.dumps({"header": {"revision": revision}, "kvs": kvs, "count": len(kvs)})


# -- parsing -----------------------------------------------------------------------------------------------------


def test_parse_keys_reads_etcdctls_json() -> None:
    keys = parse_keys(CAPTURED)
    assert keys.revision == 5
    assert keys.created == {
        "/registry/apiregistration.k8s.io/apiservices/v1": 3,
        "/registry/pods/a/b": 2,
        "/registry/pods/a/c": 4,
    }
    assert keys.kinds() == {"apiregistration.k8s.io/apiservices": 1, "pods": 2}
    assert parse_keys(NOTHING) == RegistryKeys(5, {})


@pytest.mark.parametrize(
    "junk",
    ["", "Error: context deadline exceeded", "{", '{"kvs": []}', '{"header":{"revision":5},"kvs":[{"key":"%%%"}]}'],
)
def test_parse_keys_refuses_junk(junk: str) -> None:
    with pytest.raises(KeysUnreadable):
        parse_keys(junk)


def test_parse_keys_refuses_a_partial_answer() -> None:
    text = json.loads(keys_json(9, {"/registry/pods/a/b": 2}))
    text["count"] = 2  # etcd counted more than it listed (a --limit, or a cut answer): never a count of part of it
    with pytest.raises(KeysUnreadable, match="counted 2 keys but listed 1"):
        parse_keys(json.dumps(text))


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("/registry/pods/default/web-1", "pods"),
        ("/registry/namespaces/default", "namespaces"),
        ("/registry/apiregistration.k8s.io/apiservices/v1.apps", "apiregistration.k8s.io/apiservices"),
        ("/registry/masterleases/198.18.0.11", "masterleases"),
        ("/registry/ranges/serviceips", "ranges"),
    ],
)
def test_kind_of(key: str, kind: str) -> None:
    assert kind_of(key) == kind


def test_compacted_is_read_from_etcdctls_error() -> None:
    assert keycount.compacted(COMPACTED)
    assert not keycount.compacted("Error: context deadline exceeded")


def test_get_keys_args() -> None:
    assert keycount.get_keys_args(41) == [
        "get", "/registry/", "--prefix", "--keys-only", "--rev=41", "-w", "json", "--command-timeout=60s",
    ]  # fmt: skip
    assert "--rev" not in " ".join(keycount.get_keys_args())


# -- comparison --------------------------------------------------------------------------------------------------

POD_A, POD_B, SVC, CM = "/registry/pods/d/a", "/registry/pods/d/b", "/registry/services/specs/d/s", "/registry/cm/d/c"


def test_exact_equal_counts_pass() -> None:
    restored = RegistryKeys(40, {POD_A: 2, POD_B: 3, SVC: 4})
    live = RegistryKeys(90, {POD_A: 2, POD_B: 3, SVC: 4})  # read with --rev=40: the header is the current revision
    done = keycount.exact(restored, live, 40)
    assert done.ok and done.how == "exact"
    assert done.detail == "3 objects under /registry/ restored = 3 live at revision 40 (2 kinds)"
    assert done.figures == {"objects": 3, "live_objects": 3, "kinds": 2}


def test_exact_names_the_kinds_that_differ_even_with_equal_totals() -> None:
    restored = RegistryKeys(40, {POD_A: 2, POD_B: 3, SVC: 4})
    live = RegistryKeys(90, {POD_A: 2, SVC: 4, "/registry/services/specs/d/t": 5})
    done = keycount.exact(restored, live, 40)
    assert not done.ok
    assert "the restore holds 3 objects under /registry/, the live cluster held 3 at revision 40" in done.detail
    assert "pods 2 restored, 1 live; services 1 restored, 2 live" in done.detail


def test_exact_fails_when_the_restored_store_is_at_another_revision() -> None:
    done = keycount.exact(RegistryKeys(41, {POD_A: 2}), RegistryKeys(90, {POD_A: 2}), 40)
    assert not done.ok and done.detail == "the restored etcd is at revision 41, the snapshot says 40"


def test_contained_passes_when_every_older_live_key_is_restored() -> None:
    restored = RegistryKeys(40, {POD_A: 2, POD_B: 3, SVC: 4})  # POD_B deleted since, CM created since
    live_now = RegistryKeys(90, {POD_A: 2, SVC: 4, CM: 60})
    done = keycount.contained(restored, live_now, 40)
    assert done.ok and done.how == "contained"
    assert done.detail.startswith("revision 40 is compacted on the live cluster")
    assert "all 2 live objects created at or before it are among the 3 restored (1 of those deleted" in done.detail
    assert done.figures == {
        "objects": 3, "live_objects": 3, "live_created_by_revision": 2, "gone_since": 1, "kinds": 2,
    }  # fmt: skip


def test_contained_fails_naming_what_the_backup_lost() -> None:
    restored = RegistryKeys(40, {POD_A: 2})
    live_now = RegistryKeys(90, {POD_A: 2, SVC: 4, CM: 60})  # SVC existed at 40 and is not in the snapshot
    done = keycount.contained(restored, live_now, 40)
    assert not done.ok
    assert "1 of the 2 live objects created at or before it are not in the restore — lost by the backup" in done.detail
    assert done.detail.endswith(SVC)


# -- which snapshot ----------------------------------------------------------------------------------------------


def listing(*names: str) -> dict[str, Any]:
    return {"local": [{"name": n, "size": 10, "location": f"/var/backups/keelson/etcd/{n}"} for n in names]}


def test_newest_is_by_the_time_in_the_name_over_every_member() -> None:
    listings = {
        "m1": listing("lab-20261203T040000Z-rev900.db.gz", "lab-20261203T050000Z-rev950.db.gz"),
        "m2": listing("lab-20261203T053000Z-rev990.db.gz", "other-20261203T060000Z-rev5.db.gz", "junk.db.gz"),
        "m3": {},
    }
    kept = scratch.newest(listings, "lab")
    assert kept == scratch.Kept(
        "m2", "lab-20261203T053000Z-rev990.db.gz", "/var/backups/keelson/etcd/lab-20261203T053000Z-rev990.db.gz", 990
    )
    named = scratch.newest(listings, "lab", "lab-20261203T040000Z-rev900.db.gz")
    assert named is not None and (named.member, named.revision) == ("m1", 900)
    assert scratch.newest({"m1": listing("other-20261203T060000Z-rev5.db.gz")}, "lab") is None


def test_only_snapshots_taken_after_the_last_restore_count() -> None:
    listings = {"m1": listing("lab-20261203T040000Z-rev900.db.gz", "lab-20261203T050000Z-rev950.db.gz")}
    restored = scratch.restored_at(
        "/var/lib/etcd.pre-restore-20261203T043000Z\n/var/lib/etcd.pre-restore-20261203T030000Z\n"
        "/var/lib/etcd.pre-restore-junk\n/var/lib/other.pre-restore-20261203T060000Z\n",
        "/var/lib/etcd/",
    )
    assert restored is not None and f"{restored:%H%M}" == "0430"  # the latest restore, of this data dir
    assert scratch.restored_at("", "/var/lib/etcd") is None
    kept = scratch.newest(listings, "lab", after=restored)
    assert kept is not None and kept.revision == 950
    late = scratch.restored_at("/var/lib/etcd.pre-restore-20261203T053000Z", "/var/lib/etcd")
    assert scratch.newest(listings, "lab", after=late) is None


def test_scratch_lab_names() -> None:
    assert scratch_name("lab") == "lab-scratch"
    assert scratch_name("a-very-long-cluster-name-indeed-x") == "a-very-long-cluster-nam-scratch"
    assert scratch_name("9lives") == "keelson-scratch"  # a lab name starts with a letter


# -- the drill, against fakes ------------------------------------------------------------------------------------

REV = 1234
SNAPSHOT = f"lab-20261203T050000Z-rev{REV}.db.gz"
OBJECTS = {POD_A: 100, POD_B: 1200, SVC: 7}


class Host:
    """Answers commands by the first rule whose fragment is in the script; records every script."""

    def __init__(self, name: str, rules: list[tuple[str, Callable[[str], CommandResult]]]) -> None:
        self.host, self.rules, self.commands_run = name, rules, 0
        self.files: dict[str, bytes] = {}
        self.scripts: list[str] = []

    def run(self, script: str, *, timeout: float | None = None, check: bool = False, private: bool = False) -> Any:
        self.scripts.append(script)
        for fragment, answer in self.rules:
            if fragment in script:
                return answer(script)
        return CommandResult(0, "", "")

    def get(self, path: str) -> bytes:
        return self.files[path]

    def send_files(self, files: list[tuple[Path, str]]) -> str:
        self.files.update({f"/up/{name}": path.read_bytes() for path, name in files})
        return "/up"

    def close(self) -> None:
        return None


def ok(stdout: str = "") -> Callable[[str], CommandResult]:
    return lambda script: CommandResult(0, stdout, "")


def cluster_with_backups(enabled: bool = True) -> Cluster:
    data = yaml.safe_load((EXAMPLES / "lab.yaml").read_text())
    data["backups"] = {"enabled": enabled, "schedule": "hourly"}
    return parse_inventory(yaml.safe_dump(data))


def scratch_cluster() -> Cluster:
    return parse_inventory(
        "name: lab-scratch\nnon_ha: true\nhosts:\n  - {name: m1, address: 198.18.9.11, roles: [master]}\n"
        "control_plane: {vip: 198.18.9.100/24}\n"
    )


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """Members m1-m3 (m2 keeps the snapshot), a scratch host, and a record of what the drill did."""
    snapshot = write_snapshot(tmp_path / SNAPSHOT, fake_db()).read_bytes()
    live = {"at": keys_json(9999, OBJECTS), "now": keys_json(9999, OBJECTS)}
    members: dict[str, Host] = {}

    def at_revision(script: str) -> CommandResult:
        return CommandResult(0, live["at"], "") if live["at"] else CommandResult(1, "", COMPACTED)

    for name in ("m1", "m2", "m3"):
        names = [SNAPSHOT] if name == "m2" else []
        members[name] = Host(
            name,
            [
                (" list", ok(json.dumps({"member": name, "status": {}, **listing(*names)}))),
                (f"--rev={REV}", at_revision),
                ("get /registry/", lambda s: CommandResult(0, live["now"], "")),
            ],
        )  # fmt: skip
    members["m2"].files[f"/var/backups/keelson/etcd/{SNAPSHOT}"] = snapshot
    restored: dict[str, Any] = {"keys": keys_json(REV, OBJECTS), "restore_rc": 0}
    host = Host(
        "m1",
        [
            ("etcdutl snapshot restore", lambda s: CommandResult(restored["restore_rc"], "", "etcdutl: bad file")),
            ("endpoint health", ok('[{"endpoint":"http://127.0.0.1:2379","health":true,"took":"1ms"}]')),
            ("get /registry/", lambda s: CommandResult(0, restored["keys"], "")),
        ],
    )
    record: dict[str, Any] = {"members": members, "scratch": host, "live": live, "restored": restored, "down": 0}
    sc = scratch_cluster()

    @contextmanager
    def boot(cluster: Cluster, work: Path) -> Iterator[ScratchHost]:
        try:
            yield ScratchHost(sc, sc.hosts[0], "lab-scratch", 1.5)
        finally:
            record["down"] += 1

    @contextmanager
    def connected(cluster: Cluster) -> Iterator[Members]:
        yield Members(cluster.etcd_members, dict(members), {})  # type: ignore[arg-type]

    class Pool:
        def __init__(self, cluster: Cluster, **_: Any) -> None:
            pass

        def get(self, h: Any) -> Host:
            return host

        def close(self) -> None:
            record["pool_closed"] = True

    monkeypatch.setattr("backups.operations.connected", connected)
    monkeypatch.setattr(transport_module, "ConnectionPool", Pool)
    monkeypatch.setattr(scratch, "install_etcd", lambda cluster, work: record.setdefault("installed", cluster))
    record["run"] = lambda **kw: scratch.drill(cluster_with_backups(), boot=boot, unavailable=lambda: None, **kw)
    return record


def test_drill_restores_into_the_scratch_host_and_counts_equal(world: dict[str, Any]) -> None:
    done = world["run"]()
    assert done.status == "pass", done.detail
    assert done.detail.startswith(f"{SNAPSHOT} (on m2) restored on scratch host lab-scratch: 3 objects under")
    assert f"= 3 live at revision {REV} (2 kinds)" in done.detail
    f = done.figures
    assert (f["snapshot"], f["member"], f["revision"], f["how"], f["objects"]) == (SNAPSHOT, "m2", REV, "exact", 3)
    assert f["per_kind"] == {"pods": 2, "services": 1} and f["boot_s"] == 1.5
    assert {"upload_s", "restore_s", "start_s", "total_s", "fetch_s", "binaries_s"} <= f.keys()
    # the etcd binaries from the live cluster's release, on the scratch lab's hosts (its own SSH access)
    assert world["installed"].name == "lab-scratch" and world["installed"].kubernetes.artifacts.source == "local"
    scripts = world["scratch"].scripts
    order = [next(i for i, s in enumerate(scripts) if frag in s)
             for frag in ("etcdutl snapshot restore", "systemd-run", "endpoint health", "get /registry/")]  # fmt: skip
    assert order == sorted(order) and scripts[-1] == scratch.stop_command(), scripts
    assert f"gzip -dc /up/{SNAPSHOT}" in scripts[0] and "--initial-cluster scratch=http://127.0.0.1:2380" in scripts[0]
    assert world["down"] == 1 and world["pool_closed"]
    for member in world["members"].values():  # the live cluster is only read
        changing = ("snapshot restore", "systemctl", " put ", " del ", " compact ", "rm ")
        assert not any(c in s for s in member.scripts for c in changing), member.scripts


def test_drill_fails_with_the_kinds_when_the_restore_holds_fewer(world: dict[str, Any]) -> None:
    world["restored"]["keys"] = keys_json(REV, {POD_A: 100, SVC: 7})
    done = world["run"]()
    assert done.status == "fail"
    assert "the restore holds 2 objects under /registry/, the live cluster held 3 at revision 1234" in done.detail
    assert "pods 1 restored, 2 live" in done.detail
    assert world["down"] == 1


def test_drill_compares_by_containment_when_the_revision_is_compacted(world: dict[str, Any]) -> None:
    world["live"]["at"] = ""  # etcdctl: required revision has been compacted
    world["live"]["now"] = keys_json(99999, {POD_A: 100, SVC: 7, CM: 5000})  # POD_B gone since, CM new
    done = world["run"]()
    assert done.status == "pass", done.detail
    assert f"revision {REV} is compacted on the live cluster" in done.detail
    assert done.figures["how"] == "contained" and done.figures["gone_since"] == 1


def test_drill_takes_the_scratch_host_down_when_the_restore_fails(world: dict[str, Any]) -> None:
    world["restored"]["restore_rc"] = 1
    done = world["run"]()
    assert done.status == "fail"
    assert done.detail == "etcdutl snapshot restore failed on the scratch host: etcdutl: bad file"
    assert world["down"] == 1
    assert "rm -rf /var/tmp/keelson-verify" in world["scratch"].scripts[-1]


def test_drill_fails_on_a_corrupt_snapshot_before_booting(world: dict[str, Any]) -> None:
    path = f"/var/backups/keelson/etcd/{SNAPSHOT}"
    world["members"]["m2"].files[path] = world["members"]["m2"].files[path][:-40]
    done = world["run"]()
    assert done.status == "fail" and "not a valid etcd snapshot" in done.detail
    assert world["down"] == 0  # nothing booted


def test_drill_skips_without_a_snapshot_and_says_how_to_get_one(world: dict[str, Any]) -> None:
    world["members"]["m2"].rules[0] = (" list", ok(json.dumps({"member": "m2", "status": {}, "local": []})))
    done = world["run"]()
    assert done.status == "skipped"
    assert "no snapshot kept on any etcd member yet (the backup timer runs hourly" in done.detail
    assert "keelson verify --fresh-backup" in done.detail and world["down"] == 0


def test_drill_skips_snapshots_older_than_the_last_restore(world: dict[str, Any]) -> None:
    world["members"]["m3"].rules.insert(0, ("ls -d", ok("/var/lib/etcd.pre-restore-20261203T051500Z\n")))
    done = world["run"]()
    assert done.status == "skipped", done.detail
    assert done.detail.startswith("no snapshot taken since the cluster was restored (2026-12-03 05:15:00 UTC)")
    assert world["down"] == 0


def test_drill_skips_with_the_reason(world: dict[str, Any]) -> None:
    assert scratch.drill(cluster_with_backups(), scratch="none").status == "skipped"
    off = scratch.drill(cluster_with_backups(enabled=False), boot=lambda c, w: None, unavailable=lambda: None)  # type: ignore[arg-type,return-value]
    assert off.status == "skipped" and "backups.enabled: false" in off.detail
    no_lab = scratch.drill(cluster_with_backups(), boot=lambda c, w: None, unavailable=lambda: "needs root")  # type: ignore[arg-type,return-value]
    assert (no_lab.status, no_lab.detail) == ("skipped", "no scratch host can boot here: needs root")


def test_scratch_scripts() -> None:
    script = scratch.restore_script("/up/x.db.gz", "ab" * 32, "v3.6.16")
    assert "etcdutl snapshot restore /var/tmp/keelson-verify/snapshot.db --name scratch" in script
    assert "--data-dir /var/tmp/keelson-verify/data" in script
    assert scratch.start_command().startswith("systemd-run --unit=keelson-verify-etcd --collect --quiet -- ")
    assert "--listen-client-urls=http://127.0.0.1:2379" in scratch.start_command()  # the host's loopback only


# -- chaos: one etcd member stopped --------------------------------------------------------------------------------


class ChaosPool:
    def __init__(self, hosts: dict[str, Host]) -> None:
        self.hosts = hosts

    def get(self, host: Any) -> Host:
        return self.hosts[host.name]


def chaos_world(write_ok: bool) -> tuple[ChaosPool, list[str]]:
    log: list[str] = []
    stopped: set[str] = set()
    urls = {"m1": "https://198.18.0.11:2379", "m2": "https://198.18.0.12:2379", "m3": "https://198.18.0.13:2379"}

    def health(script: str) -> CommandResult:
        items = [{"endpoint": u, "health": n not in stopped} for n, u in urls.items() if u in script]
        return CommandResult(0, json.dumps(items), "")

    def hosts_rules(name: str) -> list[tuple[str, Callable[[str], CommandResult]]]:
        def stop(s: str) -> CommandResult:
            log.append(f"{name} stop")
            stopped.add(name)
            return CommandResult(0, "", "")

        def start(s: str) -> CommandResult:
            log.append(f"{name} start")
            stopped.discard(name)
            return CommandResult(0, "", "")

        def write(s: str) -> CommandResult:
            log.append(f"{name} write")
            return CommandResult(0 if write_ok else 1, "configmap/x", "" if write_ok else "etcdserver: timeout")

        return [("systemctl stop etcd", stop), ("systemctl start etcd", start), ("endpoint health", health),
                ("create configmap", write)]  # fmt: skip

    return ChaosPool({n: Host(n, hosts_rules(n)) for n in urls}), log


def test_etcd_member_check_stops_one_keeps_quorum_and_starts_it_again() -> None:
    pool, log = chaos_world(write_ok=True)
    done = verify_chaos.etcd_member_check(cluster_with_backups(), pool)  # type: ignore[arg-type]
    assert done.ok, done.detail
    assert log == ["m3 stop", "m1 write", "m3 start"]  # m1 reads, so m3 (the last other member) stops
    assert done.detail.startswith("etcd stopped on m3: the other 2 members healthy, a write through the API answered")
    assert {"write_s", "rejoin_s"} <= done.figures.keys() and done.figures["stopped"] == "m3"


def test_etcd_member_check_fails_and_still_starts_the_member(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify_chaos, "QUORUM_DEADLINE_S", 0.3)
    pool, log = chaos_world(write_ok=False)
    done = verify_chaos.etcd_member_check(cluster_with_backups(), pool)  # type: ignore[arg-type]
    assert not done.ok
    assert "etcd stopped on m3: no write through the API succeeded within 0 s" in done.detail
    assert log[0] == "m3 stop" and log[-1] == "m3 start"


def test_the_member_stopped_is_never_the_reader() -> None:
    members = cluster_with_backups().etcd_members
    assert verify_chaos.victim_of(members, "m1").name == "m3"
    assert verify_chaos.victim_of(members, "m3").name == "m2"


# -- the report ----------------------------------------------------------------------------------------------------


def test_a_skip_is_not_a_pass_and_fails_nothing() -> None:
    done = Verified([Check("etcd", True, "3 of 3"), Check("restore", False, "no scratch host", skipped=True)])
    assert done.ok
    assert done.lines() == [("PASS", "etcd: 3 of 3"), ("SKIP", "restore: no scratch host")]
    assert [c["status"] for c in done.as_dict()["checks"]] == ["pass", "skipped"]
    assert not Verified([*done.checks, Check("api", False, "not Ready: w1")]).ok


def test_cli_refuses_an_unknown_scratch_and_the_old_failover_flag() -> None:
    from keelson.cli import app

    runner = CliRunner()
    bad = runner.invoke(app, ["verify", "-i", "x.yaml", "--scratch", "cloud"])
    assert bad.exit_code == 2 and "--scratch" in bad.output
    gone = runner.invoke(app, ["verify", "-i", "x.yaml", "--no-failover"])
    assert gone.exit_code == 2 and "No such option" in gone.output
