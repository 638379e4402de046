"""`HostShell` over the engine's connections: the backup commands use the same strict-host-key SSH as every role."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from backups.remote import HostShell, Outcome
from inventory.model import Cluster, Host
from roles.engine.errors import EngineError
from roles.engine.transport import ConnectionPool, Transport


@dataclass
class TransportShell:
    transport: Transport
    host_name: str

    @property
    def name(self) -> str:
        return self.host_name

    def sh(self, script: str, *, timeout: float = 120.0) -> Outcome:
        result = self.transport.run(script, timeout=timeout)
        return Outcome(result.rc, result.stdout, result.stderr)

    def upload(self, local: Path, remote: str, *, mode: int = 0o600) -> None:
        self.transport.put(remote, local.read_bytes(), mode)


def shells(pool: ConnectionPool, hosts: list[Host]) -> list[HostShell]:
    return [TransportShell(pool.get(h), h.name) for h in hosts]


def reachable_shells(pool: ConnectionPool, hosts: list[Host]) -> tuple[list[HostShell], dict[str, str]]:
    """Connect to each host; the unreachable ones are returned with their error instead of failing everything."""

    def connect(host: Host) -> HostShell | str:
        try:
            return TransportShell(pool.get(host), host.name)
        except EngineError as exc:
            return exc.message

    with ThreadPoolExecutor(max_workers=max(1, len(hosts))) as workers:
        results = list(workers.map(connect, hosts))
    ok = [r for r in results if not isinstance(r, str)]
    down = {h.name: r for h, r in zip(hosts, results, strict=True) if isinstance(r, str)}
    return ok, down


@contextlib.contextmanager
def member_shells(cluster: Cluster) -> Iterator[list[HostShell]]:
    """Connections to every etcd member (all of them must answer), closed on exit."""
    pool = ConnectionPool(cluster)
    try:
        yield shells(pool, cluster.etcd_members)
    finally:
        pool.close()
