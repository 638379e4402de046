"""What `python -m pip list -v --format json` prints, without pip: the Python language host's question, on every
`pulumi up`, `preview` and `destroy`, which Pulumi packages are installed (it reads each one's pulumi-plugin.json
to learn the provider plugins the program needs). pip answers it in 0.35-0.4 s of CPU (its own imports, then the
metadata of every distribution parsed in full); this reads the same files for the same answer in ~0.08 s.

The same list as pip's: every distribution on sys.path, the first of a name (canonicalised) winning, sorted by that
name, each with pip's fields (name and version from its metadata's headers, location, installer, and an editable
install's project folder). Run by python_cmd.sh, the language host's PULUMI_PYTHON_CMD (environ.py), with the
standard library only; tests/unit/test_pulumi_artifacts.py compares its output with pip's.
"""

from __future__ import annotations

import json
import re
import sys
from importlib.metadata import Distribution, distributions
from typing import Any

STDLIB = ("python", "wsgiref", "argparse")  # pip list's own skip list (pip._internal.utils.compat.stdlib_pkgs)


def _headers(dist: Distribution) -> dict[str, str]:
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    headers: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            break  # the body (the long description) starts: pip reads no field from it here
        name, _, value = line.partition(":")
        headers.setdefault(name.strip(), value.strip())
    return headers


def _editable(dist: Distribution) -> str | None:
    direct = dist.read_text("direct_url.json")
    if not direct:
        return None
    info = json.loads(direct)
    url = str(info.get("url", ""))
    if info.get("dir_info", {}).get("editable") and url.startswith("file://"):
        return url.removeprefix("file://")
    return None


def installed() -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for dist in distributions():
        headers = _headers(dist)
        name = headers.get("Name")
        if not name:
            continue  # pip skips a distribution without a name too
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in found or key in STDLIB:
            continue
        entry: dict[str, Any] = {
            "name": name,
            "version": headers.get("Version", ""),
            "location": str(dist.locate_file("")),
            "installer": (dist.read_text("INSTALLER") or "").strip(),
        }
        project = _editable(dist)
        if project is not None:
            entry["editable_project_location"] = project
        found[key] = entry
    return [found[key] for key in sorted(found)]


def main() -> None:
    sys.stdout.write(json.dumps(installed()) + "\n")


if __name__ == "__main__":
    main()
