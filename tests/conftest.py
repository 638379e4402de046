"""Shared fixtures. Lab tests (marker `lab`) boot real Debian hosts; they are skipped only where that is impossible
(no root, no systemd-nspawn, no cgroup v2), and under CI=true they fail there instead of skipping.

    lab            a running 3-master + 2-worker lab for the whole session (name `t-main`)
    lab_factory    lab_factory(name, masters=3, workers=2, lbs=0) -> a running Lab, torn down at session end

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


@pytest.fixture(scope="session")
def lab_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabFactory]:
    started: list[Lab] = []
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
            lab.down()


@pytest.fixture(scope="session")
def lab(lab_factory: LabFactory) -> Lab:
    reuse = os.environ.get("KEELSON_LAB_REUSE")
    if reuse:
        return Lab.load(reuse)
    return lab_factory("t-main", masters=3, workers=2)
