"""Shared fixtures. Lab tests (marker `lab`) boot real Debian hosts; they are skipped only where that is impossible
(no root, no systemd-nspawn, no cgroup v2), and under CI=true they fail there instead of skipping.

    lab            a running 3-master + 2-worker lab for the whole session (name `t-main`)
    lab_factory    lab_factory(name, masters=3, workers=2, lbs=0) -> a running Lab, torn down when the module that
                   booted it ends (an idle cluster would otherwise share the cores with every later test)

KEELSON_LAB_REUSE=NAME makes `lab` use the already running lab NAME (which the session then leaves running).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator

import pytest

from provision.lab import Lab, LabSpec


def in_ci() -> bool:
    """CI=true (GitHub Actions, GitLab CI and most others set it; `.ci/run` sets it)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def lab_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "lab tests need root (they mount overlays and boot systemd-nspawn containers)"
    if shutil.which("systemd-nspawn") is None and shutil.which("apt-get") is None:
        return "no systemd-nspawn and no apt-get to install it"
    if not os.path.exists("/sys/fs/cgroup/unified/cgroup.procs") and not os.path.exists("/sys/fs/cgroup/cgroup.procs"):
        return "no cgroup v2 hierarchy (needed for per-host cgroup.kill)"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Without root, nspawn or cgroup v2, a lab test skips with the reason — except under CI=true, where it fails:
    a CI run that skipped the lab would be green without having tested it."""
    if "lab" not in item.keywords:
        return
    reason = lab_unavailable()
    if reason is None:
        return
    if in_ci():
        pytest.fail(f"CI=true and a lab prerequisite is missing: {reason}", pytrace=False)
    pytest.skip(reason)


LabFactory = Callable[..., Lab]

STARTED: list[Lab] = []  # every lab `lab_factory` booted in this session, in order
SESSION_WIDE: set[str] = set()  # labs that live for the whole session (the `lab` fixture's)


@pytest.fixture(scope="module", autouse=True)
def _labs_end_with_their_module() -> Iterator[None]:
    """A lab that a module boots is torn down when that module ends, not when the session does: a cluster left idle
    keeps its apiservers, etcd and kubelets running on the same two cores as every later test."""
    first = len(STARTED)
    yield
    for lab in STARTED[first:]:
        if lab.name not in SESSION_WIDE and lab.name in Lab.names():
            lab.down()


@pytest.fixture(scope="session")
def lab_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabFactory]:
    started = STARTED
    inventories = tmp_path_factory.mktemp("lab-inventories")

    def make(name: str, masters: int = 3, workers: int = 2, lbs: int = 0) -> Lab:
        spec = LabSpec(name=name, masters=masters, workers=workers, lbs=lbs)
        if name in Lab.names() and Lab.load(name).state.spec != spec:
            Lab.load(name).down()  # a leftover of an interrupted session with another shape
        try:
            lab = Lab.up(spec, inventory_out=inventories / f"{name}.yaml")
        except Exception:
            if name in Lab.names():
                Lab.load(name).down()  # a lab that failed to boot is not left running
            raise
        if all(lab.name != s.name for s in started):
            started.append(lab)
        return lab

    try:
        yield make
    finally:
        for lab in started:
            if lab.name in Lab.names():
                lab.down()


@pytest.fixture(scope="session")
def lab(lab_factory: LabFactory) -> Lab:
    reuse = os.environ.get("KEELSON_LAB_REUSE")
    if reuse:
        return Lab.load(reuse)
    SESSION_WIDE.add("t-main")
    return lab_factory("t-main", masters=3, workers=2)


# -- what a test needs built: ordered last, waited for outside its timeout --------------------------------------------


def _rank(item: pytest.Item) -> int:
    if item.get_closest_marker("pulumi_engine"):
        return 3
    if item.get_closest_marker("artifacts"):
        return 2
    return 1 if item.get_closest_marker("lab") else 0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that need nothing built run first (unit, mocked Pulumi), then lab tests, then those on the Kubernetes
    artifact set, then those on the Pulumi engine (a stable sort: each module stays whole and in order). A build
    running beside the session (`.ci/run` starts one) has the most time to finish before a test waits for it."""
    items.sort(key=_rank)


BUILT: dict[str, object] = {}  # "artifacts" / "pulumi_engine" -> what the build returned, or the error it raised


def raise_if_build_failed(marker: str) -> None:
    """A build that already failed in this session (tried before the test) is reported again, not repeated."""
    failed = BUILT.get(marker)
    if isinstance(failed, Exception):
        raise failed


def _build(marker: str) -> object:
    if marker == "artifacts":
        from tests.kube_helpers import artifact_set

        return artifact_set()
    from provision.artifacts.pulumi_tools.build import build as build_toolset
    from provision.artifacts.pulumi_tools.catalog import PULUMI

    return build_toolset(PULUMI, lambda event: None)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    """Before a test that needs the artifact set or the Pulumi toolset, build it — or wait for the build another
    process holds the lock of — outside the test's own timeout (this wrapper runs before pytest-timeout's). A
    failed build is remembered and not repeated: the test's fixture asks again and reports the error."""
    for marker in ("artifacts", "pulumi_engine"):
        if marker in BUILT or item.get_closest_marker(marker) is None or lab_unavailable() is not None:
            continue
        reporter = item.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"[{marker}] building, or waiting for the build that holds the lock …")
        try:
            BUILT[marker] = _build(marker)
        except Exception as exc:  # the fixture's own call raises it again, inside the test, with its message
            BUILT[marker] = exc
    yield
