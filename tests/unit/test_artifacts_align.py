"""Aligning a companion recipe's shared modules with the Kubernetes recipe (`keelson artifacts pin`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.artifacts.align import align, build_list, newer, raises, repository_of


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("v0.37.2", "v0.33.2"),
        ("v1.10.0", "v1.9.9"),  # numerically, not as text
        ("v2.0.0", "v1.99.99"),
        ("v1.0.0", "v1.0.0-rc.1"),  # a release is newer than its pre-releases
        ("v1.0.0-rc.10", "v1.0.0-rc.9"),  # numeric identifiers numerically
        ("v1.0.0-rc.1", "v1.0.0-beta.9"),
        ("v1.0.0-alpha.beta", "v1.0.0-alpha.1"),  # alphanumeric after numeric
        ("v0.0.0-20260626114624-be93311217bd", "v0.0.0-20250820121507-0af2bda4dd1d"),  # pseudo-versions by time
        ("v0.4.1-0.20200324110947-a37a7636d23e", "v0.4.0"),  # a pseudo-version counts from the release before it
    ],
)
def test_newer_orders_as_semver(a: str, b: str) -> None:
    assert newer(a, b)
    assert not newer(b, a)


def test_equal_versions_and_build_metadata_are_not_newer() -> None:
    assert not newer("v0.37.2", "v0.37.2")
    assert not newer("v2.0.0+incompatible", "v2.0.0")


def test_a_non_version_is_refused() -> None:
    with pytest.raises(ValueError, match="not a module version"):
        newer("latest", "v1.0.0")


def test_repository_of_takes_the_upstream_repository() -> None:
    assert repository_of("go.etcd.io/etcd/server/v3") == "go.etcd.io/"  # a project's own host: raft moves with it
    assert repository_of("github.com/traefik/traefik/v3") == "github.com/traefik/traefik/"
    assert repository_of("sigs.k8s.io/metrics-server") == "sigs.k8s.io/metrics-server/"


def test_raises_only_shared_older_modules_and_never_the_components_own() -> None:
    mine = {
        "k8s.io/client-go": "v0.33.2",  # older than Kubernetes': raised
        "golang.org/x/net": "v0.62.0",  # newer than Kubernetes' (e.g. raised for a CVE): kept
        "google.golang.org/grpc": "v1.82.1",  # the same: nothing to do
        "go.etcd.io/etcd/client/v3": "v3.6.16",  # the component's own project: kept
        "go.etcd.io/raft/v3": "v3.6.0",  # the same project (its host), another repository: kept
        "github.com/only/mine": "v1.0.0",  # not in Kubernetes' build: kept
    }
    reference = {
        "k8s.io/client-go": "v0.37.2",
        "golang.org/x/net": "v0.59.0",
        "google.golang.org/grpc": "v1.82.1",
        "go.etcd.io/etcd/client/v3": "v3.7.2",
        "go.etcd.io/raft/v3": "v3.7.0",
        "github.com/only/kubernetes": "v2.0.0",
    }
    assert raises(mine, reference, "go.etcd.io/etcd/server/v3") == ["k8s.io/client-go@v0.37.2"]


def test_build_list_reads_version_replaces_and_leaves_forks_and_folders_out() -> None:
    listing = "\n".join(
        [
            "keelson.local/recipes/x ",  # the main module: no version
            "k8s.io/api v0.0.0 k8s.io/api v0.37.2",  # replaced by a version of itself (Kubernetes' staging)
            "github.com/gorilla/mux v1.8.1 github.com/containous/mux v0.0.0-20250523120546-41b6ec3aed59",  # a fork
            "github.com/tencentcloud/sdk v1.0.0 ./stubs/tencentcloud-vpc",  # a folder
            "google.golang.org/grpc v1.82.1",
        ]
    )
    asked: list[list[str]] = []

    def run(args: list[str], cwd: Path) -> str:
        asked.append(args)
        return listing

    assert build_list(run, Path("/recipe")) == {"k8s.io/api": "v0.37.2", "google.golang.org/grpc": "v1.82.1"}
    assert asked[0][:3] == ["list", "-m", "-f"] and asked[0][-1] == "all"


def test_align_raises_again_what_a_raise_pulled_in_and_stops_when_nothing_is_older() -> None:
    state = {"k8s.io/client-go": "v0.33.2", "k8s.io/api": "v0.33.2", "golang.org/x/net": "v0.62.0"}
    reference = {
        "k8s.io/client-go": "v0.37.2",
        "k8s.io/api": "v0.37.2",
        "golang.org/x/net": "v0.59.0",
        "github.com/fxamacker/cbor/v2": "v2.9.1",
    }
    gets: list[list[str]] = []

    def run(args: list[str], cwd: Path) -> str:
        if args[0] == "get":
            gets.append(args[1:])
            for spec in args[1:]:
                module, version = spec.split("@")
                state[module] = version
            if "k8s.io/client-go@v0.37.2" in args:  # the new client-go brings a module in, older than the reference's
                state["github.com/fxamacker/cbor/v2"] = "v2.9.0"
            return ""
        return "\n".join(f"{m} {v}" for m, v in state.items())

    raised = align(run, Path("/recipe"), reference, "github.com/example/component")
    assert gets == [["k8s.io/api@v0.37.2", "k8s.io/client-go@v0.37.2"], ["github.com/fxamacker/cbor/v2@v2.9.1"]]
    assert raised == ["k8s.io/api@v0.37.2", "k8s.io/client-go@v0.37.2", "github.com/fxamacker/cbor/v2@v2.9.1"]
    assert state["golang.org/x/net"] == "v0.62.0"  # newer than the reference's: never lowered
