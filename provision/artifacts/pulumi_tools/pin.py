"""Write the Pulumi engine's Go recipes into the source tree (a maintainer's tool: `keelson artifacts pin --pulumi`).

Each go.mod requires the upstream module(s) at the catalogued versions, keeps upstream's module-to-module `replace`
lines (a dependency's replaces do not apply to the module that requires it) but not its local ones (`../sdk`, which
the recipe satisfies by requiring the sibling module at the same version), records the targets as `tool`
directives, and `go mod tidy` writes go.sum. The language host's older dependencies are raised to the versions the
CLI builds with (published CVEs), as the Kubernetes recipes do for kube-router.
"""

from __future__ import annotations

import json
import re
import shutil
import stat
from pathlib import Path

from provision.artifacts.gotool import BuildError, run_go
from provision.artifacts.pin import _pin_env, _upstream_gomod
from provision.artifacts.pulumi_tools import catalog
from provision.artifacts.pulumi_tools.catalog import PulumiRelease
from provision.artifacts.pulumi_tools.recipes import (
    PROVIDER_CMD,
    PROVIDER_GENERATE_INPUTS,
    PROVIDER_GENERATED,
    SDK_SCRIPTS,
    cli,
    generic_version,
    kubernetes_provider,
    language_host,
)
from provision.artifacts.recipes import Recipe

# Libraries the 2023 language host pins below what the CLI builds with, each with published CVEs (HTTP/2 rapid
# reset in x/net and grpc, among others); Go's minimal version selection takes the higher one.
RAISED_FOR_HOST = (
    "golang.org/x/net",
    "golang.org/x/crypto",
    "golang.org/x/sys",
    "golang.org/x/text",
    "golang.org/x/oauth2",
    "google.golang.org/grpc",
    "google.golang.org/protobuf",
)


def module_dir(module: str, version: str, cwd: Path) -> Path:
    """Where the module's files are in Go's module cache (downloaded and checksummed if needed)."""
    info = json.loads(run_go(["mod", "download", "-json", f"{module}@{version}"], cwd=cwd, env=_pin_env()))
    if "Error" in info:
        raise BuildError(f"{module}@{version}: {info['Error']}")
    return Path(info["Dir"])


def _header(recipe: Recipe, upstream: str) -> list[str]:
    go_line = re.search(r"^go (\S+)$", upstream, re.M)
    lines = [f"module keelson.local/recipes/{recipe.component}", "", f"go {go_line.group(1) if go_line else '1.26'}"]
    return [*lines, "", *re.findall(r"^godebug .*$", upstream, re.M)]


def upstream_replaces(gomod: str, raised: tuple[str, ...] = ()) -> list[str]:
    """upstream's `replace A => B vX` lines (single or in a block), without the ones pointing at a local folder or
    holding a module the recipe raises (sdk v3.79.0 pins golang.org/x/text to v0.3.6, which has CVEs)."""
    found: list[str] = []
    for block in re.findall(r"^replace \(\n(.*?)^\)", gomod, re.M | re.S):
        found += [line.strip() for line in block.splitlines() if line.strip()]
    found += [m.strip() for m in re.findall(r"^replace ([^(\n].*)$", gomod, re.M)]
    local = [r for r in found if r.split("=>", 1)[1].strip().startswith((".", "/"))]
    held = [r for r in found if r.split()[0] in raised]
    return [r for r in found if r not in local and r not in held]


def _start(recipe: Recipe) -> Path:
    work = recipe.dir.with_name(recipe.dir.name + ".pinning")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return work


def _finish(recipe: Recipe, work: Path) -> Path:
    run_go(["mod", "tidy"], cwd=work, env=_pin_env())
    shutil.rmtree(recipe.dir, ignore_errors=True)
    work.rename(recipe.dir)
    return recipe.dir


def _write_gomod(work: Path, lines: list[str], replaces: list[str]) -> None:
    if replaces:
        lines = [*lines, "", "replace (", *(f"\t{r}" for r in replaces), ")"]
    (work / "go.mod").write_text("\n".join(lines) + "\n")


def _required(gomod: str, module: str) -> str | None:
    found = re.search(rf"^\s*(?:require\s+)?{re.escape(module)} (\S+)", gomod, re.M)
    return found.group(1) if found else None


