"""The `kubernetes:` section of an inventory: which release, where its binaries and images come from, and the
kubelet's cgroup driver.

    kubernetes:
      version: v1.37.2
      artifacts:
        source: upstream          # upstream (dl.k8s.io + registries) | mirror (your server, same layout) | local
        mirror: https://artifacts.internal/k8s    # source: mirror
        ca_file: ~/pki/mirror-ca.crt              # optional: the CA of the mirror's TLS certificate
        local: /var/cache/keelson/artifacts/sets/v1.37.2-…   # source: local (default: the built set of `version`)
        images: import            # import (OCI tarballs from the source) | pull (containerd pulls by name)
        registry_mirrors: {registry.k8s.io: [https://registry.internal]}   # for images: pull
      cgroup_driver: systemd      # systemd | cgroupfs (kubelet and containerd always agree)
      kubelet:                    # optional; unset keys keep the kubelet's defaults
        eviction_hard: {nodefs.available: 2Gi, imagefs.available: 2Gi}   # merged over the defaults below
        image_gc_high_percent: 85 # disk use at which the kubelet deletes unused images (100: never)
        image_gc_low_percent: 80
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

DEFAULT_VERSION = "v1.37.2"
Version = Annotated[str, StringConstraints(pattern=r"^v?1\.\d{1,2}\.\d{1,3}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Artifacts(_Strict):
    source: Literal["upstream", "mirror", "local"] = "upstream"
    mirror: Annotated[str, StringConstraints(pattern=r"^https?://[^\s/]+(/\S*)?$")] | None = Field(
        default=None, description="base URL of a mirror in keelson's layout (source: mirror)"
    )
    ca_file: str | None = Field(default=None, description="CA certificate (PEM) the mirror's TLS certificate chains to")
    local: str | None = Field(
        default=None, description="an artifact set folder (source: local); default: the built one"
    )
    images: Literal["import", "pull"] | None = Field(
        default=None, description="import tarballs from the source, or let containerd pull; default: pull for upstream"
    )
    registry_mirrors: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _mirror_needs_url(self) -> Artifacts:
        if self.source == "mirror" and not self.mirror:
            raise ValueError("source: mirror needs mirror: <base URL>")
        if self.source != "mirror" and self.mirror:
            raise ValueError(f"mirror: is only read with source: mirror (source is {self.source})")
        if self.source != "local" and self.local:
            raise ValueError(f"local: is only read with source: local (source is {self.source})")
        if self.source == "upstream" and self.images == "import":
            raise ValueError("images: import needs tarballs: use source: mirror or local")
        return self

    @property
    def image_mode(self) -> Literal["import", "pull"]:
        return self.images or ("pull" if self.source == "upstream" else "import")


EvictionSignal = Literal[
    "memory.available",
    "nodefs.available",
    "nodefs.inodesFree",
    "imagefs.available",
    "imagefs.inodesFree",
    "pid.available",
]
# A Kubernetes quantity (100Mi, 2Gi, 500000) or a percentage (10%).
Threshold = Annotated[str, StringConstraints(pattern=r"^(\d+(\.\d+)?%|\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?)$")]
# The kubelet's own hard-eviction defaults (KubeletConfiguration evictionHard; pkg/kubelet/eviction/defaults_linux.go).
EVICTION_DEFAULTS: dict[str, str] = {
    "memory.available": "100Mi",
    "nodefs.available": "10%",
    "nodefs.inodesFree": "5%",
    "imagefs.available": "15%",
    "imagefs.inodesFree": "5%",
}


class Kubelet(_Strict):
    """What the kubelet does when its disk or memory runs low. Its thresholds are shares of the file system that holds
    /var/lib/kubelet and /var/lib/containerd: on a host whose disk is shared with much else (the lab's hosts use the
    machine's), percentages can report pressure the node does not have; absolute quantities say what the node needs."""

    eviction_hard: dict[EvictionSignal, Threshold] = Field(default_factory=dict)
    image_gc_high_percent: int | None = Field(default=None, ge=1, le=100)
    image_gc_low_percent: int | None = Field(default=None, ge=0, le=99)

    @model_validator(mode="after")
    def _gc_order(self) -> Kubelet:
        high = self.image_gc_high_percent if self.image_gc_high_percent is not None else 85
        low = self.image_gc_low_percent if self.image_gc_low_percent is not None else 80
        if low >= high:
            raise ValueError(f"image_gc_low_percent ({low}) must be below image_gc_high_percent ({high})")
        return self

    @property
    def eviction(self) -> dict[str, str]:
        """The full evictionHard map the kubelet gets: its defaults with the inventory's values over them (a partial
        map would leave the other signals unset, since the kubelet does not merge by default)."""
        return {**EVICTION_DEFAULTS, **{str(k): v for k, v in self.eviction_hard.items()}}


class Kubernetes(_Strict):
    version: Version = DEFAULT_VERSION
    artifacts: Artifacts = Artifacts()
    cgroup_driver: Literal["systemd", "cgroupfs"] = "systemd"
    kubelet: Kubelet = Kubelet()

    @property
    def release_version(self) -> str:
        """`v1.37.2` whether the inventory wrote 1.37.2 or v1.37.2."""
        return self.version if self.version.startswith("v") else f"v{self.version}"
