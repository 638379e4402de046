"""A stand-in for the engine's ConnectionPool in runner tests: the transports of the test's own fake hosts."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from inventory.model import Cluster, Host
from roles.engine import runner as runner_module
from roles.engine.transport import ConnectionPool, Transport


class FakePool:
    transports: ClassVar[dict[str, Transport]] = {}

    def __init__(self, cluster: Cluster, **_: Any) -> None:
        self.cluster = cluster
        self.gathered: Any = None  # the runner sets it, as on the real pool
        self.facts_ahead: Any = None  # fact batches sent ahead (a test sets them)

    read_fact = ConnectionPool.read_fact  # the real logic: from the run's fact batch, else the fact's command
    read_facts = ConnectionPool.read_facts
    _from_batch = ConnectionPool._from_batch

    def get(self, host: Host) -> Transport:
        transport = self.transports[host.name]
        if isinstance(transport, Exception):  # a host the test makes unreachable: raised like a failed connect
            raise transport
        return transport

    def drop(self, host: Host) -> None:
        return None

    def listen(self, notice: Any) -> None:  # the fake hosts' keys are never trusted on first use
        return None

    def commands_run(self) -> dict[str, int]:
        return {name: t.commands_run for name, t in self.transports.items()}

    def close(self) -> None:
        return None


def use_fake_pool(monkeypatch: pytest.MonkeyPatch, transports: dict[str, Any]) -> None:
    """The runner connects to `transports` (by host name) instead of over SSH, for this test."""
    monkeypatch.setattr(FakePool, "transports", transports)
    monkeypatch.setattr(runner_module, "ConnectionPool", FakePool)