def pin_cli(release: PulumiRelease) -> Path:
    recipe = cli(release)
    work = _start(recipe)
    upstream = _upstream_gomod(catalog.CLI_MODULE, release.cli, work)
    lines = [*_header(recipe, upstream), f"require {catalog.CLI_MODULE} {release.cli}"]
    lines.append(f"require {catalog.SDK_MODULE} {release.cli}")
    _write_gomod(work, lines, upstream_replaces(upstream))
    run_go(["get", "-tool", *(f"{t.package}@{release.cli}" for t in recipe.targets)], cwd=work, env=_pin_env())
    return _finish(recipe, work)


def pin_language_host(release: PulumiRelease) -> Path:
    recipe = language_host(release)
    work = _start(recipe)
    upstream = _upstream_gomod(catalog.SDK_MODULE, release.language_host, work)
    lines = [*_header(recipe, upstream), f"require {catalog.SDK_MODULE} {release.language_host}"]
    _write_gomod(work, lines, upstream_replaces(upstream, RAISED_FOR_HOST))
    tools = [f"{t.package}@{release.language_host}" for t in recipe.targets]
    run_go(["get", "-tool", *tools], cwd=work, env=_pin_env())
    cli_gomod = (cli(release).dir / "go.mod").read_text()
    raised = [f"{m}@{v}" for m in RAISED_FOR_HOST if (v := _required(cli_gomod, m)) is not None]
    if raised:
        run_go(["get", *raised], cwd=work, env=_pin_env())
    sdk = module_dir(catalog.SDK_MODULE, release.executor_version, work)
    for name, path in SDK_SCRIPTS.items():
        shutil.copyfile(sdk / path, work / name)
        (work / name).chmod(0o644)  # the build sets the mode of the copy it installs
    return _finish(recipe, work)


def _copy_readable(source: Path, dest: Path) -> None:
    shutil.copyfile(source, dest)
    dest.chmod(dest.stat().st_mode | stat.S_IWUSR)


def generate_provider_schema(recipe: Recipe, module: Path, source: Path, env: dict[str, str]) -> None:
    """Upstream's `VERSION=… go generate cmd/pulumi-resource-kubernetes/main.go` in a copy of the recipe: the module's
    generate.go reads its schema.json and terraform-mapping.json and writes the two files main.go embeds."""
    cmd = source / PROVIDER_CMD
    for name in PROVIDER_GENERATE_INPUTS:
        _copy_readable(module / PROVIDER_CMD / name, cmd / name)
    run_go(["run", "generate.go"], cwd=cmd, env={**env, "VERSION": generic_version(recipe.version)})
    missing = [name for name in PROVIDER_GENERATED if not (cmd / name).is_file()]
    if missing:
        raise BuildError(f"the provider's generate.go did not write {', '.join(missing)} in {cmd}")


def pin_kubernetes_provider(release: PulumiRelease) -> Path:
    recipe = kubernetes_provider(release)
    work = _start(recipe)
    module_version = release.kubernetes_provider_module
    upstream = _upstream_gomod(catalog.PROVIDER_MODULE, module_version, work)
    lines = [*_header(recipe, upstream), f"require {catalog.PROVIDER_MODULE} {module_version}"]
    lines.append(f"require {catalog.PROVIDER_SDK_MODULE} {release.kubernetes_provider}")  # upstream: ../sdk
    _write_gomod(work, lines, upstream_replaces(upstream))
    module = module_dir(catalog.PROVIDER_MODULE, module_version, work)
    (work / PROVIDER_CMD).mkdir(parents=True)
    _copy_readable(module / PROVIDER_CMD / "main.go", work / PROVIDER_CMD / "main.go")
    run_go(["get", f"{catalog.PROVIDER_MODULE}@{module_version}"], cwd=work, env=_pin_env())
    generate_provider_schema(recipe, module, work, _pin_env())  # tidy needs the embedded files to exist
    run_go(["mod", "tidy"], cwd=work, env=_pin_env())
    for name in (*PROVIDER_GENERATE_INPUTS, *PROVIDER_GENERATED):  # generated again by every build
        (work / PROVIDER_CMD / name).unlink()
    shutil.rmtree(recipe.dir, ignore_errors=True)
    work.rename(recipe.dir)
    return recipe.dir


def pin(release: PulumiRelease) -> list[Path]:
    """CLI first: the language host's raised dependencies are read from the CLI's go.mod."""
    return [pin_cli(release), pin_language_host(release), pin_kubernetes_provider(release)]
