"""Handlers that survive an interrupted run.

A handler (reload haproxy, restart containerd) runs at the end of a phase because a step changed a file. If the run
dies between the write and the handler (connection lost, a later command failed), the next run finds the file
already right and would never run the handler: the service would keep its old config. So before a phase's commands
write anything, the host records which handlers are now due (a marker file each); a handler's commands end by
removing its marker; and a phase runs every handler whose marker it finds, changed file or not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from roles.engine.command import Command
from roles.engine.facts import Fact

# A trusted constant, used unquoted in shell (tests point it at a folder of their own).
PENDING_DIR = "/var/lib/keelson/pending-handlers"


def marker(phase_slug: str, handler_name: str) -> str:
    """The marker file's name for a phase's handler: `load-balancer--reload-haproxy`."""
    return f"{phase_slug}--{re.sub(r'[^a-z0-9]+', '-', handler_name.lower()).strip('-')}"


@dataclass(frozen=True)
class PendingHandlers(Fact[frozenset[str]]):
    """The markers of handlers a previous run made due and did not finish."""

    @property
    def key(self) -> str:
        return "pending-handlers"

    def command(self) -> str:
        return f"ls -1 {PENDING_DIR} 2>/dev/null || true"

    def parse(self, stdout: str, rc: int) -> frozenset[str]:
        return frozenset(line.strip() for line in stdout.splitlines() if re.fullmatch(r"[a-z0-9-]+", line.strip()))


def mark(markers: list[str]) -> Command:
    paths = " ".join(f"{PENDING_DIR}/{m}" for m in markers)
    return Command(f"mkdir -p {PENDING_DIR} && touch {paths}", description=f"note on the host: due {markers}")


def clear(marker_name: str) -> Command:
    return Command(f"rm -f {PENDING_DIR}/{marker_name}")
