"""What a run reports as it goes: typed events to a sink (rich progress in the CLI, or JSON lines)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field, fields
from functools import cache
from typing import Any, TextIO


@cache
def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


@dataclass(frozen=True)
class Event:
    @property
    def kind(self) -> str:
        return _snake(type(self).__name__)

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON sees it. Its fields hold plain values (text, numbers, lists and dicts of them), so they
        go as they are: dataclasses.asdict deep-copied them for every event (a few per host per phase)."""
        return {"event": self.kind, **{f.name: getattr(self, f.name) for f in fields(self)}}


@dataclass(frozen=True)
class NotAppliedYet(Event):
    """Sections of the inventory the plan does not act on yet (their roles are not built): said once, first."""

    plan: str
    sections: list[str]


@dataclass(frozen=True)
class PlanNote(Event):
    """A line the plan says before its first phase (e.g. which verified snapshot a restore uses)."""

    plan: str
    message: str


@dataclass(frozen=True)
class PhaseStarted(Event):
    phase: str
    hosts: list[str]


@dataclass(frozen=True)
class HostPlanned(Event):
    phase: str
    host: str
    commands: list[str]  # as shown: redacted, file contents summarised


@dataclass(frozen=True)
class HostChanged(Event):
    phase: str
    host: str
    commands: int


@dataclass(frozen=True)
class HostOk(Event):
    phase: str
    host: str


@dataclass(frozen=True)
class HostFailed(Event):
    phase: str
    host: str
    error: str


@dataclass(frozen=True)
class HostWarning(Event):
    phase: str
    host: str
    message: str


@dataclass(frozen=True)
class PhaseFinished(Event):
    phase: str
    ok: int
    changed: int
    failed: int
    skipped: bool = False
    seconds: float = 0.0  # from the phase's start (its facts included) to its last host's outcome


@dataclass(frozen=True)
class RunFinished(Event):
    ok: bool
    dry_run: bool
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    ssh_commands: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    facts_ahead: list[str] = field(default_factory=list)  # hosts whose fact batch was sent before the plan


class JsonLines:
    """One JSON object per line, flushed at once (for machines reading the stream)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def __call__(self, event: Event) -> None:
        self.stream.write(json.dumps(event.to_dict(), default=str) + "\n")
        self.stream.flush()
