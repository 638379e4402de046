"""Every role has the one skeleton README's "Adding a role" describes, and the roles' imports form no cycle."""

from __future__ import annotations

import ast
import dataclasses
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROLE_DIRS = sorted(
    [p for p in (ROOT / "roles").iterdir() if (p / "__init__.py").is_file() and p.name not in ("engine", "plans")]
    + [ROOT / "backups" / "role"]
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_the_roles_are_the_ones_the_readme_names() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in ROLE_DIRS}
    assert names == {
        "roles/validate",
        "roles/common",
        "roles/containerd",
        "roles/kubernetes_node",
        "roles/pki",
        "roles/etcd",
        "roles/loadbalancer",
        "roles/control_plane",
        "roles/cni",
        "roles/worker",
        "roles/windows",
        "roles/reset",
        "roles/upgrade",
        "backups/role",
    }


@pytest.mark.parametrize("role", ROLE_DIRS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_role_skeleton(role: Path) -> None:
    for required in ("__init__.py", "phases.py"):
        assert (role / required).is_file(), f"{role}: no {required}"
    if "Phase(" in (role / "phases.py").read_text():  # a phase of per-host steps: they live in steps.py
        assert (role / "steps.py").is_file(), f"{role}: no steps.py"
    writes = any("FileStep(" in p.read_text() for p in role.glob("*.py"))
    assert (role / "defaults.py").is_file() or not writes, f"{role} writes files: their paths go in defaults.py"
    package = importlib.import_module(module_name(role / "__init__.py"))
    assert package.__doc__ and len(package.__doc__.strip()) > 80, "the package docstring says what the role does"
    assert package.__all__ == ["phases"]
    assert package.phases is importlib.import_module(f"{package.__name__}.phases").__dict__["phases"]
    init = ast.parse((role / "__init__.py").read_text())
    assert [type(n).__name__ for n in init.body] == ["Expr", "ImportFrom", "ImportFrom", "Assign"], (
        "__init__.py is the docstring, `from <role>.phases import phases` and __all__, nothing else"
    )
    if (role / "defaults.py").is_file():
        defaults = importlib.import_module(f"{package.__name__}.defaults")
        assert dataclasses.is_dataclass(defaults.DEFAULTS) and not isinstance(defaults.DEFAULTS, type)
        assert type(defaults.DEFAULTS).__dataclass_params__.frozen  # type: ignore[attr-defined]


@pytest.mark.parametrize("role", ROLE_DIRS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_templates_are_rendered_by_render_py_only_and_all_used(role: Path) -> None:
    renderers = [p.name for p in role.glob("*.py") if "roles.templating" in p.read_text()]
    templates = sorted(t.name for t in (role / "templates").glob("*")) if (role / "templates").is_dir() else []
    if not templates:
        assert renderers == []
        return
    assert renderers == ["render.py"]
    text = (role / "render.py").read_text()
    assert [t for t in templates if f'"{t}"' not in text] == []  # no template left behind


def import_graph() -> dict[str, set[str]]:
    """Package-level imports (roles.<x>, backups) of every module under roles/ and backups/, lazy ones included."""

    def package(name: str) -> str:
        parts = name.split(".")
        return ".".join(parts[:2]) if parts[0] == "roles" else parts[0]

    edges: dict[str, set[str]] = {}
    for path in [*ROOT.glob("roles/**/*.py"), *ROOT.glob("backups/**/*.py")]:
        source = package(module_name(path))
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for target in targets:
                if target.split(".")[0] in ("roles", "backups") and package(target) != source:
                    edges.setdefault(source, set()).add(package(target))
    return edges


def test_role_imports_form_no_cycle() -> None:
    edges = import_graph()
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> None:
        if node in done:
            return
        assert node not in visiting, "import cycle: " + " -> ".join([*visiting[visiting.index(node) :], node])
        visiting.append(node)
        for nxt in sorted(edges.get(node, ())):
            visit(nxt)
        visiting.pop()
        done.add(node)

    for node in sorted(edges):
        visit(node)
    assert edges["roles.pki"] <= {"roles.engine", "roles.state"}  # the PKI sits below the roles that use it
    assert edges["roles.engine"] <= {"roles.state"}  # the engine knows no role
