"""The Pulumi engine's recipes, toolset and environment (no Go build here: the lab test runs the built engine)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from provision.artifacts.pulumi_tools import build as toolset_build
from provision.artifacts.pulumi_tools import environ
from provision.artifacts.pulumi_tools.catalog import (
    PROVIDER_MODULE,
    PROVIDER_SDK_MODULE,
    PULUMI,
    PULUMI_ENGINE_ONLY,
    SDK_MODULE,
)
from provision.artifacts.pulumi_tools.environ import PYTHON_CMD, pulumi_env, shell_exports
from provision.artifacts.pulumi_tools.pin import upstream_replaces
from provision.artifacts.pulumi_tools.recipes import (
    PROVIDER_CMD,
    PROVIDER_GENERATED,
    SDK_SCRIPTS,
    cli,
    kubernetes_provider,
    language_host,
    recipes_for,
)

ROOT = Path(__file__).resolve().parents[2]


def _locked(name: str) -> str:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return str(next(p["version"] for p in lock["package"] if p["name"] == name))


def _requires(recipe_dir: Path) -> dict[str, str]:
    return dict(
        re.findall(r"^\s*(?:require\s+)?(\S+) (v\S+)(?: // indirect)?$", (recipe_dir / "go.mod").read_text(), re.M)
    )


def test_the_catalog_names_the_python_packages_uv_lock_has() -> None:
    assert _locked("pulumi") == PULUMI.python_sdk
    assert _locked("pulumi-kubernetes") == PULUMI.python_kubernetes


def test_each_recipe_requires_the_catalogued_modules() -> None:
    assert _requires(cli(PULUMI).dir)["github.com/pulumi/pulumi/pkg/v3"] == PULUMI.cli
    assert _requires(cli(PULUMI).dir)[SDK_MODULE] == PULUMI.cli  # pkg/v3 replaces sdk/v3 with ../sdk upstream
    assert _requires(language_host(PULUMI).dir)[SDK_MODULE] == PULUMI.language_host
    provider = _requires(kubernetes_provider(PULUMI).dir)
    assert provider[PROVIDER_MODULE] == PULUMI.kubernetes_provider_module
    assert provider[PROVIDER_SDK_MODULE] == PULUMI.kubernetes_provider  # upstream: ../sdk at the same commit


def test_the_language_host_recipe_carries_the_sdk_scripts_and_the_provider_no_generated_file() -> None:
    host = language_host(PULUMI).dir
    for name in SDK_SCRIPTS:
        assert (host / name).is_file()
    assert "pulumi.dynamic" in (host / "pulumi-resource-pulumi-python").read_text()
    provider = kubernetes_provider(PULUMI).dir / PROVIDER_CMD
    assert (provider / "main.go").is_file()
    assert all(not (provider / name).exists() for name in PROVIDER_GENERATED)  # made by each build, never kept
    assert "//go:embed schema-embed.json" in (provider / "main.go").read_text()


def test_recipes_are_stamped_like_upstreams_release_builds() -> None:
    flags = {r.component: r.ldflags for r in recipes_for(PULUMI)}
    assert flags["pulumi"] == (f"-X {SDK_MODULE}/go/common/version.Version={PULUMI.cli}",)
    assert flags["pulumi-kubernetes"] == (f"-X {PROVIDER_MODULE}/pkg/version.Version=4.25.0",)


def test_the_kubernetes_provider_is_in_the_default_toolset_and_left_out_only_on_request() -> None:
    assert [r.component for r in recipes_for(PULUMI_ENGINE_ONLY)] == ["pulumi", "pulumi-language-python"]
    assert [r.component for r in recipes_for(PULUMI)][-1] == "pulumi-kubernetes"
    engine, with_provider = toolset_build.toolset_key(PULUMI_ENGINE_ONLY), toolset_build.toolset_key(PULUMI)
    assert engine.startswith(f"{PULUMI.cli}-") and with_provider.startswith(f"{PULUMI.cli}+kubernetes-")
    assert not with_provider.startswith(f"{PULUMI.cli}-")  # a build of one variant never removes the other


def test_upstream_replaces_keep_module_ones_and_drop_local_and_raised() -> None:
    gomod = (
        "module x\n\nreplace github.com/pulumi/pulumi/sdk/v3 => ../sdk\n\n"
        "replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e\n"
        "replace (\n\tgolang.org/x/text => golang.org/x/text v0.3.6\n\texample.com/a => /abs/a\n)\n"
    )
    assert upstream_replaces(gomod) == [
        "golang.org/x/text => golang.org/x/text v0.3.6",
        "github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e",
    ]
    assert upstream_replaces(gomod, raised=("golang.org/x/text",)) == [
        "github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e",
    ]


def _fake_toolset(root: Path) -> toolset_build.Toolset:
    """A toolset folder laid out as build.py makes one (stand-in files: the Go build is not run here)."""
    folder = root / "v3.0.0-test"
    (folder / "bin").mkdir(parents=True)
    manifest = toolset_build.ToolsetManifest(key="v3.0.0-test", go="go1", versions={})
    from provision.artifacts.manifest import FileEntry, sha256_file

    for name in ("pulumi", "pulumi-language-python"):
        path = folder / "bin" / name
        path.write_text(f"#!/bin/sh\necho {name}\n")
        path.chmod(0o755)
        manifest.files.append(FileEntry(f"bin/{name}", path.stat().st_size, sha256_file(path), "binary"))
    (folder / toolset_build.MANIFEST).write_text(manifest.to_json())
    return toolset_build.Toolset(folder, manifest)


def test_verify_finds_a_changed_and_a_missing_file(tmp_path: Path) -> None:
    toolset = _fake_toolset(tmp_path)
    assert toolset_build.verify(toolset).key == "v3.0.0-test"
    (toolset.bin / "pulumi").write_text("#!/bin/sh\necho tampered\n")
    (toolset.bin / "pulumi-language-python").unlink()
    with pytest.raises(toolset_build.ToolsetInvalid) as info:
        toolset_build.verify(toolset)
    text = str(info.value)
    assert "bin/pulumi: " in text and "bin/pulumi-language-python: missing" in text
    assert "keelson artifacts build --pulumi" in text


def test_the_environment_puts_the_toolset_first_and_forbids_downloads(tmp_path: Path) -> None:
    toolset = _fake_toolset(tmp_path)
    env = pulumi_env(toolset, {"PATH": "/usr/bin:/bin", "PULUMI_IGNORE_AMBIENT_PLUGINS": "true"})
    assert env["PATH"].split(os.pathsep)[:2] == [str(toolset.bin), str(Path(sys.executable).parent)]
    assert "PULUMI_IGNORE_AMBIENT_PLUGINS" not in env
    assert env["PULUMI_SKIP_UPDATE_CHECK"] == "true"
    assert env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] == "true"
    assert env["KEELSON_PYTHON"] == sys.executable
    assert env["PULUMI_PYTHON_CMD"] == str(PYTHON_CMD)
    exports = shell_exports(env)
    assert f"export PATH={toolset.bin}" in exports and "unset PULUMI_IGNORE_AMBIENT_PLUGINS" in exports
    assert f"export KEELSON_PYTHON={sys.executable}" in exports and f"export PULUMI_PYTHON_CMD={PYTHON_CMD}" in exports


def _python_cmd(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KEELSON_PYTHON": sys.executable}
    return subprocess.run([str(PYTHON_CMD), *args], input=stdin, env=env, capture_output=True, text=True, check=False)


def test_the_language_hosts_python_answers_its_pip_list_as_pip_does() -> None:
    """The language host's `python -m pip list -v --format json` through python_cmd.sh (installed.py, no pip):
    the same JSON as pip's own in this environment, editable installs and installers included."""
    if importlib.util.find_spec("pip") is None:
        pytest.skip("no pip in this environment to compare with")
    args = ("-m", "pip", "list", "-v", "--format", "json")
    ours = _python_cmd(*args)
    pips = subprocess.run([sys.executable, *args], capture_output=True, text=True, check=True)
    assert ours.returncode == 0, ours.stderr
    listed = json.loads(ours.stdout)
    assert listed == json.loads(pips.stdout)
    assert {"pulumi", "pulumi_kubernetes"} <= {p["name"] for p in listed}


