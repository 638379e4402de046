"""Write the Go recipes of a release into the source tree (a maintainer's tool: `keelson artifacts pin`).

For each component: a go.mod requiring the upstream module at the release's version (Kubernetes: with every staging
module replaced by its published v0.Y.Z, since k8s.io/kubernetes' own go.mod points them at ./staging), its
targets recorded as `tool` directives, our own main packages copied in, the modules it shares with the default
release's Kubernetes raised to the versions Kubernetes builds with (`align`), then `go mod tidy` writes go.sum.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from provision.artifacts.align import align, build_list
from provision.artifacts.catalog import DEFAULT_KUBERNETES, Release, release
from provision.artifacts.gotool import BuildError, go_env, run_go
from provision.artifacts.recipes import Recipe, kubernetes, recipes_for

TEMPLATES = Path(__file__).resolve().parent / "templates"
OWN_MAINS = {
    ("kubernetes", "./cmd/kube"): TEMPLATES / "kube-main.go",
    ("coredns", "./cmd/coredns"): TEMPLATES / "coredns-main.go",
}
# Modules a component links but the module proxy does not serve: replaced by a labelled stand-in (cloud SDKs only).
STUBS = {
    "flannel": {"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc": TEMPLATES / "stubs/tencentcloud-vpc"}
}


def _upstream_gomod(module: str, version: str, cwd: Path) -> str:
    info = json.loads(run_go(["mod", "download", "-json", f"{module}@{version}"], cwd=cwd, env=_pin_env()))
    if "Error" in info:
        raise BuildError(f"{module}@{version}: {info['Error']}")
    return Path(info["GoMod"]).read_text()


_REPLACE = re.compile(r"^\s*(?:replace\s+)?(\S+(?:\s+v\S+)?)\s+=>\s+(\S+(?:\s+v\S+)?)\s*(?://.*)?$")


def module_replaces(gomod: str) -> list[str]:
    """The upstream go.mod's `replace`s that point at another module (a fork), as `old => new version` lines.

    Go ignores a dependency's replaces, so a recipe that requires the module must repeat them to build what upstream
    builds (traefik's forks of go-http-auth, mux, minheap). Replaces into local folders (`=> ./staging/…`, which
    Kubernetes has) are left out: those folders are not in the module; Kubernetes' are replaced by version instead.
    """
    out: list[str] = []
    in_block = False
    for raw in gomod.splitlines():
        line = raw.split("//", 1)[0].strip()
        if line.startswith("replace ("):
            in_block = True
            continue
        if in_block and line == ")":
            in_block = False
            continue
        if not (in_block or line.startswith("replace ")):
            continue
        match = _REPLACE.match(line)
        if match and not match.group(2).startswith((".", "/")):
            out.append(f"{match.group(1)} => {match.group(2)}")
    return out


def _pin_env() -> dict[str, str]:
    env = go_env()
    env["GOFLAGS"] = "-mod=mod -buildvcs=false"
    return env


def _pin_run(args: list[str], cwd: Path) -> str:
    return run_go(args, cwd=cwd, env=_pin_env())


def kubernetes_build_list() -> dict[str, str]:
    """What the default release's Kubernetes recipe builds with: the versions every companion is aligned to (the
    companions' recipes are shared by the releases, so they follow the default one)."""
    reference = kubernetes(release(DEFAULT_KUBERNETES)).dir
    if not (reference / "go.mod").is_file():
        raise BuildError(f"pin Kubernetes {DEFAULT_KUBERNETES} first: its recipe is what the companions align to")
    return build_list(lambda args, cwd: run_go(args, cwd=cwd), reference)  # read-only: its go.sum stays as pinned


def _module_of(recipe: Recipe) -> str:
    known = {
        "kubernetes": "k8s.io/kubernetes",
        "cri-tools": "sigs.k8s.io/cri-tools",
        "cni-plugins": "github.com/containernetworking/plugins",
        "flannel-cni": "github.com/containernetworking/plugins",
        "coredns": "github.com/coredns/coredns",
        "flannel": "github.com/flannel-io/flannel",
        "kube-router": "github.com/cloudnativelabs/kube-router/v2",
        "etcd": "go.etcd.io/etcd/server/v3",
        "metrics-server": "sigs.k8s.io/metrics-server",
        "local-path-provisioner": "github.com/rancher/local-path-provisioner",
        "traefik": "github.com/traefik/traefik/v3",
    }
    return known[recipe.component]


def pin_recipe(recipe: Recipe, release: Release) -> Path:
    module = _module_of(recipe)
    target = recipe.dir
    work = target.with_name(target.name + ".pinning")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    upstream = _upstream_gomod(module, recipe.version, work)
    go_line = re.search(r"^go (\S+)$", upstream, re.M)
    lines = [f"module keelson.local/recipes/{recipe.component}", "", f"go {go_line.group(1) if go_line else '1.26'}"]
    lines += ["", *re.findall(r"^godebug .*$", upstream, re.M)]
    lines += ["", f"require {module} {recipe.version}"]
    if recipe.component == "kubernetes":
        staging = re.findall(r"^\s+(k8s\.io/\S+) => \./staging/", upstream, re.M)
        staging_version = "v0." + release.kubernetes.split(".", 1)[1]
        lines += ["", "replace ("] + [f"\t{m} => {m} {staging_version}" for m in staging] + [")"]
    forks = module_replaces(upstream)
    if forks:
        lines += ["", "replace ("] + [f"\t{r}" for r in forks] + [")"]
    stubs = STUBS.get(recipe.component, {})
    if stubs:
        lines += ["", "replace ("] + [f"\t{m} => ./stubs/{src.name}" for m, src in stubs.items()] + [")"]
        for src in stubs.values():
            shutil.copytree(src, work / "stubs" / src.name)
    (work / "go.mod").write_text("\n".join(lines) + "\n")
    for t in recipe.targets:
        own = OWN_MAINS.get((recipe.component, t.package))
        if own is not None:
            dest = work / t.package.removeprefix("./") / "main.go"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(own, dest)
    tools = [f"{t.package}@{recipe.version}" for t in recipe.targets if not t.package.startswith("./")]
    if tools:
        run_go(["get", "-tool", *tools], cwd=work, env=_pin_env())
    else:
        run_go(["get", f"{module}@{recipe.version}"], cwd=work, env=_pin_env())
    if recipe.raise_deps:
        run_go(["get", *recipe.raise_deps], cwd=work, env=_pin_env())
    if recipe.align:
        align(_pin_run, work, kubernetes_build_list(), module)
    run_go(["mod", "tidy"], cwd=work, env=_pin_env())
    shutil.rmtree(target, ignore_errors=True)
    work.rename(target)
    return target


def pin(release: Release, components: set[str] | None = None) -> list[Path]:
    return [pin_recipe(r, release) for r in recipes_for(release) if components is None or r.component in components]
