"""Where a node's artifacts come from, resolved on the operator side: for every file, what to fetch (a URL, or a
file of a local set to upload) and the sha256 it must have.

- local:    a built artifact set on this machine; digests from its manifest; files go up over SSH (air-gapped).
- mirror:   your server with the same layout as a set; digests from its `<file>.sha256`, read here once per run.
- upstream: the official release sites (dl.k8s.io, GitHub releases); digests from their published `.sha256`.

The host downloads (mirror, upstream) or receives (local) each file, checks it against the digest resolved here,
and installs nothing unless every file checks out.
"""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from pathlib import Path

from inventory.errors import KeelsonError
from inventory.kubernetes import Artifacts
from provision.artifacts import layout
from provision.artifacts.catalog import Release
from provision.artifacts.layout import Remote
from roles.engine.fetch import Payload
from roles.engine.step import FileStep

FETCH_TIMEOUT_S = 15.0
CA_FILE = "/etc/keelson/artifacts-ca.crt"  # the mirror's CA on every host that fetches from it


def ca_step(artifacts: Artifacts) -> FileStep | None:
    """The mirror's CA (kubernetes.artifacts.ca_file) on a host that downloads from the mirror."""
    if not artifacts.ca_file:
        return None
    try:
        ca = Path(artifacts.ca_file).expanduser().read_bytes()
    except OSError as exc:
        raise KeelsonError(f"kubernetes.artifacts.ca_file: cannot read {artifacts.ca_file}: {exc}") from exc
    return FileStep(CA_FILE, ca, name="artifacts | the mirror's CA")


class ArtifactSourceError(KeelsonError):
    """An artifact's digest could not be resolved (mirror unreachable, no .sha256, set not built)."""


