"""`keelson` entry point. Sub-command groups live in their own modules and import heavy packages lazily."""

from __future__ import annotations

import gc
import sys
from collections.abc import Sequence
from typing import Any

import typer

from inventory.errors import KeelsonError
from keelson import (
    __version__,
    artifacts_cmd,
    backup_cmd,
    bench_cmd,
    certs_cmd,
    cluster_cmd,
    codecache,
    engine_cmd,
    exec_cmd,
    inventory_cmd,
    lab_cmd,
    lifecycle_cmd,
    pulumi_cmd,
    upgrade_cmd,
)

SETTINGS: dict[str, Any] = {
    "name": "keelson",
    "help": "Provision machines and bootstrap a highly available Kubernetes cluster on them, then keep it alive.",
    "no_args_is_help": True,
    "pretty_exceptions_enable": False,
    "add_completion": False,
}
app = typer.Typer(**SETTINGS)
app.add_typer(inventory_cmd.app, name="inventory")
app.add_typer(lab_cmd.app, name="lab")
app.add_typer(bench_cmd.app, name="bench")
app.add_typer(backup_cmd.app, name="backup")
app.add_typer(artifacts_cmd.app, name="artifacts")
app.add_typer(certs_cmd.app, name="certs")
app.command("restore")(backup_cmd.restore)
app.command("plan")(engine_cmd.plan)
app.command("apply")(engine_cmd.apply)
app.command("exec", context_settings=exec_cmd.CONTEXT)(exec_cmd.exec_)
app.command("join")(lifecycle_cmd.join)
app.command("remove")(lifecycle_cmd.remove)
app.command("reset")(lifecycle_cmd.reset)
app.command("verify")(lifecycle_cmd.verify)
app.command("upgrade")(upgrade_cmd.upgrade)
app.command("kubeconfig")(cluster_cmd.kubeconfig)
app.command("status")(cluster_cmd.status)
app.command("pulumi", context_settings=pulumi_cmd.PASS_THROUGH)(pulumi_cmd.pulumi)
app.command("pulumi-env")(pulumi_cmd.pulumi_env)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"keelson {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """keelson: HA Kubernetes on your machines, from one inventory."""


# The commands run most, each built alone when it is the one called: typer makes click's command of every command
# and option of the app before it parses anything (~25 ms of CPU on every run). Help, usage and errors are the same
# (click names a command by the path it was called with).
ALONE = {"plan": engine_cmd.plan, "apply": engine_cmd.apply}


def _app_for(args: Sequence[str]) -> typer.Typer:
    if not args or args[0] not in ALONE:
        return app
    alone = typer.Typer(**SETTINGS)
    alone.callback()(_root)
    alone.command(args[0])(ALONE[args[0]])
    return alone


def _skip_unused_imports() -> None:
    """Modules a dependency imports that no keelson command uses, kept out of this process.

    paramiko.config imports invoke, for ssh_config's `Match exec` (keelson never reads an ssh_config), and invoke
    pulls in unittest.mock and asyncio: about 60 ms of CPU on every command that connects to hosts. A `None` in
    sys.modules makes that import fail the way paramiko already handles (invoke not installed)."""
    sys.modules.setdefault("invoke", None)  # type: ignore[arg-type]


def main() -> None:
    """Console-script entry: user errors become a message and a non-zero exit, never a traceback."""
    _skip_unused_imports()
    codecache.install()  # the dataclasses every command imports, compiled once (keelson/codecache.py)
    if sys.argv[1:2] and sys.argv[1] in ALONE:
        # No cyclic garbage collection while plan/apply import and build (engine_cmd._run turns it back on, after
        # gc.freeze): start-up allocates ~all the process keeps, and the collector walked it — 130 young and one
        # full collection per no-op, 55-120 ms of CPU (replayed no-op), for almost nothing to free.
        gc.disable()
    try:
        code = _app_for(sys.argv[1:])(standalone_mode=False)  # click returns a typer.Exit's code, not exiting
        if isinstance(code, int) and code != 0:
            sys.exit(code)
    except KeelsonError as exc:
        from rich.console import Console
        from rich.text import Text

        Console(stderr=True, highlight=False, soft_wrap=True).print(Text("error: ", style="bold red") + Text(str(exc)))
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        # Usage errors (unknown command, missing argument) come through here in non-standalone mode. typer vendors
        # its own click (typer._click), so they are not click.ClickException: recognise them by their interface.
        show, exit_code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(exit_code, int):
            show()
            sys.exit(exit_code)
        raise


if __name__ == "__main__":
    main()
