"""Counting what a snapshot holds against the live cluster: the keys under `/registry/` (one per Kubernetes object),
in total and per resource kind. Pure: parsers of `etcdctl get … -w json` and the comparisons `keelson verify`'s
scratch restore reports (`backups/scratch.py` runs the commands).

- **exact**: the restore against the live cluster read at the snapshot's own revision (`get --rev=R`: etcd answers
  with the store as it was at R, the very state the snapshot holds). Equal counts, per kind, pass.
- **contained** (when R is compacted on the live cluster: etcd keeps no history that old, so the state at R cannot
  be read any more): every key the live cluster has now with a `create_revision` at or before R has existed, without
  a break, since before R — a snapshot at R must hold it. A missing one is an object the backup lost; the keys of the
  snapshot that the live cluster no longer has (deleted, or deleted and created again, since R) are counted, not
  failed: the cluster changed, the backup did not lose them.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from inventory.errors import KeelsonError

REGISTRY = "/registry/"  # the apiserver's default --etcd-prefix; every object is one key below it
COMPACTED = "required revision has been compacted"  # etcd's ErrCompacted, as etcdctl prints it


class KeysUnreadable(KeelsonError):
    """`etcdctl get -w json` printed something that is not its JSON answer."""


@dataclass(frozen=True)
class RegistryKeys:
    revision: int  # the header's: the store's revision when it answered (with --rev, still the current one)
    created: dict[str, int] = field(default_factory=dict)  # key -> create_revision

    @property
    def total(self) -> int:
        return len(self.created)

    def kinds(self) -> dict[str, int]:
        return dict(sorted(Counter(kind_of(k) for k in self.created).items()))


def get_keys_args(revision: int | None = None) -> list[str]:
    """etcdctl's arguments: every key under /registry/ (no values), as JSON; `revision`: the store as it was then."""
    rev = [f"--rev={revision}"] if revision is not None else []
    return ["get", REGISTRY, "--prefix", "--keys-only", *rev, "-w", "json", "--command-timeout=60s"]


def parse_keys(stdout: str) -> RegistryKeys:
    """`etcdctl get PREFIX --prefix --keys-only -w json`: {"header": {"revision": N, …}, "kvs": [{"key": base64,
    "create_revision": N, …}, …], "count": N}; no "kvs" when nothing matched."""
    start = stdout.find("{")
    try:
        data: Any = json.loads(stdout[start : stdout.rfind("}") + 1]) if start >= 0 else None
        revision = int(data["header"]["revision"])
        created = {}
        for kv in data.get("kvs") or []:
            created[base64.b64decode(kv["key"], validate=True).decode()] = int(kv.get("create_revision", 0))
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError):
        raise KeysUnreadable(f"unreadable `etcdctl get -w json` output: {stdout.strip()[:200]!r}") from None
    count = data.get("count")
    if count is not None and int(count) != len(created):  # a limit, or a truncated answer: never count part of it
        raise KeysUnreadable(f"etcd counted {count} keys but listed {len(created)}")
    return RegistryKeys(revision, created)


def compacted(stderr: str) -> bool:
    return COMPACTED in stderr


def kind_of(key: str) -> str:
    """The resource a key stores: one segment for the built-in ones (`/registry/pods/ns/name` → pods), two when the
    first names an API group, with a dot (`/registry/apiregistration.k8s.io/apiservices/…` → …/apiservices)."""
    parts = key.removeprefix(REGISTRY).split("/")
    if len(parts) > 1 and "." in parts[0]:
        return f"{parts[0]}/{parts[1]}"
    return parts[0]


@dataclass(frozen=True)
class Comparison:
    ok: bool
    how: str  # exact | contained
    detail: str
    figures: dict[str, Any] = field(default_factory=dict)


def _kind_differences(restored: dict[str, int], live: dict[str, int], most: int = 5) -> str:
    diffs = sorted(
        ((k, restored.get(k, 0), live.get(k, 0)) for k in restored.keys() | live.keys()),
        key=lambda d: (-abs(d[1] - d[2]), d[0]),
    )
    shown = [f"{k} {r} restored, {lv} live" for k, r, lv in diffs if r != lv][:most]
    return "; ".join(shown)


def _revision_problem(restored: RegistryKeys, revision: int) -> str:
    if restored.revision == revision:
        return ""
    return f"the restored etcd is at revision {restored.revision}, the snapshot says {revision}"


def exact(restored: RegistryKeys, live: RegistryKeys, revision: int) -> Comparison:
    """The restore against the live cluster read at `revision`: equal per kind (so in total) passes."""
    figures = {"objects": restored.total, "live_objects": live.total, "kinds": len(restored.kinds())}
    if problem := _revision_problem(restored, revision):
        return Comparison(False, "exact", problem, figures)
    mine, theirs = restored.kinds(), live.kinds()
    if mine == theirs:
        detail = (
            f"{restored.total} objects under {REGISTRY} restored = {live.total} live at revision {revision} "
            f"({len(mine)} kinds)"
        )
        return Comparison(True, "exact", detail, figures)
    detail = (
        f"the restore holds {restored.total} objects under {REGISTRY}, the live cluster held {live.total} at revision "
        f"{revision}: {_kind_differences(mine, theirs)}"
    )
    return Comparison(False, "exact", detail, figures)


def contained(restored: RegistryKeys, live_now: RegistryKeys, revision: int) -> Comparison:
    """Revision `revision` compacted on the live cluster: every live key created at or before it must be restored."""
    older = {k for k, created in live_now.created.items() if created <= revision}
    missing = sorted(older - restored.created.keys())
    gone = restored.total - (len(older) - len(missing))
    figures = {
        "objects": restored.total,
        "live_objects": live_now.total,
        "live_created_by_revision": len(older),
        "gone_since": gone,
        "kinds": len(restored.kinds()),
    }
    if problem := _revision_problem(restored, revision):
        return Comparison(False, "contained", problem, figures)
    head = f"revision {revision} is compacted on the live cluster (its state then can no longer be read)"
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        detail = (
            f"{head}: {len(missing)} of the {len(older)} live objects created at or before it are not in the "
            f"restore — lost by the backup, unless the cluster was restored from an older snapshot since: {shown}"
        )
        return Comparison(False, "contained", detail, figures)
    detail = (
        f"{head}; compared by containment: all {len(older)} live objects created at or before it are among the "
        f"{restored.total} restored ({gone} of those deleted or re-created since)"
    )
    return Comparison(True, "contained", detail, figures)
