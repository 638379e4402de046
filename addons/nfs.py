"""Storage: NFS through nfs-subdir-external-provisioner (each PVC a folder of one export), from upstream's image
(not in the artifact set). Rendered and validated by a server-side dry run; not proven running in the lab."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import pulumi

from addons.render import manifest
from provision.artifacts.catalog import Release


@dataclass(frozen=True)
class NFSArgs:
    version: str
    image: str
    server: str  # the inventory's addons.nfs.server: an address or DNS name every node can mount from
    path: str  # the export (absolute)
    class_name: str = "nfs"
    default_class: bool = True  # storage: nfs replaces local-path as the cluster's default class
    reclaim_policy: Literal["Delete", "Retain"] = "Delete"
    archive_on_delete: bool = False
    provisioner: str = "k8s-sigs.io/nfs-subdir-external-provisioner"
    namespace: str = "nfs-provisioner"

    @classmethod
    def for_release(cls, release: Release, server: str, path: str, **overrides: Any) -> NFSArgs:
        return cls(
            version=release.nfs_provisioner, image=release.nfs_provisioner_image, server=server, path=path, **overrides
        )


def nfs_objects(args: NFSArgs) -> list[dict[str, Any]]:
    return manifest(
        "nfs.yaml.j2",
        version=args.version,
        image=args.image,
        server=args.server,
        path=args.path,
        class_name=args.class_name,
        default_class=args.default_class,
        reclaim_policy=args.reclaim_policy,
        archive_on_delete=args.archive_on_delete,
        provisioner=args.provisioner,
        namespace=args.namespace,
    )


class NFSStorage(pulumi.ComponentResource):
    """Output: `storage_class`, the class a PVC names (the cluster's default when `default_class`)."""

    storage_class: pulumi.Output[str]

    def __init__(self, name: str, args: NFSArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("keelson:addons:NFSStorage", name, None, opts)
        from addons.apply import config_group

        self.objects = config_group(name, nfs_objects(args), self)
        self.storage_class = pulumi.Output.from_input(args.class_name)
        self.register_outputs({"storage_class": self.storage_class})
