"""Show a run to a person (rich: live per-host status of the current phase, then a summary) or to a machine."""

from __future__ import annotations

import threading
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from roles.engine import events as ev

STYLE = {"ok": "green", "changed": "yellow", "failed": "bold red", "running": "cyan", "planned": "yellow"}


class RichProgress:
    """A live table of the hosts of the phase that is running; a line per finished phase; errors in full."""

    def __init__(self, console: Console, dry_run: bool) -> None:
        self.console = console
        self.dry_run = dry_run
        self.state: dict[str, str] = {}
        self.phase = ""
        self.live: Live | None = None
        self.lock = threading.Lock()  # events come from the runner's worker threads

    def _table(self) -> Table:
        table = Table(title=self.phase, show_header=False, box=None, padding=(0, 1))
        for host, status in self.state.items():
            table.add_row(host, Text(status, style=STYLE.get(status, "")))
        return table

    def __call__(self, event: ev.Event) -> None:
        with self.lock:
            self._handle(event)

    def _handle(self, event: ev.Event) -> None:
        if isinstance(event, ev.NotAppliedYet):
            line = f"not applied yet by this version: {', '.join(event.sections)}"
            self.console.print(Text(line, style="yellow"), soft_wrap=True)
        elif isinstance(event, ev.PlanNote):
            self.console.print(event.message, soft_wrap=True)
        elif isinstance(event, ev.PhaseStarted):
            self.phase = event.phase
            self.state = dict.fromkeys(event.hosts, "running")
            if self.console.is_terminal:
                self.live = Live(self._table(), console=self.console, transient=True, refresh_per_second=10)
                self.live.start()
        elif isinstance(event, ev.HostOk | ev.HostChanged | ev.HostFailed):
            status = (
                "ok"
                if isinstance(event, ev.HostOk)
                else "failed"
                if isinstance(event, ev.HostFailed)
                else ("planned" if self.dry_run else "changed")
            )
            self.state[event.host] = status
            if self.live:
                self.live.update(self._table())
        elif isinstance(event, ev.HostWarning):
            self.console.print(Text(f"  warning {event.host}: {event.message}", style="yellow"))
        elif isinstance(event, ev.HostPlanned) and self.dry_run:
            block = Text(f"  {event.host}  [{event.phase}]\n", style="bold")
            for command in event.commands:
                block.append("    " + command.replace("\n", "\n    ") + "\n", style="")
            self.console.print(block, end="", soft_wrap=True)
        elif isinstance(event, ev.PhaseFinished):
            if self.live:
                self.live.stop()
                self.live = None
            self._phase_line(event)
        elif isinstance(event, ev.RunFinished):
            self._summary(event)

    def _phase_line(self, event: ev.PhaseFinished) -> None:
        if event.skipped:
            self.console.print(Text(f"· {event.phase}: no hosts", style="dim"))
            return
        word = "would change" if self.dry_run else "changed"
        line = Text(f"{'✗' if event.failed else '✓'} {event.phase}: ")
        line.append(f"{event.ok} ok", style="green")
        line.append(f", {event.changed} {word}", style="yellow" if event.changed else "")
        if event.failed:
            line.append(f", {event.failed} failed", style="bold red")
        line.append(f" ({event.seconds:.1f} s)", style="dim")
        self.console.print(line)

    def _summary(self, event: ev.RunFinished) -> None:
        table = Table("host", "ok", "changed" if not self.dry_run else "would change", "failed", "ssh commands")
        for host, counts in sorted(event.hosts.items()):
            table.add_row(
                host,
                str(counts["ok"]),
                str(counts["changed"]),
                str(counts["failed"]),
                str(event.ssh_commands.get(host, 0)),
            )
        self.console.print(table)
        for host, counts in sorted(event.hosts.items()):
            for error in counts["errors"]:
                self.console.print(Text(f"{host}: {error}", style="red"))
        if self.dry_run and not any(c["changed"] for c in event.hosts.values()) and event.ok:
            self.console.print("no changes: every host already matches the inventory")
        verdict = "ok" if event.ok else "FAILED"
        self.console.print(Text(f"{verdict} in {event.seconds:.2f} s", style="green" if event.ok else "bold red"))


class StepProgress:
    """Progress of a long build, step by step: a spinner and the elapsed time of the running step (a terminal), or
    one line when each step starts and ends (logs). On stderr; `quiet` shows nothing."""

    def __init__(self, quiet: bool = False) -> None:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=True, highlight=False)
        self.quiet = quiet
        self.progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=self.console
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> StepProgress:
        if not self.quiet and self.console.is_terminal:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress.live.is_started:
            self.progress.stop()

    def __call__(self, event: Any) -> None:
        if self.quiet:
            return
        live = self.progress.live.is_started
        if not event.finished:
            if live:
                self.tasks[event.title] = self.progress.add_task(event.title, total=None)
            else:
                self.console.print(f"… {event.title}")
            return
        line = Text(f"✓ {event.title} ", style="green")
        line.append(f"({event.seconds:.1f} s)", style="dim")
        if live and event.title in self.tasks:
            self.progress.remove_task(self.tasks.pop(event.title))
            self.progress.console.print(line)
        else:
            self.console.print(line)
