"""Build the Pulumi toolset: its Go parts (cached like the Kubernetes parts), then one folder whose bin/ goes first on
PATH for `pulumi` runs.

    <cache>/artifacts/pulumi/<cli>-<hash>/bin/pulumi                        the CLI
                                         /bin/pulumi-language-python        the Python language host
                                         /bin/pulumi-language-python-exec   its executor (Python)
                                         /manifest.json, SHA256SUMS        written last
    <cache>/artifacts/pulumi/<cli>+kubernetes-<hash>/…                      the same and
                                         /bin/pulumi-resource-kubernetes    the Kubernetes provider plugin

The provider is in the default toolset (`+kubernetes`): the stack installs the addons through it. It is the longest Go
build of all; `keelson artifacts build --pulumi --without-kubernetes-provider` builds the engine alone. The key
hashes the recipes' digests (recipe files, targets, flags, Go version) and the release: a warm run reads one file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from inventory.errors import KeelsonError
from provision.artifacts.build import Reporter, timed_step
from provision.artifacts.cache import artifacts_root, build_lock
from provision.artifacts.gotool import go_env, go_version, modules_prefetched
from provision.artifacts.manifest import FileEntry, sha256_file
from provision.artifacts.parts import Part, go_build, go_part, produce
from provision.artifacts.pulumi_tools.catalog import PROVIDER_MODULE, PulumiRelease
from provision.artifacts.pulumi_tools.pin import generate_provider_schema, module_dir
from provision.artifacts.pulumi_tools.recipes import (
    DYNAMIC_PROVIDER,
    EXECUTOR,
    SDK_SCRIPTS,
    cli,
    kubernetes_provider,
    language_host,
    recipes_for,
)

TOOLSET_FORMAT = "1"  # bump when the toolset's layout changes without a recipe change
GENERATE_FORMAT = "1"  # bump when the provider's schema generation changes
MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"


class ToolsetInvalid(KeelsonError):
    """A Pulumi toolset does not match its manifest, or is not built."""


@dataclass
class ToolsetManifest:
    key: str
    go: str
    versions: dict[str, str]
    files: list[FileEntry] = field(default_factory=list)
    build_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True) + "\n"

    @classmethod
    def load(cls, folder: Path) -> ToolsetManifest:
        path = folder / MANIFEST
        try:
            data = json.loads(path.read_text())
            files = [FileEntry(**f) for f in data.pop("files")]
            return cls(**data, files=files)
        except FileNotFoundError:
            raise ToolsetInvalid(f"{folder} has no {MANIFEST}: an incomplete Pulumi toolset") from None
        except (ValueError, TypeError, KeyError) as exc:
            raise ToolsetInvalid(f"{path} is not a keelson Pulumi toolset manifest: {exc}") from exc


@dataclass(frozen=True)
class Toolset:
    path: Path
    manifest: ToolsetManifest

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    @property
    def key(self) -> str:
        return self.manifest.key

    @property
    def pulumi(self) -> Path:
        return self.bin / "pulumi"


def toolsets_root() -> Path:
    return artifacts_root() / "pulumi"


def toolset_key(release: PulumiRelease) -> str:
    h = hashlib.sha256(f"{TOOLSET_FORMAT}/{GENERATE_FORMAT}".encode())
    go = go_version()
    for recipe in recipes_for(release):
        h.update(recipe.digest(go).encode())
    h.update(repr(release).encode())
    return f"{release.name}-{h.hexdigest()[:12]}"


def find(release: PulumiRelease) -> Toolset | None:
    path = toolsets_root() / toolset_key(release)
    if not (path / MANIFEST).exists():
        return None
    return Toolset(path, ToolsetManifest.load(path))


def all_toolsets() -> list[Toolset]:
    root = toolsets_root()
    found = [p for p in sorted(root.glob("v*")) if (p / MANIFEST).exists()] if root.exists() else []
    return [Toolset(p, ToolsetManifest.load(p)) for p in found]


def require(release: PulumiRelease) -> Toolset:
    """The built toolset, or a clear error saying how to build it."""
    found = find(release)
    if found is None:
        provider = f", Kubernetes provider {release.kubernetes_provider}" if release.with_kubernetes_provider else ""
        flag = "" if release.with_kubernetes_provider else " --without-kubernetes-provider"
        raise ToolsetInvalid(
            f"the Pulumi engine (CLI {release.cli}, language host {release.language_host}{provider}) is not built "
            "with the current recipes",
            hint=f"keelson artifacts build --pulumi{flag} (a cold build takes tens of minutes; Go must be installed)",
        )
    return found


def language_host_part(release: PulumiRelease) -> Part:
    """The host and, beside it (where it looks for its executor), the SDK's two scripts pinned in the recipe."""
    recipe = language_host(release)

    def make(work: Path) -> dict[str, object]:
        info = go_build(recipe, work)
        for name in SDK_SCRIPTS:
            shutil.copyfile(recipe.dir / name, work / "bin" / name)
            (work / "bin" / name).chmod(0o755)
        return {**info, "scripts_from": f"github.com/pulumi/pulumi/sdk/v3@{release.executor_version}"}

    return produce(recipe.key, recipe.digest(go_version()), make)


