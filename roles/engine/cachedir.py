"""keelson's folder in the user's cache: `$XDG_CACHE_HOME/keelson`, else `~/.cache/keelson`.

What keelson keeps there is best effort, each kind in a file or folder of its own: the compiled templates
(roles/templating.py), the dataclasses' code (keelson/codecache.py), each host's fact batch sent ahead by the next run
(keelson/engine_cmd.py, roles/engine/facts_ahead.py). Without a home directory there is no such folder: None, and
each of them does without. The Kubernetes artifacts have their own root (provision/artifacts/cache.py)."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir() -> Path | None:
    try:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    except RuntimeError:  # no home directory to be found
        return None
    return base / "keelson"
