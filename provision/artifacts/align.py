"""One version of each shared dependency across a set's Go recipes (a maintainer's step of `keelson artifacts pin`).

Go's build cache keys a compiled package by its source and its whole dependency closure. The set's components each
pin their own versions of the libraries they share with Kubernetes (k8s.io/api, client-go, grpc, protobuf, x/net,
otel, prometheus …): nine versions of client-go in one set, each compiled from scratch on a cold machine. Raising a
component's shared modules to the versions the Kubernetes recipe builds with makes most of them the very packages
Kubernetes compiled (`go list -deps`, v1.37.2's set: 6,160 package compiles outside Kubernetes → 3,696).

Only ever raised, never lowered (a component's own newer pin, or a dependency raised for a CVE, stays), and never the
modules of the component's own project (etcd's server does not build against another release's raft).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

GoRun = Callable[[list[str], Path], str]  # (args, cwd) -> stdout

_SEMVER = re.compile(r"^v(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")


def _prerelease_key(pre: str) -> tuple[tuple[int, int | str], ...]:
    # Semantic Versioning 2.0.0 §11: numeric identifiers compare numerically and sort before alphanumeric ones.
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split("."))


def newer(a: str, b: str) -> bool:
    """Is Go module version `a` newer than `b` (semver order, as Go's MVS compares; pseudo-versions are pre-releases
    of the version they count from)? `+incompatible` and other build metadata do not order."""
    ma, mb = _SEMVER.match(a), _SEMVER.match(b)
    if ma is None or mb is None:
        raise ValueError(f"not a module version: {a if ma is None else b!r}")
    core_a, core_b = tuple(int(x) for x in ma.groups()[:3]), tuple(int(x) for x in mb.groups()[:3])
    if core_a != core_b:
        return core_a > core_b
    pre_a, pre_b = ma.group(4), mb.group(4)
    if pre_a is None or pre_b is None:
        return pre_a is None and pre_b is not None  # a release is newer than its pre-releases
    return _prerelease_key(pre_a) > _prerelease_key(pre_b)


def build_list(run: GoRun, recipe_dir: Path) -> dict[str, str]:
    """`go list -m all` of a recipe: every module its build selects and the version it builds. A module replaced by
    a version of itself (Kubernetes' staging modules) counts at that version; one replaced by a fork or a folder is
    left out: what it builds is not that module."""
    fmt = "{{.Path}} {{.Version}}{{with .Replace}} {{.Path}} {{.Version}}{{end}}"
    modules: dict[str, str] = {}
    for line in run(["list", "-m", "-f", fmt, "all"], recipe_dir).splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[1].startswith("v"):
            modules[fields[0]] = fields[1]
        elif len(fields) == 4 and fields[2] == fields[0] and fields[3].startswith("v"):
            modules[fields[0]] = fields[3]
    return modules


# Hosts on which many unrelated projects publish modules: there a project is its repository (github.com/org/repo);
# anywhere else the host is the project's own (go.etcd.io: etcd's server, client, raft … move together).
SHARED_HOSTS = frozenset(
    {
        "github.com",
        "gitlab.com",
        "bitbucket.org",
        "k8s.io",
        "sigs.k8s.io",
        "golang.org",
        "google.golang.org",
        "gopkg.in",
    }
)


def repository_of(module: str) -> str:
    """The project a module path belongs to, as a prefix: github.com/org/repo/v2 → github.com/org/repo/,
    sigs.k8s.io/metrics-server → sigs.k8s.io/metrics-server/, go.etcd.io/etcd/server/v3 → go.etcd.io/ (every module
    of one project moves together: another release's raft does not build into this release's etcd server)."""
    parts = module.split("/")
    if parts[0] not in SHARED_HOSTS:
        return parts[0] + "/"
    keep = 3 if parts[0] in ("github.com", "gitlab.com", "bitbucket.org") else 2
    return "/".join(parts[:keep]) + "/"


def raises(mine: dict[str, str], reference: dict[str, str], own_module: str) -> list[str]:
    """`module@version` for each module of `mine` that `reference` builds with a newer version, the recipe's own
    repository's modules excepted."""
    own = repository_of(own_module)
    return [
        f"{module}@{version}"
        for module, version in sorted(reference.items())
        if module in mine and not (module + "/").startswith(own) and newer(version, mine[module])
    ]


def align(run: GoRun, recipe_dir: Path, reference: dict[str, str], own_module: str, rounds: int = 3) -> list[str]:
    """Raise the recipe's shared modules to the reference's versions (`go get`), again while raising one pulls in
    another the reference has newer; returns what was raised. The caller runs `go mod tidy` after."""
    raised: list[str] = []
    for _ in range(rounds):
        wanted = raises(build_list(run, recipe_dir), reference, own_module)
        if not wanted:
            break
        run(["get", *wanted], recipe_dir)
        raised += wanted
    return raised