def kubernetes_provider_part(release: PulumiRelease) -> Part:
    """The provider, built from a copy of the recipe into which its schema was generated first (upstream's
    `go generate` from the module's own schema.json), so the source tree never holds generated files."""
    recipe = kubernetes_provider(release)
    digest = hashlib.sha256(f"{recipe.digest(go_version())}/{GENERATE_FORMAT}".encode()).hexdigest()[:16]

    def make(work: Path) -> dict[str, object]:
        source = work / "src"
        shutil.copytree(recipe.dir, source)
        module = module_dir(PROVIDER_MODULE, release.kubernetes_provider_module, source)
        generate_provider_schema(recipe, module, source, go_env())
        info = go_build(recipe, work, source=source)
        shutil.rmtree(source)
        return {**info, "module": f"{PROVIDER_MODULE}@{release.kubernetes_provider_module}"}

    return produce(recipe.key, digest, make)


def build(release: PulumiRelease, report: Reporter) -> Toolset:
    found = find(release)
    if found is not None:
        return found
    with build_lock(toolsets_root()):
        found = find(release)  # another process finished it while we waited
        if found is not None:
            return found
        return _build(release, report)


def _build(release: PulumiRelease, report: Reporter) -> Toolset:
    seconds: dict[str, float] = {}
    parts: dict[str, Part] = {}
    makers: dict[str, Callable[[], Part]] = {  # one per recipe `recipes_for` lists (it decides what is in)
        "pulumi": lambda: go_part(cli(release)),
        "pulumi-language-python": lambda: language_host_part(release),
        "pulumi-kubernetes": lambda: kubernetes_provider_part(release),
    }
    recipes = recipes_for(release)
    with modules_prefetched([r.dir for r in recipes[1:]]):
        for recipe in recipes:
            title = f"build {recipe.targets[0].output} {recipe.version} (Go)"
            parts[recipe.component], seconds[recipe.component] = timed_step(report, title, makers[recipe.component])
    key = toolset_key(release)
    final = toolsets_root() / key
    work = final.with_name(key + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    (work / "bin").mkdir(parents=True)
    manifest = ToolsetManifest(
        key=key,
        go=go_version(),
        versions={
            "pulumi": release.cli,
            "pulumi-language-python": release.language_host,
            EXECUTOR: release.executor_version,
            DYNAMIC_PROVIDER: release.executor_version,
        }
        | ({"pulumi-resource-kubernetes": release.kubernetes_provider} if release.with_kubernetes_provider else {}),
        build_seconds=seconds,
    )
    for part in parts.values():
        for binary in sorted(part.bin.iterdir()):
            target = work / "bin" / binary.name
            os.link(binary, target)  # stored once, in the part
            manifest.files.append(FileEntry(f"bin/{binary.name}", target.stat().st_size, sha256_file(target), "binary"))
    (work / SUMS).write_text("".join(f"{f.sha256}  {f.path}\n" for f in manifest.files))
    (work / MANIFEST).write_text(manifest.to_json())
    shutil.rmtree(final, ignore_errors=True)
    work.rename(final)
    for old in toolsets_root().glob(f"{release.name}-*"):  # the same variant only ("+kubernetes" is another)
        if old != final and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return Toolset(final, manifest)


def verify(toolset: Toolset) -> ToolsetManifest:
    """Every file present, executable, with its size and sha256. Raises ToolsetInvalid."""
    manifest = ToolsetManifest.load(toolset.path)
    problems: list[str] = []
    for entry in manifest.files:
        full = toolset.path / entry.path
        if not full.is_file():
            problems.append(f"{entry.path}: missing")
        elif not os.access(full, os.X_OK):
            problems.append(f"{entry.path}: not executable")
        elif full.stat().st_size != entry.size:
            problems.append(f"{entry.path}: size {full.stat().st_size}, manifest says {entry.size}")
        elif (actual := sha256_file(full)) != entry.sha256:
            problems.append(f"{entry.path}: sha256 {actual}, manifest says {entry.sha256}")
    if problems:
        raise ToolsetInvalid(
            f"Pulumi toolset {manifest.key} does not match its manifest ({len(problems)} problem"
            f"{'s' if len(problems) != 1 else ''}):\n  " + "\n  ".join(problems),
            hint="remove it and rebuild: keelson artifacts build --pulumi",
        )
    return manifest
