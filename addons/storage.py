"""Storage: the local-path provisioner (a PVC binds to a directory on the node its pod runs on), proven in the lab."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import pulumi

from addons.render import manifest
from provision.artifacts.catalog import Release


@dataclass(frozen=True)
class LocalPathArgs:
    version: str
    image: str
    helper_image: str  # runs mkdir/rm of a volume's directory on its node
    path: str = "/opt/local-path-provisioner"  # on every node
    class_name: str = "local-path"
    default_class: bool = True
    reclaim_policy: Literal["Delete", "Retain"] = "Delete"
    namespace: str = "local-path-storage"

    @classmethod
    def for_release(cls, release: Release, **overrides: Any) -> LocalPathArgs:
        return cls(
            version=release.local_path_provisioner,
            image=release.local_path_provisioner_image,
            helper_image=release.busybox_image,
            **overrides,
        )


def local_path_objects(args: LocalPathArgs) -> list[dict[str, Any]]:
    return manifest(
        "local-path.yaml.j2",
        version=args.version,
        image=args.image,
        helper_image=args.helper_image,
        path=args.path,
        class_name=args.class_name,
        default_class=args.default_class,
        reclaim_policy=args.reclaim_policy,
        namespace=args.namespace,
    )


class LocalPathStorage(pulumi.ComponentResource):
    """Output: `storage_class`, the class a PVC names (the cluster's default when `default_class`)."""

    storage_class: pulumi.Output[str]

    def __init__(self, name: str, args: LocalPathArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("keelson:addons:LocalPathStorage", name, None, opts)
        from addons.apply import config_group

        self.objects = config_group(name, local_path_objects(args), self)
        self.storage_class = pulumi.Output.from_input(args.class_name)
        self.register_outputs({"storage_class": self.storage_class})
