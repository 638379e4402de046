"""The environment every `pulumi` run gets from keelson (`keelson pulumi …`, the tests, the bench).

- the toolset's bin/ first on PATH: the engine finds the language host (and the Kubernetes provider, in the
  `+kubernetes` toolset) there and uses them as they are, without a download (ambient plugins:
  `PULUMI_IGNORE_AMBIENT_PLUGINS` is removed if set);
- `PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION`: a plugin that is not there is an error, never a download;
- `PULUMI_SKIP_UPDATE_CHECK`: no request to get.pulumi.com;
- `PULUMI_PYTHON_CMD`: the language host runs the program with the Python that runs keelson (the environment where
  the `pulumi` package and keelson are installed, `KEELSON_PYTHON`), whatever `python3` the PATH has, through
  python_cmd.sh, which answers the host's `pip list` of the installed Pulumi packages without pip (installed.py);
  the interpreter itself where that script cannot be run (an install that dropped its mode).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from provision.artifacts.pulumi_tools.build import Toolset

REMOVED = ("PULUMI_IGNORE_AMBIENT_PLUGINS",)
PYTHON_CMD = Path(__file__).resolve().with_name("python_cmd.sh")


def pulumi_env(toolset: Toolset, base: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    for name in REMOVED:
        env.pop(name, None)
    python = Path(sys.executable)
    own = [str(toolset.bin), str(python.parent)]
    rest = [p for p in env.get("PATH", os.defpath).split(os.pathsep) if p and p not in own]
    env["PATH"] = os.pathsep.join([*own, *rest])
    env["PULUMI_SKIP_UPDATE_CHECK"] = "true"
    env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] = "true"
    env["KEELSON_PYTHON"] = str(python)
    env["PULUMI_PYTHON_CMD"] = str(PYTHON_CMD) if os.access(PYTHON_CMD, os.X_OK) else str(python)
    return env


def shell_exports(env: Mapping[str, str]) -> str:
    """`export NAME=value` lines for the variables keelson sets (for `eval "$(keelson pulumi-env)"`)."""
    import shlex

    names = (
        "PATH",
        "PULUMI_SKIP_UPDATE_CHECK",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION",
        "KEELSON_PYTHON",
        "PULUMI_PYTHON_CMD",
    )
    lines = [f"export {name}={shlex.quote(env[name])}" for name in names]
    lines += [f"unset {name}" for name in REMOVED]
    return "\n".join(lines) + "\n"
