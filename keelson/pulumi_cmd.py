"""`keelson pulumi …` and `keelson pulumi-env`: the Pulumi CLI keelson built, with keelson's environment (its
language host and Kubernetes provider first on PATH, no update check, no plugin downloads). Thin: the logic is in
provision.artifacts.pulumi_tools."""

from __future__ import annotations

import os

import typer

PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


def pulumi(ctx: typer.Context) -> None:
    """Run the built `pulumi` with keelson's environment, e.g. `keelson pulumi up --stack dev` (every argument goes
    to pulumi; `keelson pulumi --help` is pulumi's help)."""
    from provision.artifacts.pulumi_tools.build import require
    from provision.artifacts.pulumi_tools.catalog import PULUMI
    from provision.artifacts.pulumi_tools.environ import pulumi_env

    toolset = require(PULUMI)
    os.execve(toolset.pulumi, ["pulumi", *ctx.args], pulumi_env(toolset))  # noqa: S606 (argv list, no shell)


def pulumi_env() -> None:
    """Print the shell lines that give this shell keelson's Pulumi environment: eval "$(keelson pulumi-env)"."""
    from provision.artifacts.pulumi_tools.build import require
    from provision.artifacts.pulumi_tools.catalog import PULUMI
    from provision.artifacts.pulumi_tools.environ import pulumi_env as make_env
    from provision.artifacts.pulumi_tools.environ import shell_exports

    typer.echo(shell_exports(make_env(require(PULUMI))), nl=False)