class Resolver:
    """Resolves payloads for one run (memoised: one `.sha256` request per file per run)."""

    def __init__(self, artifacts: Artifacts, release: Release) -> None:
        self.artifacts = artifacts
        self.release = release
        self._memo: dict[str, Payload] = {}
        self._set_dir: Path | None = None
        self._images: dict[str, str] | None = None

    # -- the files a node needs ---------------------------------------------------------------------
    def binary(self, name: str) -> Payload:
        return self.payload(layout.kube_binary(self.release, name))

    def etcd(self) -> Remote:
        return layout.etcd_archive(self.release)

    def archives(self) -> tuple[Remote, Remote, Remote]:
        """crictl's, the CNI plugins' and the flannel CNI plugin's archives (paths only: nothing is fetched)."""
        flannel = self.release.flannel_cni if self.artifacts.source != "upstream" else layout.UPSTREAM_FLANNEL_CNI
        return (
            layout.crictl_archive(self.release),
            layout.cni_archive(self.release),
            layout.flannel_cni_archive(flannel),
        )

    def image_bundle(self) -> Payload:
        return self._payload_at(layout.IMAGE_BUNDLE, None)

    def image_digests(self) -> dict[str, str]:
        """Every image of the set: name -> manifest digest (local: the set's manifest; mirror: the mirror's)."""
        if self._images is None:
            from provision.artifacts.manifest import Manifest, SetInvalid

            if self.artifacts.source == "local":
                manifest = Manifest.load(self.local_set())
            elif self.artifacts.source == "mirror":
                assert self.artifacts.mirror is not None
                url = self.artifacts.mirror.rstrip("/") + "/manifest.json"
                try:
                    manifest = Manifest.from_json(self._read(url, 64 << 20).decode())
                except (ValueError, TypeError, KeyError) as exc:
                    raise SetInvalid(f"{url} is not a keelson artifact manifest: {exc}") from exc
            else:
                raise ArtifactSourceError("with source upstream, images are pulled, not imported")
            self._images = {i.name: i.digest for i in manifest.images}
        return self._images

    # -- resolution ----------------------------------------------------------------------------------
    def payload(self, remote: Remote) -> Payload:
        return self._payload_at(remote.path, remote.upstream_url, remote.upstream_sums, remote.upstream_release_api)

    @property
    def ca_path(self) -> str | None:
        """Where the mirror's CA lands on the hosts (`ca_step`), when the inventory names one."""
        return CA_FILE if self.artifacts.ca_file else None

    def origin(self) -> str:
        """Where the files come from, for a plan line."""
        if self.artifacts.source == "local":
            return f"uploaded from {self.local_set()}"
        return f"from {self.artifacts.mirror}" if self.artifacts.source == "mirror" else "from upstream"

    def _payload_at(
        self, path: str, upstream_url: str | None, sums: str | None = None, release_api: str | None = None
    ) -> Payload:
        if path not in self._memo:
            self._memo[path] = self._resolve(path, upstream_url, sums, release_api)
        return self._memo[path]

    def _resolve(
        self, path: str, upstream_url: str | None, sums: str | None = None, release_api: str | None = None
    ) -> Payload:
        source = self.artifacts.source
        if source == "local":
            from provision.artifacts.manifest import Manifest

            set_dir = self.local_set()
            entry = Manifest.load(set_dir).file(path)
            return Payload(path, entry.sha256, path=set_dir / path)
        if source == "mirror":
            assert self.artifacts.mirror is not None  # the model requires it
            url = self.artifacts.mirror.rstrip("/") + "/" + path
        else:
            if upstream_url is None:
                raise ArtifactSourceError(f"{path} has no upstream URL: with source upstream, images are pulled")
            url = upstream_url
            if sums is not None:  # the release publishes one SHA256SUMS file, not a .sha256 per file
                return Payload(path, self._digest_from_sums(sums, url.rsplit("/", 1)[1]), url=url)
            if release_api is not None:  # no checksum file at all: the digest GitHub records for the asset
                name = url.rsplit("/", 1)[1]
                text = self._read(release_api, 4 << 20).decode(errors="replace")
                digest = release_asset_digest(text, name)
                if digest is None:
                    raise ArtifactSourceError(f"{release_api} gives no sha256 digest for {name}")
                return Payload(path, digest, url=url)
        return Payload(path, self._published_digest(url), url=url)

    def local_set(self) -> Path:
        if self._set_dir is None:
            if self.artifacts.local:
                self._set_dir = Path(self.artifacts.local).expanduser()
            else:
                from provision.artifacts.sets import find

                found = find(self.release)
                if found is None:
                    raise ArtifactSourceError(
                        f"kubernetes.artifacts.source is local but Kubernetes {self.release.kubernetes} is not built "
                        "on this machine",
                        hint=f"keelson artifacts build --kubernetes {self.release.kubernetes}",
                    )
                self._set_dir = found.path
        return self._set_dir

    def _read(self, url: str, limit: int) -> bytes:
        cafile = str(Path(self.artifacts.ca_file).expanduser()) if self.artifacts.ca_file else None
        context = ssl.create_default_context(cafile=cafile) if url.startswith("https:") else None
        try:
            with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S, context=context) as response:  # noqa: S310 - http(s) only (validated)
                data: bytes = response.read(limit)
                return data
        except (urllib.error.URLError, OSError, ssl.SSLError) as exc:
            raise ArtifactSourceError(
                f"cannot read {url}: {exc}", hint="is the mirror up and its CA in kubernetes.artifacts.ca_file?"
            ) from exc

    def _digest_from_sums(self, sums_url: str, name: str) -> str:
        text = self._read(sums_url, 1 << 20).decode(errors="replace")
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].lstrip("*") == name and len(parts[0]) == 64:
                return parts[0].lower()
        raise ArtifactSourceError(f"{sums_url} lists no sha256 for {name}")

    def _published_digest(self, url: str) -> str:
        text = self._read(url + ".sha256", 4096).decode(errors="replace")
        digest = text.split()[0].lower() if text.split() else ""
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ArtifactSourceError(f"{url}.sha256 does not hold a sha256 digest: {text[:80]!r}")
        return digest


def release_asset_digest(text: str, name: str) -> str | None:
    """GitHub's release JSON -> the sha256 of the asset called `name` (`"digest": "sha256:<hex>"`); None when the
    release lists no such asset, or no digest for it. Pure: junk -> None."""
    import json

    try:
        assets = json.loads(text).get("assets") or []
    except (ValueError, AttributeError):
        return None
    for asset in assets:
        if isinstance(asset, dict) and asset.get("name") == name:
            digest = str(asset.get("digest") or "")
            hex_part = digest.removeprefix("sha256:").lower()
            if digest.startswith("sha256:") and len(hex_part) == 64 and all(c in "0123456789abcdef" for c in hex_part):
                return hex_part
    return None
