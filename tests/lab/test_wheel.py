"""keelson as a user installs it: the wheel, in a fresh virtualenv outside the checkout, runs `keelson bench`.

Everything comes from uv's cache (`--offline`: the checkout's `uv sync` put the locked dependencies and the build
backend there), so the test reaches no package index. The dependencies installed are the lock's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["keelson", "inventory", "provision", "roles", "addons", "backups"]


def uv(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("uv")
    assert exe, "uv is how keelson is built and installed (README)"
    environ = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"} | (env or {})
    proc = subprocess.run([exe, *args], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, f"uv {' '.join(args)}: {proc.stderr[-2000:]}"
    return proc


def tracked_data_files() -> set[str]:
    """Every non-Python file git tracks in the product's packages (templates, examples): the roles read them."""
    out = subprocess.run(["git", "ls-files", *PACKAGES], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return {line for line in out.splitlines() if not line.endswith(".py")}


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    uv("build", "--wheel", "--offline", "-q", "-o", str(work / "dist"))
    (wheel,) = (work / "dist").glob("keelson-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = tracked_data_files() - names
    assert not missing, f"the wheel lacks data files the roles need: {sorted(missing)}"
    assert not [n for n in names if n.startswith("tests/")]
    venv = work / "venv"
    uv("venv", "--offline", "-q", "--python", sys.executable, str(venv))
    # the locked dependencies (uv sync reads the lock's own URLs, which the cache holds), then the wheel itself
    env_for = {"UV_PROJECT_ENVIRONMENT": str(venv)}
    uv("sync", "--frozen", "--offline", "-q", "--no-dev", "--no-install-project", "--compile-bytecode", env=env_for)
    uv("pip", "install", "--offline", "-q", "--no-deps", "--compile-bytecode", "--python", str(venv), str(wheel))
    return work / "venv"


def run_installed(venv: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run from an empty directory with no PYTHONPATH: only the installed package can be imported."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    cwd = venv.parent / "cwd"
    cwd.mkdir(exist_ok=True)
    return subprocess.run(
        [str(venv / "bin" / args[0]), *args[1:]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_the_installed_package_is_the_wheel_and_has_no_tests(venv: Path) -> None:
    where = run_installed(venv, "python", "-c", "import provision, keelson; print(provision.__file__)")
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip().startswith(str(venv)), where.stdout
    assert run_installed(venv, "python", "-c", "import tests").returncode != 0


def test_bench_help_from_the_wheel(venv: Path) -> None:
    proc = run_installed(venv, "keelson", "bench", "--help")
    assert proc.returncode == 0, proc.stderr
    for command in ("lab", "apply", "etcd", "vip"):
        assert command in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    cluster = run_installed(venv, "keelson", "bench", "apply", "--help")
    assert cluster.returncode == 0, cluster.stderr
    assert "--cluster" in cluster.stdout
    bad = run_installed(venv, "keelson", "bench", "apply", "--cluster", "--masters", "5")
    assert bad.returncode == 2 and "No such option" in bad.stderr, bad.stderr


def test_bench_lab_from_the_wheel(venv: Path) -> None:
    proc = run_installed(venv, "keelson", "bench", "lab", "--hosts", "2", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(result) >= {"hosts", "boot_s", "mem_mib_per_host"}
    assert result["hosts"] == 2
    assert result["boot_s"] > 0 and result["mem_mib_per_host"] > 0
