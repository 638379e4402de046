"""`keelson bench artifacts --compare-binaries`: the multi-call Kubernetes binary against the seven programs built
separately. No Go is run here: a stand-in for `run_go` writes each binary at its `-o` and moves stand-in clocks (wall
and children's CPU), so the figures, what is built with which flags, and where, are checked without a compile."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from provision.artifacts import layout
from provision.artifacts.build import ArtifactSet
from provision.artifacts.catalog import DEFAULT_KUBERNETES, release
from provision.artifacts.manifest import FileEntry, Manifest
from provision.artifacts.parts import go_build_targets
from provision.artifacts.recipes import KUBE_COMPONENTS, Target, kubernetes
from provision.bench import BenchError
from provision.bench.artifacts_bench import (
    COMPARE_FIELDS,
    BuildCost,
    binary_recipes,
    compare_binaries,
    comparison_fields,
)

REL = release(DEFAULT_KUBERNETES)
RECIPE = kubernetes(REL)
KIB = 1024
# each output: (bytes, wall s, CPU s of its `go build`, packages it links)
COST = {
    "kube": (900 * KIB, 40.0, 55.0, 2856),
    "kube-apiserver": (500 * KIB, 20.0, 26.0, 2079),
    "kube-controller-manager": (560 * KIB, 22.0, 29.0, 2440),
    "kube-scheduler": (400 * KIB, 15.0, 19.0, 1452),
    "kube-proxy": (410 * KIB, 15.5, 19.5, 1451),
    "kubelet": (480 * KIB, 18.0, 24.0, 1799),
    "kubeadm": (300 * KIB, 11.0, 14.0, 1027),
    "kubectl": (280 * KIB, 10.0, 13.0, 916),
}
PRIME = (100.0, 300.0)  # wall, CPU of each step that only fills the caches: in no build's figure


def content(package: str, ldflags: str, size: int) -> bytes:
    seed = f"{package}|{ldflags}|".encode()
    return (seed * (size // len(seed) + 1))[:size]


class FakeGo:
    """`run_go(args, cwd, env)`: `build` writes the binary (its bytes depend on the package and the ldflags) and
    costs its COST; `list -deps` answers as many packages as COST says; anything else costs PRIME."""

    def __init__(self) -> None:
        self.wall = 1000.0
        self.cpu = 7.0
        self.calls: list[tuple[list[str], Path, dict[str, str]]] = []
        self.during_build: list[Path] = []

    def clock(self) -> float:
        return self.wall

    def cpu_s(self) -> float:
        return self.cpu

    def __call__(self, args: list[str], cwd: Path, env: dict[str, str]) -> str:
        self.calls.append((args, cwd, env))
        if args[0] == "build":
            out = Path(args[args.index("-o") + 1])
            size, wall, cpu, _ = COST[out.name]
            out.write_bytes(content(args[-1], args[args.index("-ldflags") + 1], size))
            self.wall += wall
            self.cpu += cpu
            for path in self.during_build:  # a build that writes where it must not
                path.write_bytes(b"changed")
            return ""
        if args[:2] == ["list", "-deps"]:
            name = "kube" if args[2] == "./cmd/kube" else args[2].rsplit("/", 1)[-1]
            return "\n".join(f"pkg/{i}" for i in range(COST[name][3])) + "\n"
        self.wall += PRIME[0]
        self.cpu += PRIME[1]
        return ""

    def builds(self) -> list[list[str]]:
        return [args for args, _, _ in self.calls if args[0] == "build"]


def set_ldflags() -> str:
    """The `-ldflags` the set's own build gives ./cmd/kube (the same code the set is built with)."""
    seen: list[list[str]] = []

    def record(args: list[str], cwd: Path, env: dict[str, str]) -> str:
        seen.append(args)
        return ""

    go_build_targets(RECIPE, Path("/nonexistent/bin"), run=record)
    (kube,) = [args for args in seen if args[-1] == "./cmd/kube"]
    return kube[kube.index("-ldflags") + 1]


def fake_set(root: Path, kube: bytes) -> ArtifactSet:
    root.mkdir(parents=True)
    entry = layout.kube_binary(REL, "kubeadm").path
    (root / entry).parent.mkdir(parents=True)
    (root / entry).write_bytes(kube)
    (root / "manifest.json").write_text("{}")
    files = [FileEntry(entry, len(kube), hashlib.sha256(kube).hexdigest(), "binary")]
    return ArtifactSet(root, Manifest(REL.kubernetes, "key", "go1.26.8", {}, files=files))


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KEELSON_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_the_two_recipes_are_the_sets_with_other_targets() -> None:
    multicall, separate = binary_recipes(RECIPE)
    assert multicall.targets == (Target("./cmd/kube", "kube"),)  # no agnhost
    assert separate.targets == tuple(Target(f"k8s.io/kubernetes/cmd/{n}", n) for n in KUBE_COMPONENTS)
    for narrowed in (multicall, separate):
        assert narrowed.links == {}
        assert (narrowed.dir, narrowed.ldflags, narrowed.cgo) == (RECIPE.dir, RECIPE.ldflags, RECIPE.cgo)
    with pytest.raises(BenchError, match="no single multi-call target"):
        binary_recipes(multicall)


