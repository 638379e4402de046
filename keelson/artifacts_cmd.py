"""`keelson artifacts …`: build, list and verify the Kubernetes artifact sets and (`--pulumi`) the Pulumi engine's
toolset. Thin: the logic is in provision.artifacts."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

app = typer.Typer(help="Kubernetes binaries and images, built from their Go modules.", no_args_is_help=True)

VersionOpt = Annotated[
    str | None, typer.Option("--kubernetes", help="Kubernetes version, e.g. v1.37.2 (default: keelson's default)")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the result as one JSON object")]
PulumiOpt = Annotated[
    bool,
    typer.Option("--pulumi", help="the Pulumi engine instead: CLI and Python language host"),
]


def _release(version: str | None):  # type: ignore[no-untyped-def]
    from provision.artifacts.catalog import DEFAULT_KUBERNETES, release

    return release(version or DEFAULT_KUBERNETES)


def _describe(found) -> dict[str, object]:  # type: ignore[no-untyped-def]
    m = found.manifest
    return {
        "kubernetes": m.kubernetes,
        "key": m.key,
        "path": str(found.path),
        "mib": round(m.total_bytes / 2**20, 1),
        "versions": m.versions,
        "images": [{"name": i.name, "digest": i.digest} for i in m.images],
        "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in m.files],
    }


def _describe_toolset(found) -> dict[str, object]:  # type: ignore[no-untyped-def]
    m = found.manifest
    return {
        "pulumi": m.versions.get("pulumi"),
        "key": m.key,
        "path": str(found.path),
        "bin": str(found.bin),
        "mib": round(m.total_bytes / 2**20, 1),
        "versions": m.versions,
        "build_seconds": m.build_seconds,
        "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in m.files],
    }


def _build_pulumi(as_json: bool, engine_only: bool) -> None:
    import time

    from keelson.render import StepProgress
    from provision.artifacts.pulumi_tools.build import build as run_build
    from provision.artifacts.pulumi_tools.catalog import PULUMI, PULUMI_ENGINE_ONLY

    started = time.monotonic()
    with StepProgress(quiet=as_json) as progress:
        found = run_build(PULUMI_ENGINE_ONLY if engine_only else PULUMI, progress)
    seconds = round(time.monotonic() - started, 2)
    if as_json:
        typer.echo(json.dumps({**_describe_toolset(found), "seconds": seconds}))
        return
    typer.echo(f"Pulumi toolset {found.key}: {found.manifest.total_bytes / 2**20:.0f} MiB in {seconds} s", err=True)
    typer.echo(str(found.bin))


@app.command()
def build(
    version: VersionOpt = None,
    pulumi: PulumiOpt = False,
    engine_only: Annotated[
        bool,
        typer.Option(
            "--without-kubernetes-provider",
            help="with --pulumi: the engine without the Kubernetes provider plugin (the longest Go build), for stacks "
            "that install no addons",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Build the artifact set of a Kubernetes version, or with --pulumi the Pulumi engine (cached: a warm run does
    nothing) and print where it is."""
    import time

    if engine_only and not pulumi:
        raise typer.BadParameter(
            "--without-kubernetes-provider goes with --pulumi", param_hint="--without-kubernetes-provider"
        )
    if pulumi:
        _build_pulumi(as_json, engine_only)
        return

    from keelson.render import StepProgress
    from provision.artifacts.build import build as run_build

    release = _release(version)
    started = time.monotonic()
    with StepProgress(quiet=as_json) as progress:
        found = run_build(release, progress)
    seconds = round(time.monotonic() - started, 2)
    if as_json:
        typer.echo(json.dumps({**_describe(found), "seconds": seconds}))
        return
    typer.echo(f"artifact set {found.key}: {found.manifest.total_bytes / 2**20:.0f} MiB in {seconds} s", err=True)
    typer.echo(str(found.path))


@app.command("list")
def list_sets(as_json: JsonOpt = False) -> None:
    """The artifact sets and Pulumi toolsets in the cache: version, size, path; with --json every file's size and
    sha256."""
    from provision.artifacts.pulumi_tools.build import all_toolsets
    from provision.artifacts.sets import all_sets

    sets = all_sets()
    toolsets = all_toolsets()
    if as_json:
        pulumi = [_describe_toolset(t) for t in toolsets]
        typer.echo(json.dumps({"sets": [_describe(s) for s in sets], "pulumi": pulumi}))
        return
    if not sets and not toolsets:
        typer.echo("no artifact sets built yet: keelson artifacts build [--pulumi]", err=True)
        return
    from rich.console import Console
    from rich.table import Table

    for found in sets:
        table = Table(title=f"{found.key}  ({found.path})", title_justify="left")
        for column in ("file", "MiB", "sha256"):
            table.add_column(column)
        for f in found.manifest.files:
            table.add_row(f.path, f"{f.size / 2**20:.1f}", f.sha256)
        Console(highlight=False).print(table)
    for toolset in toolsets:
        table = Table(title=f"Pulumi {toolset.key}  ({toolset.path})", title_justify="left")
        for column in ("file", "version", "MiB", "sha256"):
            table.add_column(column)
        for f in toolset.manifest.files:
            name = f.path.rpartition("/")[2]
            table.add_row(f.path, toolset.manifest.versions.get(name, ""), f"{f.size / 2**20:.1f}", f.sha256)
        Console(highlight=False).print(table)


@app.command()
def verify(version: VersionOpt = None, pulumi: PulumiOpt = False, as_json: JsonOpt = False) -> None:
    """Check the set of a version (or with --pulumi the Pulumi toolset) against its manifest (every file's size and
    sha256). Exit 1 if it does not match or is not built."""
    from inventory.errors import KeelsonError

    if pulumi:
        from provision.artifacts.pulumi_tools import build as pulumi_build
        from provision.artifacts.pulumi_tools.catalog import PULUMI

        checked_toolset = pulumi_build.verify(pulumi_build.require(PULUMI))
        if as_json:
            typer.echo(json.dumps({"valid": True, "key": checked_toolset.key, "files": len(checked_toolset.files)}))
        else:
            print(f"{checked_toolset.key}: {len(checked_toolset.files)} files match the manifest", file=sys.stderr)
        return
    from provision.artifacts import manifest
    from provision.artifacts.build import find

    release = _release(version)
    found = find(release)
    if found is None:
        raise KeelsonError(
            f"no artifact set for Kubernetes {release.kubernetes} with the current recipes",
            hint=f"keelson artifacts build --kubernetes {release.kubernetes}",
        )
    checked = manifest.verify(found.path)
    if as_json:
        typer.echo(json.dumps({"valid": True, "key": checked.key, "files": len(checked.files)}))
    else:
        print(f"{checked.key}: {len(checked.files)} files match the manifest", file=sys.stderr)


@app.command()
def pin(version: VersionOpt = None, pulumi: PulumiOpt = False) -> None:
    """(maintainers) Write the Go recipes of a catalogued release (or with --pulumi the Pulumi engine's) into this
    checkout: go.mod, go.sum, our mains."""
    if pulumi:
        from provision.artifacts.pulumi_tools.catalog import PULUMI
        from provision.artifacts.pulumi_tools.pin import pin as pin_pulumi

        for path in pin_pulumi(PULUMI):
            typer.echo(str(path))
        return
    if version is None:
        from inventory.errors import KeelsonError

        raise KeelsonError("which release? --kubernetes vX.Y.Z, or --pulumi")
    from provision.artifacts.pin import pin as run_pin

    for path in run_pin(_release(version)):
        typer.echo(str(path))
