"""Logins started ahead (ConnectionPool.connect_ahead, which the CLI calls before it imports the roles): each host's
connection is made once, by the login started ahead; its error is the host's error where the run asks for it; a
host key trusted on first use is told to the run once it listens; a pool closed early closes what arrives later."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest

from inventory.loader import parse_inventory
from inventory.model import Cluster, Host
from roles.engine import transport as transport_module
from roles.engine.errors import HostUnreachable
from roles.engine.transport import ConnectionPool

LAB = (Path(__file__).parents[2] / "inventory" / "examples" / "lab.yaml").read_text()


class FakeSSH:
    """Stands for SSHTransport: a login that takes as long as the test says, may fail, may trust a new key."""

    made: ClassVar[list[str]] = []
    release = threading.Event()
    closed: ClassVar[list[str]] = []
    closing = threading.Condition()

    def __init__(self, host: Host, cluster: Cluster, *, notice: Any, **_: Any) -> None:
        FakeSSH.release.wait(10)
        FakeSSH.made.append(host.name)
        self.host, self.commands_run = host.name, 0
        if host.name == "w1":
            raise HostUnreachable(host.name, "cannot connect: refused")
        if host.name == "m2":
            notice(host.name, "trusted on first use")

    def close(self) -> None:
        with FakeSSH.closing:
            FakeSSH.closed.append(self.host)
            FakeSSH.closing.notify_all()


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> Cluster:
    monkeypatch.setattr(transport_module, "SSHTransport", FakeSSH)
    monkeypatch.setattr(ConnectionPool, "route", lambda self, host: None)
    FakeSSH.made, FakeSSH.closed = [], []
    FakeSSH.release.clear()
    return parse_inventory(LAB)


def test_each_host_is_logged_in_once_and_its_error_is_raised_where_it_is_asked_for(cluster: Cluster) -> None:
    pool = ConnectionPool(cluster)
    hosts = list(cluster.hosts)
    pool.connect_ahead(hosts, at_once=2)
    heard: list[tuple[str, str]] = []
    FakeSSH.release.set()
    for host in hosts:
        if host.name == "w1":
            with pytest.raises(HostUnreachable, match="refused"):
                pool.get(host)
        else:
            assert pool.get(host).host == host.name
    assert sorted(FakeSSH.made) == sorted(h.name for h in hosts)  # each login once, none again by `get`
    pool.listen(lambda host, message: heard.append((host, message)))
    assert heard == [("m2", "trusted on first use")]  # told once the run listens, not before
    pool.close()
    assert sorted(FakeSSH.closed) == sorted(h.name for h in hosts if h.name != "w1")


def test_a_pool_closed_before_the_logins_end_closes_them_when_they_do(cluster: Cluster) -> None:
    pool = ConnectionPool(cluster)
    hosts = [h for h in cluster.hosts if h.name != "w1"]
    pool.connect_ahead(hosts, at_once=len(hosts))
    pool.close()  # the run stopped (a bad --only) while every login waits
    FakeSSH.release.set()
    with FakeSSH.closing:
        FakeSSH.closing.wait_for(lambda: len(FakeSSH.closed) == len(hosts), timeout=10)
    assert sorted(FakeSSH.closed) == sorted(h.name for h in hosts)
