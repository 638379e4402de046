"""`keelson exec`: an ad-hoc command on many hosts at once (roles/engine/adhoc.py does the work)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Annotated

import typer

from keelson.engine_cmd import Concurrency, Inventory, Json, Tofu

if TYPE_CHECKING:
    from rich.console import Console

    from roles.engine.events import Event

CONTEXT = {"allow_interspersed_args": False}  # everything after the command's first word is the command's own


class HostBlocks:
    """Each host's output as it finishes: a header (host, exit code, time), stdout, then stderr in red; or, with
    `prefix`, every line as `HOST: line` (stderr `HOST (stderr): line`) for grep."""

    def __init__(self, console: Console, prefix: bool) -> None:
        self.console = console
        self.prefix = prefix
        self.lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self.lock:
            self._show(event)

    def _show(self, event: Event) -> None:
        from rich.text import Text

        from roles.engine import adhoc
        from roles.engine import events as ev

        if isinstance(event, ev.HostWarning):
            self.console.print(Text(f"warning {event.host}: {event.message}", style="yellow"), soft_wrap=True)
        elif isinstance(event, adhoc.HostOutput):
            self._output(event)
        elif isinstance(event, ev.HostFailed):
            line = f"{event.host}: {event.error}" if self.prefix else f"── {event.host}: {event.error}"
            self.console.print(Text(line, style="bold red"), soft_wrap=True)
        elif isinstance(event, adhoc.ExecFinished):
            self.console.print(Text(event.summary, style="green" if event.ok else "bold red"), soft_wrap=True)

    def _output(self, event: object) -> None:
        from rich.text import Text

        from roles.engine import adhoc

        assert isinstance(event, adhoc.HostOutput)
        failed = event.status != adhoc.Status.OK
        if self.prefix:
            for stream, marker in ((event.stdout, ""), (event.stderr, " (stderr)")):
                for line in stream.splitlines():
                    self.console.print(Text(f"{event.host}{marker}: ", style="bold") + Text(line), soft_wrap=True)
            if failed:
                word = "timed out" if event.status == adhoc.Status.TIMEOUT else "failed"
                self.console.print(Text(f"{event.host}: {word}, exit {event.rc}", style="bold red"), soft_wrap=True)
            return
        what = "timed out, " if event.status == adhoc.Status.TIMEOUT else ""
        header = Text(f"── {event.host} ({what}exit {event.rc}, {event.seconds:.2f} s)", style="bold")
        if failed:
            header.stylize("red")
        self.console.print(header, soft_wrap=True)
        if event.stdout:
            self.console.print(Text(event.stdout.rstrip("\n")), soft_wrap=True)
        if event.stderr:
            self.console.print(Text(event.stderr.rstrip("\n"), style="red"), soft_wrap=True)


def exec_(
    inventory: Inventory,
    command: Annotated[
        list[str],
        typer.Argument(help="the command and its arguments (after --)", metavar="COMMAND...", show_default=False),
    ],
    hosts: Annotated[str | None, typer.Option("--hosts", help="comma-separated host names")] = None,
    role: Annotated[str | None, typer.Option("--role", help="master, worker, etcd or lb")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="seconds the command may run on each host")] = 60.0,
    prefix: Annotated[bool, typer.Option("--prefix", help="every output line as 'HOST: line'")] = False,
    concurrency: Concurrency = 32,
    as_json: Json = False,
    trust_on_first_use: Tofu = False,
) -> None:
    """Run one command on many hosts at once (all, --hosts or --role) as root, through keelson's SSH connections.

    The words after -- are the command's argv, each kept one word (quoted with shlex); for a pipeline or other
    shell syntax, run a shell: `keelson exec -i inv.yaml -- sh -c 'journalctl -u etcd | tail -3'`. Exits 1 when
    the command failed, timed out or could not run on any host.
    """
    from rich.console import Console

    from inventory.loader import load_inventory
    from roles.engine.adhoc import run_exec, select_hosts
    from roles.engine.events import JsonLines

    cluster = load_inventory(inventory)
    chosen = select_hosts(cluster, hosts, role)
    sink = JsonLines() if as_json else HostBlocks(Console(highlight=False), prefix)
    report = run_exec(
        cluster, chosen, command, timeout_s=timeout, concurrency=concurrency, trust_on_first_use=trust_on_first_use,
        events=sink,
    )  # fmt: skip
    if not report.ok:
        raise typer.Exit(1)
