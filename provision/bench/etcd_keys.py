"""Data in a live etcd on lab hosts, written and read on the members themselves (shell commands to run there).

`put_keys_script` writes keys in `etcdctl txn` batches; `digest_script` prints a member's count and sha256 of every
key and value under a prefix; `get_script` prints them all, `Keyspace.parse` reads that, and `keys_lost` is the pure
comparison the etcd bench reports.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

TXN_BATCHES = r"""
import os, sys
prefix, start, count, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
os.makedirs(out, exist_ok=True)
for n, first in enumerate(range(start, start + count, 100)):
    puts = "".join(f"put {prefix}{i:06d} value-{i}\n" for i in range(first, min(first + 100, start + count)))
    with open(f"{out}/{n:05d}", "w") as f:
        f.write("\n" + puts + "\n\n")
"""


def etcdctl_on(address: str, *args: str) -> str:
    """etcdctl against ONE member with the health-check client certificate (the etcd role's builder)."""
    from roles.etcd import commands

    return commands.etcdctl(list(args), endpoints=f"https://{address}:2379", tls=commands.HEALTHCHECK_TLS)


def put_keys_script(prefix: str, start: int, count: int, address: str) -> str:
    """A shell command that writes `count` keys `<prefix>NNNNNN` = `value-N` in `etcdctl txn` batches of 100
    (etcd's default --max-txn-ops is 128): seconds for 10 000 keys, where one `etcdctl put` each takes minutes."""
    txn = etcdctl_on(address, "txn")
    out = "/tmp/.bk-txn"
    return (
        f"set -e; rm -rf {out}; python3 - {prefix} {start} {count} {out} <<'PY'\n{TXN_BATCHES}\nPY\n"
        f'for f in {out}/*; do {txn} < "$f" > /dev/null; done; rm -rf {out}; echo ok'
    )


def digest_script(address: str, prefix: str) -> str:
    """Prints `<number of keys> <sha256 of every key and value>` as served by THIS member (serializable read)."""
    get = etcdctl_on(address, "get", prefix, "--prefix", "--consistency=s")
    out = "/tmp/.bk-digest"
    return f"set -o pipefail; {get} > {out} && echo $(( $(wc -l < {out}) / 2 )) $(sha256sum < {out} | cut -c1-64)"


def get_script(address: str, prefix: str) -> str:
    """Prints every key under `prefix` and its value as served by THIS member (serializable read): a key line, then
    its value line (etcdctl's simple output)."""
    return etcdctl_on(address, "get", prefix, "--prefix", "--consistency=s")


@dataclass(frozen=True)
class Keyspace:
    """What one member serves under a prefix: every key and its value."""

    values: Mapping[str, str]

    @classmethod
    def parse(cls, output: str) -> Keyspace:
        """`get_script`'s output: key and value lines in turn (a trailing odd line is ignored)."""
        lines = output.splitlines()
        return cls(dict(zip(lines[0::2], lines[1::2], strict=False)))

    @property
    def digest(self) -> str:
        """sha256 over every key and value, in key order."""
        h = hashlib.sha256()
        for key in sorted(self.values):
            h.update(f"{len(key)}:{key}{len(self.values[key])}:{self.values[key]}".encode())
        return h.hexdigest()


def keys_off(snapshot: Keyspace, member: Keyspace) -> int:
    """Keys whose state on the member is not the snapshot's: missing, holding another value, or not in it at all."""
    want, have = snapshot.values, member.values
    return sum(1 for k, v in want.items() if have.get(k) != v) + sum(1 for k in have if k not in want)


def keys_lost(snapshot: Keyspace, members: Mapping[str, Keyspace]) -> int:
    """The etcd bench's `keys_lost`: on the worst member, how many keys differ from the snapshot (missing, changed,
    or written after it and still there). 0 only when every member serves exactly the snapshot's keyspace, which is
    when every member's digest equals the snapshot's."""
    if not members:
        raise ValueError("keys_lost: no member to compare with the snapshot")
    return max(keys_off(snapshot, m) for m in members.values())