def test_comparison_times_each_build_apart_from_the_priming(cache: Path, tmp_path: Path) -> None:
    go = FakeGo()
    kube = content("./cmd/kube", set_ldflags(), COST["kube"][0])
    found = fake_set(cache / "artifacts" / "sets" / "v1.37.2-abc", kube)
    result = compare_binaries(found, tmp_path / "work", run=go, clock=go.clock, cpu=go.cpu_s)

    assert set(result) == set(COMPARE_FIELDS)
    seven = [COST[n] for n in KUBE_COMPONENTS]
    assert result["multicall_build_s"] == 40.0 and result["multicall_cpu_s"] == 55.0
    assert result["separate_build_s"] == round(sum(c[1] for c in seven), 1) == 111.5
    assert result["separate_cpu_s"] == round(sum(c[2] for c in seven), 1) == 144.5
    assert result["compare_prime_s"] == 4 * PRIME[0]  # mod download + list -export, for each of the two
    assert result["multicall_mib"] == round(900 / 1024, 1)
    assert result["separate_mib"] == round(sum(c[0] for c in seven) / 2**20, 1) == 2.9
    assert result["separate_files_mib"] == {n: round(COST[n][0] / 2**20, 1) for n in KUBE_COMPONENTS}
    assert result["multicall_packages"] == 2856
    assert result["separate_packages"] == sum(c[3] for c in seven) == 11164
    assert result["multicall_same_as_set"] is True
    assert len(result["compare_load_avg"]) == 3


def test_every_build_uses_the_sets_flags_and_writes_only_in_the_work_folder(cache: Path, tmp_path: Path) -> None:
    go = FakeGo()
    found = fake_set(cache / "artifacts" / "sets" / "v1.37.2-abc", b"another build")
    work = tmp_path / "work"
    result = compare_binaries(found, work, run=go, clock=go.clock, cpu=go.cpu_s)

    builds = go.builds()
    assert [args[-1] for args in builds] == ["./cmd/kube", *(f"k8s.io/kubernetes/cmd/{n}" for n in KUBE_COMPONENTS)]
    assert {args[args.index("-ldflags") + 1] for args in builds} == {set_ldflags()}
    assert all(args[:2] == ["build", "-trimpath"] for args in builds)
    outputs = [Path(args[args.index("-o") + 1]) for args in builds]
    assert all(out.is_relative_to(work) for out in outputs)
    assert {cwd for _, cwd, _ in go.calls} == {RECIPE.dir}
    assert {env["GOCACHE"] for _, _, env in go.calls} == {str(cache / "go" / "build")}  # the set's warm caches
    # the priming compiles (list -export), the same packages, before any build
    first_build = next(i for i, (args, _, _) in enumerate(go.calls) if args[0] == "build")
    primed = [args for args, _, _ in go.calls[:first_build] if args[:3] == ["list", "-trimpath", "-export"]]
    assert [p[5:] for p in primed] == [["./cmd/kube"], [f"k8s.io/kubernetes/cmd/{n}" for n in KUBE_COMPONENTS]]
    assert result["multicall_same_as_set"] is False  # the set's kube is other bytes here


def test_a_work_folder_inside_the_artifact_cache_is_refused_before_any_go(cache: Path) -> None:
    go = FakeGo()
    found = fake_set(cache / "artifacts" / "sets" / "v1.37.2-abc", b"kube")
    for inside in (found.path / "compare", cache / "artifacts" / "parts" / "x"):
        with pytest.raises(BenchError, match="inside the artifact cache"):
            compare_binaries(found, inside, run=go, clock=go.clock, cpu=go.cpu_s)
    assert go.calls == []


def test_a_set_changed_while_comparing_fails_the_bench(cache: Path, tmp_path: Path) -> None:
    go = FakeGo()
    found = fake_set(cache / "artifacts" / "sets" / "v1.37.2-abc", b"kube")
    go.during_build.append(found.path / "stray")
    with pytest.raises(BenchError, match="changed during the comparison"):
        compare_binaries(found, tmp_path / "work", run=go, clock=go.clock, cpu=go.cpu_s)


def test_fields_refuse_builds_that_made_other_binaries() -> None:
    one = BuildCost(1.0, 2.0, {"kube": 2**20}, 10)
    seven = BuildCost(7.0, 9.0, dict.fromkeys(KUBE_COMPONENTS, 2**20), 70)
    fields = comparison_fields(one, seven, KUBE_COMPONENTS, True, 3.0, (1.0, 2.0, 3.0))
    assert set(fields) == set(COMPARE_FIELDS)
    assert (fields["multicall_mib"], fields["separate_mib"]) == (1.0, 7.0)
    missing = BuildCost(6.0, 8.0, dict.fromkeys(KUBE_COMPONENTS[:-1], 2**20), 60)
    with pytest.raises(BenchError, match="separate build made"):
        comparison_fields(one, missing, KUBE_COMPONENTS, True, 3.0, (1.0, 2.0, 3.0))
    with pytest.raises(BenchError, match="not one binary"):
        comparison_fields(seven, seven, KUBE_COMPONENTS, True, 3.0, (1.0, 2.0, 3.0))
