"""Where built artifact sets live and which one a release's recipes make (provision/artifacts/build.py builds them).

Apart from the builder so that finding a set — every `keelson apply` with `artifacts.source: local` does, to upload
from it — imports only the recipes and the manifest, not the builder's image, OCI and Debian modules (~20 ms of CPU).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from provision.artifacts import debs, manifest
from provision.artifacts.cache import artifacts_root
from provision.artifacts.catalog import Release
from provision.artifacts.gotool import go_version
from provision.artifacts.manifest import Manifest
from provision.artifacts.recipes import recipes_for

SET_FORMAT = "1"  # bump when the set's layout or the images' contents change without a recipe change


@dataclass(frozen=True)
class ArtifactSet:
    path: Path
    manifest: Manifest

    @property
    def key(self) -> str:
        return self.manifest.key


def sets_root() -> Path:
    return artifacts_root() / "sets"


def set_key(release: Release) -> str:
    """Version + a hash of everything that decides the set's content (no build, no network: a warm run's check)."""
    h = hashlib.sha256(SET_FORMAT.encode())
    go = go_version()
    for recipe in recipes_for(release):
        h.update(recipe.digest(go).encode())
    h.update(repr((release, debs.IPTABLES, debs.BUSYBOX)).encode())
    return f"{release.kubernetes}-{h.hexdigest()[:12]}"


def find(release: Release) -> ArtifactSet | None:
    path = sets_root() / set_key(release)
    if not (path / manifest.MANIFEST).exists():
        return None
    return ArtifactSet(path, Manifest.load(path))


def all_sets() -> list[ArtifactSet]:
    root = sets_root()
    found = [p for p in sorted(root.glob("v*")) if (p / manifest.MANIFEST).exists()] if root.exists() else []
    return [ArtifactSet(p, Manifest.load(p)) for p in found]
