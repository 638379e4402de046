"""One action on many hosts at once. Every host finishes; a host's KeelsonError is its result, not the others' end."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from inventory.errors import KeelsonError
from inventory.model import Host
from roles.engine.phase import HostOutcome

T = TypeVar("T")


def on_hosts(hosts: Sequence[Host], action: Callable[[Host], T], *, workers: int = 32) -> dict[str, T | KeelsonError]:
    """`action(host)` for every host, at most `workers` at a time: each host's result, or the KeelsonError it raised.
    Any other exception is a bug and is raised once every host has finished."""
    if not hosts:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(hosts)))) as pool:
        futures = {h.name: pool.submit(action, h) for h in hosts}
    out: dict[str, T | KeelsonError] = {}
    for name, future in futures.items():
        error = future.exception()
        if error is not None and not isinstance(error, KeelsonError):
            raise error
        out[name] = error if isinstance(error, KeelsonError) else future.result()
    return out


def each_host(
    hosts: Sequence[Host], action: Callable[[Host], HostOutcome], *, workers: int = 32
) -> dict[str, HostOutcome]:
    """A CustomPhase's per-host work: `action` on every host at once; a host that raised has a failed outcome."""
    return {
        name: HostOutcome(error=str(result)) if isinstance(result, KeelsonError) else result
        for name, result in on_hosts(hosts, action, workers=workers).items()
    }