def test_the_language_hosts_python_runs_everything_else_as_the_interpreter() -> None:
    code = "import sys; print(sys.argv[1:], sys.stdin.read(), sys.executable); raise SystemExit(3)"
    run = _python_cmd("-c", code, "a b", "", "-m", stdin="in")
    assert run.returncode == 3
    assert run.stdout.strip() == f"['a b', '', '-m'] in {sys.executable}"
    assert _python_cmd("--version").stdout.strip() == f"Python {sys.version.split()[0]}"


def test_without_the_scripts_mode_the_language_host_gets_the_interpreter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = tmp_path / "python_cmd.sh"
    plain.write_text(PYTHON_CMD.read_text())  # 0644: what an install that dropped the mode leaves
    monkeypatch.setattr(environ, "PYTHON_CMD", plain)
    assert pulumi_env(_fake_toolset(tmp_path))["PULUMI_PYTHON_CMD"] == sys.executable


def test_keelson_pulumi_without_the_toolset_says_how_to_build_it(tmp_path: Path) -> None:
    env = {**os.environ, "KEELSON_CACHE_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "keelson", "pulumi", "version"], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 1
    assert "is not built with the current recipes" in proc.stderr
    assert "keelson artifacts build --pulumi" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_artifacts_list_json_has_a_pulumi_key(tmp_path: Path) -> None:
    env = {**os.environ, "KEELSON_CACHE_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "keelson", "artifacts", "list", "--json"], env=env, capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    assert json.loads(proc.stdout) == {"sets": [], "pulumi": []}
